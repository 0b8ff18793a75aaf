"""One placement (which tensors on which GPU, and its predictions) and the knobs it is made under."""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.planner import PlanError
from bench.planner.model import expert_kinds, whole_layers


@dataclass
class Placement:
    """One placement and its predictions."""

    gpus: tuple[int, ...]  # GPU indices used, in order
    layer_counts: tuple[int, ...]  # layers per used GPU (`-ts`); the output layer counts on the last
    cpu_layers: int  # leading layers left on the CPU (-ngl = n_layer + 1 - cpu_layers)
    experts: dict[int, list[str]]  # GPU index -> routed-expert tensor names placed there
    rules: list[tuple[str, str]]  # -ot pattern=buffer, in order (first match wins)
    vram_bytes: dict[int, int]  # predicted per GPU: weights + KV + compute reserve
    host_weight_bytes: int
    host_read: float  # bytes read per token from host RAM
    gpu_read: dict[int, float]  # bytes read per token on each GPU
    decode_tps: float = 0.0
    prefill_tps: float | None = None
    label: str = "plan"
    notes: list[str] = field(default_factory=list)

    def expert_layers(self, gpu: int) -> int:
        """Layers with at least one routed-expert tensor on `gpu`."""
        return len(expert_kinds(self.experts.get(gpu, [])))


@dataclass(frozen=True)
class Settings:
    """The knobs a plan is made under (`python -m bench plan`'s flags)."""

    ctx: int = 16384
    ubatch: int = 512
    margin_mib: int = 1024  # left free on every GPU (llama.cpp --fit's default -fitt)
    reserve_mib: int | None = None  # compute buffer per GPU; None: estimated from the model
    vram_budget: tuple[float, ...] = ()  # GiB per GPU that the plan may use (instead of free - margin)
    ram_headroom_gib: float = 8.0
    fixed_ms: float = 0.0  # per-token cost that is not memory traffic (calibrate from one launch)
    gpus: tuple[int, ...] | None = None  # only these GPU indices (None: consider every subset)

    def __post_init__(self) -> None:
        """Refuse negative amounts: a negative margin or reserve would plan more than the GPU holds."""
        for flag, value in (("--margin-mib", self.margin_mib), ("--reserve-mib", self.reserve_mib),
                            ("--ram-headroom-gib", self.ram_headroom_gib), ("--fixed-ms", self.fixed_ms)):
            if value is not None and value < 0:
                raise PlanError(f"{flag} {value:g}: give 0 or more")
        if self.ubatch <= 0:
            raise PlanError(f"--ubatch {self.ubatch}: give a positive batch size")


def whole_expert_layers(p: Placement, g: int) -> int:
    """Layers whose routed experts are all on GPU `g` (the neighbours move these)."""
    return len(whole_layers(expert_kinds(p.experts.get(g, []))))
