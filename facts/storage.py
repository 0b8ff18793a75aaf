"""Read-only probe of one disk's layout for the storage deploy (block devices: ``facts.hardware``).

Why apart: the probe and its pure parsers (the layout, ``/proc/self/mounts``, fstab) are facts (what
is there); the storage deploy and verify decide what to do about it. ``parse_layout`` is tested on
real captured outputs (tests/deploys/storage/captures).

Why so strict: this layout decides whether a disk may be partitioned and formatted. The parser is
total (any text in, never an exception) and fails closed: output that is not what the probe prints
(a section missing, cut short, repeated or unknown, an exit status that is not a number, JSON of
the wrong shape, two tools disagreeing) is listed in ``problems``, and the deploy refuses a layout
with any problem instead of reading it as blank.
"""

from __future__ import annotations

import json
import re
import shlex
from typing import Any

from pyinfra.api import FactBase

#: Sections the probe prints exactly once; ``part``/``partwipefs`` come once per kernel partition.
SECTIONS = ("sfdisk", "wipefs", "blkid", "lsblk", "holders", "swaps", "mounts")
#: sfdisk's one line for a disk without a partition table (util-linux >= 2.26, exit 1); any other
#: failure means the table could not be read, which is not the same as "there is none".
NO_TABLE = "does not contain a recognized partition table"
_NO_TABLE_LINE = re.compile(r"sfdisk: (/dev/\S+): " + NO_TABLE)
_MOUNT_LINE = re.compile(r"\S+ \S+ \S+ \S+ \d+ \d+")  # /proc/self/mounts escapes blanks as \040
_RERUN = "rerun the deploy; if it repeats, run the DiskLayout probe by hand on the host and read its output"
_HOLDER = re.compile(r"/sys/class/block/[^/\s]+(/[^/\s]+)?/holders/[^/\s]+")
_RC = re.compile(r"[0-9]{1,3}")
_MAX_DEPTH = 16  # disk -> partition -> crypt -> lvm -> ...: far deeper than any real stack


class DiskLayout(FactBase[dict]):
    """One disk's partition table (``sfdisk -J``), signatures (``wipefs -n``, and ``blkid -p`` as a
    second opinion) and, per kernel-known partition, ``blkid -p`` and ``wipefs -n``; the kernel's
    view (``lsblk``, holders, swap) and ``/proc/self/mounts``. Read-only; every section is closed
    by ``##rc N`` so a cut-short output is told apart from an empty one."""

    def command(self, path: str) -> str:
        disk = shlex.quote(path)
        return (
            f"echo '##sfdisk'; sfdisk -J {disk} 2>&1; echo \"##rc $?\"; "
            f"echo '##wipefs'; wipefs -n -J {disk} 2>&1; echo \"##rc $?\"; "
            f"echo '##blkid'; blkid -p -o export {disk} 2>&1; echo \"##rc $?\"; "
            f"name=$(basename $(readlink -f {disk})); "
            'for p in /sys/class/block/$name/$name*; do [ -e "$p/partition" ] || continue; '
            'd=/dev/$(basename $p); echo "##part $d"; blkid -p -o export $d 2>&1; echo "##rc $?"; '
            'echo "##partwipefs $d"; wipefs -n -J $d 2>&1; echo "##rc $?"; done; '
            # the kernel's view, which sfdisk and wipefs do not give: partitions it knows without a
            # table, holders (LVM, md, dm-crypt), mounts and swap anywhere on the disk
            f"echo '##lsblk'; lsblk -J -b -o NAME,PATH,TYPE,FSTYPE,MOUNTPOINTS {disk} 2>&1; "
            'echo "##rc $?"; echo \'##holders\'; '
            "for h in /sys/class/block/$name/holders/* /sys/class/block/$name/$name*/holders/*; "
            'do [ -e "$h" ] && echo "$h"; done; echo "##rc 0"; '
            "echo '##swaps'; cat /proc/swaps 2>/dev/null; echo \"##rc 0\"; "
            "echo '##mounts'; cat /proc/self/mounts; echo \"##rc $?\""
        )

    def process(self, output: list[str]) -> dict:
        return parse_layout(output)


