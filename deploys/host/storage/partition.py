"""Our partition and its filesystem: what to create on the data disk, refusing what we did not make.

Why apart: this is the second half of the safety rule (nothing that holds a filesystem or other
signature is written to). It reads the ``facts.storage.DiskLayout`` probe only: a whole disk is
taken when it is blank or holds exactly our GPT with our single partition, the OS disk
(``append``) only gets a partition in its largest free region, and mkfs is planned only for our
partition (by GPT name) when it holds no signature. The commands carry the host-side re-check
from :mod:`deploys.host.storage.guard`.
"""

from __future__ import annotations

import re
from typing import Any

from deploys.host.storage import StorageRefusal
from deploys.host.storage.guard import kernel_in_use, mkfs_command, sfdisk_command
from deploys.host.storage.identity import filesystem_uuid

_ALIGN = 2048  # sectors: 1 MiB alignment


def partition_path(disk_path: str, number: int) -> str:
    return f"{disk_path}{'p' if disk_path[-1].isdigit() else ''}{number}"


def _sigs(signatures: list[dict[str, Any]] | None) -> str:
    return ", ".join(
        f"{s.get('type')}" + (f" (UUID {s['uuid']})" if s.get("uuid") else "") for s in signatures or []
    )


def _partition_summary(table: dict[str, Any], layout: dict[str, Any]) -> str:
    parts = []
    for part in table.get("partitions", []):
        probe = layout["partitions"].get(part.get("node"), {})
        fstype = probe.get("blkid", {}).get("TYPE", "no filesystem")
        parts.append(f"{part.get('node')} '{part.get('name', '')}' {fstype}")
    return f"{table.get('label')} partition table with {len(parts)} partition(s): {'; '.join(parts) or '-'}"


