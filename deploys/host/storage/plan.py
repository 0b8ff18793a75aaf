"""The whole data-disk decision, pure: partition and filesystem first, then the mount.

Why apart: tests drive it with captured probes and no host; :mod:`deploys.host.storage.deploy`
gathers the same inputs from facts and applies the result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from deploys.host.storage.mount import plan_mount
from deploys.host.storage.partition import plan_partition


@dataclass
class StoragePlan:
    disk: dict[str, Any]
    partition: str
    fs_uuid: str
    fstab_line: str
    commands: list[tuple[str, str]] = field(default_factory=list)  # (operation name, shell command)
    mount_commands: list[tuple[str, str]] = field(default_factory=list)  # after the fstab line


def plan_storage(
    disk: dict[str, Any], layout: dict[str, Any], fstab: list[str] | None, cfg: dict[str, Any]
) -> StoragePlan:
    """What to run so ``disk`` carries our mounted XFS; refuses whatever we did not create."""
    part, fs_uuid, commands = plan_partition(disk, layout, cfg)
    line, mount_commands = plan_mount(part, fs_uuid, layout, fstab, cfg)
    return StoragePlan(disk, part, fs_uuid, line, commands, mount_commands)
