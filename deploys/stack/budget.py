"""Memory budget: refuse a model line-up that cannot fit before a single container starts.

Why: the runbook planned a 386 GB quant into 384 GB of RAM (its "memory lie"), and a llama.cpp
server that outgrows RAM freezes the whole host. Two pools are checked separately, because weights
a placement leaves on the CPU (``-ot exps=CPU``, ``-ngl 0``) need RAM no matter how much VRAM sits
idle:

- RAM:  sum(weights - gpu_weights) (+ KV and overhead of CPU-only models) <= RAM - headroom (80 GiB)
- VRAM: sum(gpu_weights + KV + overhead of GPU models) <= sum(GPU memory) - reserve per GPU

``python -m deploys.stack.budget kv MODEL.gguf`` prints a GGUF's KV-cache bytes per token.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from .config import ModelSpec, StackConfig

GIB = 1024**3
#: Bytes per element of the llama.cpp cache types, relative to f16 (block formats include scales).
CACHE_TYPE_FACTOR = {"f32": 2.0, "f16": 1.0, "bf16": 1.0, "q8_0": 34 / 64, "q5_1": 24 / 64,
                     "q5_0": 22 / 64, "q4_1": 20 / 64, "q4_0": 18 / 64, "iq4_nl": 18 / 64}


class BudgetError(ValueError):
    """The enabled models do not fit; the message is one line with the numbers."""


@dataclass(frozen=True)
class HostMemory:
    ram_bytes: int
    gpu_bytes: tuple[int, ...]
    source: str  # where the numbers came from: "facts" or "inventory"


@dataclass(frozen=True)
class ModelNeed:
    name: str
    weights_bytes: int
    weights_source: str
    kv_bytes: int
    gpu_weights_bytes: int
    overhead_bytes: int
    on_gpu: bool

    @property
    def ram_bytes(self) -> int:
        extra = 0 if self.on_gpu else self.kv_bytes + self.overhead_bytes
        return self.weights_bytes - self.gpu_weights_bytes + extra

    @property
    def vram_bytes(self) -> int:
        return self.gpu_weights_bytes + self.kv_bytes + self.overhead_bytes if self.on_gpu else 0


@dataclass(frozen=True)
class Budget:
    needs: tuple[ModelNeed, ...]
    ram_need: int
    ram_limit: int
    vram_need: int
    vram_limit: int
    memory: HostMemory
    headroom_bytes: int

    def summary(self) -> str:
        return (f"RAM {gib(self.ram_need)} of {gib(self.ram_limit)} GiB usable, "
                f"VRAM {gib(self.vram_need)} of {gib(self.vram_limit)} GiB usable ({self.memory.source})")


def gib(value: float) -> str:
    return f"{value / GIB:.1f}"


def kv_bytes(model: ModelSpec) -> int:
    """KV cache for the whole context (llama-server's ``-c`` is shared by all ``-np`` slots)."""
    if model.kv_bytes_per_token is None:
        raise BudgetError(
            f"model {model.name}: KV-cache size unknown: set kv_bytes_per_token "
            f"(`python -m deploys.stack.budget kv {model.path}` prints it)"
        )
    factor = CACHE_TYPE_FACTOR.get(model.cache_type_k)
    if factor is None:
        raise BudgetError(f"model {model.name}: cache_type_k {model.cache_type_k!r} is unknown: "
                          f"use one of {', '.join(CACHE_TYPE_FACTOR)}")
    return int(model.kv_bytes_per_token * factor * model.ctx_size)


def model_need(model: ModelSpec, file_sizes: dict[str, int | None]) -> ModelNeed:
    size = file_sizes.get(model.path)
    source = "file on host"
    if not size:
        size, source = model.size_bytes, "inventory size_bytes"
    if not size:
        raise BudgetError(f"model {model.name}: size unknown: {model.path} is not on the host; "
                          "download it first (phase 0) or set size_bytes")
    on_gpu = model.gpus != "none" and model.ngl != 0
    gpu_weights = int(model.gpu_weights_gib * GIB) if on_gpu else 0
    if gpu_weights > size:
        raise BudgetError(f"model {model.name}: gpu_weights_gib {model.gpu_weights_gib} is larger than "
                          f"the model ({gib(size)} GiB): lower it")
    return ModelNeed(model.name, size, source, kv_bytes(model), gpu_weights,
                     int(model.overhead_gib * GIB), on_gpu)


def check_budget(config: StackConfig, memory: HostMemory, file_sizes: dict[str, int | None]) -> Budget:
    """Return the budget of the enabled models, or raise :class:`BudgetError` with the numbers."""
    spec = config.inference
    needs = tuple(model_need(m, file_sizes) for m in spec.enabled)
    headroom = int(spec.headroom_gib * GIB)
    ram_limit = memory.ram_bytes - headroom
    vram_limit = sum(max(0, g - spec.gpu_reserve_mib * 1024**2) for g in memory.gpu_bytes)
    budget = Budget(needs, sum(n.ram_bytes for n in needs), ram_limit,
                    sum(n.vram_bytes for n in needs), vram_limit, memory, headroom)
    if budget.ram_need > ram_limit:
        parts = ", ".join(
            f"{n.name} {gib(n.weights_bytes - n.gpu_weights_bytes)} GiB weights off-GPU ({n.weights_source})"
            + ("" if n.on_gpu else f" + {gib(n.kv_bytes + n.overhead_bytes)} GiB KV/overhead")
            for n in needs
        )
        raise BudgetError(
            f"memory budget: the enabled models need {gib(budget.ram_need)} GiB of RAM ({parts}) but "
            f"{gib(memory.ram_bytes)} GiB RAM - {gib(headroom)} GiB headroom leaves {gib(ram_limit)} GiB "
            f"({memory.source}): disable a model, pick a smaller quant, or put weights on the GPUs "
            "(gpu_weights_gib)"
        )
    if budget.vram_need > vram_limit:
        parts = ", ".join(
            f"{n.name} {gib(n.gpu_weights_bytes)} GiB weights + {gib(n.kv_bytes)} GiB KV + "
            f"{gib(n.overhead_bytes)} GiB overhead" for n in needs if n.on_gpu
        )
        raise BudgetError(
            f"memory budget: the enabled models need {gib(budget.vram_need)} GiB of GPU memory ({parts}) "
            f"but {len(memory.gpu_bytes)} GPU(s) leave {gib(vram_limit)} GiB after the "
            f"{spec.gpu_reserve_mib} MiB reserve each ({memory.source}): lower gpu_weights_gib or ctx_size"
        )
    return budget


def kv_bytes_per_token_from_gguf(path: str) -> int:
    """KV bytes per token at f16, from a GGUF's metadata (reads the header only)."""
    from gguf import GGUFReader

    from omni.gguf_files import kv_bytes_per_token

    reader = GGUFReader(path)
    meta = {}
    for key, field in reader.fields.items():
        if key.startswith("general.") or key.startswith("tokenizer."):
            continue
        meta[key] = field.contents()
    arch = reader.get_field("general.architecture").contents()
    return kv_bytes_per_token(meta, arch)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] != "kv":
        print("usage: python -m deploys.stack.budget kv MODEL.gguf", file=sys.stderr)
        return 2
    try:
        print(kv_bytes_per_token_from_gguf(args[1]))
    except (OSError, ValueError, AttributeError) as exc:
        print(f"error: {args[1]}: cannot read GGUF metadata ({exc}): give a GGUF model file", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
