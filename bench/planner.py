"""Placement planner: which tensors of a MoE model larger than VRAM go on which GPU, and how fast.

Why: llama.cpp's `--fit` gives up as soon as `-ngl`, `-ts` or `-ot` is passed, and the runbook's
`-ngl 99 -ot exps=CPU` leaves most of the VRAM idle while decode is bound by the bytes read per
token from host RAM. The planner reads every tensor's size and type from the GGUF (all shards),
keeps the every-token tensors (attention, dense FFN, shared experts, router, KV cache) on the GPUs,
then fills the VRAM left with whole layers of routed experts (then single expert tensors), and
prints `-ot` rules checked against the model's real tensor names. Its roofline: seconds per token
= bytes read on each device / that device's bandwidth + a fixed per-token cost (calibrated from
one measured launch); prefill streams the host-resident weights over PCIe once per ubatch.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.report.modelbytes import ModelBytes, _scalar, read_model
from omni.gguf_files import kv_bytes_per_token
from omni.llamacpp import build

MIB = 1024**2
GIB = 1024**3
EXPS = r"\.ffn_(up|down|gate|gate_up)_exps\."  # routed experts (llama.cpp's LLM_FFN_EXPS_REGEX)
_EXP_TENSOR = re.compile(r"^blk\.(\d+)\.ffn_(up|down|gate|gate_up)_exps\.")
# Spec-sheet memory bandwidth (GB/s), used only when no measurement is given; the plan says so.
GPU_SPEC_GBPS = {
    "H200": 4800.0, "H100 80GB HBM3": 3350.0, "H100 NVL": 3900.0, "H100 PCIe": 2000.0, "H100": 3350.0,
    "A100": 2039.0, "L40S": 864.0, "RTX PRO 6000": 1792.0, "RTX 5090": 1792.0, "RTX 4090": 1008.0,
    "RTX 6000 Ada": 960.0, "RTX 3090": 936.0,
}
TEMPLATE = ["-ngl", "99", "-ot", "exps=CPU"]  # the runbook's hand-written placement
PCIE_LANE_GBPS = {3: 0.985, 4: 1.969, 5: 3.938, 6: 7.563}  # per lane, one direction


class PlanError(ValueError):
    """A plan that cannot be made (bad input, or the model does not fit); one line with the numbers."""


@dataclass(frozen=True)
class Gpu:
    index: int
    name: str
    free_bytes: int
    bw_gbps: float
    bw_source: str
    pcie_gbps: float | None


@dataclass(frozen=True)
class HostFacts:
    """What the planner needs of a host (from `python -m facts collect` or given numbers)."""

    ram_bytes: int
    ram_source: str
    bw_gbps: float
    bw_source: str
    cores: int
    numa_nodes: int
    gpus: tuple[Gpu, ...]
    cpu_amx: bool = False  # Intel AMX (amx_tile): see cpu_only_args


# Why --no-repack on a CPU-only AMX host: the pinned llama.cpp (lcp 0.3.36) prefers the AMX buffer
# type for CPU weights when no GPU host buffer comes first. It admits deepseek2's attn_k_b (F16/Q8_0)
# from a probe with a contiguous input, but the MLA graph multiplies it by a permuted q_nope, which
# the AMX type refuses: ggml_backend_sched_split_graph aborts with GGML_ASSERT(*cur_backend_id != -1)
# (f16 and q8_0 files, the real R1 Q8_0 too); in a VM without usable AMX tiles the K-quant AMX
# kernels also fault. With a GPU the CUDA host buffer comes first and AMX is never used.
NO_AMX_REASON = ("CPU-only on an AMX CPU: --no-repack keeps weights out of llama.cpp's AMX buffer, which "
                 "aborts MLA models (GGML_ASSERT(*cur_backend_id != -1) on attn_k_b)")


def cpu_only_args(host: HostFacts) -> list[str]:
    """Server flags a CPU-only placement needs on this host (see NO_AMX_REASON)."""
    return ["--no-repack"] if host.cpu_amx and not host.gpus else []


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
        return len({_EXP_TENSOR.match(n).group(1) for n in self.experts.get(gpu, [])})  # type: ignore[union-attr]


@dataclass(frozen=True)
class Settings:
    ctx: int = 16384
    ubatch: int = 512
    margin_mib: int = 1024  # left free on every GPU (llama.cpp --fit's default -fitt)
    reserve_mib: int | None = None  # compute buffer per GPU; None: estimated from the model
    vram_budget: tuple[float, ...] = ()  # GiB per GPU that the plan may use (instead of free - margin)
    ram_headroom_gib: float = 8.0
    fixed_ms: float = 0.0  # per-token cost that is not memory traffic (calibrate from one launch)
    gpus: tuple[int, ...] | None = None  # only these GPU indices (None: consider every subset)


# ---------------------------------------------------------------- inputs


def _gpu_bandwidth(name: str) -> tuple[float, str]:
    for key, gbps in GPU_SPEC_GBPS.items():
        if key.lower() in name.lower():
            return gbps, f"spec sheet ({key})"
    return 1000.0, "assumed 1000 GB/s (unknown GPU: pass --gpu-gbps)"


def host_from_facts(doc: dict[str, Any], membw: dict[str, Any] | None = None,
                    host_gbps: float | None = None, gpu_gbps: Sequence[float] = ()) -> HostFacts:
    """HostFacts from a facts document (the whole `python -m facts collect` JSON or its `facts`)."""
    facts = doc.get("facts", doc) if isinstance(doc, dict) else None
    if not isinstance(facts, dict) or not any(k in facts for k in ("nvidia_gpus", "numa", "cpu")):
        raise PlanError("facts: not a `python -m facts collect` document (no nvidia_gpus/numa/cpu); "
                        "give the JSON that command prints")
    gpus_fact = facts.get("nvidia_gpus") or {}
    gpus: list[Gpu] = []
    for i, g in enumerate(gpus_fact.get("gpus") or [] if gpus_fact.get("available") else []):
        free = g.get("memory_free_mib") or g.get("memory_total_mib")
        if not free:
            raise PlanError(f"facts: GPU {g.get('index', i)} reports no memory; "
                            "recollect facts with nvidia-smi")
        if gpu_gbps:
            bw, src = float(gpu_gbps[min(i, len(gpu_gbps) - 1)]), "given"
        elif membw and membw.get("gpu_copy_gbps") and i < len(membw["gpu_copy_gbps"]):
            # membw's device-to-device copy counts read+write bytes: the read rate is its figure
            bw, src = float(membw["gpu_copy_gbps"][i]), "measured (bench membw d2d copy)"
        else:
            bw, src = _gpu_bandwidth(str(g.get("name", "")))
        gen, width = g.get("pcie_gen_current"), g.get("pcie_width_current")
        pcie = PCIE_LANE_GBPS[int(gen)] * int(width) if gen and width and int(gen) in PCIE_LANE_GBPS else None
        name = str(g.get("name", f"GPU{i}"))
        gpus.append(Gpu(int(g.get("index", i)), name, int(free) * MIB, bw, src, pcie))
    numa = facts.get("numa") or {}
    nodes = numa.get("nodes") or [] if numa.get("available") else []
    mods = facts.get("memory_modules") or {}
    if nodes and all(n.get("size_mib") for n in nodes):
        ram, ram_src = sum(int(n["size_mib"]) for n in nodes) * MIB, "NUMA node sizes"
    elif mods.get("available") and mods.get("total_mib"):
        ram, ram_src = int(mods["total_mib"]) * MIB, "DIMMs"
    else:
        raise PlanError("facts: no host RAM size (numa or memory_modules); "
                        "recollect with numactl or dmidecode")
    if host_gbps:
        bw, bw_src = float(host_gbps), "given"
    elif membw and membw.get("host_read_gbps"):
        bw, bw_src = float(membw["host_read_gbps"]), "measured (bench membw)"
    elif mods.get("available") and mods.get("modules"):
        populated = [m for m in mods["modules"] if m.get("size_mib")]
        speeds = [m.get("configured_speed_mts") or m.get("speed_mts") or 0 for m in populated]
        speed = min(speeds) if speeds else 0
        if not speed:
            raise PlanError("facts: DIMMs report no speed; give --host-gbps or a bench membw JSON (--membw)")
        bw, bw_src = len(populated) * speed * 8 / 1000, f"DIMMs: {len(populated)} x {speed} MT/s x 8 B (peak)"
    else:
        raise PlanError("facts: no host memory bandwidth; give --host-gbps N or --membw membw.json")
    cpu = facts.get("cpu") or {}
    cores = int(cpu.get("cores") or 0) or 1
    amx = "amx_tile" in (cpu.get("amx_flags") or [])
    return HostFacts(ram, ram_src, bw, bw_src, cores, max(len(nodes), 1), tuple(gpus), amx)


def load_host(facts_path: str | None, local: bool, membw_path: str | None, host_gbps: float | None,
              gpu_gbps: Sequence[float]) -> HostFacts:
    """Facts from a file or from this machine, plus optional bandwidth measurements."""
    membw = None
    if membw_path:
        try:
            membw = json.loads(Path(membw_path).read_text())
        except (OSError, ValueError) as exc:
            raise PlanError(f"--membw {membw_path}: not readable JSON ({exc}); "
                            "give bench membw's output") from None
    if local:
        from facts.collect import collect_local

        return host_from_facts(collect_local(), membw, host_gbps, gpu_gbps)
    if not facts_path:
        raise PlanError("no host: give --facts FACTS.json (python -m facts collect > FACTS.json) "
                        "or --host @local")
    try:
        doc = json.loads(Path(facts_path).read_text())
    except (OSError, ValueError) as exc:
        raise PlanError(f"--facts {facts_path}: not readable JSON ({exc}); "
                        "give `python -m facts collect` output") from None
    return host_from_facts(doc, membw, host_gbps, gpu_gbps)


@dataclass(frozen=True)
class ModelTable:
    """The GGUF's tensors grouped the way placement needs them."""

    model: ModelBytes
    n_layer: int
    dense: tuple[int, ...]  # per layer: bytes of every non-routed tensor (attention, dense FFN, shexp)
    dense_read: tuple[float, ...]
    experts: dict[str, int]  # routed-expert tensor name -> bytes
    expert_read_share: float  # share of a routed tensor read per token (used / count)
    output_bytes: int  # output.weight + output_norm: on the device of the "output layer"
    embd_bytes: int  # token_embd: host
    embd_read: float
    kv_per_token_layer: float  # KV bytes per token per layer (f16)
    n_vocab: int
    n_embd: int


