"""The stack's inventory: our defaults, merged with ``host.data``, validated once.

Why pydantic: a typo in host data (an unknown key, a port given as text) must stop the run with
one line naming the key before anything is uploaded. Every key is documented in docs/phase5.md.

Host data read: ``stack`` (a table shaped like :data:`DEFAULTS`; only the keys you change), and
from the reference box ``model``, ``numa_policy``, ``inference``, ``memory_headroom_gib`` — they
seed the default model list so the phase works with nothing but the base inventory.
"""

from __future__ import annotations

import copy
import ipaddress
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from omni.errors import one_line
from omni.ik_llama import SDIST_SHA256, SDIST_VERSION, check_argv
from omni.llama_flags import ArgError, parse_overrides
from omni.numa import parse_numa
from omni.settings import deep_merge

#: KV-cache bytes per token of context at f16, for architectures whose GGUF we know without
#: reading it. deepseek2 uses MLA: layers x (kv_lora_rank 512 + rope dims 64) x 2 bytes
#: (the same formula KTransformers uses to size its cache: cache_lens*2*576*61).
KNOWN_KV_BYTES_PER_TOKEN = {"deepseek2": 61 * 576 * 2}

DEFAULTS: dict[str, Any] = {
    "root": "/opt/omni",  # one folder per compose project: /opt/omni/<concern>/compose.yaml
    "network": "omni",  # external docker network the projects share (name resolution between them)
    "bind": "127.0.0.1",  # host address every published port binds to, unless a service overrides it
    "inference": {
        # a pinned official image instead of building, e.g. ghcr.io/ggml-org/llama.cpp:server-cuda12-b9603
        "image": None,
        "build": {"llama_cpp_ref": "b9603", "cuda_version": "12.8.1", "cuda_architectures": "120a"},
        "ktransformers": {"version": "v0.4.1", "torch_version": "2.7.1", "cuda_tag": "cu128"},
        # engine "ik_llama": the fork's source from this sdist, the one scripts/prepare_ik_llama_cpp.sh pins
        "ik_llama": {"version": SDIST_VERSION, "sdist_sha256": SDIST_SHA256},
        "headroom_gib": None,  # None: the reference box's memory_headroom_gib (80)
        "gpu_reserve_mib": 1024,  # per GPU: CUDA context and driver
        "models": None,  # None: one model, "architect", from the reference box's model/inference keys
    },
    # MAGE: Memgraph plus its graph-algorithm library (runbook 5.3); data and logs on /nvme (bind mounts)
    "memgraph": {"enabled": True, "image": "memgraph/memgraph-mage:3.8.1", "port": 7687,
                 "glibc_tunables": "auto", "bind": None,
                 "data_dir": "/nvme/memgraph/data", "log_dir": "/nvme/memgraph/log"},
    "agents": {"enabled": False, "image": None, "build": None, "port": 8080, "model": None,
               "env": {}, "bind": None},
    "autoglm": {"enabled": False, "image": None, "build": None, "port": None, "model": None,
                "env": {}, "bind": None},
    "phoenix": {"enabled": True, "state_dir": "/var/lib/omni/phoenix", "grace_s": 10, "cooldown_s": 300,
                "max_per_hour": 3, "timeout_s": 600, "projects": None},
    "observability": {
        "enabled": True,
        "prometheus_image": "prom/prometheus:v3.5.0",
        "node_exporter_image": "prom/node-exporter:v1.9.1",
        "dcgm_exporter_image": "nvcr.io/nvidia/k8s/dcgm-exporter:4.4.2-4.7.1-ubuntu22.04",
        "grafana_image": "grafana/grafana:12.1.0",
        "prometheus_port": 9090,
        "grafana_port": 3000,
        "scrape_interval": "15s",
        "retention": "30d",
        "bind": None,
    },
    "eval": {"enabled": True, "golden_dir": "golden", "model": None},
}


