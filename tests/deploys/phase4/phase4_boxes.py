"""Scripted hosts for the phase 4 plan tests: what each command pyinfra runs would print.

A box is an ordered list of (substring of the command, output) pairs, the ``fake_responses`` of
pyinfra's ``@fake`` connector (first match wins; anything unmatched prints nothing and succeeds,
which every fact reads as "absent"). Outputs follow the real tools' formats; the os-release is the
H200 machine's capture, the K3s and daemon.json shapes are the captures in ``fixtures/``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from deploys.runtime.settings import DEFAULTS, render

HERE = Path(__file__).parent
ROOT = HERE.parents[2]
GOLDEN = HERE / "golden"
FIXTURES = HERE / "fixtures"

_H200_OS_RELEASE = (ROOT / "tests/fixtures/hw/h200-os-release.txt").read_text()
OS_RELEASE_UBUNTU = [line for line in _H200_OS_RELEASE.splitlines()
                     if line and not line.startswith("#") and "=" in line]
OS_RELEASE_DEBIAN = ['PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"', 'NAME="Debian GNU/Linux"',
                     'VERSION_ID="12"', 'VERSION="12 (bookworm)"', "VERSION_CODENAME=bookworm", "ID=debian"]
UBUNTU_SOURCES = """Types: deb
URIs: http://archive.ubuntu.com/ubuntu/
Suites: noble noble-updates noble-backports
Components: main restricted universe multiverse
Signed-By: /usr/share/keyrings/ubuntu-archive-keyring.gpg

Types: deb
URIs: http://security.ubuntu.com/ubuntu/
Suites: noble-security
Components: main restricted universe multiverse
Signed-By: /usr/share/keyrings/ubuntu-archive-keyring.gpg
"""
DPKG_HEADER = [
    "Desired=Unknown/Install/Remove/Purge/Hold",
    "| Status=Not/Inst/Conf-files/Unpacked/halF-conf/Half-inst/trig-aWait/Trig-pend",
    "|/ Err?=(none)/Reinst-required (Status,Err: uppercase=bad)",
    "||/ Name                    Version                          Architecture Description",
    "+++-=======================-================================-============-==========================",
]
BASE_PACKAGES = {"apt": "2.7.14build2", "ca-certificates": "20240203", "curl": "8.5.0-2ubuntu10.6",
                 "gnupg": "2.4.4-2ubuntu17.3", "systemd": "255.4-1ubuntu8.6"}
KEYS = {"docker": "9DC858229FC7DD38854AE2D88D81803C0EBFCD88",
        "nvidia-container-toolkit": "C95B321B61E88C1809C4F759DDCAE044F796ECB0"}
K3S_VERSION = DEFAULTS["k3s"]["version"]
#: A digest the tests pin (the real one is read from the registry by the owner: docs/phase4.md).
TEST_DIGEST = "sha256:" + "ab" * 32
DEVICE_PLUGIN = "/var/lib/rancher/k3s/server/manifests/omni-nvidia-device-plugin.yaml"


def sha1(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def stat_line(path: str, mode: str, size: int = 100) -> str:
    return (f"user=root group=root mode={mode} atime=1764403200 mtime=1764403200 ctime=1764403200 "
            f"size={size} '{path}'")


def dpkg_lines(packages: dict[str, str]) -> list[str]:
    return DPKG_HEADER + [f"ii  {name:<23} {version:<32} amd64        {name}"
                          for name, version in packages.items()]


def k3s_version_output(binary: str | None, running: str | None) -> list[str]:
    """``K3sVersions``' command output, shaped like the captures in fixtures/."""
    lines = [f"binary=k3s version {binary} (5dc8fe68)" if binary else "binary=", "running:"]
    if running:
        doc = json.loads((FIXTURES / "apiserver-version-v1.35.0.json").read_text())
        doc["gitVersion"] = running
        lines += json.dumps(doc, indent=2).splitlines()
    return lines


