"""Pure parsers: command output in, plain JSON-able data out. No I/O, no pyinfra.

``parse(kind, text)`` is what ``python -m facts parse KIND FILE`` runs.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from .common import ParseError
from .cpu import parse_cpuinfo, parse_lscpu, parse_nvidia_version
from .dmidecode import parse_dmidecode
from .lsblk import parse_lsblk
from .lspci import parse_lspci
from .noise import strip_noise
from .numactl import parse_numactl
from .nvidia_smi import parse_nvidia_smi_csv, parse_nvidia_smi_q
from .sysfs_node import parse_sysfs_node
from .sysfs_pci import parse_sysfs_pci

PARSERS: dict[str, Callable[..., dict]] = {
    "lspci": parse_lspci,
    "dmidecode": parse_dmidecode,
    "numactl": parse_numactl,
    "nvidia-smi-csv": parse_nvidia_smi_csv,
    "nvidia-smi-q": parse_nvidia_smi_q,
    "lsblk": parse_lsblk,
    "sysfs-pci": parse_sysfs_pci,
    "sysfs-node": parse_sysfs_node,
    "lscpu": parse_lscpu,
    "cpuinfo": parse_cpuinfo,
    "nvidia-version": parse_nvidia_version,
}

_FAILED_RUN = re.compile(
    r"command not found|No such file or directory|Permission denied|password is required|"
    r"couldn't communicate with the NVIDIA driver|No devices were found|No SMBIOS nor DMI|No NUMA available",
    re.I,
)

__all__ = ["PARSERS", "ParseError", "failure_line", "parse", "strip_noise"]


def failure_line(output) -> str | None:
    """The line that says the command itself failed (missing, denied, no driver), if any."""
    return next((line.strip() for line in strip_noise(output) if _FAILED_RUN.search(line)), None)


def parse(kind: str, output) -> dict:
    """Parse ``output`` as ``kind``; a ParseError names what is wrong in one line."""
    if kind not in PARSERS:
        raise ParseError(f"unknown KIND {kind!r}: use one of {', '.join(PARSERS)}")
    try:
        return PARSERS[kind](output)
    except ParseError as error:
        failed = failure_line(output)
        if failed:
            raise ParseError(f"{kind}: no {kind} output, the command failed: {failed}") from None
        raise ParseError(f"{kind}: {error}") from None
