"""Read-only probe of one disk's layout for the storage deploy (block devices: ``facts.hardware``).

Why apart: the probe and its pure parsers (the layout, ``/proc/self/mounts``, fstab) are facts (what
is there); the storage deploy and verify decide what to do about it. ``parse_layout`` is tested on
real captured outputs (tests/deploys/storage/captures).
"""

from __future__ import annotations

import json
import shlex
from typing import Any

from pyinfra.api import FactBase


class DiskLayout(FactBase[dict]):
    """One disk's partition table (``sfdisk -J``), signatures (``wipefs -n``) and, per kernel-known
    partition, ``blkid -p`` and ``wipefs -n``; plus ``/proc/self/mounts``. Read-only."""

    def command(self, path: str) -> str:
        disk = shlex.quote(path)
        return (
            f"echo '##sfdisk'; sfdisk -J {disk} 2>&1; echo \"##rc $?\"; "
            f"echo '##wipefs'; wipefs -n -J {disk} 2>&1; echo \"##rc $?\"; "
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
            "echo '##mounts'; cat /proc/self/mounts"
        )

    def process(self, output: list[str]) -> dict:
        return parse_layout(output)


def _json_or_none(lines: list[str]) -> Any:
    text = "\n".join(lines).strip()
    if not text:
        return {}
    try:
        return json.loads(text)
    except ValueError:
        return None


def parse_layout(output: list[str]) -> dict[str, Any]:
    """Pure parser of :class:`DiskLayout` output (sections ``##name``, each closed by ``##rc N``)."""
    sections: list[tuple[str, list[str], int | None]] = []
    current: tuple[str, list[str]] | None = None
    for line in output:
        if line.startswith("##rc ") and current:
            sections.append((current[0], current[1], int(line.split()[1])))
            current = None
        elif line.startswith("##"):
            if current:
                sections.append((current[0], current[1], None))
            current = (line[2:].strip(), [])
        elif current:
            current[1].append(line)
    if current:
        sections.append((current[0], current[1], None))
    layout: dict[str, Any] = {
        "table": None,
        "table_error": None,
        "sfdisk_missing": False,  # the shell could not run sfdisk (fdisk not installed)
        "signatures": None,
        "partitions": {},
        "mounts": [],
        "kernel_tree": None,  # lsblk's node for the disk (children: partitions, md, lvm, crypt)
        "holders": {},  # device name -> names of the devices stacked on it (/sys/class/block/*/holders)
        "swaps": [],  # devices in /proc/swaps
    }
    for head, lines, rc in sections:
        kind, _, arg = head.partition(" ")
        if kind == "sfdisk":
            parsed = _json_or_none(lines) if rc == 0 else None
            if parsed and "partitiontable" in parsed:
                layout["table"] = parsed["partitiontable"]
            else:
                error = " ".join(lines).strip()[:300] or f"sfdisk exit {rc}"
                layout["table_error"] = error
                layout["sfdisk_missing"] = "sfdisk" in error and "not found" in error
        elif kind == "wipefs":
            parsed = _json_or_none(lines) if rc == 0 else None
            layout["signatures"] = None if parsed is None else parsed.get("signatures", [])
            if parsed is None:
                layout["wipefs_error"] = " ".join(lines).strip()[:300]
        elif kind == "part":
            values = dict(line.split("=", 1) for line in lines if "=" in line)
            layout["partitions"].setdefault(arg, {}).update(blkid=values, blkid_rc=rc)
        elif kind == "partwipefs":
            parsed = _json_or_none(lines) if rc == 0 else None
            layout["partitions"].setdefault(arg, {})["signatures"] = (
                None if parsed is None else parsed.get("signatures", [])
            )
        elif kind == "lsblk":
            parsed = _json_or_none(lines) if rc == 0 else None
            devices = (parsed or {}).get("blockdevices") or []
            layout["kernel_tree"] = devices[0] if devices and isinstance(devices[0], dict) else None
        elif kind == "holders":
            for line in lines:
                parts = line.strip().split("/")
                if len(parts) >= 3 and parts[-2] == "holders":
                    layout["holders"].setdefault(parts[-3], []).append(parts[-1])
        elif kind == "swaps":
            layout["swaps"] = [line.split()[0] for line in lines[1:] if line.split()]
        elif kind == "mounts":
            layout["mounts"] = parse_mounts(lines)
    return layout


def parse_mounts(lines: list[str]) -> list[list[str]]:
    """Fields (device, mount point, fstype, options, ...) of each ``/proc/self/mounts`` line.

    One home for reading mounts: the layout probe and verify's data-disk row both use it."""
    return [fields for fields in (line.split() for line in lines) if len(fields) >= 4]


def fstab_entries(lines: list[str] | None) -> list[list[str]]:
    """Fields of each fstab line that is neither blank nor a ``#`` comment (fields not checked).

    One home for reading fstab: the storage plan (conflicting mount point) and verify use it."""
    return [line.split() for line in lines or [] if line.strip() and not line.lstrip().startswith("#")]
