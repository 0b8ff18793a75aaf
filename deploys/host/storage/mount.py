"""The fstab line and mount of our filesystem, refusing a mount point someone else uses.

Why apart: mounting touches no disk content; it only needs the partition and UUID that
:mod:`deploys.host.storage.partition` settled. Mounts and fstab are read by ``facts.storage``.
"""

from __future__ import annotations

import shlex
from typing import Any

from deploys.host.storage import StorageRefusal
from facts.storage import fstab_entries


def plan_mount(
    part: str, fs_uuid: str, layout: dict[str, Any], fstab: list[str] | None, cfg: dict[str, Any]
) -> tuple[str, list[tuple[str, str]]]:
    """(fstab line, (name, shell) commands to mount or remount) for ``part`` at the mount point."""
    mountpoint, fstab_path = cfg["mountpoint"], cfg["fstab"]
    line = f"UUID={fs_uuid} {mountpoint} xfs {cfg['mount_options']} 0 2"
    for fields in fstab_entries(fstab):
        if len(fields) >= 2 and fields[1] == mountpoint and fields[0] != f"UUID={fs_uuid}":
            raise StorageRefusal(
                f"{fstab_path} already mounts {fields[0]} at {mountpoint}: remove that line or "
                "choose another storage.mountpoint"
            )
    mounted = next((m for m in layout.get("mounts", []) if m[1] == mountpoint), None)
    wanted_opts = {o for o in cfg["mount_options"].split(",") if o != "defaults"}
    mount_commands: list[tuple[str, str]] = []
    if mounted is None:
        mount_commands.append(
            (
                f"Mount {mountpoint}",
                f"mkdir -p {shlex.quote(mountpoint)} && "
                f"mount --fstab {shlex.quote(fstab_path)} {shlex.quote(mountpoint)}",
            )
        )
    elif mounted[0] != part or mounted[2] != "xfs":
        raise StorageRefusal(
            f"{mountpoint} is already a mount of {mounted[0]} ({mounted[2]}): unmount it first"
        )
    elif not wanted_opts <= set(mounted[3].split(",")):
        mount_commands.append(
            (
                f"Remount {mountpoint} with {cfg['mount_options']}",
                f"mount -o remount,{','.join(sorted(wanted_opts))} {shlex.quote(mountpoint)}",
            )
        )
    return line, mount_commands
