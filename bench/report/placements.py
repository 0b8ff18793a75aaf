"""The placement section: each configuration's measured vs predicted decode rate, where its bytes went.

Why: a placement sweep (`python -m bench plan --out`) exists to show whether the planner's rows beat
llama.cpp's own `--fit` and the runbook template `-ngl 99 -ot exps=CPU`, and whether its roofline
predicted them. The rows come from results.csv: `placement_source`, `predicted_decode_tps` and
`placement_readback` (the server log's buffer sizes: where the weights, KV cache and compute
buffers really went, for `--fit`'s choice as much as for ours).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pandas as pd

from bench.report.summary import ConfigSummary

HOST_BUFFERS = ("CPU", "CPU_Mapped", "CUDA_Host", "CPU_REPACK", "AMX")


@dataclass
class PlacementRow:
    label: str
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


def placement_rows(rows: pd.DataFrame, summaries: list[ConfigSummary]) -> list[PlacementRow]:
    """One row per configuration that has a placement source; [] for a sweep without them."""
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
        out.append(PlacementRow(s.label, source, s.status, decode, predicted, dict(s.gpu_peak),
                                dict(s.gpu_total), layers, weights, other))
    for ref, attr in (("fit", "vs_fit"), ("template", "vs_template")):
        rates = [r.decode_tps for r in out if r.source == ref and r.decode_tps]
        if not rates:
            continue
        best = max(rates)
        for r in out:
            if r.decode_tps:
                setattr(r, attr, r.decode_tps / best)
    return out


def findings(rows: list[PlacementRow]) -> list[str]:
    """The issue's figures in words: plan vs best row, vs the template, prediction errors."""
    ok = [r for r in rows if r.decode_tps]
    if not ok:
        return []
    lines = []
    best = max(ok, key=lambda r: r.decode_tps or 0)
    plans = [r for r in ok if r.source == "planner"]
    if plans:
        plan = plans[0]  # the spec lists the plan first, then its neighbours
        lines.append(f"planner's row {plan.label}: {plan.decode_tps:.2f} tokens/s, "
                     f"{plan.decode_tps / best.decode_tps:.3f} x the best measured row ({best.label}, "  # type: ignore[operator]
                     f"{best.decode_tps:.2f})")
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
        lines.append("not measured: " + "; ".join(f"{r.label} ({r.status})" for r in failed))
    return lines
