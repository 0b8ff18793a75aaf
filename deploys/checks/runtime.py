"""Container-runtime rows of the Verification Matrix: Docker, the NVIDIA toolkit and K3s (phase 4).

Each row compares the host with the pins in ``deploys/runtime/settings.py`` (as overridden by the
host's data). While ``/var/lib/omni/phase4.json`` is absent a failing row is UNKNOWN: phase 4 has
not run there yet, which is not the same as broken.
"""

from __future__ import annotations

from pyinfra.facts.deb import DebPackages

from deploys.checks import Row, Weight
from deploys.checks.context import CheckContext, judge, unknown
from deploys.runtime.k3s import AGENTS_GROUP, KUBECTL
from deploys.runtime.settings import load
from facts.runtime import K3sVersions

ORDER = 40
PHASE = "phase4"
K3S_CONTAINERD = "/var/lib/rancher/k3s/agent/etc/containerd/config.toml"


def _gate(ctx: CheckContext, ok: bool, name: str, target: str, measured: str, weight: Weight,
          reason: str = "") -> Row:
    if not ok and ctx.marker(PHASE) is None:
        why = ("phase 4 not applied yet (/var/lib/omni/phase4.json absent): "
               "pyinfra inventory.py deploys/phase4.py")
        return unknown(name, target, weight, why, measured or "-")
    return judge(name, target, measured, ok, weight, reason)


def _package_row(ctx: CheckContext, installed: dict, name: str, package: str, want: str | None) -> Row:
    have = sorted(installed.get(package, ()))
    ok = bool(have) and (want is None or want in have)
    return _gate(ctx, ok, name, f"{package} {want or 'installed'}", ", ".join(have) or "not installed",
                 Weight.HIGH, "" if ok else "rerun deploys/phase4.py to return to the pin")


def rows(ctx: CheckContext) -> list[Row]:
    docker, toolkit, k3s = load("docker", ctx.data), load("nvidia_toolkit", ctx.data), load("k3s", ctx.data)
    installed = ctx.fact(DebPackages) or {}
    out: list[Row] = []
    if docker.enabled:
        out.append(_package_row(ctx, installed, "Docker CE", "docker-ce", docker.packages.get("docker-ce")))
        probe = ctx.run("docker info --format '{{json .Runtimes}}'")
        ok = probe.ok and '"nvidia"' in probe.stdout
        measured = "nvidia registered" if ok else (probe.stderr.strip()[-120:] or "no nvidia runtime")
        out.append(_gate(ctx, ok, "Docker nvidia runtime", "nvidia in docker info", measured, Weight.HIGH))
    out.append(_package_row(ctx, installed, "NVIDIA Container Toolkit", "nvidia-container-toolkit",
                            toolkit.packages.get("nvidia-container-toolkit")))

    versions = ctx.fact(K3sVersions) or {}
    binary, running = versions.get("binary"), versions.get("running")
    ok = binary == k3s.version and running in (None, k3s.version)
    out.append(_gate(ctx, ok, "K3s release", k3s.version, f"binary {binary or '-'}, running {running or '-'}",
                     Weight.HIGH, "" if ok else "rerun deploys/phase4.py (upgrade path)"))
    config = ctx.read(K3S_CONTAINERD) or ""
    ok = "nvidia-container-runtime" in config
    out.append(_gate(ctx, ok, "K3s containerd nvidia runtime", "found by K3s at start",
                     "present" if ok else "absent", Weight.HIGH,
                     "" if ok else "install the toolkit, then restart k3s (it detects the runtime at start)"))
    if AGENTS_GROUP in ctx.host.groups:
        return out
    nodes = ctx.run(f"{KUBECTL} get nodes --no-headers")
    lines = nodes.lines if nodes.ok else []
    ready = [line.split()[0] for line in lines if len(line.split()) > 1 and line.split()[1] == "Ready"]
    ok = bool(lines) and len(ready) == len(lines)
    measured = f"{len(ready)}/{len(lines)} Ready" if lines else (nodes.stderr.strip()[-120:] or "no nodes")
    out.append(_gate(ctx, ok, "K3s nodes Ready", "all Ready", measured, Weight.CRITICAL))
    handler = ctx.run(f"{KUBECTL} get runtimeclass nvidia -o jsonpath='{{.handler}}'")
    ok = handler.ok and handler.stdout.strip() == "nvidia"
    out.append(_gate(ctx, ok, "RuntimeClass nvidia", "handler nvidia", handler.stdout.strip() or "absent",
                     Weight.CRITICAL))
    if k3s.device_plugin:
        out.append(schedulable_gpus_row(ctx))
    return out


def schedulable_gpus_row(ctx: CheckContext) -> Row:
    """Pods can request every GPU: the nodes' allocatable nvidia.com/gpu equals nvidia-smi's count."""
    alloc = ctx.run(f"{KUBECTL} get nodes -o jsonpath='{{range .items[*]}}"
                    "{.status.allocatable.nvidia\\.com/gpu}{\"\\n\"}{end}'")
    gpus = ctx.run("nvidia-smi -L")
    want = sum(1 for line in gpus.lines if line.startswith("GPU "))
    got = sum(int(line) for line in alloc.lines if line.strip().isdigit()) if alloc.ok else None
    measured = f"{got if got is not None else '?'} allocatable, nvidia-smi lists {want}"
    ok = got is not None and want > 0 and got == want
    why = ("the NVIDIA device plugin is not advertising every GPU: "
           "kubectl -n kube-system logs ds/nvidia-device-plugin-daemonset")
    return _gate(ctx, ok, "K3s schedulable GPUs", "allocatable nvidia.com/gpu = GPUs", measured,
                 Weight.HIGH, "" if ok else why)
