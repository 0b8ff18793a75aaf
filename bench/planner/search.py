"""The best placement over GPU subsets and layer splits, the alternatives, and the plan's neighbours."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path

from bench.planner import GIB, PlanError
from bench.planner.fill import fill, reserve_bytes, vram_budgets
from bench.planner.host import HostFacts
from bench.planner.model import ModelTable
from bench.planner.placement import Placement, Settings, whole_expert_layers
from bench.planner.roofline import predict
from bench.planner.rules import check_rules


def _score(p: Placement | None) -> float:
    return p.decode_tps if p is not None else -1.0


def _search(mt: ModelTable, host: HostFacts, s: Settings, gpus: tuple[int, ...]) -> Placement | None:
    """Best (counts, cpu_layers) for this GPU set: proportional start, then move one layer at a time."""
    budgets = vram_budgets(host, s, gpus)
    total_layers = mt.n_layer + 1
    for cpu_layers in range(0, mt.n_layer + 1):
        ngl = total_layers - cpu_layers
        if len(gpus) > ngl:
            return None
        weights = [max(budgets[g], 1) for g in gpus]
        counts = [max(1, round(ngl * w / sum(weights))) for w in weights]
        counts[-1] = ngl - sum(counts[:-1])
        if counts[-1] < 1:
            counts = [1] * (len(gpus) - 1) + [ngl - len(gpus) + 1]

        def evaluate(c: Sequence[int], cpu_layers: int = cpu_layers) -> Placement | None:
            p = fill(mt, host, s, gpus, tuple(c), cpu_layers)
            return predict(mt, host, p, s) if p is not None else None

        best = evaluate(counts)
        improved = True
        while improved and len(gpus) > 1:
            improved = False
            for a, b in itertools.permutations(range(len(gpus)), 2):
                if counts[a] <= 1:
                    continue
                trial = list(counts)
                trial[a] -= 1
                trial[b] += 1
                cand = evaluate(trial)
                if _score(cand) > _score(best) + 1e-9:
                    best, counts, improved = cand, trial, True
        if best is not None:
            if cpu_layers:
                best.notes.append(f"{cpu_layers} leading layers stay on the CPU: "
                                  "their dense parts do not fit the GPUs")
            return best
    return None


def plan(mt: ModelTable, host: HostFacts, s: Settings) -> tuple[Placement, list[Placement]]:
    """(best placement, the alternatives considered: every GPU subset, all-CPU)."""
    if s.ctx <= 0 or s.ubatch <= 0:
        raise PlanError("--ctx and --ubatch must be positive")
    if any(b <= 0 for b in s.vram_budget):
        raise PlanError(f"--vram-budget {','.join(f'{b:g}' for b in s.vram_budget)}: every budget must be "
                        "a positive GiB figure")
    indices = [g.index for g in host.gpus]
    if s.gpus is not None:
        unknown = [g for g in s.gpus if g not in indices]
        if unknown:
            raise PlanError(f"--gpus {','.join(map(str, s.gpus))}: no GPU {unknown[0]} in the facts "
                            f"(GPUs: {','.join(map(str, indices)) or 'none'})")
        subsets = [tuple(s.gpus)]
    else:
        subsets = [c for r in range(len(indices), 0, -1) for c in itertools.combinations(indices, r)]
    total = mt.model.file_bytes
    ram_ok = host.ram_bytes - int(s.ram_headroom_gib * GIB)
    options: list[Placement] = []
    for subset in subsets:
        p = _search(mt, host, s, subset)
        if p is None:
            continue
        p.label = "GPUs " + "+".join(map(str, subset))
        check_rules(mt, p)
        if p.host_weight_bytes + reserve_bytes(mt, s) <= ram_ok:
            options.append(p)
    cpu_bytes = mt.model.file_bytes + int(mt.kv_per_token_layer * s.ctx) * mt.n_layer
    cpu = Placement((), (), mt.n_layer + 1, {}, [], {}, cpu_bytes, mt.model.bytes_per_token, {},
                    label="all on CPU")
    cpu = predict(mt, host, cpu, s)
    if cpu.host_weight_bytes <= ram_ok:
        options.append(cpu)
    if not options:
        vram = sum(vram_budgets(host, s, indices).values()) if indices else 0
        raise PlanError(
            f"{Path(mt.model.path).name} cannot fit: {total / GIB:.1f} GiB of weights + "
            f"{mt.kv_per_token_layer * mt.n_layer * s.ctx / GIB:.1f} GiB KV at ctx {s.ctx} > "
            f"{ram_ok / GIB:.1f} GiB RAM ({host.ram_bytes / GIB:.1f} - {s.ram_headroom_gib:g} headroom) + "
            f"{max(vram, 0) / GIB:.1f} GiB usable VRAM; use a smaller quant, a smaller --ctx or more memory")
    options.sort(key=lambda p: -p.decode_tps)
    return options[0], options


def neighbours(mt: ModelTable, host: HostFacts, s: Settings, best: Placement) -> list[Placement]:
    """The plan's nearest variants: -2/-1/+1 whole expert layers on each GPU (+1 only within free memory)."""
    out = []
    by_index = {g.index: g for g in host.gpus}
    for g in best.gpus:
        base = whole_expert_layers(best, g)
        for delta in (-2, -1, 1):
            target = {h: whole_expert_layers(best, h) for h in best.gpus}
            target[g] = base + delta
            if target[g] < 0:
                continue
            loose = Settings(**{**s.__dict__, "vram_budget": (), "margin_mib": 0})
            p = fill(mt, host, loose, best.gpus, best.layer_counts, best.cpu_layers, whole_layers=target)
            if p is None or whole_expert_layers(p, g) != target[g] or p.experts == best.experts:
                continue
            if p.vram_bytes[g] > by_index[g].free_bytes:
                continue
            p = predict(mt, host, p, s)
            check_rules(mt, p)
            p.label = f"GPU{g} {base + delta} expert layers ({'+' if delta > 0 else ''}{delta})"
            out.append(p)
    return out
