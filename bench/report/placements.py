"""The placement section: each configuration's measured vs predicted decode rate, where its bytes went.

Why: a placement sweep (`python -m bench plan --out`) exists to show whether the planner's rows beat
llama.cpp's own `--fit` and the runbook template `-ngl 99 -ot exps=CPU`, and whether its roofline
predicted them. The rows come from results.csv: `placement_source`, `predicted_decode_tps` and
`placement_readback` (the server log's buffer sizes: where the weights, KV cache and compute
buffers really went, for `--fit`'s choice as much as for ours).

A user's question is whether a placement fits the GPU memory that was free, not the card's total:
each GPU's use is its NVML peak less what was in use when the launch began, judged against the
free memory the facts recorded at sweep start and against the VRAM budget (`vram_budget_gib`, which
`bench plan --vram-budget` writes into the spec's `[report]` table). A row over either is marked
and never the "best measured" row of the findings: it would not run on the box the plan was for.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pandas as pd

from bench.report.data import Sweep, launch_series
from bench.report.modelbytes import TENSOR_GROUPS, ModelBytes
from bench.report.placement import device_of_buffer, group_bytes
from bench.report.summary import ConfigSummary

HOST_BUFFERS = ("CPU", "CPU_Mapped", "CUDA_Host", "CPU_REPACK", "AMX")
MIB, GIB = 2**20, 2**30
KV_GROUP = "KV cache"
FIRST_SAMPLE_S = 0.05  # a launch's first memory sample this soon is before llama.cpp touched a GPU
AGREE = (0.05, 64 * MIB)  # argv mapping vs the log's GPU weights: within 5 % or 64 MiB


@dataclass
class GpuUse:
    """One GPU of one configuration: the server's own peak against free memory and the budget."""

    index: int
    peak: float | None  # NVML used, peak over the launch (what was in use before included)
    total: float | None
    free_at_start: float | None  # facts at sweep start, else total less the launch's first sample
    free_source: str  # "sweep start" | "launch" | ""
    in_use_before: float | None  # at the launch's first sample, else total - free at sweep start
    budget: float | None = None  # bytes the placement may use (vram_budget_gib)
    buffers: float | None = None  # the server log's buffers on this GPU (weights, KV, compute)

    @property
    def used(self) -> float | None:
        """The server's own peak: NVML's device-wide peak less what was in use before it started."""
        if self.peak is None:
            return None
        return max(self.peak - (self.in_use_before or 0.0), 0.0)

    @property
    def over_free(self) -> bool:
        return self.used is not None and self.free_at_start is not None and self.used > self.free_at_start

    @property
    def over_budget(self) -> bool:
        return self.used is not None and self.budget is not None and self.used > self.budget

    def problems(self) -> list[str]:
        out = []
        if self.over_free:
            out.append(f"GPU{self.index} used {self.used / GIB:.2f} GiB > {self.free_at_start / GIB:.2f} GiB "  # type: ignore[operator]
                       f"free at {self.free_source}")
        if self.over_budget:
            out.append(f"GPU{self.index} used {self.used / GIB:.2f} GiB > budget {self.budget / GIB:g} GiB")  # type: ignore[operator]
        if out and self.buffers is not None and self.used is not None:
            out[-1] += f" (log buffers {self.buffers / GIB:.2f} GiB + CUDA context, allocator)"
        return out


@dataclass
class GroupTable:
    """Where each tensor group went: {group: {llama.cpp GPU number or None for host: bytes}}."""

    devices: list[int | None]  # llama.cpp's device numbers (CUDA0, CUDA1, ...), None for the host
    cells: dict[str, dict[int | None, float]]
    note: str = ""
    names: list[str] = field(default_factory=list)  # column headers: the GPUs' indices as the sweep saw them

    def rows(self) -> list[tuple[str, list[float | None]]]:
        """(group, bytes per device in `devices` order) for every group with bytes, KV last."""
        order = [*TENSOR_GROUPS, KV_GROUP]
        return [(g, [self.cells[g].get(d) for d in self.devices]) for g in order
                if g in self.cells and any(self.cells[g].values())]

    def totals(self) -> list[float]:
        return [sum(v.get(d, 0.0) for v in self.cells.values()) for d in self.devices]


