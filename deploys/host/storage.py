"""The data disk (phase 3): find it by model/serial, add our partition, mkfs.xfs, mount by UUID.

Safety argument (what makes a wrong disk or someone's data impossible to format):

* Identity: the disk is the one whose lsblk SERIAL equals the inventory serial (and MODEL the
  inventory model); ``/dev/nvmeXn1`` names are never configured, they are looked up each run.
  No serial configured → refused. The Windows role is never selectable, and a disk carrying any
  other role's serial is refused.
* Test-only escape: loop devices have no model/serial. ``allow_unidentified_disk: true`` plus a
  ``path`` in the disk entry is accepted only when that device is ``TYPE=loop`` with empty
  MODEL and SERIAL, so even a misconfigured inventory cannot reach a real NVMe/SATA disk this way.
* Ownership: what we create carries ``label`` (default ``omni-data``) as GPT partition name and
  XFS label. ``whole-disk`` takes a disk only when it holds no signature at all (``wipefs -n``)
  or exactly our GPT with our single partition; ``append`` (the OS disk) only adds a partition in
  unallocated space and never changes an existing one. Anything else is refused, naming what was
  found.
* Formatting: mkfs.xfs runs only when the probe shows our partition with no signature, the
  command re-checks that on the host right before (``wipefs -n`` empty, GPT name ours), and it is
  never given ``-f`` (mkfs.xfs itself refuses an existing filesystem).
* The filesystem UUID is derived from the disk identity (uuid5), so the fstab line is known at plan
  time and a rerun of a converged host plans nothing.

Host data ``storage`` (merged over :data:`DEFAULTS`):

``disk_role``    which ``disks`` entry holds the data partition (``ubuntu``; never ``windows``)
``layout``       ``append`` (free space of the OS disk) or ``whole-disk`` (a blank dedicated disk)
``label``        GPT partition name and XFS label of what we create (<= 12 chars)
``min_size_gib`` smallest acceptable data partition (``append`` picks the largest free region)
``mountpoint``   ``/nvme``; ``fstab`` ``/etc/fstab``; ``mount_options`` ``defaults,noatime``
``folders``      created under the mount point for the stack (relative paths)
``owner``/``group``/``mode``  ownership of the mount point and folders
``allow_unidentified_disk``   test-only, see above
"""

from __future__ import annotations

import re
import shlex
import uuid
from dataclasses import dataclass, field
from typing import Any

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.api.exceptions import DeployError
from pyinfra.facts.files import FileContents
from pyinfra.operations import files, server

from facts.hardware import BlockDevices
from facts.storage import DiskLayout, fstab_entries
from omni.settings import settings

DEFAULTS: dict[str, Any] = {
    "disk_role": "ubuntu",
    "layout": "append",
    "label": "omni-data",
    "min_size_gib": 300,
    "mountpoint": "/nvme",
    "fstab": "/etc/fstab",
    "mount_options": "defaults,noatime",
    "folders": ["models", "memgraph", "phoenix", "prometheus", "grafana", "eval", "letta"],
    "owner": "root",
    "group": "root",
    "mode": "755",
    "allow_unidentified_disk": False,
}
LAYOUTS = ("append", "whole-disk")
_UUID_NAMESPACE = uuid.UUID("1b6f0b6c-9f3e-4f61-9d6c-0a6d6d4f6d4e")
_ALIGN = 2048  # sectors: 1 MiB alignment


class StorageRefusal(ValueError):
    """The data disk cannot be used safely; the message names what was found and the fix."""


def storage_settings(data: Any) -> dict[str, Any]:
    return settings(DEFAULTS, data, "storage")


# ---------------------------------------------------------------- decisions (pure)


def _clean(value: Any) -> str:
    return str(value or "").strip()


def _describe(dev: dict[str, Any]) -> str:
    return (
        f"{dev.get('path')} ({dev.get('type')}, model {_clean(dev.get('model')) or '-'}, "
        f"serial {_clean(dev.get('serial')) or '-'})"
    )


