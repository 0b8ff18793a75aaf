"""Phase 4 knobs (Docker CE, NVIDIA Container Toolkit, K3s): pinned defaults, overridable per host.

Why pydantic: a typo in a hosts file (``[hosts.box.k3s] versoin = ...``) must stop the run with one
line naming the key, not silently fall back to a default. Every version here is a pin: rerunning the
deploy moves a drifted host back to it (or up to a newer pin: the upgrade path).

Override any value from the TOML hosts file (``OMNI_HOSTS_FILE``), one table per section::

    [hosts.box1.k3s]
    version = "v1.34.9+k3s1"
    install_script_sha256 = "<sha256 of the install script you reviewed>"
    [hosts.box1.docker.packages]
    docker-ce = "5:29.7.2-1~ubuntu.24.04~noble"
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import jinja2
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pyinfra import host
from pyinfra.api.exceptions import DeployError

from omni.errors import one_line
from omni.settings import settings

TEMPLATES = Path(__file__).resolve().parents[1] / "templates" / "phase4"
DOCKER_SUITE = "noble"
_DOCKER_PIN = "5:29.7.2-1~ubuntu.24.04~noble"
_TOOLKIT_PIN = "1.19.0-1"

DEFAULTS: dict[str, dict[str, Any]] = {
    "docker": {
        "enabled": True,
        "repo_url": "https://download.docker.com/linux/ubuntu",
        "key_url": "https://download.docker.com/linux/ubuntu/gpg",
        # Docker Release (CE deb) <docker@docker.com>, the key every Docker install guide names.
        "key_fingerprints": ["9DC858229FC7DD38854AE2D88D81803C0EBFCD88"],
        # Lists Docker's older instructions wrote: a second Signed-By for the same repository makes
        # apt refuse every update ("Conflicting values set for option Signed-By").
        "legacy_lists": ["docker.list"],
        "suite": DOCKER_SUITE,
        "component": "stable",
        "architecture": "amd64",
        "packages": {
            "docker-ce": _DOCKER_PIN,
            "docker-ce-cli": _DOCKER_PIN,
            "containerd.io": "2.3.4-1~ubuntu.24.04~noble",
            "docker-buildx-plugin": "0.36.1-1~ubuntu.24.04~noble",
            "docker-compose-plugin": "5.5.0-1~ubuntu.24.04~noble",
        },
        # Ubuntu's own container packages fight Docker's for /usr/bin/docker and the containerd socket.
        "conflicting_packages": ["docker.io", "docker-doc", "docker-compose", "docker-compose-v2",
                                 "podman-docker", "containerd", "runc"],
        # Merged into /etc/docker/daemon.json (keys nvidia-ctk adds are kept).
        "daemon_json": {"log-driver": "json-file", "log-opts": {"max-size": "100m", "max-file": "3"}},
    },
    "nvidia_toolkit": {
        "repo_url": "https://nvidia.github.io/libnvidia-container/stable/deb",
        "key_url": "https://nvidia.github.io/libnvidia-container/gpgkey",
        # NVIDIA CORPORATION (Open Source Projects) <cudatools@nvidia.com>
        "key_fingerprints": ["C95B321B61E88C1809C4F759DDCAE044F796ECB0"],
        "architecture": "amd64",
        "legacy_lists": ["nvidia-container-toolkit.list", "libnvidia-container.list", "nvidia-docker.list"],
        "packages": {
            "nvidia-container-toolkit": _TOOLKIT_PIN,
            "nvidia-container-toolkit-base": _TOOLKIT_PIN,
            "libnvidia-container-tools": _TOOLKIT_PIN,
            "libnvidia-container1": _TOOLKIT_PIN,
        },
        "configure_docker": True,
    },
    "k3s": {
        "version": "v1.35.6+k3s1",
        # The install script of the pinned release tag, saved to disk and run from there.
        "install_script_url": "https://raw.githubusercontent.com/k3s-io/k3s/{version}/install.sh",
        # sha256 of that script. None: the run stops before executing it and prints the hash to
        # review and pin (we never ship a checksum we did not compute from the file ourselves).
        "install_script_sha256": None,
        "exec": None,  # INSTALL_K3S_EXEC; None: "server" on workstations, "agent" on k3s_agents
        # /etc/rancher/k3s/config.yaml on the server (traefik off: no ingress on 80/443 of an
        # inference box) and on agents (server and token-file are added by the deploy).
        "config": {"write-kubeconfig-mode": "0600", "disable": ["traefik"]},
        "agent_config": {},
        "server_url": None,  # agents: None means https://<first workstations host>:6443
        # NVIDIA's device plugin, so pods can ask for nvidia.com/gpu (K3s ships none). The image is
        # pinned by digest; None stops the run with one line saying how to read it (we never ship a
        # digest we did not read from the registry ourselves).
        "device_plugin": True,
        "device_plugin_image": "nvcr.io/nvidia/k8s-device-plugin:v0.17.1",
        "device_plugin_digest": None,
    },
    "phase4": {
        # accounts that get the docker group and their own copy of the K3s kubeconfig (0600);
        # None: the SSH user (ssh_user) when it is set and not root
        "users": None,
        "verify": True,
        "cuda_image": "nvidia/cuda:12.8.0-base-ubuntu24.04",
        "pod_timeout_s": 300,
    },
}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _AptRepo(_Section):
    repo_url: str
    key_url: str
    key_fingerprints: list[str] = Field(min_length=1)
    architecture: str
    legacy_lists: list[str]
    packages: dict[str, str | None]

    @field_validator("key_fingerprints")
    @classmethod
    def _fingerprints(cls, value: list[str]) -> list[str]:
        cleaned = [v.replace(" ", "").upper() for v in value]
        for fpr in cleaned:
            if not re.fullmatch(r"[0-9A-F]{40}", fpr):
                raise ValueError(f"{fpr!r} is not a 40-hex-digit OpenPGP fingerprint")
        return cleaned


class DockerSettings(_AptRepo):
    enabled: bool
    suite: str
    component: str
    conflicting_packages: list[str]
    daemon_json: dict[str, Any]


class ToolkitSettings(_AptRepo):
    configure_docker: bool


class K3sSettings(_Section):
    version: str
    install_script_url: str
    install_script_sha256: str | None
    exec: str | None
    config: dict[str, Any]
    agent_config: dict[str, Any]
    server_url: str | None
    device_plugin: bool = True
    device_plugin_image: str = "nvcr.io/nvidia/k8s-device-plugin:v0.17.1"
    device_plugin_digest: str | None = None

    @field_validator("device_plugin_digest")
    @classmethod
    def _digest(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"sha256:[0-9a-f]{64}", value):
            raise ValueError("is not an image digest (sha256:<64 hex digits>)")
        return value

    @field_validator("version")
    @classmethod
    def _version(cls, value: str) -> str:
        if not re.fullmatch(r"v\d+\.\d+\.\d+\+k3s\d+", value):
            raise ValueError(f"{value!r} is not a K3s release tag like v1.35.6+k3s1")
        return value

    @field_validator("install_script_sha256")
    @classmethod
    def _sha256(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[0-9a-f]{64}", value.lower()):
            raise ValueError("is not a sha256 (64 hex digits)")
        return value.lower() if value else None

    @property
    def script_url(self) -> str:
        return self.install_script_url.format(version=quote(self.version, safe=""))

    @property
    def script_path(self) -> str:
        return f"/usr/local/share/omni/k3s/install-{self.version}.sh"

    @property
    def release(self) -> tuple[int, int, int, int]:
        """``v1.28.5+k3s2`` -> ``(1, 28, 5, 2)``, for comparing releases."""
        major, minor, patch, k3s = (int(n) for n in re.findall(r"\d+", self.version)[:4])
        return major, minor, patch, k3s


class Phase4Settings(_Section):
    users: list[str] | None = None
    verify: bool
    cuda_image: str
    pod_timeout_s: int = Field(gt=0)


_MODELS: dict[str, type[_Section]] = {"docker": DockerSettings, "nvidia_toolkit": ToolkitSettings,
                                      "k3s": K3sSettings, "phase4": Phase4Settings}
Section = Literal["docker", "nvidia_toolkit", "k3s", "phase4"]


def load(section: Section, data: Any = None) -> Any:
    """The section's defaults overridden by the host's data, validated; one line on a bad value."""
    merged = settings(DEFAULTS[section], host.data if data is None else data, section)
    try:
        return _MODELS[section].model_validate(merged)
    except ValidationError as exc:
        name = host.name if data is None else "host data"
        fix = "fix it in your hosts file (OMNI_HOSTS_FILE)"
        raise DeployError(f"{name}: {one_line(exc, root=[section], fix=fix)}") from None


def access_users() -> list[str]:
    """Who gets the docker group and a kubeconfig: ``phase4.users``, else the SSH user unless root."""
    cfg: Phase4Settings = load("phase4")
    if cfg.users is not None:
        return list(cfg.users)
    ssh_user = host.data.get("ssh_user")
    return [ssh_user] if ssh_user and ssh_user != "root" else []


@cache
def _templates() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), undefined=jinja2.StrictUndefined,
                              keep_trailing_newline=True, autoescape=False)


def render(template: str, **variables: Any) -> str:
    """A ``templates/phase4`` file rendered the one way both the deploy and the golden tests use."""
    return _templates().get_template(template).render(**variables)
