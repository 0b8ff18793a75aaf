"""Docker CE from Docker's own apt repository, pinned, with a daemon.json we merge rather than own.

Why merge: ``nvidia-ctk runtime configure --runtime=docker`` writes the ``runtimes`` key into the
same ``/etc/docker/daemon.json``. Owning the whole file would erase it on every run (and restart
Docker every run); merging our keys keeps both writers idempotent.
"""

from __future__ import annotations

import io
import json
import shlex
from typing import Any

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.api.exceptions import DeployError
from pyinfra.api.operation import OperationMeta
from pyinfra.operations import apt, files, server

from deploys.runtime.apt import install_pinned, vendor_repository
from deploys.runtime.services import restart_if, running_and_enabled
from deploys.runtime.settings import DEFAULTS, DockerSettings, access_users, load
from facts.runtime import JsonFile, UserAccount

DAEMON_JSON = "/etc/docker/daemon.json"
PREREQUISITES = {"ca-certificates": None, "curl": None, "gnupg": None}


def read_daemon_json() -> dict[str, Any]:
    """The current daemon.json as data; one line and a stop when it is not valid JSON."""
    current = host.get_fact(JsonFile, path=DAEMON_JSON)
    if current and "__invalid__" in current:
        raise DeployError(f"{host.name}: {DAEMON_JSON} is not valid JSON: fix or remove it, then rerun")
    return current or {}


def merged_daemon_json(current: dict[str, Any], ours: dict[str, Any]) -> dict[str, Any] | None:
    """``current`` with our keys set, or ``None`` when it already holds them (nothing to write)."""
    merged = {**current, **ours}
    return None if merged == current else merged


def render_daemon_json(config: dict[str, Any]) -> str:
    return json.dumps(config, indent=4, sort_keys=True) + "\n"


@deploy("Docker CE", data_defaults={"docker": DEFAULTS["docker"]})
def docker() -> OperationMeta | None:
    """Install Docker CE at the pinned versions; returns the op that changed daemon.json (or None)."""
    cfg: DockerSettings = load("docker")
    if not cfg.enabled:
        return None
    apt.packages(name="Remove packages that conflict with Docker CE", packages=cfg.conflicting_packages,
                 present=False)
    install_pinned("the apt repository prerequisites", PREREQUISITES)
    sources = vendor_repository(label="Docker", filename="docker", key_url=cfg.key_url,
                                fingerprints=cfg.key_fingerprints, uris=cfg.repo_url, suites=cfg.suite,
                                components=cfg.component, architecture=cfg.architecture,
                                legacy_lists=cfg.legacy_lists)
    # daemon.json before the packages: apt starts Docker on install, and it should start configured.
    wanted = merged_daemon_json(read_daemon_json(), cfg.daemon_json)
    config_op = None
    if wanted is not None:
        files.directory(name="Create /etc/docker", path="/etc/docker", mode="0755")
        config_op = files.put(name=f"Merge our settings into {DAEMON_JSON}",
                              src=io.StringIO(render_daemon_json(wanted)), dest=DAEMON_JSON, mode="0644")
    install_pinned("Docker CE", cfg.packages, sources, hold=True)
    running_and_enabled("docker.service", "Docker")
    for user in access_users():  # docker without sudo (membership counts from the next login)
        account = host.get_fact(UserAccount, user=user)
        if account is None:
            raise DeployError(f"{host.name}: phase4.users names {user!r}, which has no account on the host: "
                              "fix phase4.users (or ssh_user)")
        if "docker" not in account["groups"]:
            server.shell(name=f"Add {user} to the docker group",
                         commands=[f"usermod -aG docker {shlex.quote(user)}"])
    restart_if("docker.service", "Docker", "its daemon.json changed", [config_op] if config_op else [])
    return config_op
