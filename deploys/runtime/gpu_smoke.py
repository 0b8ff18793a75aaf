"""The end of phase 4: prove GPUs reach containers through Docker and through K3s, then leave a marker.

These are operations (not facts) because they need the freshly restarted services: they run after
everything else, only when the run executes (``--dry`` lists them without running them), and they
change nothing on the host except a short-lived pod. The marker ``/var/lib/omni/phase4.json`` tells
``deploys/verify.py`` that phase 4 completed on this host; it is written only after the checks pass.
"""

from __future__ import annotations

import io
import json
import shlex

from pyinfra.api.operation import OperationMeta
from pyinfra.operations import files, server

from deploys.runtime.k3s import KUBECTL, role
from deploys.runtime.settings import (
    DockerSettings,
    K3sSettings,
    Phase4Settings,
    ToolkitSettings,
    load,
    render,
)

POD = "omni-gpu-smoke"
MARKER = "/var/lib/omni/phase4.json"
_HOST_GPUS = "want=$(nvidia-smi -L | grep -c '^GPU ')"


def docker_gpus_command(image: str) -> str:
    img = shlex.quote(image)
    return (f"{_HOST_GPUS}; got=$(docker run --rm --gpus all {img} nvidia-smi -L | grep -c '^GPU '); "
            f"[ \"$want\" -gt 0 ] && [ \"$got\" = \"$want\" ] || "
            f"{{ echo \"docker run --gpus all {image} sees $got of $want GPUs: check the nvidia runtime "
            "in /etc/docker/daemon.json and restart docker\" >&2; exit 1; }")


GPUS_PLACEHOLDER = "__OMNI_GPUS__"


def smoke_pod(image: str, device_plugin: bool) -> str:
    """The smoke pod: it asks the device plugin for every GPU, or (without one) sees all directly."""
    return render("gpu-smoke-pod.yaml.j2", name=POD, image=image,
                  gpus=GPUS_PLACEHOLDER if device_plugin else None)


def gpu_pod_command(image: str, timeout_s: int, device_plugin: bool = True) -> str:
    manifest = shlex.quote(smoke_pod(image, device_plugin))
    k = KUBECTL
    return (
        f"{_HOST_GPUS}; {k} delete pod {POD} --ignore-not-found --wait=true >/dev/null; "
        f"printf '%s' {manifest} | sed \"s/{GPUS_PLACEHOLDER}/$want/\" | {k} apply -f - >/dev/null; phase=; "
        f"for i in $(seq {max(1, timeout_s // 2)}); do "
        f"phase=$({k} get pod {POD} -o jsonpath='{{.status.phase}}'); "
        "case \"$phase\" in Succeeded|Failed) break;; esac; sleep 2; done; "
        f"got=$({k} logs {POD} 2>/dev/null | grep -c '^GPU '); {k} delete pod {POD} --wait=false >/dev/null; "
        "[ \"$phase\" = Succeeded ] && [ \"$got\" = \"$want\" ] || "
        f"{{ echo \"pod with runtimeClassName nvidia: phase ${{phase:-none}}, sees $got of $want GPUs after "
        f"{timeout_s} s: check kubectl describe pod and that k3s found nvidia-container-runtime\" >&2; "
        "exit 1; }"
    )


def device_plugin_command(timeout_s: int) -> str:
    """Wait until the nodes' allocatable nvidia.com/gpu adds up to the GPUs nvidia-smi lists."""
    k = KUBECTL
    count = (f"{k} get nodes -o jsonpath='{{range .items[*]}}{{.status.allocatable.nvidia\\.com/gpu}}"
             "{\"\\n\"}{end}' | awk '{s+=$1} END {print s+0}'")
    return (f"{_HOST_GPUS}; got=0; for i in $(seq {max(1, timeout_s // 2)}); do got=$({count}); "
            "[ \"$got\" = \"$want\" ] && exit 0; sleep 2; done; "
            "echo \"the nodes advertise $got nvidia.com/gpu, nvidia-smi lists $want: kubectl -n kube-system "
            "logs ds/nvidia-device-plugin-daemonset\" >&2; exit 1")


def marker_text() -> str:
    """Deterministic (no timestamps), so rewriting it on a converged host changes nothing."""
    docker: DockerSettings = load("docker")
    toolkit: ToolkitSettings = load("nvidia_toolkit")
    k3s: K3sSettings = load("k3s")
    marker = {"phase": 4, "role": role(), "k3s": k3s.version, "nvidia_toolkit": toolkit.packages,
              "docker": docker.packages if docker.enabled else None}
    return json.dumps(marker, indent=2, sort_keys=True) + "\n"


def verify_phase4() -> list[OperationMeta]:
    cfg: Phase4Settings = load("phase4")
    checks: list[OperationMeta] = []
    if cfg.verify and role() == "server":
        if load("docker").enabled:
            checks.append(server.shell(name="Verify Docker containers see every GPU",
                                       commands=[docker_gpus_command(cfg.cuda_image)]))
        ready = f"{KUBECTL} wait --for=condition=Ready node --all --timeout=180s"
        checks.append(server.shell(name="Verify every K3s node is Ready", commands=[ready]))
        checks.append(server.shell(
            name="Verify the nvidia RuntimeClass exists",
            commands=[f"[ \"$({KUBECTL} get runtimeclass nvidia -o jsonpath='{{.handler}}')\" = nvidia ] || "
                      "{ echo 'RuntimeClass nvidia missing: see docs/phase4.md (RuntimeClass)' >&2; "
                      "exit 1; }"]))
        plugin = load("k3s").device_plugin
        if plugin:
            checks.append(server.shell(name="Verify the NVIDIA device plugin advertises every GPU",
                                       commands=[device_plugin_command(cfg.pod_timeout_s)]))
        checks.append(server.shell(name="Verify a runtimeClassName nvidia pod runs nvidia-smi",
                                   commands=[gpu_pod_command(cfg.cuda_image, cfg.pod_timeout_s, plugin)]))
    files.directory(name="Create /var/lib/omni", path="/var/lib/omni", mode="0755")
    files.put(name=f"Record phase 4 as complete in {MARKER}", src=io.StringIO(marker_text()), dest=MARKER,
              mode="0644")
    return checks