def _excerpt(text: str, limit: int = 120) -> str:
    """``text`` on one printable line, cut to ``limit`` characters (it goes into a refusal)."""
    flat = "".join(c if c.isprintable() else "?" for c in " ".join(text.split()))
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _json(lines: list[str]) -> Any:
    """The section's JSON, or None when it is empty or not JSON (also when nested past recursion)."""
    text = "\n".join(lines).strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def _count(value: Any) -> bool:
    """A JSON integer that can be a sector number or count (bool is an int in Python: not one)."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**64


def _table_shape(table: Any) -> str | None:
    """What is wrong with sfdisk's ``partitiontable`` (the planner indexes it without checks)."""
    if not isinstance(table, dict) or not isinstance(table.get("label"), str):
        return "its partitiontable is not an object with a label"
    for key in ("firstlba", "lastlba"):
        if key in table and not _count(table[key]):
            return f"its {key} is not a sector number"
    if "sectorsize" in table and not (_count(table["sectorsize"]) and 512 <= table["sectorsize"] <= 65536):
        return "its sectorsize is not 512..65536"
    parts = table.get("partitions", [])
    if not isinstance(parts, list):
        return "its partitions are not a list"
    for part in parts:
        if not (isinstance(part, dict) and isinstance(part.get("node"), str) and part["node"][-1:].isdigit()
                and part["node"][-1:].isascii() and _count(part.get("start")) and _count(part.get("size"))):
            return "a partition lacks a node ending in its number, a start or a size"
        if not isinstance(part.get("name", ""), str):
            return f"the name of {_excerpt(part['node'], 40)} is not text"
    return None


def _signatures(parsed: Any) -> list[dict[str, Any]] | None:
    """wipefs's ``signatures`` when ``parsed`` has the shape ``wipefs -J`` prints, else None."""
    if not isinstance(parsed, dict) or not isinstance(parsed.get("signatures"), list):
        return None
    sigs = parsed["signatures"]
    if not all(isinstance(s, dict) and isinstance(s.get("type"), str) and s["type"] for s in sigs):
        return None
    return sigs


def _tree_shape(node: Any, depth: int = 0) -> bool:
    """Whether ``node`` is an lsblk device as the guard reads it, children included."""
    if depth > _MAX_DEPTH or not isinstance(node, dict) or not isinstance(node.get("name"), str):
        return False
    if any(not isinstance(node.get(key), (str, type(None))) for key in ("path", "type", "fstype")):
        return False
    mounts = node.get("mountpoints", [])
    if not isinstance(mounts, list) or not all(isinstance(m, (str, type(None))) for m in mounts):
        return False
    children = node.get("children", [])
    return isinstance(children, list) and all(_tree_shape(child, depth + 1) for child in children)


def _export(lines: list[str]) -> dict[str, str] | None:
    """``blkid -o export`` lines as a dict; None when a line is not ``KEY=value``."""
    values: dict[str, str] = {}
    for line in lines:
        key, eq, value = line.partition("=")
        if not eq or not re.fullmatch(r"[A-Z_]+", key):
            return None
        values[key] = value
    return values


def _split_sections(output: list[str], problems: list[str]) -> list[tuple[str, list[str], int | None]]:
    """(head, lines, exit status) per ``##head`` section; what does not fit goes to ``problems``.

    A section without its ``##rc N`` (cut short, or the next header came first) or with a status
    that is not a number gets status None."""
    sections: list[tuple[str, list[str], int | None]] = []
    current: tuple[str, list[str]] | None = None
    for line in output:
        if line.startswith("##rc"):
            status = line[4:].strip()
            if current is None:
                problems.append(f"a stray {_excerpt(line, 40)!r} outside any section")
                continue
            rc = int(status) if line[4:5] == " " and _RC.fullmatch(status) else None
            if rc is None:
                problems.append(f"section '##{_excerpt(current[0], 40)}' ends in {_excerpt(line, 40)!r}, "
                                "not an exit status")
            sections.append((current[0], current[1], rc))
            current = None
        elif line.startswith("##"):
            if current is not None:
                problems.append(f"section '##{_excerpt(current[0], 40)}' has no '##rc' (output cut short?)")
                sections.append((current[0], current[1], None))
            current = (line[2:].strip(), [])
        elif current is not None:
            current[1].append(line)
        elif line.strip():
            problems.append(f"output before the first section: {_excerpt(line, 40)!r}")
    if current is not None:
        problems.append(f"section '##{_excerpt(current[0], 40)}' has no '##rc' (output cut short)")
        sections.append((current[0], current[1], None))
    return sections