@dataclass
class PlacementRow:
    label: str  # the configuration's label: every axis value, the full placement flags included
    source: str
    status: str
    decode_tps: float | None
    predicted_tps: float | None
    gpu_peak: dict[int, float]
    gpu_total: dict[int, float]
    layers: str  # "offloaded/total" from the log
    weights_mib: dict[str, float] = field(default_factory=dict)  # device -> model buffer MiB
    other_mib: dict[str, float] = field(default_factory=dict)  # "CUDA0 KV" etc.
    vs_fit: float | None = None
    vs_template: float | None = None
    gpus: list[GpuUse] = field(default_factory=list)
    groups: GroupTable | None = None
    groups_note: str = ""  # why there is no group table
    name: str = ""  # short: the spec's [[placement]] label and the other axes; else the label

    def __post_init__(self) -> None:
        self.name = self.name or self.label

    @property
    def problems(self) -> list[str]:
        """Why this row would not run where the plan was made for: over free memory or the budget."""
        return [p for g in self.gpus for p in g.problems()]

    @property
    def over(self) -> str:
        """The table's short verdict: "", "budget", "free memory" or both."""
        kinds = [k for k, hit in (("free memory", any(g.over_free for g in self.gpus)),
                                  ("budget", any(g.over_budget for g in self.gpus))) if hit]
        return " + ".join(kinds)

    @property
    def prediction_error(self) -> float | None:
        """predicted / measured - 1 (the issue's target: within 15 % on every ok row)."""
        if not self.decode_tps or not self.predicted_tps:
            return None
        return self.predicted_tps / self.decode_tps - 1

    @property
    def gpu_weights_mib(self) -> float:
        return sum(v for k, v in self.weights_mib.items() if k not in HOST_BUFFERS)

    @property
    def host_weights_mib(self) -> float:
        return sum(v for k, v in self.weights_mib.items() if k in HOST_BUFFERS)


def _first(values: pd.Series) -> str:
    for v in values:
        if isinstance(v, str) and v.strip():
            return v
    return ""


def _number(values: pd.Series) -> float | None:
    nums = pd.to_numeric(values, errors="coerce").dropna()
    return float(nums.iloc[0]) if len(nums) else None


def placement_rows(rows: pd.DataFrame, summaries: list[ConfigSummary], sweep: Sweep | None = None,
                   model: ModelBytes | None = None) -> list[PlacementRow]:
    """One row per configuration that has a placement source; [] for a sweep without them.

    With the sweep, each GPU's use is judged against free memory and the budget; with the model,
    each row gets its tensor-group table (bytes per group per device)."""
    if "placement_source" not in rows or not rows["placement_source"].astype(str).str.strip().any():
        return []
    out: list[PlacementRow] = []
    for s in summaries:
        mine = rows[rows["config_id"] == s.config_id]
        source = _first(mine["placement_source"]) or "manual"
        readback: dict = {}
        try:
            readback = json.loads(_first(mine.get("placement_readback", pd.Series(dtype=str))) or "{}")
        except ValueError:
            readback = {}
        buffers = readback.get("buffers_mib") or {}
        weights = {k.rsplit(" ", 1)[0]: v for k, v in buffers.items() if k.endswith(" model")}
        other = {k: v for k, v in buffers.items() if not k.endswith(" model")}
        layers = (f"{readback['offloaded_layers']}/{readback['total_layers']}"
                  if "offloaded_layers" in readback else "")
        decode = s.decode_judged if s.served else None
        predicted = _number(mine["predicted_decode_tps"]) if "predicted_decode_tps" in mine else None
        row = PlacementRow(s.label, source, s.status, decode, predicted, dict(s.gpu_peak), dict(s.gpu_total),
                           layers, weights, other)
        if sweep is not None:
            row.name = short_name(sweep, s.label, mine)
            row.gpus = gpu_use(sweep, s, buffers)
        if model is not None:
            row.groups, row.groups_note = group_table(model, s, row, sweep)
        out.append(row)
    for ref, attr in (("fit", "vs_fit"), ("template", "vs_template")):
        rates = [r.decode_tps for r in out if r.source == ref and r.decode_tps]
        if not rates:
            continue
        best = max(rates)
        for r in out:
            if r.decode_tps:
                setattr(r, attr, r.decode_tps / best)
    return out