class StackConfigError(ValueError):
    """A bad ``stack`` value in host data; the message is one line naming the key and the fix."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def numa_launch(policy: str) -> tuple[list[str], list[str]]:
    """Split a NUMA policy (``omni.numa``'s vocabulary) into (numactl prefix argv, engine flags)."""
    parsed = parse_numa(policy)
    return parsed.prefix, list(parsed.engine_flags)


class ModelSpec(_Strict):
    """One inference server: a GGUF, its placement and its port (only enabled ones run)."""

    name: str = Field(pattern=r"^[a-z][a-z0-9-]{0,30}$")
    path: str = Field(pattern=r"^/")
    port: int = Field(ge=1, le=65535)
    enabled: bool = True
    engine: Literal["llama-server", "ik_llama", "ktransformers"] = "llama-server"
    alias: str | None = None  # the name /v1/models reports; default: name
    size_bytes: int | None = Field(None, ge=1)  # used when the file is not on the host yet
    architecture: str | None = None
    # placement, the bench spec's words: -ngl, --tensor-split, -ot, threads, NUMA policy
    ngl: int | None = Field(None, ge=0)
    tensor_split: str | None = Field(None, pattern=r"^\d+(\.\d+)?(,\d+(\.\d+)?)*$")
    override_tensor: list[str] = []
    threads: int | None = Field(None, ge=1)
    threads_batch: int | None = Field(None, ge=1)
    numa: str = "none"
    ctx_size: int = Field(8192, ge=256)
    parallel: int = Field(1, ge=1)
    cache_type_k: str = "f16"
    cache_type_v: str = "f16"
    mlock: bool = False
    gpus: str = Field("all", pattern=r"^(all|none|\d+(,\d+)*)$")
    extra_args: list[str] = []
    env: dict[str, str] = {}
    # memory budget inputs
    kv_bytes_per_token: int | None = Field(None, ge=1)  # at f16; see `python -m deploys.stack.budget`
    gpu_weights_gib: float = Field(0.0, ge=0)  # of the weights, how much this placement puts on GPUs
    overhead_gib: float = Field(2.0, ge=0)  # compute buffers and runtime
    # ktransformers only (legacy ktransformers.server.main flags)
    kt_model_path: str | None = None  # folder with the HF config/tokenizer
    kt_optimize_config_path: str | None = None
    kt_cpu_infer: int | None = Field(None, ge=1)
    kt_cache_lens: int | None = Field(None, ge=256)

    @field_validator("numa")
    @classmethod
    def _numa(cls, value: str) -> str:
        numa_launch(value)
        return value

    @field_validator("override_tensor")
    @classmethod
    def _overrides(cls, value: list[str]) -> list[str]:
        for pattern in value:  # llama.cpp's own PATTERN=BUFFER[,...] rule (omni.llama_flags)
            parse_overrides(pattern, "-ot")
        return value

    @model_validator(mode="after")
    def _engine_fields(self) -> ModelSpec:
        if self.engine == "ktransformers" and not self.kt_model_path:
            raise ValueError("engine ktransformers needs kt_model_path (the HF config folder)")
        if self.engine == "ik_llama":
            try:
                check_argv(self.extra_args)
            except ArgError as err:
                raise ValueError(f"extra_args for engine ik_llama: {err}") from None
        return self

    @property
    def served_name(self) -> str:
        return self.alias or self.name

    @property
    def service(self) -> str:
        return f"llm-{self.name}"


def _ip_address(value: str) -> str:
    """Docker publishes ports on an IP address, never a name; checked here, not by a failing compose up."""
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address: use 127.0.0.1 (loopback, the default), "
                         "or this host's address to publish on the network") from None
    return value


BindAddress = Annotated[str, AfterValidator(_ip_address)]


class BuildSpec(_Strict):
    llama_cpp_ref: str = Field(pattern=r"^[A-Za-z0-9._/-]+$")
    cuda_version: str = Field(pattern=r"^\d+\.\d+\.\d+$")
    cuda_architectures: str = Field(pattern=r"^[0-9a-z;]+$")


class KTransformersSpec(_Strict):
    version: str = Field(pattern=r"^v?[0-9][0-9A-Za-z.+-]*$")
    torch_version: str = Field(pattern=r"^[0-9][0-9A-Za-z.+-]*$")
    cuda_tag: str = Field(pattern=r"^cu\d+$")


