"""lsblk: ``lsblk -J -b -o NAME,PATH,TYPE,MODEL,SERIAL,SIZE,FSTYPE,UUID,PTTYPE,MOUNTPOINTS`` or the
plain tree that a bare ``lsblk`` prints (pasted into docs and bug reports).

JSON sample::

    {"blockdevices": [{"name": "vda", "type": "disk", "model": null, "size": 274877906944,
                       "mountpoints": ["/"], "children": [...]}]}

Tree sample (sizes are rounded by lsblk, so ``size_exact`` is false there)::

    NAME         MAJ:MIN RM   SIZE RO TYPE  MOUNTPOINTS
    nvme16n1     259:14   0 476.9G  0 disk
    ├─nvme16n1p1 259:17   0     1G  0 part  /boot/efi
    └─nvme16n1p2 259:18   0 475.9G  0 part  /

``disks`` holds the top-level devices of TYPE ``disk``; roms and loop devices go to ``others``.
"""

from __future__ import annotations

import json
import re

from .common import MAX_DIGITS, ParseError, clean
from .noise import strip_noise

_UNITS = {"B": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40, "P": 2**50, "E": 2**60}
_TREE_CHARS = "├└│─`|- "


def _text(value) -> str | None:
    return clean(str(value)) if value is not None else None


def _size(value, exact: bool) -> tuple[int | None, bool]:
    """Bytes from ``-b``'s integer (or its string form), or from a suffixed size (``931.5G``)."""
    if isinstance(value, bool) or value is None or value == "":
        return None, exact
    if isinstance(value, int):
        return (value if 0 <= value < 2**64 else None), exact
    if isinstance(value, str) and value.isdigit():
        return (int(value) if len(value) <= MAX_DIGITS else None), exact
    if isinstance(value, str):  # `lsblk -J` without -b: "931.5G"
        return human_bytes(value), False
    return None, exact


def _device(raw, exact: bool, depth: int = 0) -> dict:
    if not isinstance(raw, dict):
        raise ParseError(f"lsblk device entry is a {type(raw).__name__}, not an object: is this `lsblk -J`?")
    if depth > 16:  # disk > partition > md > crypt > lvm ... never this deep
        raise ParseError("lsblk device tree nests deeper than 16 levels: corrupt output")
    mountpoints = raw.get("mountpoints")
    if mountpoints is None:
        mountpoints = [raw.get("mountpoint")]
    if not isinstance(mountpoints, list):
        mountpoints = [mountpoints]
    children = raw.get("children") or []
    if not isinstance(children, list):
        raise ParseError(f"lsblk 'children' of {str(raw.get('name'))[:40]!r} is not a list")
    size, exact = _size(raw.get("size"), exact)
    return {
        "name": _text(raw.get("name")),
        "path": _text(raw.get("path")),
        "type": _text(raw.get("type")),
        "model": _text(raw.get("model")),
        "serial": _text(raw.get("serial")),
        "size_bytes": size,
        "size_exact": exact,
        "fstype": _text(raw.get("fstype")),
        "uuid": _text(raw.get("uuid")),
        "pttype": _text(raw.get("pttype")),
        "mountpoints": [str(mp) for mp in mountpoints if mp],
        "children": [_device(child, exact, depth + 1) for child in children],
    }


def _split(devices: list[dict]) -> dict:
    disks = [device for device in devices if device["type"] == "disk"]
    others = [device for device in devices if device["type"] != "disk"]
    return {"disks": disks, "others": others}


def parse_lsblk_json(output) -> dict:
    text = "\n".join(strip_noise(output))
    start = text.find("{")
    try:
        data = json.loads(text[start:]) if start >= 0 else None
    except json.JSONDecodeError as error:
        raise ParseError(f"lsblk JSON does not parse ({error.msg} at line {error.lineno})") from None
    except RecursionError:
        raise ParseError("lsblk JSON nests too deep to be lsblk output") from None
    if not isinstance(data, dict) or not isinstance(data.get("blockdevices"), list):
        raise ParseError("no {\"blockdevices\": [...]} object found: is this `lsblk -J -b` output?")
    return _split([_device(raw, exact=True) for raw in data["blockdevices"]])


def human_bytes(text: str) -> int | None:
    """``931.5G``, ``1,8T`` (a comma locale) -> bytes (lsblk uses powers of 1024); else None."""
    match = re.fullmatch(r"(\d{1,6}(?:[.,]\d{1,6})?)([BKMGTPE]?)(?:i?B)?", text.strip())
    if not match:
        return None
    return round(float(match.group(1).replace(",", ".")) * _UNITS[match.group(2) or "B"])


def parse_lsblk_tree(output) -> dict:
    lines = [line for line in strip_noise(output) if line.strip()]
    if not lines or not lines[0].startswith("NAME"):
        raise ParseError("first line is not an lsblk header starting with NAME: is this `lsblk` output?")
    columns = lines[0].split()
    roots: list[dict] = []
    stack: list[tuple[int, dict]] = []
    for line in lines[1:]:
        name_at = len(line) - len(line.lstrip(_TREE_CHARS))
        fields = line[name_at:].split(None, len(columns) - 1)
        if len(fields) < min(len(columns), 6) - 1:
            raise ParseError(f"lsblk line has too few columns: {line.strip()!r}")
        raw = {column.lower(): value for column, value in zip(columns, fields, strict=False)}
        raw["mountpoints"] = [raw.pop("mountpoints", raw.pop("mountpoint", None))]
        device = _device(raw, exact=False)
        while stack and stack[-1][0] >= name_at:
            stack.pop()
        (stack[-1][1]["children"] if stack else roots).append(device)
        stack.append((name_at, device))
    return _split(roots)


def parse_lsblk(output) -> dict:
    """Either form: JSON when the output holds ``{``, else the plain tree."""
    lines = strip_noise(output)
    if any(line.lstrip().startswith("{") for line in lines):
        return parse_lsblk_json(lines)
    return parse_lsblk_tree(lines)