class Box:
    """One scripted host. Methods add responses; ``data()`` is the host data for the inventory."""

    def __init__(self, os_release: list[str] = OS_RELEASE_UBUNTU, systemd: bool = True) -> None:
        self.files: dict[str, str] = {}  # path -> content (converged files)
        self.dirs: dict[str, str] = {}  # path -> mode string
        self.packages = dict(BASE_PACKAGES)
        self.sources = {"/etc/apt/sources.list.d/ubuntu.sources": UBUNTU_SOURCES}
        self.keyrings: dict[str, str] = {}  # keyring name -> primary fingerprint
        self.units: dict[str, bool] = {}  # unit -> running and enabled
        self.k3s: tuple[str | None, str | None] = (None, None)
        self.os_release = os_release
        self.systemd = systemd
        self.extra: dict[str, Any] = {}
        self.probes: dict[str, Any] = {}  # read-only commands verify runs (docker info, kubectl ...)
        self.holds: list[str] = []  # apt-mark showhold
        self.accounts: dict[str, tuple[str, str, str]] = {}  # user -> (home, group, groups)

    def data(self, **extra: Any) -> dict[str, Any]:
        return {"fake_responses": self.responses(), **self.extra, **extra}

    def responses(self) -> dict[str, Any]:
        r: dict[str, Any] = dict(self.probes)
        r |= {"ls -pdL *-release": ["/etc/os-release", *self.os_release, "---"],
                             "test -d /run/systemd/system": "booted" if self.systemd else "not-booted"}
        for unit, up in self.units.items():
            r[f"--property SubState {unit}"] = [f"Id={unit}", f"SubState={'running' if up else 'dead'}"]
            r[f"--property UnitFileState {unit}"] = [f"Id={unit}", f"UnitFileState={'enabled' if up else ''}"]
        r["dpkg -l"] = dpkg_lines(self.packages)
        r["apt-mark showhold"] = list(self.holds)
        for user, (home, group, groups) in self.accounts.items():
            r[f"getent passwd '{user}'"] = [home, group, groups]
        r["##PYINFRA_FILE"] = [line for path, text in self.sources.items()
                               for line in (f"##PYINFRA_FILE {path}", *text.splitlines(), "")]
        for name, fingerprint in self.keyrings.items():
            r[f"if [ -e /etc/apt/keyrings/{name}.gpg ]; then echo present"] = ["present", fingerprint]
        r["command -v curl"] = "/usr/bin/curl"
        r["k3s --version"] = k3s_version_output(*self.k3s)
        for path, content in self.files.items():
            r[f"cat {path} 2>/dev/null"] = content
            r[f"test -e {path} && ( sha1sum"] = f"{sha1(content)}  {path}"
            r[f"test -e {path} && ( sha256sum"] = f"{hashlib.sha256(content.encode()).hexdigest()}  {path}"
            mode = "-rw-------" if path.startswith(("/etc/rancher", "/var/lib/rancher")) else "-rw-r--r--"
            r[f"(test -e {path} ||"] = stat_line(path, mode, len(content))
        for path in ("/var/lib/omni/phase4.json", "/var/lib/rancher/k3s/agent/etc/containerd/config.toml"):
            if path not in self.files:  # a real `cat` of a missing file fails (verify reads these)
                r[f"cat {path} 2>/dev/null"] = {"success": False}
        for path, mode in self.dirs.items():
            r[f"(test -e {path} ||"] = stat_line(path, mode, 4096)
        return r


def fresh_ubuntu() -> Box:
    box = Box()
    box.units = {"docker.service": False, "k3s.service": False}
    return box


def golden(name: str) -> str:
    return (GOLDEN / name).read_text()