class IkLlamaSpec(_Strict):
    version: str = Field(pattern=r"^[0-9][0-9A-Za-z.+-]*$")  # of the ik-llama-cpp-python sdist
    sdist_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class InferenceSpec(_Strict):
    image: str | None = None
    build: BuildSpec
    ktransformers: KTransformersSpec
    ik_llama: IkLlamaSpec
    headroom_gib: float = Field(ge=0)
    gpu_reserve_mib: int = Field(ge=0)
    models: list[ModelSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> InferenceSpec:
        for attr in ("name", "port"):
            seen = [getattr(m, attr) for m in self.models]
            dupes = sorted({str(v) for v in seen if seen.count(v) > 1})
            if dupes:
                raise ValueError(f"models share a {attr}: {', '.join(dupes)}; give each its own")
        return self

    @property
    def enabled(self) -> list[ModelSpec]:
        return [m for m in self.models if m.enabled]


class ServiceSpec(_Strict):
    """An image-or-build service of ours (agents, AutoGLM): off until the owner names an image."""

    enabled: bool
    image: str | None
    build: str | None  # a build context folder on the host
    port: int | None = Field(ge=1, le=65535)
    model: str | None  # which inference model to point at; default: the first enabled
    env: dict[str, str]
    bind: BindAddress | None

    @model_validator(mode="after")
    def _source(self) -> ServiceSpec:
        if self.enabled and not (self.image or self.build):
            raise ValueError("enabled but neither image nor build is set: name an image or a build folder")
        return self


class MemgraphSpec(_Strict):
    enabled: bool
    image: str
    port: int = Field(ge=1, le=65535)
    glibc_tunables: Literal["auto", "on", "off"]
    bind: BindAddress | None
    data_dir: str = Field(pattern=r"^/")
    log_dir: str = Field(pattern=r"^/")


class PhoenixSpec(_Strict):
    enabled: bool
    state_dir: str = Field(pattern=r"^/")
    grace_s: int = Field(ge=0, le=3600)
    cooldown_s: int = Field(ge=0)
    max_per_hour: int = Field(ge=1, le=60)
    timeout_s: int = Field(ge=10)
    projects: list[str] | None


class ObservabilitySpec(_Strict):
    enabled: bool
    prometheus_image: str
    node_exporter_image: str
    dcgm_exporter_image: str
    grafana_image: str
    prometheus_port: int = Field(ge=1, le=65535)
    grafana_port: int = Field(ge=1, le=65535)
    scrape_interval: str = Field(pattern=r"^\d+[smh]$")
    retention: str = Field(pattern=r"^\d+[dwy]$")
    bind: BindAddress | None


class EvalSpec(_Strict):
    enabled: bool
    golden_dir: str
    model: str | None


class StackConfig(_Strict):
    root: str = Field(pattern=r"^/(opt|nvme)(/[A-Za-z0-9._-]+)*$")
    network: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    bind: BindAddress
    inference: InferenceSpec
    memgraph: MemgraphSpec
    agents: ServiceSpec
    autoglm: ServiceSpec
    phoenix: PhoenixSpec
    observability: ObservabilitySpec
    eval: EvalSpec

    @model_validator(mode="after")
    def _targets(self) -> StackConfig:
        names = {m.name for m in self.inference.enabled}
        for key in ("agents", "autoglm", "eval"):
            spec = getattr(self, key)
            if spec.enabled and spec.model and spec.model not in names:
                enabled = ", ".join(sorted(names))
                raise ValueError(f"{key}.model {spec.model!r} is not an enabled model ({enabled})")
        return self

    def project_dir(self, concern: str) -> str:
        return f"{self.root}/{concern}"

    def target_model(self, key: str) -> ModelSpec | None:
        """The model a client service talks to: its ``model`` key, else the first enabled one."""
        wanted = getattr(self, key).model
        enabled = self.inference.enabled
        return next((m for m in enabled if m.name == wanted), None) if wanted else (enabled or [None])[0]

    def bind_for(self, key: str) -> str:
        return getattr(self, key).bind or self.bind


def _default_models(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    model = data.get("model") or {}
    inference = data.get("inference") or {}
    arch = model.get("architecture")
    return [{
        "name": "architect",
        "path": model.get("path", "/nvme/models/model.gguf"),
        "size_bytes": model.get("size_bytes"),
        "architecture": arch,
        "alias": re.sub(r"[^A-Za-z0-9._-]+", "-", model["name"]) if model.get("name") else None,
        "port": inference.get("port", 8000),
        "engine": inference.get("engine", "llama-server"),
        "numa": data.get("numa_policy", "none"),
        "kv_bytes_per_token": KNOWN_KV_BYTES_PER_TOKEN.get(arch or ""),
    }]


def stack_config(data: Mapping[str, Any]) -> StackConfig:
    """Validate ``host.data`` (any mapping with ``.get``) into a :class:`StackConfig`."""
    stack = data.get("stack") or {}
    if not isinstance(stack, Mapping):
        raise StackConfigError(f"stack: is a {type(stack).__name__}, not a table: write it as [stack] "
                               "in host data (docs/phase5.md)")
    merged = deep_merge(copy.deepcopy(DEFAULTS), stack)
    inference = merged["inference"]
    if inference["headroom_gib"] is None:
        inference["headroom_gib"] = data.get("memory_headroom_gib", 80)
    if inference["models"] is None:
        inference["models"] = _default_models(data)
    try:
        return StackConfig.model_validate(merged)
    except ValidationError as exc:
        fix = "fix it in host data (docs/phase5.md)"
        raise StackConfigError(one_line(exc, root=["stack"], fix=fix)) from None
