"""Scripted ``@fake`` hosts for the phase 5 plan tests: what each command pyinfra runs would print.

A box is the ``fake_responses`` of pyinfra's ``@fake`` connector (first substring match wins;
anything unmatched prints nothing, which every fact reads as "absent"). Formats follow the real
tools: os-release and meminfo are the H200 machine's captures, lscpu/nvidia-smi the real layouts.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from deploys.stack import render
from deploys.stack.config import StackConfig, stack_config
from deploys.stack.evaluation import EVALS
from deploys.stack.marker import MARKER, marker_document
from deploys.stack.observability import SERVICES as OBSERVABILITY_SERVICES
from deploys.stack.observability import password_file
from omni.hostdata import host_data

ROOT = Path(__file__).resolve().parents[3]
HW = ROOT / "tests" / "fixtures" / "hw"


def capture(name: str) -> list[str]:
    return [line for line in (HW / name).read_text().splitlines() if line and not line.startswith("#")]


OS_RELEASE = [line for line in capture("h200-os-release.txt") if "=" in line]
GIB_KB = 1024 * 1024


def lscpu(vendor: str, family: int, model: str) -> list[str]:
    fields = [("Architecture:", "x86_64"), ("Vendor ID:", vendor), ("Model name:", model),
              ("CPU family:", str(family)), ("Model:", "8"), ("Thread(s) per core:", "2"),
              ("Core(s) per socket:", "96"), ("Socket(s):", "1"), ("CPU(s):", "192"),
              ("Flags:", "fpu sse avx2 avx512f avx512bw avx512vl")]
    return ["##omni:lscpu", *json.dumps({"lscpu": [{"field": f, "data": d} for f, d in fields]},
                                        indent=2).splitlines()]


def nvidia_smi(memory_mib: list[int]) -> list[str]:
    header = ("index, name, uuid, pci.bus_id, driver_version, memory.total [MiB], memory.used [MiB], "
              "memory.free [MiB], pcie.link.gen.current, pcie.link.gen.max, pcie.link.width.current, "
              "pcie.link.width.max")
    rows = [f"{i}, NVIDIA GPU {i}, GPU-{i:08d}, 00000000:0{i + 1}:00.0, 580.95.05, {m} MiB, 0 MiB, {m} MiB, "
            "5, 5, 16, 16" for i, m in enumerate(memory_mib)]
    return ["##omni:nvidia-smi", header, *rows, "##omni:sysfs"]


def sha1(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def stat_line(path: str, mode: str, size: int = 100, user: str = "root") -> str:
    return (f"user={user} group=root mode={mode} atime=1764403200 mtime=1764403200 ctime=1764403200 "
            f"size={size} '{path}'")


class Box:
    """One host. ``stack``: the host data ``stack`` table; the rest are the host's current facts."""

    def __init__(self, stack: dict[str, Any] | None = None, ram_gib: int = 377, docker: bool = True,
                 gpus_mib: tuple[int, ...] = (97887, 32607), zen5: bool = True) -> None:
        self.overrides: dict[str, Any] = {"stack": stack or {}}
        self.ram_kb = ram_gib * GIB_KB
        self.docker = docker
        self.gpus_mib = list(gpus_mib)
        self.cpu = (lscpu("AuthenticAMD", 26, "AMD Ryzen Threadripper PRO 9995WX 96-Cores") if zen5
                    else lscpu("GenuineIntel", 6, "Intel(R) Xeon(R) Processor"))
        self.model_sizes: dict[str, int] = {}
        self.files: dict[str, tuple[str, str]] = {}  # path -> (content, mode string)
        self.dirs: dict[str, str] = {}
        self.projects: dict[str, dict[str, str]] = {}  # compose project -> service states
        self.network = False
        self.units: dict[str, bool] = {}

    @property
    def config(self) -> StackConfig:
        return stack_config(host_data(env={}, overrides=self.overrides))

    def data(self) -> dict[str, Any]:
        return {**host_data(env={}, overrides=self.overrides), "fake_responses": self.responses()}

    def responses(self) -> dict[str, Any]:
        r: dict[str, Any] = {"ls -pdL *-release": ["/etc/os-release", *OS_RELEASE, "---"]}
        r["docker compose version --short"] = "2.39.4" if self.docker else ""
        r["/proc/meminfo"] = [f"MemTotal:       {self.ram_kb} kB",
                              f"MemAvailable:   {self.ram_kb - GIB_KB} kB"]
        r["nvidia-smi --query-gpu"] = nvidia_smi(self.gpus_mib)
        r["lscpu -J"] = self.cpu
        for path, size in self.model_sizes.items():  # facts.gguf's answer: all shards summed
            r[f"re:present_shards\\(path\\)[\\s\\S]*{re.escape(path)}"] = json.dumps(
                {"exists": True, "files": [path], "missing": [], "total_bytes": size,
                 "architecture": "deepseek2", "error": None})
        for project, states in self.projects.items():
            r[f"docker compose -p {project} ps -a"] = [f"{s} {state}" for s, state in states.items()]
        if self.network:
            r["docker network inspect"] = self.config.network
        for unit, up in self.units.items():
            r[f"--property SubState {unit}"] = [f"Id={unit}", f"SubState={'running' if up else 'dead'}"]
            r[f"--property UnitFileState {unit}"] = [f"Id={unit}", f"UnitFileState={'enabled' if up else ''}"]
        for path, (content, mode) in self.files.items():
            r[f"test -e {path} && ( sha1sum"] = f"{sha1(content)}  {path}"
            user = "472" if path.endswith("grafana-admin-password") else "root"
            r[f"(test -e {path} ||"] = stat_line(path, mode, len(content), user)
        for path, mode in self.dirs.items():
            r[f"(test -e {path} ||"] = stat_line(path, mode, 4096)
        return r