def _largest_gap(table: dict[str, Any]) -> tuple[int, int]:
    """(start, sectors) of the largest 1 MiB-aligned unallocated region of a GPT."""
    first, last = int(table.get("firstlba", _ALIGN)), int(table.get("lastlba", 0))
    used = sorted(
        (int(p["start"]), int(p["start"]) + int(p["size"]) - 1) for p in table.get("partitions", [])
    )
    best, cursor = (0, 0), first
    for start, end in [*used, (last + 1, last + 1)]:
        aligned = -(-cursor // _ALIGN) * _ALIGN
        size = start - aligned
        if size > best[1]:
            best = (aligned, size)
        cursor = max(cursor, end + 1)
    return best


def plan_partition(
    disk: dict[str, Any], layout: dict[str, Any], cfg: dict[str, Any]
) -> tuple[str, str, list[tuple[str, str]]]:
    """(partition path, filesystem UUID, (name, shell) commands) that give ``disk`` our XFS.

    Refuses whatever we did not create, and any layout whose probe had ``problems`` (cut short,
    mangled, tools disagreeing): fail closed. A converged disk plans no command."""
    label, path = cfg["label"], disk["path"]
    unread = layout.get("problems", ["the layout did not come from facts.storage.parse_layout"])
    if unread:  # fail closed: a probe we cannot fully read is never taken for a blank disk
        more = f" (and {len(unread) - 1} more)" if len(unread) > 1 else ""
        raise StorageRefusal(f"cannot trust the layout probe of {path}: {unread[0]}{more}; "
                             "refusing to touch it")
    if layout.get("device") != path:
        raise StorageRefusal(f"the layout probe of {path} answered about {layout.get('device')}: rerun the "
                             "deploy; refusing to touch it")
    table, signatures = layout.get("table"), layout.get("signatures")
    sector = int((table or {}).get("sectorsize", 512))
    min_sectors = int(float(cfg["min_size_gib"]) * 2**30) // sector
    fs_uuid = filesystem_uuid(disk, label)
    commands: list[tuple[str, str]] = []
    if signatures is None:
        raise StorageRefusal(
            f"cannot read signatures of {path} ({layout.get('wipefs_error')}): install util-linux (wipefs)"
        )
    ours = [p for p in (table or {}).get("partitions", []) if p.get("name") == label]
    own = ours[0].get("node") if len(ours) == 1 else None
    busy = kernel_in_use(path, layout, cfg["layout"] == "whole-disk", own)
    if busy:
        raise StorageRefusal(f"{busy}; refusing to touch {path}")
    if table is None and signatures:
        raise StorageRefusal(
            f"{path} holds {_sigs(signatures)} and no partition table we can read: "
            "not ours, refusing to touch it"
        )
    if table is None and cfg["layout"] == "append":
        raise StorageRefusal(
            f"{path} has no partition table; the 'append' layout adds a partition beside the "
            "installed system: use layout 'whole-disk' for a blank dedicated disk"
        )
    if table is None:
        if int(disk.get("size_bytes") or 0) // sector < min_sectors + 2 * _ALIGN:
            raise StorageRefusal(f"{path} is smaller than storage.min_size_gib={cfg['min_size_gib']}")
        number = 1
        script = f'label: gpt\nstart={_ALIGN}, type=linux, name="{label}"\n'
        commands.append(
            (f"Create a GPT with the {label} partition on {path}", sfdisk_command(path, script, append=False))
        )
    elif table.get("label") != "gpt":
        raise StorageRefusal(
            f"{path} holds a {table.get('label')} partition table ({_partition_summary(table, layout)})"
            ": only GPT is supported, refusing"
        )
    elif cfg["layout"] == "whole-disk" and (len(table.get("partitions", [])) != 1 or len(ours) != 1):
        raise StorageRefusal(
            f"{path} holds a {_partition_summary(table, layout)}, which we did not create: "
            "refusing (whole-disk takes only a blank disk or our own single partition)"
        )
    elif len(ours) > 1:
        raise StorageRefusal(
            f"{path} has {len(ours)} partitions named {label!r}: remove the extra ones by hand"
        )
    elif ours:
        number = int(re.findall(r"(\d+)$", ours[0]["node"])[0])
    else:
        start, sectors = _largest_gap(table)
        if sectors < min_sectors:
            raise StorageRefusal(
                f"no free region of {cfg['min_size_gib']} GiB on {path} (largest "
                f"{sectors * sector / 2**30:.1f} GiB; {_partition_summary(table, layout)}): "
                "leave free space when installing Ubuntu, or lower storage.min_size_gib"
            )
        taken = {int(re.findall(r"(\d+)$", p["node"])[0]) for p in table.get("partitions", [])}
        number = min(n for n in range(1, len(taken) + 2) if n not in taken)
        script = f'start={start}, size={sectors}, type=linux, name="{label}"\n'
        commands.append(
            (f"Add the {label} partition in free space of {path}", sfdisk_command(path, script, append=True))
        )
    part = partition_path(path, number)
    if not commands:  # the partition exists: is its content ours?
        probe = layout["partitions"].get(part)
        if probe is None:
            raise StorageRefusal(
                f"the kernel does not know {part} (our {label!r} partition): run "
                f"`partx -u {path}` or reboot, then rerun"
            )
        sigs, blkid = probe.get("signatures"), probe.get("blkid", {})
        if sigs is None or probe.get("blkid_rc") not in (0, 2):
            raise StorageRefusal(f"cannot probe {part} (blkid exit {probe.get('blkid_rc')}): refusing")
        if not sigs:
            commands.append((f"Make the XFS filesystem on {part}", mkfs_command(part, label, fs_uuid)))
        elif (
            blkid.get("TYPE") == "xfs"
            and blkid.get("LABEL") == label
            and {s.get("type") for s in sigs} == {"xfs"}
        ):
            fs_uuid = blkid.get("UUID", fs_uuid)
        else:
            raise StorageRefusal(
                f"{part} holds {_sigs(sigs)} (label {blkid.get('LABEL')!r}), which we did not "
                "create: refusing to format it"
            )
    else:
        commands.append((f"Make the XFS filesystem on {part}", mkfs_command(part, label, fs_uuid)))
    return part, fs_uuid, commands
