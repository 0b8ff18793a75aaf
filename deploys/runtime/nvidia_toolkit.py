"""NVIDIA Container Toolkit from NVIDIA's apt repository, pinned, wired into Docker.

Only Docker is configured with ``nvidia-ctk``. K3s is not: its embedded containerd regenerates
``/var/lib/rancher/k3s/agent/etc/containerd/config.toml`` at every start and adds the ``nvidia``
runtime itself when ``nvidia-container-runtime`` is on its PATH, so K3s only needs a restart after
the toolkit changes (``deploys/runtime/k3s.py``). ``nvidia-ctk runtime configure --runtime=containerd``
would edit ``/etc/containerd/config.toml``, which K3s never reads (docs/phase4.md).
"""

from __future__ import annotations

from pyinfra.api import deploy
from pyinfra.api.operation import OperationMeta
from pyinfra.operations import server

from deploys.runtime.apt import install_pinned, vendor_repository
from deploys.runtime.docker import read_daemon_json
from deploys.runtime.services import restart_if
from deploys.runtime.settings import DEFAULTS, ToolkitSettings, load

CONFIGURE_DOCKER = "nvidia-ctk runtime configure --runtime=docker"


def docker_has_nvidia_runtime() -> bool:
    runtime = (read_daemon_json().get("runtimes") or {}).get("nvidia") or {}
    return bool(runtime.get("path"))


@deploy("NVIDIA Container Toolkit", data_defaults={"nvidia_toolkit": DEFAULTS["nvidia_toolkit"]})
def nvidia_toolkit(docker_enabled: bool = True) -> OperationMeta:
    """Install the pinned toolkit; returns the package op (K3s restarts when it changed)."""
    cfg: ToolkitSettings = load("nvidia_toolkit")
    sources = vendor_repository(label="NVIDIA Container Toolkit", filename="nvidia-container-toolkit",
                                key_url=cfg.key_url, fingerprints=cfg.key_fingerprints,
                                uris=f"{cfg.repo_url}/{cfg.architecture}", suites="/", components=None,
                                architecture=cfg.architecture, legacy_lists=cfg.legacy_lists)
    packages = install_pinned("the NVIDIA Container Toolkit", cfg.packages, sources, hold=True)
    if docker_enabled and cfg.configure_docker and not docker_has_nvidia_runtime():
        configured = server.shell(name="Register the nvidia runtime with Docker (nvidia-ctk)",
                                  commands=[CONFIGURE_DOCKER])
        # Not only_if_running: on a fresh host apt started Docker after this plan was made.
        restart_if("docker.service", "Docker", "the nvidia runtime was registered", [configured],
                   only_if_running=False)
    return packages