def parse_layout(output: list[str]) -> dict[str, Any]:
    """Pure, total parser of :class:`DiskLayout` output (sections ``##name``, each closed by
    ``##rc N``). ``problems`` lists, one line each, whatever makes the layout untrustworthy."""
    problems: list[str] = []
    layout: dict[str, Any] = {
        "table": None,
        "table_error": None,
        "sfdisk_missing": False,  # the shell could not run sfdisk (fdisk not installed)
        "signatures": None,
        "blkid": None,  # blkid -p of the whole disk: a second opinion on "no signature"
        "partitions": {},
        "mounts": [],
        "kernel_tree": None,  # lsblk's node for the disk (children: partitions, md, lvm, crypt)
        "holders": {},  # device name -> names of the devices stacked on it (/sys/class/block/*/holders)
        "swaps": [],  # devices in /proc/swaps
        "device": None,  # the device the tools answered about (the plan checks it is the disk asked)
        "problems": problems,  # non-empty: not a layout to act on (the deploy refuses it)
    }
    seen: set[str] = set()
    for head, lines, rc in _split_sections(output, problems):
        kind, _, arg = head.partition(" ")
        label = f"'##{_excerpt(head, 60)}'"
        if head in seen:
            problems.append(f"section {label} appears twice")
            continue
        seen.add(head)
        said = _excerpt(" ".join(lines)) or "no output"
        if (kind in SECTIONS and arg) or (kind in ("part", "partwipefs") and not arg.startswith("/dev/")):
            problems.append(f"unknown section {label}")
        elif kind == "sfdisk":
            parsed = _json(lines) if rc == 0 else None
            table = parsed.get("partitiontable") if isinstance(parsed, dict) else None
            if rc == 0 and (shape := _table_shape(table)):
                problems.append(f"sfdisk -J printed no usable partition table ({shape}): {_RERUN}")
            elif rc == 0:
                layout["table"] = table
            else:
                error = _excerpt(" ".join(lines), 300) or f"sfdisk exit {rc}"
                layout["table_error"] = error
                layout["sfdisk_missing"] = "sfdisk" in error and "not found" in error
                no_table = rc == 1 and len(lines) == 1 and _NO_TABLE_LINE.fullmatch(lines[0].strip())
                if not layout["sfdisk_missing"] and not no_table:
                    problems.append(f"sfdisk could not read the partition table (exit {rc}: {said}): "
                                    "check the disk and that fdisk is installed")
        elif kind == "wipefs":
            layout["signatures"] = _signatures(_json(lines)) if rc == 0 else None
            if layout["signatures"] is None:
                layout["wipefs_error"] = said
                problems.append(f"wipefs -n -J printed no signature list ({said}): {_RERUN}" if rc == 0 else
                                f"wipefs -n -J could not list the signatures (exit {rc}: {said}): "
                                "install util-linux (wipefs) or check the disk")
        elif kind == "blkid":
            values = _export(lines)
            if rc in (0, 2) and (values is None or (rc == 2) == bool(values)):
                problems.append(f"blkid -p printed {said!r} with exit {rc}: {_RERUN}")
            layout["blkid"] = {"rc": rc, "values": values or {}}
        elif kind == "part":
            values = _export(lines)
            if values is None:
                problems.append(f"section {label} is not blkid's KEY=value output: {_RERUN}")
            layout["partitions"].setdefault(arg, {}).update(blkid=values or {}, blkid_rc=rc)
        elif kind == "partwipefs":
            parsed = _json(lines) if rc == 0 else None
            sigs = _signatures(parsed)
            if rc == 0 and sigs is None:
                problems.append(f"section {label} is not wipefs's JSON ({said}): {_RERUN}")
            layout["partitions"].setdefault(arg, {})["signatures"] = sigs
        elif kind == "lsblk":
            parsed = _json(lines) if rc == 0 else None
            devices = parsed.get("blockdevices") if isinstance(parsed, dict) else None
            if isinstance(devices, list) and len(devices) == 1 and _tree_shape(devices[0]):
                layout["kernel_tree"] = devices[0]
            else:
                problems.append(f"lsblk -J printed no tree of one disk ({said}): {_RERUN}" if rc == 0 else
                                f"lsblk -J could not read the disk (exit {rc}: {said}): "
                                "install util-linux (lsblk) or check the disk")
        elif kind == "holders":
            if rc != 0:
                problems.append(f"section {label} ends with exit {rc}, not the 0 the probe prints: {_RERUN}")
            for line in lines:
                if not _HOLDER.fullmatch(line.strip()):
                    problems.append(f"section {label} holds {_excerpt(line, 60)!r}, not a holders path")
                    break
                parts = line.strip().split("/")
                layout["holders"].setdefault(parts[-3], []).append(parts[-1])
        elif kind == "swaps":
            rows = [line.split() for line in lines if line.strip()]
            if rc != 0 or (rows and rows[0][:1] != ["Filename"]) or any(len(row) < 5 for row in rows[1:]):
                problems.append(f"section {label} is not /proc/swaps ({said}): {_RERUN}")
            layout["swaps"] = [row[0] for row in rows[1:] if row]
        elif kind == "mounts":
            layout["mounts"] = parse_mounts(lines)
            if rc != 0 or not all(_MOUNT_LINE.fullmatch(line) for line in lines):
                problems.append(f"section {label} is not /proc/self/mounts (exit {rc}): {_RERUN}")
        else:
            problems.append(f"unknown section {label}")
    problems.extend(f"the probe printed no '##{name}' section (output cut short?): {_RERUN}"
                    for name in SECTIONS if name not in seen)
    problems.extend(_disagreements(layout))
    return layout