def converged(box: Box) -> Box:
    """Everything phase 5 uploads and starts is already in place, exactly as it would render it."""
    config = box.config
    cpu = {"available": True, "vendor": "AuthenticAMD" if "AMD" in json.dumps(box.cpu) else "GenuineIntel",
           "family": 26 if "AMD" in json.dumps(box.cpu) else 6}
    projects: dict[str, dict[str, str]] = {
        "inference": render.render_inference(config),
        "memgraph": render.render_memgraph(config, cpu),
    }
    services = {"inference": [m.service for m in config.inference.enabled], "memgraph": ["memgraph"],
                "observability": OBSERVABILITY_SERVICES}
    for key in ("agents", "autoglm"):
        if getattr(config, key).enabled:
            projects[key] = render.render_service(config, key)
            services[key] = [key]
    projects["observability"] = render.render_observability(config)
    deployed = list(projects)
    phoenix = render.render_phoenix(config, deployed)
    units = ("omni-phoenix.path", "omni-phoenix.service")
    projects["phoenix"] = {k: v for k, v in phoenix.items() if k not in units}
    golden = sorted((EVALS / "golden").glob("*.jsonl"))
    projects["eval"] = {f"golden/{p.name}": p.read_text() for p in golden}
    for concern, files in projects.items():
        folder = config.project_dir(concern)
        box.dirs[folder] = "drwxr-xr-x"
        for rel, text in files.items():
            box.files[f"{folder}/{rel}"] = (text, "-rwxr-xr-x" if rel.endswith(".sh") else "-rw-r--r--")
    for unit in ("omni-phoenix.path", "omni-phoenix.service"):
        box.files[f"/etc/systemd/system/{unit}"] = (phoenix[unit], "-rw-r--r--")
    box.units["omni-phoenix.path"] = True
    box.dirs[config.phoenix.state_dir] = "drwxrwxrwt"
    for folder in (config.memgraph.data_dir, config.memgraph.log_dir):
        box.dirs[folder] = "drwxr-x---"
    secret = password_file(config)
    box.dirs[secret.rsplit("/", 1)[0]] = "drwx------"
    box.files[secret] = ("x" * 32, "-r--------")
    document = json.dumps(marker_document(config, deployed), indent=2, sort_keys=True) + "\n"
    box.files[MARKER] = (document, "-rw-r--r--")
    for path in list(box.files):
        box.dirs.setdefault(path.rsplit("/", 1)[0], "drwxr-xr-x")
    box.projects = {f"omni-{c}": dict.fromkeys(s, "running") for c, s in services.items()}
    box.network = True
    return box
