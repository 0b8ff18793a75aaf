"""Inventories the phase 5 tests render: the reference box and a full line-up, with their CPU facts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deploys.stack.config import StackConfig, stack_config
from omni.hostdata import host_data

GOLDEN = Path(__file__).parent / "golden"

#: facts.hardware.CpuInfo shapes (the keys the fact returns) for the two CPU families that matter.
ZEN5_CPU = {"available": True, "source": "lscpu", "reason": None, "vendor": "AuthenticAMD", "family": 26,
            "model": "AMD Ryzen Threadripper PRO 9995WX 96-Cores", "cores": 96, "avx512": True}
INTEL_CPU = {"available": True, "source": "lscpu", "reason": None, "vendor": "GenuineIntel", "family": 6,
             "model": "Intel(R) Xeon(R) Processor", "cores": 16, "avx512": True}

#: A full line-up: the runbook's architect (hybrid placement), an executor, a disabled coder,
#: a KTransformers model, agents and AutoGLM on, Grafana/Prometheus opened on another address.
FULL_STACK: dict[str, Any] = {
    "inference": {"models": [
        {"name": "architect", "path": "/nvme/models/DeepSeek-R1/DeepSeek-R1-UD-Q2_K_XL-00001-of-00006.gguf",
         "port": 8000, "alias": "deepseek-r1", "ngl": 99, "tensor_split": "3,1",
         "override_tensor": [r"\.ffn_(up|down|gate)_exps\.=CPU"], "threads": 96, "threads_batch": 96,
         "numa": "cpunodebind=0 membind=0", "ctx_size": 16384, "cache_type_k": "q8_0", "mlock": True,
         "size_bytes": 212 * 10**9, "kv_bytes_per_token": 70272, "gpu_weights_gib": 20,
         "env": {"GGML_CUDA_ENABLE_UNIFIED_MEMORY": "0"}},
        {"name": "executor", "path": "/nvme/models/GLM/GLM-4.7-Q4_K_M.gguf", "port": 8001, "gpus": "1",
         "numa": "--numa distribute", "size_bytes": 40 * 10**9, "kv_bytes_per_token": 100000,
         "extra_args": ["--jinja"]},
        {"name": "coder", "path": "/nvme/models/coder.gguf", "port": 8002, "enabled": False},
        {"name": "kt", "engine": "ktransformers", "path": "/nvme/models/R1-kt/model.gguf", "port": 8003,
         "kt_model_path": "/nvme/models/R1-config", "kt_cpu_infer": 90, "kt_cache_lens": 32768,
         "kt_optimize_config_path": "/opt/rules/DeepSeek-V3-Chat.yaml", "numa": "interleave=all",
         "gpus": "0", "size_bytes": 10 * 10**9, "kv_bytes_per_token": 70272},
    ]},
    "agents": {"enabled": True, "image": "ghcr.io/example/agent-framework-service:1.0",
               "env": {"AGENT_NAME": "omni"}},
    "autoglm": {"enabled": True, "build": "/opt/omni/autoglm/src", "model": "executor"},
    "observability": {"bind": "0.0.0.0"},
    "memgraph": {"port": 7688},
}

SCENARIOS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "reference": ({}, ZEN5_CPU),
    "full": (FULL_STACK, INTEL_CPU),
}


def scenario_config(name: str) -> StackConfig:
    return stack_config(host_data(env={}, overrides={"stack": SCENARIOS[name][0]}))