def wanted_disk(data: Any, cfg: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The inventory's disk entry for ``cfg['disk_role']`` and every other disk entry."""
    role = cfg["disk_role"]
    if role == "windows":
        raise StorageRefusal(
            "storage.disk_role is 'windows': the Windows disk is never touched, pick another role"
        )
    if cfg["layout"] not in LAYOUTS:
        raise StorageRefusal(f"storage.layout {cfg['layout']!r} is unknown: use one of {', '.join(LAYOUTS)}")
    disks = list(data.get("disks") or [])
    mine = [d for d in disks if d.get("role") == role]
    if len(mine) != 1:
        raise StorageRefusal(
            f"inventory has {len(mine)} disks with role {role!r}: list exactly one in 'disks'"
        )
    return mine[0], [d for d in disks if d.get("role") != role]


def find_disk(
    inventory: dict[str, Any], want: dict[str, Any], others: list[dict[str, Any]], cfg: dict[str, Any]
) -> dict[str, Any]:
    """The block device matching ``want`` by serial (and model); refuses anything ambiguous.

    ``inventory`` is the ``facts.hardware.BlockDevices`` fact (``disks`` and ``others``)."""
    if not inventory.get("available"):
        raise StorageRefusal(f"cannot list block devices ({inventory.get('reason')}): install util-linux")
    devices = [*(inventory.get("disks") or []), *(inventory.get("others") or [])]
    found = "; ".join(_describe(d) for d in devices) or "no block devices"
    role, serial, model = want.get("role"), _clean(want.get("serial")), _clean(want.get("model"))
    if not serial:
        if cfg.get("allow_unidentified_disk") and want.get("path"):
            dev = next((d for d in devices if d.get("path") == want["path"]), None)
            if (
                dev is None
                or dev.get("type") != "loop"
                or _clean(dev.get("model"))
                or _clean(dev.get("serial"))
            ):
                what = _describe(dev) if dev else "absent"
                raise StorageRefusal(
                    f"allow_unidentified_disk accepts only a loop device without model/serial; "
                    f"{want['path']} is {what}"
                )
            return dev
        raise StorageRefusal(
            f"disk role {role!r} has no serial in the inventory: set "
            f"OMNI_DISK_{str(role).upper()}_SERIAL (found: {found})"
        )
    matches = [d for d in devices if _clean(d.get("serial")) == serial]
    if len(matches) != 1:
        raise StorageRefusal(f"{len(matches)} disks have serial {serial} (role {role!r}); found: {found}")
    dev = matches[0]
    if model and _clean(dev.get("model")) != model:
        raise StorageRefusal(
            f"disk with serial {serial} is model {_clean(dev.get('model'))!r}, inventory says "
            f"{model!r}: fix the inventory or check the disk"
        )
    for other in others:
        if _clean(other.get("serial")) == serial:
            raise StorageRefusal(
                f"serial {serial} is also the {other.get('role')!r} disk: the data disk must be another disk"
            )
    return dev


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


@dataclass
class StoragePlan:
    disk: dict[str, Any]
    partition: str
    fs_uuid: str
    fstab_line: str
    commands: list[tuple[str, str]] = field(default_factory=list)  # (operation name, shell command)
    mount_commands: list[tuple[str, str]] = field(default_factory=list)  # after the fstab line


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


def plan_storage(
    disk: dict[str, Any], layout: dict[str, Any], fstab: list[str] | None, cfg: dict[str, Any]
) -> StoragePlan:
    """What to run so ``disk`` carries our mounted XFS; refuses whatever we did not create."""
    label, path = cfg["label"], disk["path"]
    table, signatures = layout.get("table"), layout.get("signatures")
    sector = int((table or {}).get("sectorsize", 512))
    min_sectors = int(float(cfg["min_size_gib"]) * 2**30) // sector
    identity = _clean(disk.get("serial")) or path
    fs_uuid = str(uuid.uuid5(_UUID_NAMESPACE, f"{identity}:{label}"))
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
            (f"Create a GPT with the {label} partition on {path}", _sfdisk(path, script, append=False))
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
            (f"Add the {label} partition in free space of {path}", _sfdisk(path, script, append=True))
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
            commands.append((f"Make the XFS filesystem on {part}", _mkfs(part, label, fs_uuid)))
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
        commands.append((f"Make the XFS filesystem on {part}", _mkfs(part, label, fs_uuid)))
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
    return StoragePlan(disk, part, fs_uuid, line, commands, mount_commands)


def _host_blank_guard(path: str, whole_disk: bool) -> str:
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


def _sfdisk(path: str, script: str, append: bool) -> str:
    """Write the table without the kernel re-read that fails on a disk in use, then tell the kernel."""
    disk = shlex.quote(path)
    flags = "--append " if append else ""
    guard = "" if append else _host_blank_guard(path, whole_disk=True)
    return (
        f"{guard}printf %s {shlex.quote(script)} | sfdisk -q {flags}--no-reread --no-tell-kernel {disk} "
        f"&& partx -u {disk}"
    )


def _mkfs(part: str, label: str, fs_uuid: str) -> str:
    """mkfs.xfs guarded on the host: the partition is ours by name and holds no signature; never -f."""
    dev = shlex.quote(part)
    return (
        f"test -b {dev} || {{ echo '{part} missing after partitioning' >&2; exit 1; }}; "
        f'test "$(blkid -p -s PART_ENTRY_NAME -o value {dev})" = {shlex.quote(label)} || '
        f"{{ echo 'refusing: {part} is not the {label} partition' >&2; exit 1; }}; "
        f"{_host_blank_guard(part, whole_disk=False)}"
        f"mkfs.xfs -q -L {shlex.quote(label)} -m uuid={fs_uuid} {dev}"
    )


# ---------------------------------------------------------------- the deploy


def probe_and_plan(cfg: dict[str, Any]) -> StoragePlan:
    """Facts for the configured disk and the plan; raises :class:`StorageRefusal`."""
    want, others = wanted_disk(host.data, cfg)
    disk = find_disk(host.get_fact(BlockDevices), want, others, cfg)
    layout = host.get_fact(DiskLayout, path=disk["path"])
    if layout.get("table") is None and layout.get("sfdisk_missing"):
        raise StorageRefusal("sfdisk is not installed: apt-get install fdisk")
    return plan_storage(disk, layout, host.get_fact(FileContents, path=cfg["fstab"]), cfg)


@deploy("Prepare the data disk")
def data_disk() -> None:
    cfg = storage_settings(host.data)
    try:
        plan = probe_and_plan(cfg)
    except StorageRefusal as refusal:
        raise DeployError(f"{host.name}: data disk: {refusal}") from None
    for name, command in plan.commands:
        server.shell(name=name, commands=[command])
    files.line(
        name=f"Mount {cfg['mountpoint']} by UUID in {cfg['fstab']}",
        path=cfg["fstab"],
        line=rf"^UUID={plan.fs_uuid}[[:space:]]+{re.escape(cfg['mountpoint'])}[[:space:]].*",
        replace=plan.fstab_line,
        extended_regex=True,
    )
    for name, command in plan.mount_commands:
        server.shell(name=name, commands=[command])
    ownership = {"user": cfg["owner"], "group": cfg["group"], "mode": cfg["mode"]}
    files.directory(name=f"Own {cfg['mountpoint']}", path=cfg["mountpoint"], **ownership)
    for folder in cfg["folders"]:
        files.directory(
            name=f"Create {cfg['mountpoint']}/{folder}", path=f"{cfg['mountpoint']}/{folder}", **ownership
        )
