"""The data disk (phase 3): find it by model/serial, add our partition, mkfs.xfs, mount by UUID.

The safety rule: a disk is partitioned or formatted only when it is the configured disk (its
serial and model match the inventory) and what we would write to holds no filesystem or other
signature. Each part of the argument lives in one module:

* Identity (:mod:`.identity`): the disk is the one whose lsblk SERIAL equals the inventory serial
  (and MODEL the inventory model); ``/dev/nvmeXn1`` names are never configured, they are looked up
  each run. No serial configured → refused. The Windows role is never selectable, and a disk
  carrying any other role's serial is refused.
* Test-only escape (:mod:`.identity`): loop devices have no model/serial.
  ``allow_unidentified_disk: true`` plus a ``path`` in the disk entry is accepted only when that
  device is ``TYPE=loop`` with empty MODEL and SERIAL, so even a misconfigured inventory cannot
  reach a real NVMe/SATA disk this way.
* Readable probe (``facts.storage.parse_layout``, refused in :mod:`.partition`): output that is not
  what the probe prints (cut short, mangled, about another device, tools disagreeing) is a
  refusal, never a blank disk.
* Ownership (:mod:`.partition`): what we create carries ``label`` (default ``omni-data``) as GPT
  partition name and XFS label. ``whole-disk`` takes a disk only when it holds no signature at all
  (``wipefs -n``) or exactly our GPT with our single partition; ``append`` (the OS disk) only adds
  a partition in unallocated space and never changes an existing one. Anything else is refused,
  naming what was found.
* In use (:mod:`.guard`): a disk the kernel says is in use (holders, mounts, swap, partitions no
  table shows) is refused even where sfdisk and wipefs see a blank disk.
* Formatting (:mod:`.partition` decides, :mod:`.guard` re-checks): mkfs.xfs runs only when the
  probe shows our partition with no signature, the command re-checks that on the host right
  before (``wipefs -n`` empty, GPT name ours), and it is never given ``-f`` (mkfs.xfs itself
  refuses an existing filesystem).
* The filesystem UUID is derived from the disk identity (uuid5, :mod:`.identity`), so the fstab
  line (:mod:`.mount`) is known at plan time and a rerun of a converged host plans nothing.

:mod:`.plan` joins these into one :class:`~.plan.StoragePlan` (pure, tested on captured probes);
:mod:`.deploy` gathers the facts and applies it (``data_disk``). This module holds the settings.

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

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from omni.settings import table


class StorageSettings(BaseModel):
    """The ``storage`` table, typed and bounded (the keys above)."""

    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)  # mode = 755

    disk_role: str = "ubuntu"
    layout: Literal["append", "whole-disk"] = "append"
    label: str = Field("omni-data", min_length=1, max_length=12)  # XFS labels hold 12 characters
    #: a whole number stays an int, so messages say "300 GiB"
    min_size_gib: Annotated[float, AfterValidator(lambda v: int(v) if v.is_integer() else v)] = Field(
        300, ge=0, allow_inf_nan=False)
    mountpoint: str = "/nvme"
    fstab: str = "/etc/fstab"
    mount_options: str = "defaults,noatime"
    folders: list[str] = ["models", "memgraph", "phoenix", "prometheus", "grafana", "eval", "letta"]
    owner: str = "root"
    group: str = "root"
    mode: str = Field("755", pattern=r"^[0-7]{3,4}$")
    allow_unidentified_disk: bool = False

    @field_validator("mountpoint", "fstab")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError(f"{value!r} is not an absolute path")
        return value

    @field_validator("folders")
    @classmethod
    def _relative(cls, value: list[str]) -> list[str]:
        for folder in value:
            if folder.startswith("/") or ".." in folder.split("/"):
                raise ValueError(f"{folder!r} is not a folder name under the mount point")
        return value


DEFAULTS: dict[str, Any] = StorageSettings().model_dump()
LAYOUTS = ("append", "whole-disk")


class StorageRefusal(ValueError):
    """The data disk cannot be used safely; the message names what was found and the fix."""


def storage_settings(data: Any) -> dict[str, Any]:
    """The host's ``storage`` table over the defaults; ``SettingsError`` (one line) on a bad value."""
    return table(StorageSettings, data, "storage").model_dump()
