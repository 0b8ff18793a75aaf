"""The ``@deploy`` of the data disk: facts in, :func:`~deploys.host.storage.plan.plan_storage`, ops out.

Why apart: the only part that talks to pyinfra's host; every decision before it is pure. A
:class:`~deploys.host.storage.StorageRefusal` becomes a DeployError naming the host, so nothing
is written.
"""

from __future__ import annotations

import re
from typing import Any

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.api.exceptions import DeployError
from pyinfra.facts.files import FileContents
from pyinfra.operations import files, server

from deploys.host.storage import StorageRefusal, storage_settings
from deploys.host.storage.identity import find_disk, wanted_disk
from deploys.host.storage.plan import StoragePlan, plan_storage
from facts.hardware import BlockDevices
from facts.storage import DiskLayout


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
