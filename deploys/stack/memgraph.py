"""5.3 Memgraph (MAGE): data and logs under /nvme, 127.0.0.1, the Zen 5 glibc workaround only on AMD 1Ah.

Why bind mounts and not named volumes: the runbook keeps Memgraph's data in ``/nvme/memgraph`` (the
data disk, backed up and sized for it), not in Docker's root. A one-shot ``memgraph-dirs`` service
of the same image hands the folders to the image's ``memgraph`` user before the server starts.
"""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import files

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
    for folder in (config.memgraph.data_dir, config.memgraph.log_dir):
        files.directory(name=f"Create {folder}", path=folder, mode="750")
    changes = upload(config, "memgraph", render_memgraph(config, cpu_facts()))
    started = start(config, "memgraph", ["memgraph"], changes)
    wait_until(started, "Memgraph (a Cypher query)", CYPHER_PROBE, 300)
    return ["memgraph"]