def model_table(path: str | Path) -> ModelTable:
    from bench.report.modelbytes import ModelFileError

    try:
        mb = read_model(path)
    except ModelFileError as exc:
        raise PlanError(str(exc)) from None
    if mb.n_layer <= 0:
        raise PlanError(f"{path}: no {mb.arch}.block_count; not a llama.cpp model GGUF")
    from gguf import GGUFReader

    from omni.gguf_files import shard_paths

    reader = GGUFReader(shard_paths(mb.path)[0])  # metadata lives in the first shard
    meta = {k: f.contents() for k, f in reader.fields.items() if k.startswith(mb.arch + ".")}
    kv = kv_bytes_per_token(meta, mb.arch) / mb.n_layer
    dense = [0] * mb.n_layer
    dense_read = [0.0] * mb.n_layer
    experts: dict[str, int] = {}
    out = embd = 0
    embd_read = 0.0
    for t in mb.tensors:
        if t.routed_expert:
            experts[t.name] = t.n_bytes
        elif t.layer is not None and t.layer < mb.n_layer:
            dense[t.layer] += t.n_bytes
            dense_read[t.layer] += t.read_bytes
        elif t.name.startswith("token_embd"):
            embd, embd_read = t.n_bytes, t.read_bytes
        else:
            out += t.n_bytes
    share = mb.expert_used_count / mb.expert_count if mb.is_moe else 1.0
    n_vocab = int(_scalar(reader, f"{mb.arch}.vocab_size") or 0) or 32000
    n_embd = int(_scalar(reader, f"{mb.arch}.embedding_length") or 0)
    return ModelTable(mb, mb.n_layer, tuple(dense), tuple(dense_read), experts, share, out, embd, embd_read,
                      kv, n_vocab, n_embd)


