"""5.3 Memgraph: persistent volumes, 127.0.0.1, the Zen 5 glibc workaround only on AMD family 1Ah."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy

from .compose import host_stack, start, upload, wait_until
from .config import StackConfig
from .render import render_memgraph

CYPHER = "RETURN 1 AS ok;"
CYPHER_PROBE = (f"docker exec omni-memgraph sh -c \"echo '{CYPHER}' | mgconsole --output-format=csv\" "
                "| grep -q 1")


def cpu_facts() -> dict:
    """``facts.hardware.CpuInfo`` (vendor, family...), or an unavailable marker."""
    from facts.hardware import CpuInfo

    return host.get_fact(CpuInfo) or {"available": False, "reason": "CpuInfo returned nothing"}


@deploy("Memgraph")
def memgraph(config: StackConfig | None = None) -> list[str]:
    config = config or host_stack()
    changes = upload(config, "memgraph", render_memgraph(config, cpu_facts()))
    started = start(config, "memgraph", ["memgraph"], changes)
    wait_until(started, "Memgraph (a Cypher query)", CYPHER_PROBE, 300)
    return ["memgraph"]
