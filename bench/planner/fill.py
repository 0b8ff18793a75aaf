"""One placement: the dense parts where llama.cpp puts them for (`-ts`, `-ngl`), then experts in the rest."""

from __future__ import annotations

from collections.abc import Sequence

from bench.planner import GIB, MIB
from bench.planner.host import HostFacts
from bench.planner.model import ModelTable, expert_groups
from bench.planner.placement import Placement, Settings
from bench.planner.rules import expert_rules
from bench.report.placement import layer_devices


def reserve_bytes(mt: ModelTable, s: Settings) -> int:
    """Compute buffer kept per GPU (and in RAM for a CPU plan): given, else estimated from the model."""
    if s.reserve_mib is not None:
        return s.reserve_mib * MIB
    # logits + a few activation-sized buffers per ubatch, and llama.cpp's CUDA pool slack (estimate)
    return int(4 * mt.n_vocab * s.ubatch + 16 * 4 * mt.n_embd * s.ubatch + 512 * MIB)


def vram_budgets(host: HostFacts, s: Settings, gpus: Sequence[int]) -> dict[int, int]:
    """Bytes the plan may use on each GPU: `--vram-budget`, else free memory less the margin."""
    by_index = {g.index: g for g in host.gpus}
    out = {}
    for k, gi in enumerate(gpus):
        if s.vram_budget:
            out[gi] = int(s.vram_budget[min(k, len(s.vram_budget) - 1)] * GIB)
        else:
            out[gi] = by_index[gi].free_bytes - s.margin_mib * MIB
    return out


def fill(mt: ModelTable, host: HostFacts, s: Settings, gpus: tuple[int, ...], counts: tuple[int, ...],
          cpu_layers: int, whole_layers: dict[int, int] | None = None) -> Placement | None:
    """Dense parts where llama.cpp puts them for (`counts`, `cpu_layers`), then experts into what is left.

    `whole_layers` forces that many whole expert layers on a GPU and nothing partial (the
    neighbours; the caller checks memory). None when the dense parts alone do not fit a budget.
    """
    budgets = vram_budgets(host, s, gpus)
    # the rendered argv's -ngl (render.placement_argv); the planner plans for mainline llama-server
    devs = layer_devices(mt.n_layer, mt.n_layer + 1 - cpu_layers, counts)
    reserve = reserve_bytes(mt, s)
    used = {g: reserve for g in gpus}
    read = {g: 0.0 for g in gpus}
    host_bytes, host_read = mt.embd_bytes, mt.embd_read
    kv_layer = int(mt.kv_per_token_layer * s.ctx)
    for il in range(mt.n_layer):
        slot = devs[il]
        if slot is None:
            host_bytes += mt.dense[il] + kv_layer
            host_read += mt.dense_read[il]
        else:
            used[gpus[slot]] += mt.dense[il] + kv_layer
            read[gpus[slot]] += mt.dense_read[il]
    out_slot = devs[mt.n_layer]
    if out_slot is None:
        host_bytes += mt.output_bytes
        host_read += mt.output_bytes
    else:
        used[gpus[out_slot]] += mt.output_bytes
        read[gpus[out_slot]] += mt.output_bytes
    if any(used[g] > budgets[g] for g in gpus):
        return None
    groups = expert_groups(mt)
    experts: dict[int, list[str]] = {g: [] for g in gpus}
    placed: set[str] = set()
    for slot, g in enumerate(gpus):
        own = [il for il in sorted(groups) if devs[il] == slot]
        # whole layers first (largest first: the layers whose ffn_down is Q6_K), then single tensors
        own.sort(key=lambda il: -sum(mt.experts[n] for n in groups[il]))
        left = budgets[g] - used[g]
        chosen: list[str] = []
        if whole_layers is not None and g in whole_layers:
            chosen = [n for il in own[: max(whole_layers[g], 0)] for n in groups[il]]
        else:
            partial = []
            for il in own:
                size = sum(mt.experts[n] for n in groups[il])
                if size <= left:
                    chosen += groups[il]
                    left -= size
                else:
                    partial.append(il)
            for il in partial:
                for n in sorted(groups[il], key=lambda n: -mt.experts[n]):
                    if mt.experts[n] <= left:
                        chosen.append(n)
                        left -= mt.experts[n]
        experts[g] = chosen
        placed.update(chosen)
        used[g] += sum(mt.experts[n] for n in chosen)
        read[g] += sum(mt.experts[n] for n in chosen) * mt.expert_read_share
    for name, size in mt.experts.items():
        if name not in placed:
            host_bytes += size
            host_read += size * mt.expert_read_share
    rules = expert_rules(experts, {g: f"CUDA{g}" for g in gpus})
    return Placement(gpus, counts, cpu_layers, experts, rules, used, host_bytes, host_read, read)
