"""Which disk is the data disk: the inventory entry for the role, matched by serial and model.

Why apart: this is the first half of the safety rule (only the configured disk is ever touched),
and it must not depend on device names, which change between boots. Pure: the block devices
come from the ``facts.hardware.BlockDevices`` fact.
"""

from __future__ import annotations

import uuid
from typing import Any

from deploys.host.storage import LAYOUTS, StorageRefusal

_UUID_NAMESPACE = uuid.UUID("1b6f0b6c-9f3e-4f61-9d6c-0a6d6d4f6d4e")


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


def filesystem_uuid(disk: dict[str, Any], label: str) -> str:
    """The XFS UUID we give ``disk``'s partition, from its serial (a loop device: its path).

    Known at plan time, so the fstab line is too and a converged host plans nothing."""
    identity = _clean(disk.get("serial")) or disk["path"]
    return str(uuid.uuid5(_UUID_NAMESPACE, f"{identity}:{label}"))
