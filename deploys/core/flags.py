"""The per-run ``--data`` flags of the entry points, each a model read through :func:`omni.settings.flags`.

Why here and not in the deploy files: a deploy file is exec'd by pyinfra, so a bare ``int()`` there
turned ``--data install_ssh_port=abc`` into a traceback, and a string where a list was meant
(``restore_staged_sources=/etc/pve``) into a tuple of characters. Each flag is declared once with
its type, bounds, default and (as ``description``) the value the one-line error asks for; the entry
point reads them with :func:`run_flags` before it changes anything.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator
from pyinfra import host
from pyinfra.api.exceptions import DeployError

from omni.settings import SettingsError, YesNo, comma_list, flags

F = TypeVar("F", bound=BaseModel)

Port = Annotated[int, Field(ge=1, le=65535)]
Seconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]
SECONDS = "<seconds, above 0>"
Names = Annotated[list[str], BeforeValidator(comma_list)]
STEPS = ("backups", "isos", "model")


class _Flags(BaseModel):
    model_config = ConfigDict(frozen=True, coerce_numbers_to_str=True)  # --data install_for=5 is a name


def _absolute(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError(f"{value!r} is not an absolute path")
    return value


class Phase0Flags(_Flags):
    phase0_steps: Names = Field(["backups", "isos"], min_length=1,
                                description="backups,isos,model (any of them)")

    @field_validator("phase0_steps")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = [s for s in value if s not in STEPS]
        if unknown:
            raise ValueError(f"phase0_steps: unknown step(s) {', '.join(unknown)}: use {', '.join(STEPS)}")
        return value


class Phase3Flags(_Flags):
    phase0_waived: YesNo = Field(False, description="yes|no")
    storage_skip: YesNo = Field(False, description="yes|no")
    confirm_reboot: YesNo = Field(False, description="yes|no")


class InstallFlags(_Flags):
    """deploys/phase3_install.py: which workstation, and how to wait for its installed system's SSH."""

    install_for: str = Field("", description="<its inventory name>")
    install_ssh_host: str = Field("", description="<its address>")
    install_ssh_port: Port | None = Field(None, description="<SSH port 1-65535>")
    ssh_port: Port = Field(22, description="<SSH port 1-65535>")
    install_ssh_timeout: Seconds = Field(3600, description=SECONDS)
    bmc_poll_s: Seconds = Field(5, description=SECONDS)
    confirm_install: YesNo = Field(False, description="yes|no")

    @property
    def address(self) -> str:
        return self.install_ssh_host or self.install_for

    @property
    def port(self) -> int:
        return self.install_ssh_port or self.ssh_port


class RestoreFlags(_Flags):
    """deploys/restore.py: which backup, which archives, and where they go on the host."""

    restore_from: Path | None = Field(None, description="backups/<host>-<date>")
    restore_names: Names = Field([], description="<name>,<name>,...")
    restore_root: str = Field("/", description="</absolute/folder>")
    restore_staging: str = Field("/root/omni-restore", description="</absolute/folder>")
    restore_staged_sources: Names = Field(["/etc/pve", "/var/lib/pve-cluster"], min_length=1,
                                          description="</abs/path>,</abs/path>,...")

    @field_validator("restore_root", "restore_staging")
    @classmethod
    def _absolute_path(cls, value: str) -> str:
        return _absolute(value)

    @field_validator("restore_staged_sources")
    @classmethod
    def _absolute_paths(cls, value: list[str]) -> list[str]:
        return [_absolute(v) for v in value]


class BiosFlags(_Flags):
    """deploys/bmc/bios.py (phase 1): whether to reboot, and how long each step of the reboot may take.

    Why before anything: a bad timeout used to surface only inside the reboot callback, after the
    BIOS settings were already staged.
    """

    confirm_reboot: YesNo = Field(False, description="yes|no")
    bmc_poll_s: Seconds = Field(5, description=SECONDS)
    #: seconds the OS gets to shut down before ForceOff (0: ForceOff at once)
    bmc_shutdown_timeout: float = Field(300, ge=0, allow_inf_nan=False, description="<seconds, 0 or more>")
    bmc_reboot_timeout: Seconds = Field(900, description=SECONDS)  # power-on until the BMC reports On
    bmc_answer_timeout: Seconds = Field(300, description=SECONDS)  # the BMC answering again after it
    host_reconnect_timeout: Seconds = Field(900, description=SECONDS)  # the host's SSH after the reboot


class MediaFlags(_Flags):
    """deploys/bmc/media.py (phases 2, 3): how the installer is started and how long each step may take."""

    bmc_install_power_action: Literal["cycle", "restart", "force-restart"] = Field(
        "cycle", description="cycle|restart|force-restart")
    bmc_media_timeout: Seconds = Field(180, description=SECONDS)  # the BMC reporting the ISO Inserted
    bmc_power_timeout: Seconds = Field(600, description=SECONDS)  # the box On after the power action
    bmc_poll_s: Seconds = Field(5, description=SECONDS)


def run_flags(model: type[F]) -> F:
    """This host's flags as ``model``; a bad one stops this host's run with one line naming it."""
    try:
        return flags(model, host.data)
    except SettingsError as error:
        raise DeployError(f"{host.name}: {error}") from None


def check_tables(*readers: Callable[[Any], Any]) -> None:
    """Each settings reader (``grub_settings``...) run on this host's data before anything is planned.

    Why: the readers are called deep in a phase's deploys, where a :class:`SettingsError` would be
    a traceback; here it stops this host's run with the reader's one line.
    """
    for reader in readers:
        try:
            reader(host.data)
        except SettingsError as error:
            raise DeployError(f"{host.name}: {error}") from None