def converged(k3s_binary: str = K3S_VERSION, k3s_running: str | None = K3S_VERSION, agent: bool = False,
              server_url: str = "https://box:6443") -> Box:
    """A host where phase 4 already ran at the default pins: every file, package and unit in place."""
    box = Box()
    pins = {**DEFAULTS["docker"]["packages"], **DEFAULTS["nvidia_toolkit"]["packages"]}
    box.packages.update(pins)
    box.holds = sorted(pins)
    box.sources["/etc/apt/sources.list.d/docker.sources"] = golden("docker.sources")
    nvidia = "nvidia-container-toolkit.sources"
    box.sources[f"/etc/apt/sources.list.d/{nvidia}"] = golden(nvidia)
    box.keyrings = dict(KEYS)
    for name in box.keyrings:
        box.files[f"/etc/apt/keyrings/{name}.gpg"] = f"binary keyring {name}"
    runtime = {"args": [], "path": "nvidia-container-runtime"}  # what nvidia-ctk writes (fixtures/)
    daemon = {**DEFAULTS["docker"]["daemon_json"], "runtimes": {"nvidia": runtime}}
    box.files["/etc/docker/daemon.json"] = json.dumps(daemon, indent=4)
    unit = "k3s-agent.service" if agent else "k3s.service"
    box.units = {"docker.service": True, unit: True}
    box.k3s = (k3s_binary, None if agent else k3s_running)
    if agent:
        config = {**DEFAULTS["k3s"]["agent_config"], "server": server_url,
                  "token-file": "/etc/rancher/k3s/omni-agent-token"}
        box.files["/etc/rancher/k3s/omni-agent-token"] = "K10secret::server:token\n"
    else:
        config = DEFAULTS["k3s"]["config"]
        box.files[DEVICE_PLUGIN] = render("nvidia-device-plugin.yaml.j2",
                                          image=DEFAULTS["k3s"]["device_plugin_image"], digest=TEST_DIGEST)
    box.extra["k3s"] = {"device_plugin_digest": TEST_DIGEST}
    box.files["/etc/rancher/k3s/config.yaml"] = render("k3s-config.yaml.j2", config=config)
    for path in ("/etc/docker", "/etc/rancher/k3s", "/usr/local/share/omni/k3s", "/var/lib/omni",
                 "/var/lib/rancher/k3s/server/manifests"):
        box.dirs[path] = "drwxr-xr-x"
    box.files["/var/lib/omni/phase4.json"] = golden("agent-phase4.json" if agent else "phase4.json")
    return box


def _toml_value(value: Any) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(str(k))} = {_toml_value(v)}" for k, v in value.items()) + " }"
    return json.dumps(value)  # strings, numbers, booleans and lists of them are valid TOML as JSON


def hosts_toml(hosts: dict[str, tuple[dict[str, Any], list[str]]]) -> str:
    """An ``OMNI_HOSTS_FILE`` for ``inventory.py``: the real inventory path, with scripted facts."""
    lines: list[str] = []
    for name, (data, groups) in hosts.items():
        lines.append(f"[hosts.{json.dumps(name)}]")
        lines.append(f"groups = {json.dumps(groups)}")
        lines.append("fake_delay = 0")
        lines.append("fake_delay_jitter = 0")
        for key, value in data.items():
            lines.append(f"{json.dumps(key)} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


K3S_CONTAINERD_NVIDIA = """[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.'nvidia']
  runtime_type = "io.containerd.runc.v2"

[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.'nvidia'.options]
  BinaryName = "/usr/bin/nvidia-container-runtime"
  SystemdCgroup = true
"""


def running(box: Box, nodes: tuple[str, ...] = ("box",)) -> Box:
    """A converged server whose services answer: docker info, K3s's containerd config, kubectl."""
    box.probes["docker info --format"] = json.dumps({"io.containerd.runc.v2": {"path": "runc"},
                                                     "nvidia": {"path": "nvidia-container-runtime"},
                                                     "runc": {"path": "runc"}})
    box.files["/var/lib/rancher/k3s/agent/etc/containerd/config.toml"] = K3S_CONTAINERD_NVIDIA
    box.probes["get nodes --no-headers"] = [f"{n}   Ready    control-plane,master   3d   {K3S_VERSION}"
                                            for n in nodes]
    box.probes["get runtimeclass nvidia"] = "nvidia"
    box.probes["allocatable.nvidia"] = ["1" for _ in nodes]  # one GPU per node, advertised
    box.probes["nvidia-smi -L"] = [f"GPU {i}: NVIDIA H200 (UUID: GPU-{i})" for i, _ in enumerate(nodes)]
    return box
