"""Guards shared by every phase: the supported OS, and refusing clearly instead of half-applying."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api.exceptions import DeployError
from pyinfra.facts.server import LinuxDistribution

SUPPORTED = ("Ubuntu", 24, 4)


def require_ubuntu_2404(phase: str) -> None:
    """Stop this host's run with one line unless it runs Ubuntu 24.04 (what every phase is written for)."""
    dist = host.get_fact(LinuxDistribution) or {}
    name, major, minor = dist.get("name"), dist.get("major"), dist.get("minor")
    if (name, major, minor) != SUPPORTED:
        found = " ".join(str(p) for p in (name, major, minor) if p is not None) or "an unknown OS"
        raise DeployError(
            f"{host.name}: {phase} supports Ubuntu 24.04 only, found {found}: "
            "install Ubuntu 24.04 on it first (the BMC boots the installer: docs/bmc.md)"
        )