def _disagreements(layout: dict[str, Any]) -> list[str]:
    """Where two tools read the same device differently: a signature one of them missed."""
    found = []
    blkid = layout["blkid"]
    no_table = _NO_TABLE_LINE.fullmatch(layout["table_error"] or "")
    said = ((layout["table"] or {}).get("device"), (blkid or {}).get("values", {}).get("DEVNAME"),
            (layout["kernel_tree"] or {}).get("path"), no_table and no_table.group(1))
    named = {name for name in said if isinstance(name, str) and name}
    if len(named) > 1:
        found.append(f"the tools answered about different devices ({_excerpt(', '.join(sorted(named)))}): "
                     f"{_RERUN}")
    layout["device"] = named.pop() if len(named) == 1 else None
    if blkid is not None and layout["signatures"] == [] and (blkid["values"] or blkid["rc"] != 2):
        tags = " ".join(f"{key}={value}" for key, value in blkid["values"].items()
                        if key in ("TYPE", "PTTYPE"))
        found.append(f"wipefs sees no signature on the disk but blkid -p does ({_excerpt(tags, 60)}, exit "
                     f"{blkid['rc']}): {_RERUN}")
    if blkid is not None and layout["table"] is None and blkid["values"].get("PTTYPE"):
        found.append(f"sfdisk reads no partition table but blkid -p sees PTTYPE="
                     f"{_excerpt(blkid['values']['PTTYPE'], 20)}: {_RERUN}")
    kernel = sorted(layout["partitions"])
    table = layout["table"]
    listed = sorted(part["node"] for part in table["partitions"]) if table is not None else kernel
    if listed != kernel:
        disk = _excerpt(str(table.get("device") or "the disk"), 60)
        found.append(f"the partition table lists {_excerpt(', '.join(listed) or 'none')} but the kernel "
                     f"knows {_excerpt(', '.join(kernel) or 'none')} (stale kernel view, or mangled output): "
                     f"run `partx -u {disk}` or reboot, then rerun")
    tree = layout["kernel_tree"]
    children = (tree or {}).get("children", [])
    shown = sorted(str(child.get("path") or f"/dev/{child['name']}") for child in children
                   if child.get("type") == "part")
    if tree is not None and shown != kernel:
        found.append(f"lsblk shows partitions {_excerpt(', '.join(shown) or 'none')} but /sys/class/block "
                     f"{_excerpt(', '.join(kernel) or 'none')}: {_RERUN}")
    for node, probe in layout["partitions"].items():
        if "signatures" not in probe or "blkid" not in probe:
            found.append(f"{_excerpt(node, 40)} has only one of its '##part' and '##partwipefs' sections: "
                         f"{_RERUN}")
        elif probe["signatures"] == [] and probe["blkid"].get("TYPE"):
            found.append(f"wipefs sees no signature on {_excerpt(node, 40)} but blkid -p sees TYPE="
                         f"{_excerpt(probe['blkid']['TYPE'], 20)}: {_RERUN}")
    return found


def parse_mounts(lines: list[str]) -> list[list[str]]:
    """Fields (device, mount point, fstype, options, ...) of each ``/proc/self/mounts`` line.

    One home for reading mounts: the layout probe and verify's data-disk row both use it."""
    return [fields for fields in (line.split() for line in lines) if len(fields) >= 4]


def fstab_entries(lines: list[str] | None) -> list[list[str]]:
    """Fields of each fstab line that is neither blank nor a ``#`` comment (fields not checked).

    One home for reading fstab: the storage plan (conflicting mount point) and verify use it."""
    return [line.split() for line in lines or [] if line.strip() and not line.lstrip().startswith("#")]
