"""Shared steps of every compose project: upload its files, start it only when needed, wait for health.

Why "only when needed": a deploy run twice must change nothing, so ``docker compose up`` is planned
only when an uploaded file changes or a service is not running (read from the host before the run).
"""

from __future__ import annotations

import shlex
from io import StringIO

from pyinfra import host
from pyinfra.api.exceptions import DeployError
from pyinfra.api.operation import OperationMeta
from pyinfra.operations import files, server

from facts.stack import ComposeServices, DockerCompose, DockerNetwork

from .config import StackConfig, StackConfigError, stack_config

NO_COMPOSE = "phase 5 needs Docker with the compose plugin on the host: run phase 4 first"


def host_stack() -> StackConfig:
    """This host's validated stack config; a bad value stops the host with one line."""
    try:
        return stack_config(host.data)
    except StackConfigError as error:
        raise DeployError(f"{host.name}: {error}") from None


def require_compose() -> str:
    version = host.get_fact(DockerCompose)
    if not version:
        raise DeployError(f"{host.name}: {NO_COMPOSE}")
    return version


def ensure_network(config: StackConfig) -> None:
    if not host.get_fact(DockerNetwork, network=config.network):
        server.shell(name=f"Create the shared docker network {config.network}",
                     commands=[f"docker network create {shlex.quote(config.network)}"])


def upload(config: StackConfig, concern: str, rendered: dict[str, str]) -> list[OperationMeta]:
    """The project folder and its files; scripts executable, the rest world-readable (no secrets here)."""
    folder = config.project_dir(concern)
    ops = [files.directory(name=f"Create {folder}", path=folder, mode="755")]
    for rel, text in sorted(rendered.items()):
        ops.append(files.put(name=f"Upload {concern}/{rel}", src=StringIO(text), dest=f"{folder}/{rel}",
                             mode="755" if rel.endswith(".sh") else "644"))
    return ops


def compose_command(config: StackConfig, concern: str, *args: str, profiles: tuple[str, ...] = ()) -> str:
    flags = "".join(f" --profile {shlex.quote(p)}" for p in profiles)
    return (f"docker compose -p omni-{concern} -f {config.project_dir(concern)}/compose.yaml{flags} "
            + " ".join(args))


def start(config: StackConfig, concern: str, services: list[str], changes: list[OperationMeta],
          build: bool = False, profiles: tuple[str, ...] = ()) -> OperationMeta | None:
    """``docker compose up -d`` when a file changes or a service is not running; else nothing."""
    states = host.get_fact(ComposeServices, project=f"omni-{concern}")
    stopped = [s for s in services if states.get(s) != "running"]
    changed = [op for op in changes if op.will_change]
    if not stopped and not changed:
        return None
    reason = "files changed" if changed else f"not running: {', '.join(stopped)}"
    args = ["up", "-d", "--remove-orphans", *(["--build"] if build else [])]
    return server.shell(name=f"Start the {concern} project ({reason})",
                        commands=[compose_command(config, concern, *args, profiles=profiles)])


def wait_until(started: OperationMeta | None, label: str, probe: str, timeout_s: int) -> None:
    """After a start, poll ``probe`` until it succeeds; fail the run with the probe named if it never does."""
    if started is None:
        return
    failure = shlex.quote(f"{label} not healthy after {timeout_s}s")
    script = (f"end=$(( $(date +%s) + {timeout_s} )); until {probe}; do "
              f"if [ $(date +%s) -ge $end ]; then echo {failure} >&2; exit 1; fi; sleep 5; done")
    server.shell(name=f"Wait until {label} is healthy", commands=[f"sh -c {shlex.quote(script)}"])


def local_url_host(bind: str) -> str:
    """Where the host itself reaches a port published on ``bind``."""
    return "127.0.0.1" if bind in ("0.0.0.0", "::", "") else bind


def stop_disabled(config: StackConfig, concern: str) -> None:
    """A concern switched off in inventory: take its running project down (volumes are kept)."""
    if host.get_fact(ComposeServices, project=f"omni-{concern}"):
        server.shell(name=f"Stop the disabled {concern} project (volumes kept)",
                     commands=[f"docker compose -p omni-{concern} down --remove-orphans"])
