"""The format/wipe guard: is the disk in use, and the shell that re-checks blankness on the host.

Why apart: these are the last two checks between a plan and a write. :func:`kernel_in_use` refuses
at plan time what sfdisk and wipefs cannot see (holders, mounts, swap, partitions no table shows);
every command that writes a partition table or a filesystem starts with :func:`host_blank_guard`,
so the host refuses right before writing even if the disk changed since the probe, and mkfs.xfs is
never given ``-f``. Which content we refuse (anything we did not create) is decided in
:mod:`deploys.host.storage.partition`.
"""

from __future__ import annotations

import shlex
from typing import Any


def _tree(node: dict[str, Any] | None) -> list[dict[str, Any]]:
    """``node`` and everything lsblk shows stacked under it."""
    if not isinstance(node, dict):
        return []
    return [node, *(n for child in node.get("children") or [] for n in _tree(child))]


def kernel_in_use(path: str, layout: dict[str, Any], whole_disk: bool, own: str | None) -> str | None:
    """Why the kernel says ``path`` is in use although sfdisk and wipefs may see a blank disk.

    Refused: holders on the disk (LVM PV, md member, dm-crypt without a header); and for a disk
    taken whole: partitions the kernel knows that no table shows, devices stacked on any
    partition, mounts and swap anywhere on it (``own``, our partition, may be mounted). On the
    OS disk (``append``) only our own partition must be free of holders and swap.
    """
    holders = layout.get("holders") or {}
    nodes = _tree(layout.get("kernel_tree"))
    name = str(nodes[0].get("name")) if nodes else path.rsplit("/", 1)[-1]  # by-id links resolved
    if holders.get(name):
        return f"{path} is in use by {', '.join(holders[name])} (LVM, md or dm-crypt stacked on the disk)"
    own_name = own.rsplit("/", 1)[-1] if own else None
    swaps = set(layout.get("swaps") or [])
    for index, node in enumerate(nodes):
        node_name = str(node.get("name"))
        node_path = str(node.get("path") or f"/dev/{node_name}")
        mine = node_name == own_name
        if not whole_disk and not mine:
            continue  # the OS disk's other partitions are the installed system's
        if node_path in swaps:
            return f"{node_path} on {path} is active swap: swapoff it and remove it first"
        stacked = holders.get(node_name) or [str(c.get("name")) for c in node.get("children") or []]
        if index > 0 and stacked:
            return f"{node_path} on {path} is in use by {', '.join(stacked)} (LVM, md or dm-crypt)"
        mounts = [str(m) for m in node.get("mountpoints") or [] if m]
        if mounts and not mine:
            return f"{node_path} on {path} is mounted at {', '.join(mounts)}: unmount it first"
    if whole_disk and layout.get("table") is None:
        known = sorted(layout.get("partitions") or {}) or [
            str(n.get("path")) for n in nodes[1:] if n.get("type") == "part"]
        if known:
            return (f"the kernel knows partitions {', '.join(known)} on {path} that no partition "
                    "table shows (stale or added by hand), so it is not blank: `partx -d` them or reboot")
    return None


def host_blank_guard(path: str, whole_disk: bool) -> str:
    """Shell that exits 1 unless ``path`` is blank right now, re-checked on the host before writing.

    Fails closed: a wipefs that cannot read is a refusal, not an empty answer. (``wipefs -O`` is
    the column list; ``-o`` is an offset, and with it wipefs printed nothing but an error, so an
    earlier version of this check passed on any disk.) A whole disk must also have no holders and
    no partitions the kernel knows.
    """
    dev = shlex.quote(path)
    refuse = f"{{ echo 'refusing: {path} is not blank' >&2; exit 1; }}"
    guard = (f"omni_sigs=$(wipefs -n -O TYPE --noheadings {dev}) || "
             f"{{ echo 'refusing: cannot read the signatures of {path}' >&2; exit 1; }}; "
             f'test -z "$omni_sigs" || {refuse}; ')
    if whole_disk:
        guard += (f'omni_n=$(basename "$(readlink -f {dev})"); '
                  f'test -z "$(ls -A /sys/class/block/$omni_n/holders 2>/dev/null)" || {refuse}; '
                  f'for omni_p in /sys/class/block/$omni_n/$omni_n*; do '
                  f'[ -e "$omni_p/partition" ] && {refuse}; done; ')
    return guard


def sfdisk_command(path: str, script: str, append: bool) -> str:
    """Write the table without the kernel re-read that fails on a disk in use, then tell the kernel.

    A new table (not ``append``) is written only behind :func:`host_blank_guard` of the whole disk."""
    disk = shlex.quote(path)
    flags = "--append " if append else ""
    guard = "" if append else host_blank_guard(path, whole_disk=True)
    return (
        f"{guard}printf %s {shlex.quote(script)} | sfdisk -q {flags}--no-reread --no-tell-kernel {disk} "
        f"&& partx -u {disk}"
    )


def mkfs_command(part: str, label: str, fs_uuid: str) -> str:
    """mkfs.xfs guarded on the host: the partition is ours by name and holds no signature; never -f."""
    dev = shlex.quote(part)
    return (
        f"test -b {dev} || {{ echo '{part} missing after partitioning' >&2; exit 1; }}; "
        f'test "$(blkid -p -s PART_ENTRY_NAME -o value {dev})" = {shlex.quote(label)} || '
        f"{{ echo 'refusing: {part} is not the {label} partition' >&2; exit 1; }}; "
        f"{host_blank_guard(part, whole_disk=False)}"
        f"mkfs.xfs -q -L {shlex.quote(label)} -m uuid={fs_uuid} {dev}"
    )
