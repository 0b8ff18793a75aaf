"""Facts phase 5 reads from the host: RAM, and what Docker already runs.

Each answers "absent" with exit 0 (``|| true``), so a host without Docker plans instead of failing.
"""

from __future__ import annotations

import re
import shlex

from pyinfra.api import FactBase

_MEMINFO = re.compile(r"^(\w+):\s+([0-9]{1,20})\s*kB$")  # ASCII, bounded: int() of 5000 digits raises


def parse_meminfo(lines: list[str]) -> dict[str, int]:
    """``/proc/meminfo`` lines -> bytes per key (``MemTotal``, ``MemAvailable``...); noise ignored."""
    values = {}
    for line in lines:
        match = _MEMINFO.match(line.strip())
        if match:
            values[match.group(1)] = int(match.group(2)) * 1024
    return values


class MemInfo(FactBase[dict]):
    """RAM in bytes from ``/proc/meminfo``::

        MemTotal:       131981020 kB
        MemAvailable:   131464720 kB
    """

    def command(self) -> str:
        return "grep -E '^(MemTotal|MemAvailable):' /proc/meminfo || true"

    def default(self) -> dict:
        return {}

    def process(self, output: list[str]) -> dict:
        return parse_meminfo(output)


class DockerCompose(FactBase[str | None]):
    """The compose plugin's version (``docker compose version --short``), ``None`` without it."""

    def command(self) -> str:
        return "docker compose version --short 2>/dev/null || true"

    def process(self, output: list[str]) -> str | None:
        return output[0].strip() if output and output[0].strip() else None


class ComposeServices(FactBase[dict]):
    """State of each service of one compose project: ``{"llm-architect": "running", ...}``."""

    def command(self, project: str) -> str:
        return (f"docker compose -p {shlex.quote(project)} ps -a --format '{{{{.Service}}}} {{{{.State}}}}' "
                "2>/dev/null || true")

    def default(self) -> dict:
        return {}

    def process(self, output: list[str]) -> dict:
        states = {}
        for line in output:
            service, _, state = line.strip().partition(" ")
            if service and state:
                states[service] = state
        return states


class DockerNetwork(FactBase[bool]):
    """Whether a docker network of that name exists."""

    def command(self, network: str) -> str:
        return f"docker network inspect --format '{{{{.Name}}}}' {shlex.quote(network)} 2>/dev/null || true"

    def default(self) -> bool:
        return False

    def process(self, output: list[str]) -> bool:
        return bool(output and output[0].strip())