# ---------------------------------------------------------------- placement


def layer_devices(counts: Sequence[int], cpu_layers: int, n_layer: int) -> list[int | None]:
    """Device slot (index into `counts`) of layers 0..n_layer (the last is the output layer), None = CPU.

    Mirrors llama.cpp's load_tensors: float splits from `-ts`, upper_bound of il/act_gpu_layers.
    """
    ngl = n_layer + 1 - cpu_layers
    total = float(sum(counts))
    splits = np.cumsum(np.array([c / total for c in counts], dtype=np.float32), dtype=np.float32)
    out: list[int | None] = []
    for il in range(n_layer + 1):
        if il < cpu_layers:
            out.append(None)
            continue
        x = np.float32(il - cpu_layers) / np.float32(ngl)
        out.append(min(int(np.searchsorted(splits, x, side="right")), len(counts) - 1))
    return out


def _reserve(mt: ModelTable, s: Settings) -> int:
    if s.reserve_mib is not None:
        return s.reserve_mib * MIB
    # logits + a few activation-sized buffers per ubatch, and llama.cpp's CUDA pool slack (estimate)
    return int(4 * mt.n_vocab * s.ubatch + 16 * 4 * mt.n_embd * s.ubatch + 512 * MIB)


def _budgets(host: HostFacts, s: Settings, gpus: Sequence[int]) -> dict[int, int]:
    by_index = {g.index: g for g in host.gpus}
    out = {}
    for k, gi in enumerate(gpus):
        if s.vram_budget:
            out[gi] = int(s.vram_budget[min(k, len(s.vram_budget) - 1)] * GIB)
        else:
            out[gi] = by_index[gi].free_bytes - s.margin_mib * MIB
    return out


