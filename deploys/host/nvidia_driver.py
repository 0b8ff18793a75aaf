"""Phase 3 host packages: the HWE kernel, the NVIDIA driver branch, the tools verify relies on.

Why the open modules: Blackwell GPUs (RTX PRO 6000, RTX 5090) are supported only by NVIDIA's open
kernel modules, so the package is ``nvidia-driver-<branch>-open`` from the Ubuntu archive (no PPA,
no ``.run`` installer). The major version is pinned by the package name itself: Ubuntu ships one
package per branch, so ``apt upgrade`` brings 580.x fixes but never another branch.

Secure Boot (read with ``mokutil --sb-state``, or the SecureBoot EFI variable): when it is on, a
DKMS-built module is refused by the kernel until a Machine Owner Key is enrolled at the console,
which a box reached only over SSH and a BMC cannot do. So with Secure Boot on (or unreadable) the
driver comes with Canonical's signed prebuilt modules, ``linux-modules-nvidia-<branch>-open-
generic-hwe-24.04``, which follow the HWE kernel; named in the same ``apt-get install`` as the
driver, apt satisfies the driver's kernel-module dependency with them instead of DKMS.

``nvidia-persistenced`` (shipped by the driver's ``nvidia-compute-utils`` package) is enabled, so
the driver stays initialised between CUDA processes (no cold start per request, stable clocks).

Host data ``nvidia`` (merged over :data:`DEFAULTS`): ``branch`` (580), ``flavour`` (``open``);
``packages`` (merged over :data:`PACKAGES`): the rest of phase 3's packages.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pyinfra import host, logger
from pyinfra.api import deploy
from pyinfra.facts.deb import DebPackages
from pyinfra.facts.files import File
from pyinfra.operations import apt, systemd

from facts.hardware import SecureBoot
from omni.settings import table


class NvidiaSettings(BaseModel):
    """The ``nvidia`` table: which driver branch, open or proprietary kernel modules."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    branch: int = Field(580, gt=0)
    flavour: Literal["open", "proprietary"] = "open"


class PackageSettings(BaseModel):
    """The ``packages`` table: the rest of phase 3's packages."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kernel: list[str] = ["linux-generic-hwe-24.04"]
    tools: list[str] = ["numactl", "hwloc", "pciutils", "dmidecode", "nvme-cli", "os-prober", "xfsprogs",
                        "fdisk", "mokutil"]


DEFAULTS: dict[str, Any] = NvidiaSettings().model_dump()
PACKAGES: dict[str, Any] = PackageSettings().model_dump()


def nvidia_settings(data: Any) -> dict[str, Any]:
    """The host's ``nvidia`` table over the defaults; ``SettingsError`` (one line) on a bad value."""
    return table(NvidiaSettings, data, "nvidia").model_dump()


def driver_package(data: Any) -> str:
    cfg = nvidia_settings(data)
    suffix = "-open" if cfg["flavour"] == "open" else ""
    return f"nvidia-driver-{cfg['branch']}{suffix}"


def signed_modules_package(data: Any) -> str:
    """Canonical's signed prebuilt kernel modules for the driver, tracking the HWE kernel."""
    cfg = nvidia_settings(data)
    suffix = "-open" if cfg["flavour"] == "open" else ""
    return f"linux-modules-nvidia-{cfg['branch']}{suffix}-generic-hwe-24.04"


def needs_signed_modules(secure_boot: Any) -> bool:
    """Secure Boot on, or its state unreadable (the signed modules work either way)."""
    return not (isinstance(secure_boot, dict) and secure_boot.get("secure_boot") is False)


def wanted_packages(data: Any, secure_boot: Any = None) -> list[str]:
    groups = table(PackageSettings, data, "packages").model_dump()
    signed = [signed_modules_package(data)] if needs_signed_modules(secure_boot) else []
    return [*groups["kernel"], *signed, driver_package(data), *groups["tools"]]


def other_branches(installed: dict[str, Any], wanted: str) -> list[str]:
    """Installed ``nvidia-driver-*`` packages other than the wanted one (apt replaces them)."""
    return sorted(
        p
        for p in installed
        if re.fullmatch(r"nvidia-driver-\d+(-open|-server|-server-open)?", p) and p != wanted
    )


@deploy("Install the HWE kernel, NVIDIA driver and host tools")
def host_packages() -> Any:
    secure_boot = host.get_fact(SecureBoot)
    packages = wanted_packages(host.data, secure_boot)
    if needs_signed_modules(secure_boot):
        sb = secure_boot if isinstance(secure_boot, dict) else {}
        state = sb.get("detail") or sb.get("reason")
        logger.info(f"{host.print_prefix}Secure Boot: {state or 'unknown'}: "
                    f"using the signed {signed_modules_package(host.data)}")
    installed = host.get_fact(DebPackages) or {}
    for other in other_branches(installed, driver_package(host.data)):
        logger.warning(f"{host.print_prefix}{other} is installed: {driver_package(host.data)} replaces it")
    if [p for p in packages if p not in installed]:
        apt.update(name="Update the apt package lists")
    return apt.packages(name=f"Install {', '.join(packages)}", packages=packages, no_recommends=False)


@deploy("Keep the NVIDIA driver initialised")
def persistence_daemon() -> None:
    """Enable nvidia-persistenced; start it now only when the driver is already loaded."""
    loaded = bool(host.get_fact(File, path="/proc/driver/nvidia/version"))
    systemd.service(
        name="Enable nvidia-persistenced",
        service="nvidia-persistenced.service",
        enabled=True,
        running=True if loaded else None,
    )
