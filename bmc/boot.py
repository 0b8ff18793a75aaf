"""One-time boot override, confirmed by reading it back.

Why read back: BMCs answer 204 to a boot PATCH they then ignore (wrong mode, unsupported target,
a Continuous override silently kept), and the next power-cycle boots the old disk.
"""

from __future__ import annotations

from typing import Any

from sushy import BootSource, BootSourceOverrideEnabled, BootSourceOverrideMode

from bmc.connection import Bmc
from bmc.errors import BmcError

TARGETS: dict[str, str] = {"cd": "Cd", "usb": "Usb", "hdd": "Hdd", "pxe": "Pxe", "bios": "BiosSetup"}


def boot_override(bmc: Bmc) -> dict[str, Any]:
    """The override as the BMC reports it now."""
    boot = bmc.system(refresh=True).boot
    return {
        "target": boot.target.value if boot.target else None,
        "enabled": boot.enabled.value if boot.enabled else None,
        "mode": boot.mode.value if boot.mode else None,
        "allowed": sorted(boot.allowed_values or []),
    }


def boot_once(bmc: Bmc, device: str, uefi: bool = False) -> dict[str, Any]:
    """Boot ``device`` on the next boot only; with ``uefi`` in UEFI mode. Fails unless it reads back."""
    if device not in TARGETS:
        raise BmcError(f"unknown boot device {device!r}", f"use one of: {', '.join(TARGETS)}", "invalid")
    target = TARGETS[device]
    system = bmc.system(refresh=True)
    allowed = set(system.boot.allowed_values or [])
    if allowed and target not in allowed:
        raise BmcError(
            f"this BMC does not offer boot target {target} (it offers {', '.join(sorted(allowed))})",
            "pick another boot device",
            "unsupported",
        )
    before = boot_override(bmc)
    wanted = {"target": target, "enabled": "Once"} | ({"mode": "UEFI"} if uefi else {})
    if all(before.get(k) == v for k, v in wanted.items()):
        return {"changed": False, **before, "message": f"boot once {target} already set; nothing sent"}
    with bmc.errors(f"PATCH boot override {target}"):
        system.set_system_boot_options(
            target=BootSource(target),
            enabled=BootSourceOverrideEnabled.ONCE,
            mode=BootSourceOverrideMode.UEFI if uefi else None,
        )
    after = boot_override(bmc)
    wrong = {k: after.get(k) for k, v in wanted.items() if after.get(k) != v}
    if wrong:
        shown = ", ".join(f"{k}={v}" for k, v in wrong.items())
        raise BmcError(
            f"the BMC accepted the boot override but reads back {shown}",
            "set the one-time boot device in the BMC web UI; this firmware ignores the Redfish override",
            "not_applied",
        )
    mode = f" in {after['mode']} mode" if after.get("mode") else ""
    return {"changed": True, **after, "message": f"next boot: {target} once{mode} (read back)"}