def _expert_groups(mt: ModelTable) -> dict[int, list[str]]:
    groups: dict[int, list[str]] = {}
    for name in mt.experts:
        m = _EXP_TENSOR.match(name)
        if m:
            groups.setdefault(int(m.group(1)), []).append(name)
    return groups


def _fill(mt: ModelTable, host: HostFacts, s: Settings, gpus: tuple[int, ...], counts: tuple[int, ...],
          cpu_layers: int, whole_layers: dict[int, int] | None = None) -> Placement | None:
    """Dense parts where llama.cpp puts them for (`counts`, `cpu_layers`), then experts into what is left.

    `whole_layers` forces that many whole expert layers on a GPU and nothing partial (the
    neighbours; the caller checks memory). None when the dense parts alone do not fit a budget.
    """
    budgets = _budgets(host, s, gpus)
    devs = layer_devices(counts, cpu_layers, mt.n_layer)
    reserve = _reserve(mt, s)
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
    groups = _expert_groups(mt)
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


def _alternation(numbers: Sequence[int | str]) -> str:
    if len(numbers) == 1:
        return str(numbers[0])
    return "(" + "|".join(map(str, numbers)) + ")"


def expert_rules(experts: dict[int, list[str]], buffers: dict[int, str]) -> list[tuple[str, str]]:
    """`-ot` rules: per GPU, whole expert layers as one alternation, single tensors by name; then CPU."""
    rules: list[tuple[str, str]] = []
    for g, names in experts.items():
        by_layer: dict[int, set[str]] = {}
        for n in names:
            m = _EXP_TENSOR.match(n)
            if m:
                by_layer.setdefault(int(m.group(1)), set()).add(m.group(2))
        full = sorted(il for il, kinds in by_layer.items() if len(kinds) >= 3 or "gate_up" in kinds)
        if full:
            rules.append((rf"blk\.{_alternation(full)}{EXPS}", buffers[g]))
        for il in sorted(set(by_layer) - set(full)):
            kinds = sorted(by_layer[il])
            rules.append((rf"blk\.{il}\.ffn_{_alternation(kinds)}_exps\.", buffers[g]))  # type: ignore[arg-type]
    rules.append((EXPS, "CPU"))
    return rules


def check_rules(mt: ModelTable, placement: Placement) -> None:
    """Every rule matched against the real tensor names: each tensor lands where the plan says."""
    want = {n: f"CUDA{g}" for g, names in placement.experts.items() for n in names}
    compiled = [(re.compile(p), b) for p, b in placement.rules]
    for t in mt.model.tensors:
        hit = next((b for rx, b in compiled if rx.search(t.name)), None)
        expected = want.get(t.name, "CPU") if t.routed_expert else None
        if hit != expected:
            raise AssertionError(f"-ot rules put {t.name} on {hit}, the plan says {expected}")


