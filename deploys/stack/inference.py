"""5.1 inference servers: the memory budget first, then one compose service per enabled model."""

from __future__ import annotations

from pyinfra import host, logger
from pyinfra.api import deploy
from pyinfra.api.exceptions import DeployError

from facts import gguf as gguf_probe
from facts.stack import MemInfo

from .budget import GIB, Budget, BudgetError, HostMemory, check_budget
from .compose import host_stack, local_url_host, start, upload, wait_until
from .config import StackConfig
from .render import RenderError, render_inference

HEALTH_TIMEOUT_S = 3600  # a 281 GB GGUF read from NVMe into page cache, then the first warm-up


def host_memory(config: StackConfig) -> HostMemory:
    """RAM and GPU memory from the host's facts; inventory values where a fact is unavailable."""
    from facts.hardware import NvidiaGpus

    ram = host.get_fact(MemInfo).get("MemTotal")
    gpus = host.get_fact(NvidiaGpus) or {}
    gpu_mib = [g.get("memory_total_mib") for g in gpus.get("gpus") or []] if gpus.get("available") else []
    sources = ["RAM from /proc/meminfo" if ram else "RAM from inventory",
               "GPUs from nvidia-smi" if gpu_mib and all(gpu_mib) else "GPUs from inventory"]
    if not ram:
        ram = int(host.data.get("memory", {}).get("total_gib", 0) * GIB)
    if not gpu_mib or not all(gpu_mib):
        gpu_mib = [g.get("memory_mib", 0) for g in host.data.get("gpus") or []]
    return HostMemory(ram, tuple(int(m) * 1024**2 for m in gpu_mib), ", ".join(sources))


def model_file_sizes(config: StackConfig) -> dict[str, int | None]:
    """Each enabled model's size on the host, all shards of a split GGUF summed (None: not there)."""
    sizes: dict[str, int | None] = {}
    for model in config.inference.enabled:
        probe = gguf_probe.parse(host.get_fact(gguf_probe.GgufProbe, path=model.path))
        complete = probe.get("exists") and not probe.get("missing")
        sizes[model.path] = int(probe["total_bytes"]) if complete and probe.get("total_bytes") else None
    return sizes


def budget_or_refuse(config: StackConfig) -> Budget:
    """Refuse the whole phase, before any change, when the enabled models cannot fit."""
    try:
        budget = check_budget(config, host_memory(config), model_file_sizes(config))
    except BudgetError as error:
        raise DeployError(f"{host.name}: {error}") from None
    logger.info(f"{host.name}: memory budget OK: {budget.summary()}")
    return budget


@deploy("Inference servers")
def inference(config: StackConfig | None = None) -> list[str]:
    """Upload and start the enabled models; returns the compose services it manages."""
    config = config or host_stack()
    try:
        rendered = render_inference(config)
    except RenderError as error:
        raise DeployError(f"{host.name}: {error}") from None
    changes = upload(config, "inference", rendered)
    models = config.inference.enabled
    profiles = ("ktransformers",) if any(m.engine == "ktransformers" for m in models) else ()
    started = start(config, "inference", [m.service for m in models], changes,
                    build=any(name.startswith("Dockerfile") for name in rendered), profiles=profiles)
    url_host = local_url_host(config.bind)
    probes = " && ".join(f"curl -fsS -o /dev/null http://{url_host}:{m.port}/v1/models" for m in models)
    wait_until(started, "the inference servers (/v1/models)", probes, HEALTH_TIMEOUT_S)
    return [m.service for m in models]
