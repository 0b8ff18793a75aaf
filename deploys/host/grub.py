"""GRUB kernel parameters and the dual-boot menu (phase 3).

Why merge instead of overwrite: ``GRUB_CMDLINE_LINUX_DEFAULT`` already holds the installer's
``quiet splash`` and whatever the owner added; we add or update only our keys, so a rerun changes
nothing. Why os-prober: Ubuntu 24.04's GRUB does not run it unless ``GRUB_DISABLE_OS_PROBER=false``,
so the runbook's "GRUB shows Ubuntu + Windows" silently fails without this.

Host data ``grub`` (merged over :data:`DEFAULTS`):

``cmdline``      kernel parameters to have in ``GRUB_CMDLINE_LINUX_DEFAULT`` (``key=value`` replaces
                 an existing ``key=``; bare flags are added once)
``invalid``      parameters refused with a note instead of written (the runbook's ``amd_iommu=on``:
                 the kernel's ``amd_iommu=`` takes ``off``/``force_isolation``/..., never ``on``;
                 AMD's IOMMU is on by default, ``iommu=pt`` is the setting that matters)
``os_prober``    write ``GRUB_DISABLE_OS_PROBER=false`` so ``update-grub`` adds Windows Boot Manager
``default_file`` ``/etc/default/grub``; ``grub_cfg`` ``/boot/grub/grub.cfg``
"""

from __future__ import annotations

import re
import shlex
from typing import Any

from pydantic import BaseModel, ConfigDict
from pyinfra import host, logger
from pyinfra.api import deploy
from pyinfra.facts.files import FileContents
from pyinfra.operations import files, server
from pyinfra.operations.util import any_changed

from omni.settings import table


class GrubSettings(BaseModel):
    """The ``grub`` table, typed: ``cmdline = "quiet"`` would otherwise be written one letter a time."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cmdline: list[str] = ["iommu=pt", "pcie_aspm=off"]
    invalid: dict[str, str] = {
        "amd_iommu=on": "amd_iommu= has no 'on' value (the IOMMU is on by default); dropped"}
    os_prober: bool = True
    default_file: str = "/etc/default/grub"
    grub_cfg: str = "/boot/grub/grub.cfg"


DEFAULTS: dict[str, Any] = GrubSettings().model_dump()

_KEY = "GRUB_CMDLINE_LINUX_DEFAULT"


def grub_settings(data: Any) -> dict[str, Any]:
    """The host's ``grub`` table over the defaults; ``SettingsError`` (one line) on a bad value."""
    return table(GrubSettings, data, "grub").model_dump()


def wanted_params(cfg: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The parameters to write and the notes for the ones refused as invalid."""
    wanted, notes = [], []
    for param in cfg["cmdline"]:
        if param in cfg["invalid"]:
            notes.append(f"{param}: {cfg['invalid'][param]}")
        elif param not in wanted:
            wanted.append(param)
    return wanted, notes


def current_cmdline(lines: list[str] | None) -> str | None:
    """The value of the last ``GRUB_CMDLINE_LINUX_DEFAULT=`` line, unquoted; None when absent."""
    value = None
    for line in lines or []:
        match = re.match(rf"^\s*{_KEY}=(.*)$", line)
        if match:
            try:
                parts = shlex.split(match.group(1))
            except ValueError:
                parts = [match.group(1).strip("\"'")]
            value = " ".join(parts)
    return value


def merge_cmdline(current: str, wanted: list[str]) -> str:
    """``current`` with every wanted ``key=value`` set and every flag present, order kept."""
    tokens = current.split()
    for param in wanted:
        key = param.split("=", 1)[0]
        same_key = [i for i, t in enumerate(tokens) if t.split("=", 1)[0] == key]
        if same_key:
            tokens[same_key[0]] = param
            for i in reversed(same_key[1:]):
                del tokens[i]
        else:
            tokens.append(param)
    return " ".join(tokens)


@deploy("Configure GRUB kernel parameters and dual boot")
def configure_grub() -> list[Any]:
    """Returns the operations whose change needs a reboot (the GRUB edits)."""
    cfg = grub_settings(host.data)
    wanted, notes = wanted_params(cfg)
    for note in notes:
        logger.warning(f"{host.print_prefix}grub: {note}")
    lines = host.get_fact(FileContents, path=cfg["default_file"])
    merged = merge_cmdline(current_cmdline(lines) or "", wanted)
    cmdline = files.line(
        name=f"Set {_KEY} in {cfg['default_file']}",
        path=cfg["default_file"],
        line=rf"^[[:space:]]*{_KEY}=.*",
        replace=f'{_KEY}="{merged}"',
        extended_regex=True,
    )
    changes = [cmdline]
    if cfg["os_prober"]:
        changes.append(
            files.line(
                name="Let update-grub run os-prober (Windows Boot Manager entry)",
                path=cfg["default_file"],
                line=r"^[[:space:]]*#?[[:space:]]*GRUB_DISABLE_OS_PROBER=.*",
                replace="GRUB_DISABLE_OS_PROBER=false",
                extended_regex=True,
            )
        )
    server.shell(name="Regenerate grub.cfg", commands=["update-grub"], _if=any_changed(*changes))
    return changes
