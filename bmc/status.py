"""One screen about the box: power, boot override, media, BIOS and BMC versions, pending BIOS changes."""

from __future__ import annotations

from typing import Any

from bmc import bios, boot, media
from bmc.connection import Bmc
from bmc.errors import BmcError


def _optional(call: Any) -> Any:
    """A section the BMC may not offer shows why, instead of failing the whole screen."""
    try:
        return call()
    except BmcError as exc:
        if exc.kind in ("auth", "unreachable", "tls", "timeout"):
            raise
        return {"unavailable": exc.cause}


def _bmc_firmware(bmc: Bmc) -> str | None:
    with bmc.errors("GET /redfish/v1/Managers"):
        managers = bmc.root.get_manager_collection().get_members()
    return next((m.firmware_version for m in managers if m.firmware_version), None)


def status(bmc: Bmc) -> dict[str, Any]:
    system = bmc.system(refresh=True)
    return {
        "bmc_url": bmc.settings.url,
        "system": system.identity,
        "manufacturer": system.manufacturer,
        "model": system.model,
        "power_state": system.power_state.value if system.power_state else None,
        "bios_version": system.bios_version,
        "bmc_firmware": _optional(lambda: _bmc_firmware(bmc)),
        "boot_override": boot.boot_override(bmc),
        "media": _optional(lambda: media.list_media(bmc)),
        "bios_pending": _optional(lambda: bios.pending(bmc)),
    }