def predict(mt: ModelTable, host: HostFacts, p: Placement, s: Settings) -> Placement:
    """Decode and prefill tokens/s from the roofline (bytes / bandwidth per device + fixed cost)."""
    by_index = {g.index: g for g in host.gpus}
    t = p.host_read / (host.bw_gbps * 1e9) + s.fixed_ms / 1000
    t += sum(r / (by_index[g].bw_gbps * 1e9) for g, r in p.gpu_read.items())
    p.decode_tps = 1.0 / t if t > 0 else 0.0
    pcie = [by_index[g].pcie_gbps for g in p.gpus if by_index[g].pcie_gbps]
    # prefill: llama.cpp copies host-resident weights to the main GPU for each ubatch (op offload)
    host_weights = p.host_weight_bytes - mt.embd_bytes
    if p.gpus and pcie and host_weights > 0:
        p.prefill_tps = s.ubatch / (host_weights / (pcie[0] * 1e9))
    return p


def predict_argv(mt: ModelTable, host: HostFacts, s: Settings, argv: Sequence[str]) -> float | None:
    """The same roofline for a hand-written placement (template, --n-cpu-moe grid, -ngl 0).

    None for `--fit on`: its placement is chosen at launch (the row reads it back from the log).
    """
    from bench.report.placement import bytes_by_device, parse_placement

    if "--fit" in argv or "-fit" in argv:
        return None
    n_gpus = len(host.gpus)
    host_read, gpu_read = bytes_by_device(mt.model, parse_placement(argv, n_gpus=n_gpus), n_gpus,
                                          [g.free_bytes for g in host.gpus])
    t = host_read / (host.bw_gbps * 1e9) + s.fixed_ms / 1000
    t += sum(r / (g.bw_gbps * 1e9) for g, r in zip(host.gpus, gpu_read, strict=True))
    return 1.0 / t if t > 0 else None


def calibrate(mt: ModelTable, host: HostFacts, s: Settings, results_csv: str | Path) -> tuple[float, str]:
    """(fixed ms per token, how) from the first measured planner row of a sweep's results.csv.

    Why: the roofline counts memory traffic only; kernel launches, the CPU's expert dispatch and
    synchronisation add a per-token cost that one launch measures: 1/measured - 1/roofline.
    """
    import csv

    try:
        with Path(results_csv).open(newline="") as f:
            rows = list(csv.DictReader(f))
    except (OSError, csv.Error, UnicodeDecodeError) as exc:
        raise PlanError(f"--calibrate {results_csv}: not a readable results.csv ({exc})") from None
    zero = Settings(**{**s.__dict__, "fixed_ms": 0.0})
    for r in rows:
        argv = (r.get("axis.args.placement") or "").split()
        try:
            measured = float(r.get("decode_tps") or r.get("server_decode_tps") or 0)
        except ValueError:
            continue
        if r.get("status") != "ok" or r.get("placement_source") != "planner" or not argv or measured <= 0:
            continue
        roof = predict_argv(mt, host, zero, argv)
        if not roof:
            continue
        fixed = max(1000 * (1 / measured - 1 / roof), 0.0)
        return fixed, (f"{fixed:.3f} ms/token from {r.get('config_label', '?')}: measured {measured:.2f} "
                       f"tokens/s, roofline {roof:.2f}")
    raise PlanError(f"--calibrate {results_csv}: no ok row with placement_source planner and a decode rate; "
                    "run the plan's spec first (python -m bench sweep SPEC)")


def _score(p: Placement | None) -> float:
    return p.decode_tps if p is not None else -1.0