def short_name(sweep: Sweep, label: str, rows: pd.DataFrame) -> str:
    """The spec's `[[placement]]` label for this row's placement flags, with the other axes' values."""
    value = _first(rows.get("axis.args.placement", pd.Series(dtype=str)))
    entries = sweep.spec.get("placement") if isinstance(sweep.spec.get("placement"), list) else []
    for entry in entries:
        args = entry.get("args") if isinstance(entry, dict) else None
        if value and isinstance(args, list) and " ".join(map(str, args)) == value and entry.get("label"):
            rest = label.replace(f"placement={value}", "").strip()
            return f"{entry['label']} · {rest}" if rest else str(entry["label"])
    return label


def budgets(sweep: Sweep) -> dict[int, float]:
    """VRAM budget per GPU index in bytes (`vram_budget_gib`; the last figure covers the GPUs after it)."""
    given = sweep.options.vram_budget_gib
    if not given:
        return {}
    return {i: given[min(k, len(given) - 1)] * GIB for k, i in enumerate(sweep.gpu_indices())}


def _launch_baseline(sweep: Sweep, s: ConfigSummary) -> list[float]:
    """GPU memory in use when this launch began (its first memory sample, if taken before CUDA init)."""
    samples = launch_series(sweep, s.run_json)
    first = samples[0] if samples else {}
    early = isinstance(first.get("t"), int | float) and first["t"] <= FIRST_SAMPLE_S
    used = first.get("gpu_used") if early else None
    return [float(x) for x in used] if isinstance(used, list) else []


def gpu_use(sweep: Sweep, s: ConfigSummary, buffers_mib: dict[str, float] | None = None) -> list[GpuUse]:
    """Each GPU's peak of this configuration against free memory (facts at sweep start) and budget."""
    facts = {g.index: g for g in sweep.host.gpus}
    budget = budgets(sweep)
    baseline = _launch_baseline(sweep, s)
    out = []
    for i in sorted(set(s.gpu_peak) | set(s.gpu_total) | set(budget)):
        g = facts.get(i)
        total = s.gpu_total.get(i) or (g.mem_total_bytes if g else None)
        free, where = (g.mem_free_bytes, "sweep start") if g and g.mem_free_bytes is not None else (None, "")
        before = baseline[i] if i < len(baseline) else None
        if free is None and before is not None and total:
            free, where = total - before, "launch"
        if before is None and free is not None and total:
            before = max(total - free, 0.0)
        on_gpu = [v for k, v in (buffers_mib or {}).items() if device_of_buffer(k.rsplit(" ", 1)[0]) == i]
        out.append(GpuUse(i, s.gpu_peak.get(i), total, free, where, before, budget.get(i),
                          sum(on_gpu) * MIB if on_gpu else None))
    return out


def _log_gpu_weights(row: PlacementRow) -> float | None:
    return row.gpu_weights_mib * MIB if row.weights_mib else None


