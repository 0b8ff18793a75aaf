"""5.6 observability: Prometheus, node-exporter, dcgm-exporter, Grafana with a generated password."""

from __future__ import annotations

import shlex

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.files import File
from pyinfra.operations import files, server

from .compose import host_stack, local_url_host, start, upload, wait_until
from .config import StackConfig
from .render import GRAFANA_UID, render_observability

SERVICES = ["prometheus", "node-exporter", "dcgm-exporter", "grafana"]


def password_file(config: StackConfig) -> str:
    return f"{config.project_dir('observability')}/secrets/grafana-admin-password"


def grafana_password(config: StackConfig) -> None:
    """Generate the Grafana admin password once, on the host, readable by Grafana's user only.

    Never printed, never sent to the controller: read it on the host with
    ``sudo cat /opt/omni/observability/secrets/grafana-admin-password``.
    """
    path = password_file(config)
    folder = path.rsplit("/", 1)[0]
    files.directory(name=f"Create {folder} (root only)", path=folder, mode="700")
    if host.get_fact(File, path=path):
        return
    tmp = shlex.quote(f"{path}.tmp")
    script = (f"umask 077 && head -c 48 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 32 > {tmp} "
              f"&& chown {GRAFANA_UID}:0 {tmp} && chmod 0400 {tmp} && mv {tmp} {shlex.quote(path)}")
    server.shell(name="Generate the Grafana admin password on the host", commands=[script])


@deploy("Observability")
def observability(config: StackConfig | None = None) -> list[str]:
    config = config or host_stack()
    changes = upload(config, "observability", render_observability(config))
    grafana_password(config)
    started = start(config, "observability", SERVICES, changes)
    spec, url_host = config.observability, local_url_host(config.bind_for("observability"))
    probe = (f"curl -fsS -o /dev/null http://{url_host}:{spec.prometheus_port}/-/ready && "
             f"curl -fsS -o /dev/null http://{url_host}:{spec.grafana_port}/api/health")
    wait_until(started, "Prometheus and Grafana", probe, 300)
    return SERVICES