def _search(mt: ModelTable, host: HostFacts, s: Settings, gpus: tuple[int, ...]) -> Placement | None:
    """Best (counts, cpu_layers) for this GPU set: proportional start, then move one layer at a time."""
    budgets = _budgets(host, s, gpus)
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
            p = _fill(mt, host, s, gpus, tuple(c), cpu_layers)
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
        if p.host_weight_bytes + _reserve(mt, s) <= ram_ok:
            options.append(p)
    cpu_bytes = mt.model.file_bytes + int(mt.kv_per_token_layer * s.ctx) * mt.n_layer
    cpu = Placement((), (), mt.n_layer + 1, {}, [], {}, cpu_bytes, mt.model.bytes_per_token, {},
                    label="all on CPU")
    cpu = predict(mt, host, cpu, s)
    if cpu.host_weight_bytes <= ram_ok:
        options.append(cpu)
    if not options:
        vram = sum(_budgets(host, s, indices).values()) if indices else 0
        raise PlanError(
            f"{Path(mt.model.path).name} cannot fit: {total / GIB:.1f} GiB of weights + "
            f"{mt.kv_per_token_layer * mt.n_layer * s.ctx / GIB:.1f} GiB KV at ctx {s.ctx} > "
            f"{ram_ok / GIB:.1f} GiB RAM ({host.ram_bytes / GIB:.1f} - {s.ram_headroom_gib:g} headroom) + "
            f"{max(vram, 0) / GIB:.1f} GiB usable VRAM; use a smaller quant, a smaller --ctx or more memory")
    options.sort(key=lambda p: -p.decode_tps)
    return options[0], options


def whole_expert_layers(p: Placement, g: int) -> int:
    kinds: dict[str, set[str]] = {}
    for n in p.experts.get(g, []):
        m = _EXP_TENSOR.match(n)
        if m:
            kinds.setdefault(m.group(1), set()).add(m.group(2))
    return sum(1 for k in kinds.values() if len(k) >= 3 or "gate_up" in k)


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
            p = _fill(mt, host, loose, best.gpus, best.layer_counts, best.cpu_layers, whole_layers=target)
            if p is None or whole_expert_layers(p, g) != target[g] or p.experts == best.experts:
                continue
            if p.vram_bytes[g] > by_index[g].free_bytes:
                continue
            p = predict(mt, host, p, s)
            check_rules(mt, p)
            p.label = f"GPU{g} {base + delta} expert layers ({'+' if delta > 0 else ''}{delta})"
            out.append(p)
    return out


# ---------------------------------------------------------------- argv


def placement_argv(p: Placement, n_layer: int, all_gpus: Sequence[int]) -> list[str]:
    """llama-server flags for a placement, written by omni.llamacpp (the one home of the flags)."""
    if not p.gpus:
        return build(n_gpu_layers=0).to_argv()
    values: dict[str, Any] = {"n_gpu_layers": n_layer + 1 - p.cpu_layers}
    if tuple(p.gpus) != tuple(all_gpus):
        values["device"] = ",".join(f"CUDA{g}" for g in p.gpus)
    if len(p.gpus) > 1:
        values |= {"split_mode": "layer", "tensor_split": list(p.layer_counts)}
    if p.rules:
        values["override_tensor"] = [tuple(p.rules)]
    return build(**values).to_argv()


def describe(mt: ModelTable, host: HostFacts, p: Placement) -> list[str]:
    """Human lines: per device what goes there and the predicted memory."""
    by_index = {g.index: g for g in host.gpus}
    lines = []
    for g in p.gpus:
        dev = by_index[g]
        lines.append(
            f"  GPU{g} {dev.name}: {p.vram_bytes[g] / GIB:.2f} GiB of {dev.free_bytes / GIB:.2f} free; "
            f"{p.expert_layers(g)} expert layers ({len(p.experts.get(g, []))} tensors), reads "
            f"{p.gpu_read[g] / 1e6:.0f} MB/token at {dev.bw_gbps:.0f} GB/s [{dev.bw_source}]")
    lines.append(f"  host: {p.host_weight_bytes / GIB:.2f} GiB of weights, "
                 f"reads {p.host_read / 1e6:.0f} MB/token at {host.bw_gbps:.0f} GB/s [{host.bw_source}]")
    return lines


# ---------------------------------------------------------------- the sweep spec


def _toml_str(s: str) -> str:
    return json.dumps(s)  # a JSON string is a valid TOML basic string