def group_table(model: ModelBytes, s: ConfigSummary, row: PlacementRow,
                sweep: Sweep | None) -> tuple[GroupTable | None, str]:
    """Bytes of each tensor group per device, from the same mapping as the ceiling (placement.py),
    plus the KV cache the server log reports; (None, why) where the mapping cannot know."""
    if s.placement is None:
        return None, s.ceiling_note or "placement not modelled for this launch"
    n_gpus = len(s.placement_gpu_mem)
    cells = group_bytes(model, s.placement, n_gpus, s.placement_gpu_mem)
    mapped_gpu = sum(b for per in cells.values() for d, b in per.items() if d is not None)
    logged = _log_gpu_weights(row)
    if logged is not None and abs(mapped_gpu - logged) > max(AGREE[0] * max(logged, mapped_gpu), AGREE[1]):
        return None, (f"llama.cpp put {logged / MIB:,.0f} MiB of weights on the GPUs, the launch flags say "
                      f"{mapped_gpu / MIB:,.0f} MiB: it chose the placement at launch (--fit), so the groups "
                      "are not derived from the flags; the log's buffers per device are in the table above")
    kv: dict[int | None, float] = {}
    for name, mib in row.other_mib.items():
        buffer, _, kind = name.rpartition(" ")
        if kind == "KV":
            device = device_of_buffer(buffer)
            kv[device] = kv.get(device, 0.0) + mib * MIB
    if kv:
        cells[KV_GROUP] = kv
    indices = sweep.gpu_indices() if sweep is not None else []
    devices: list[int | None] = [*range(n_gpus), None]
    names = [f"GPU{indices[k] if k < len(indices) else k}" for k in range(n_gpus)] + ["host"]
    note = "" if kv else "KV cache: not in the server log (run with -lv 4 to read it back)"
    if logged is not None:
        agree = f"GPU weights agree with the server log ({logged / MIB:,.0f} MiB)"
        note = "; ".join(filter(None, [note, agree]))
    return GroupTable(devices, cells, note, names), ""


def findings(rows: list[PlacementRow]) -> list[str]:
    """The issue's figures in words: plan vs best row, vs the template, prediction errors.

    "Best measured" is the best row that fits (free memory at start, VRAM budget): a faster row over
    the budget is named as such, never silently the yardstick."""
    ok = [r for r in rows if r.decode_tps]
    if not ok:
        return []
    lines = []
    fits = [r for r in ok if not r.problems] or ok
    best = max(fits, key=lambda r: r.decode_tps or 0)
    fastest = max(ok, key=lambda r: r.decode_tps or 0)
    over = [r for r in ok if r.problems]
    if over:
        lines.append(f"over free GPU memory or the VRAM budget, not ranked ({len(over)} of {len(ok)} rows): "
                     + "; ".join(f"{r.name}: {', '.join(r.problems)}" for r in over))
    if fastest is not best:
        lines.append(f"fastest row {fastest.name} ({fastest.decode_tps:.2f} tokens/s) is over; "
                     f"best within: {best.name} ({best.decode_tps:.2f})")
    plans = [r for r in ok if r.source == "planner"]
    if plans:
        plan = plans[0]  # the spec lists the plan first, then its neighbours
        within = " within free memory and budget" if over else ""
        ratio = plan.decode_tps / best.decode_tps  # type: ignore[operator]
        lines.append(f"planner's row {plan.name}: {plan.decode_tps:.2f} tokens/s, {ratio:.3f} x the best "
                     f"measured row{within} ({best.name}, {best.decode_tps:.2f})"
                     + ("; the plan itself is over (above)" if plan.problems else ""))
        if plan.vs_template:
            lines.append(f"planner's row / best runbook template row: {plan.vs_template:.2f} x")
        if plan.vs_fit:
            lines.append(f"planner's row / best --fit row: {plan.vs_fit:.2f} x")
    errors = [r.prediction_error for r in ok if r.prediction_error is not None]
    if errors:
        worst = max(errors, key=abs)
        lines.append(f"|predicted / measured - 1| over {len(errors)} predicted rows: max {abs(worst):.1%}, "
                     f"mean {sum(abs(e) for e in errors) / len(errors):.1%}")
    failed = [r for r in rows if not r.decode_tps]
    if failed:
        lines.append("not measured: " + "; ".join(f"{r.name} ({r.status})" for r in failed))
    return lines
