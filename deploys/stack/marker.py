"""The phase 5 marker, ``/var/lib/omni/phase5.json``: what this host runs, for verify to check.

Deterministic (no timestamp) so a rerun changes nothing; verify reads it to tell "not deployed"
(UNKNOWN) from "deployed and broken" (FAIL).
"""

from __future__ import annotations

import json
from io import StringIO
from typing import Any

from pyinfra.operations import files

from deploys.core.markers import MARKER_DIR

from .config import StackConfig
from .render import phoenix_projects

MARKER = f"{MARKER_DIR}/phase5.json"


def marker_document(config: StackConfig, deployed: list[str]) -> dict[str, Any]:
    obs = config.observability
    return {
        "phase": "phase5",
        "components": deployed,
        "bind": config.bind,
        "models": [{"name": m.name, "served_name": m.served_name, "engine": m.engine, "port": m.port,
                    "service": m.service} for m in config.inference.enabled],
        "headroom_gib": config.inference.headroom_gib,
        "memgraph": {"port": config.memgraph.port, "bind": config.bind_for("memgraph")}
        if "memgraph" in deployed else None,
        "observability": {"prometheus_port": obs.prometheus_port, "grafana_port": obs.grafana_port,
                          "bind": config.bind_for("observability")} if "observability" in deployed else None,
        "phoenix": {"state_dir": config.phoenix.state_dir,
                    "projects": [p for p, _ in phoenix_projects(config, deployed)]}
        if config.phoenix.enabled else None,
    }


def record(config: StackConfig, deployed: list[str]) -> None:
    text = json.dumps(marker_document(config, deployed), indent=2, sort_keys=True) + "\n"
    files.put(name=f"Record the phase 5 marker {MARKER}", src=StringIO(text), dest=MARKER, mode="644")