def spec_text(model: str, mt: ModelTable, host: HostFacts, s: Settings, best: Placement,
              near: list[Placement], alternatives: list[Placement], binary: str = "llama-server",
              grid: Sequence[tuple[str, list[str]]] = ()) -> str:
    """A sweep spec that confirms the plan: plan, --fit, the template, neighbours, leave-a-GPU-out, grid.

    The comparison rows come right after the plan, so a sweep cut short still has them.
    """
    all_gpus = [g.index for g in host.gpus]
    # the comparison rows (on a CPU-only host too: fit then has nothing to place)
    fit = ["--fit", "on", "-fitc", str(min(s.ctx, 4096)), "-fitt", str(s.margin_mib)]
    if s.vram_budget and all_gpus:  # a budget below the card: the margin that leaves exactly that budget
        by_index = {g.index: g for g in host.gpus}
        budgets = _budgets(host, s, all_gpus)
        fit[-1] = ",".join(str(max((by_index[g].free_bytes - budgets[g]) // MIB, 0)) for g in all_gpus)
    rows: list[tuple[str, list[str], str, float | None]] = [
        (best.label + " (plan)", placement_argv(best, mt.n_layer, all_gpus), "planner", best.decode_tps),
        ("llama.cpp --fit", fit, "fit", None),
        ("runbook template", TEMPLATE, "template", predict_argv(mt, host, s, TEMPLATE))]
    rows += [(p.label, placement_argv(p, mt.n_layer, all_gpus), "planner", p.decode_tps) for p in near]
    fewer = [p for p in alternatives if p is not best and p.gpus and len(p.gpus) < len(best.gpus)]
    if fewer:
        rows.append((fewer[0].label + " (leave a GPU out)", placement_argv(fewer[0], mt.n_layer, all_gpus),
                     "planner", fewer[0].decode_tps))
    for label, argv in grid:
        rows.append((label, argv, "grid", predict_argv(mt, host, s, argv)))
    seen: set[str] = set()
    rows = [r for r in rows if not (json.dumps(r[1]) in seen or seen.add(json.dumps(r[1])))]  # type: ignore[func-returns-value]
    # -lv 4: libllama's buffer lines, so every row (--fit's too) reads back where its bytes went
    server_args = ["-c", str(s.ctx), "-ub", str(s.ubatch), "-fa", "on", "--no-warmup", "-lv", "4",
                   *(["--numa", "distribute"] if host.numa_nodes > 1 else []), *cpu_only_args(host)]
    lines = [
        f"# Placement sweep written by `python -m bench plan` for {Path(model).name}.",
        "# Rows: the plan, its neighbours, leave-a-GPU-out, llama.cpp --fit and the runbook template;",
        "# [[placement]] carries each row's source and the planner's predicted decode tokens/s.",
        f'name = "plan-{re.sub(r"[^A-Za-z0-9_.-]", "-", Path(model).stem)[:40]}"',
        'engine = "llama-server"',
        'strategy = "grid"',
        f'description = {_toml_str(f"planner rows vs --fit vs -ngl 99 -ot exps=CPU, ctx {s.ctx}")}',
        "",
        "[server]",
        f"binary = {_toml_str(binary)}",
        f"model = {_toml_str(str(model))}",
        *([f"# {NO_AMX_REASON}"] if cpu_only_args(host) else []),
        f"args = {json.dumps(server_args)}",
        # CUDA<i> in the rules is nvidia-smi's index i (the facts'): CUDA's default order is fastest first
        *(['env = { CUDA_DEVICE_ORDER = "PCI_BUS_ID" }'] if host.gpus else []),
        "health_timeout_s = 1800",
        "stop_timeout_s = 60",
        "",
        "[axes]",
        '"args.placement" = [',
    ]
    lines += [f"  {json.dumps(argv)},  # {label}" for label, argv, _, _ in rows]
    threads = sorted({host.cores, max(host.cores // 2, 1)}, reverse=True)
    lines += ["]", f'"--threads" = {json.dumps(threads)}', ""]
    for label, argv, source, tps in rows:
        lines += ["[[placement]]", f"label = {_toml_str(label)}", f"args = {json.dumps(argv)}",
                  f'source = "{source}"']
        if tps:
            lines.append(f"predicted_decode_tps = {tps:.3f}")
        lines.append("")
    lines += [
        "[workload]", "input_tokens = [512]", "output_tokens = [128]", "concurrency = [1]",
        "requests = 3", "warmup = 1", "repeats = 1", 'endpoint = "completions"',
        "request_timeout_s = 1800", "",
        "[memory]", 'oom_floor = "5%"', "",
    ]
    return "\n".join(lines)
