"""The plan written out: llama-server flags (through omni.llamacpp), human lines, and a sweep spec."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.planner import GIB, MIB
from bench.planner.fill import vram_budgets
from bench.planner.host import NO_AMX_REASON, HostFacts, cpu_only_args
from bench.planner.model import ModelTable
from bench.planner.placement import Placement, Settings
from bench.planner.roofline import predict_argv
from omni.llamacpp import build

TEMPLATE = ["-ngl", "99", "-ot", "exps=CPU"]  # the runbook's hand-written placement


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
        budgets = vram_budgets(host, s, all_gpus)
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
    if len(threads) > 1 and len(rows) > 1:  # each launch loads the model: threads on the plan only
        lines += ["# the thread axis for the plan row only: every other row runs with all cores",
                  "[[exclude]]", f'"--threads" = {threads[-1]}', '"args.placement" = [',
                  *[f"  {json.dumps(argv)},  # {label}" for label, argv, _, _ in rows[1:]], "]", ""]
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
    if s.vram_budget and all_gpus:  # the report marks rows over it: a faster row over budget is no win
        per_gpu = vram_budgets(host, s, all_gpus)
        gib = [per_gpu[g] / GIB for g in sorted(all_gpus)]
        lines += ["[report]", f"vram_budget_gib = {json.dumps(gib)}", ""]
    return "\n".join(lines)
