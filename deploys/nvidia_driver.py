"""Phase 3 host packages: the HWE kernel, the NVIDIA driver branch, the tools verify relies on.

Why the open modules: Blackwell GPUs (RTX PRO 6000, RTX 5090) are supported only by NVIDIA's open
kernel modules, so the package is ``nvidia-driver-<branch>-open`` from the Ubuntu archive (no PPA,
no ``.run`` installer). The major version is pinned by the package name itself: Ubuntu ships one
package per branch, so ``apt upgrade`` brings 580.x fixes but never another branch.

Host data ``nvidia`` (merged over :data:`DEFAULTS`): ``branch`` (580), ``flavour`` (``open``);
``packages`` (merged over :data:`PACKAGES`): the rest of phase 3's packages.
"""

from __future__ import annotations

import re
from typing import Any

from pyinfra import host, logger
from pyinfra.api import deploy
from pyinfra.facts.deb import DebPackages
from pyinfra.operations import apt

from deploys.settings import settings

DEFAULTS: dict[str, Any] = {"branch": 580, "flavour": "open"}
PACKAGES: dict[str, Any] = {
    "kernel": ["linux-generic-hwe-24.04"],
    "tools": ["numactl", "hwloc", "pciutils", "dmidecode", "nvme-cli", "os-prober", "xfsprogs", "fdisk"],
}


def driver_package(data: Any) -> str:
    cfg = settings(DEFAULTS, data, "nvidia")
    suffix = "-open" if cfg["flavour"] == "open" else ""
    return f"nvidia-driver-{cfg['branch']}{suffix}"


def wanted_packages(data: Any) -> list[str]:
    groups = settings(PACKAGES, data, "packages")
    return [*groups["kernel"], driver_package(data), *groups["tools"]]


def other_branches(installed: dict[str, Any], wanted: str) -> list[str]:
    """Installed ``nvidia-driver-*`` packages other than the wanted one (apt replaces them)."""
    return sorted(
        p
        for p in installed
        if re.fullmatch(r"nvidia-driver-\d+(-open|-server|-server-open)?", p) and p != wanted
    )


@deploy("Install the HWE kernel, NVIDIA driver and host tools")
def host_packages() -> Any:
    packages = wanted_packages(host.data)
    installed = host.get_fact(DebPackages) or {}
    for other in other_branches(installed, driver_package(host.data)):
        logger.warning(f"{host.print_prefix}{other} is installed: {driver_package(host.data)} replaces it")
    if [p for p in packages if p not in installed]:
        apt.update(name="Update the apt package lists")
    return apt.packages(name=f"Install {', '.join(packages)}", packages=packages, no_recommends=False)
