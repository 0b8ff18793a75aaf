"""What "best" means on the page, how each configuration scores on it, and when two cannot be told apart.

Why a chosen objective: a box serving one chatting user wants decode speed at concurrency 1; a box
serving agents wants aggregate tokens/s at its concurrency, or the most throughput whose TTFT p90
stays under a limit; a box short of VRAM wants tokens/s per GB. The spec's `[report] objective`
(or `--objective`) picks one, and the page states it.

Why co-leaders: a winner by noise misleads. Configurations whose 95 % confidence interval
overlaps the leader's are not separable by this data; the page lists them with that rule and
says how many more repeats (or requests) would separate them, and how long that would take.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import pandas as pd

from bench.metric_registry import METRICS, Metric
from bench.report.summary import GB, ConfigSummary
from bench.stats import t_quantile

SYNTAX = ("decode | throughput@N | throughput:ttft_p90<MS | decode_per_gb")
_THROUGHPUT_AT = re.compile(r"throughput@(\d+)")
_TTFT_LIMIT = re.compile(r"throughput:ttft_p90<(\d+(?:\.\d+)?)")


@dataclass(frozen=True)
class Objective:
    text: str
    kind: str  # decode | throughput_at | throughput_ttft | decode_per_gb
    concurrency: int | None = None
    ttft_ms: float | None = None

    @property
    def describe(self) -> str:
        if self.kind == "throughput_at":
            return f"aggregate output tokens/s at concurrency {self.concurrency}"
        if self.kind == "throughput_ttft":
            return (f"the highest aggregate output tokens/s at any concurrency whose TTFT p90 stays under "
                    f"{self.ttft_ms:g} ms")
        if self.kind == "decode_per_gb":
            return "decode tokens/s per request per GB of peak GPU memory (VRAM)"
        return "decode tokens/s per request at each configuration's lowest concurrency (one user)"

    @property
    def metric(self) -> Metric:
        """The registry metric the objective ranks by (decode_per_gb: decode, divided by GB)."""
        return METRICS["throughput_tps" if self.kind.startswith("throughput") else "decode_tps"]

    @property
    def unit(self) -> str:
        return self.metric.unit + (" per GB" if self.kind == "decode_per_gb" else "")

    @property
    def header(self) -> str:
        """The co-leaders table's column: the metric's header (per GB for decode_per_gb)."""
        return self.metric.header + (" per GB" if self.kind == "decode_per_gb" else "")


def parse_objective(text: str) -> Objective:
    """The objective named by `text`; ValueError (one line, the syntax) when it is not one."""
    t = text.strip().replace(" ", "")
    if t in ("decode", "decode@1", "decode_c1"):
        return Objective(text, "decode")
    if t in ("decode_per_gb", "tps_per_gb_vram"):
        return Objective(text, "decode_per_gb")
    if m := _THROUGHPUT_AT.fullmatch(t):
        if int(m.group(1)) < 1:
            raise ValueError(f"objective {text!r}: the concurrency must be at least 1 ({SYNTAX})")
        return Objective(text, "throughput_at", concurrency=int(m.group(1)))
    if m := _TTFT_LIMIT.fullmatch(t):
        return Objective(text, "throughput_ttft", ttft_ms=float(m.group(1)))
    raise ValueError(f"objective {text!r} is not understood: use {SYNTAX}")


@dataclass
class Score:
    """One configuration on the objective: value, 95 % CI, what the CI is over, where it came from."""

    value: float | None
    lo: float | None = None
    hi: float | None = None
    n: int = 0  # repeats (basis "repeats") or requests (basis "requests") behind the CI
    basis: str = ""
    detail: str = ""
    reason: str = ""  # why there is no value

    @property
    def half(self) -> float | None:
        return None if self.lo is None or self.hi is None else (self.hi - self.lo) / 2


def _num(x: object) -> float | None:
    try:
        v = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _cell_score(rows: pd.DataFrame, metric: str) -> Score:
    """Mean of `metric` over the rows (repeats) of one cell, with the rows' CI and its basis."""
    value = _num(rows[metric].mean())
    lo = _num(rows.get(f"{metric}_ci95_lo", pd.Series(dtype=float)).mean())
    hi = _num(rows.get(f"{metric}_ci95_hi", pd.Series(dtype=float)).mean())
    basis = str(rows["ci_basis"].iloc[0]) if "ci_basis" in rows and len(rows) else ""
    n = int(rows["repeat"].nunique()) if basis == "repeats" else int(_num(rows["ok_requests"].mean()) or 0)
    return Score(value, max(lo, 0.0) if lo is not None else None, hi, n, basis)


def _workload(rows: pd.DataFrame) -> pd.DataFrame:
    if not len(rows):
        return rows
    counts = rows.groupby(["input_tokens", "output_tokens"], dropna=False).size()
    inp, out = counts.idxmax()
    return rows[(rows["input_tokens"] == inp) & (rows["output_tokens"] == out)]


def score(obj: Objective, s: ConfigSummary, rows: pd.DataFrame) -> Score:
    """How configuration `s` (its ok rows `rows`) does on the objective."""
    if obj.kind in ("decode", "decode_per_gb"):
        if s.decode_judged is None:
            return Score(None, reason="no decode measurement")
        basis_rows = rows[(rows["concurrency"] == s.decode_concurrency)].dropna(subset=["decode_tps"])
        base = _cell_score(basis_rows, "decode_tps") if len(basis_rows) else Score(s.decode_tps)
        scale = (s.decode_judged / s.decode_tps) if s.decode_tps else 1.0  # server timings when lower
        out = Score(s.decode_judged, s.decode_lo * scale if s.decode_lo is not None else None,
                    s.decode_hi * scale if s.decode_hi is not None else None, base.n, base.basis,
                    f"at concurrency {s.decode_concurrency:g}" if s.decode_concurrency else "")
        if obj.kind == "decode":
            return out
        vram = sum(s.gpu_peak.values()) / GB if s.gpu_peak else 0.0
        if vram <= 0:
            return Score(None, reason="no GPU memory measured")
        return Score(out.value / vram, out.lo / vram if out.lo is not None else None,
                     out.hi / vram if out.hi is not None else None, out.n, out.basis,
                     f"{out.detail}, {vram:.1f} GB peak VRAM")
    data = _workload(rows.dropna(subset=["throughput_tps"]))
    if obj.kind == "throughput_at":
        at = data[data["concurrency"] == obj.concurrency]
        if not len(at):
            return Score(None, reason=f"no successful cell at concurrency {obj.concurrency}")
        out = _cell_score(at, "throughput_tps")
        out.detail = f"at concurrency {obj.concurrency}"
        return out
    best: Score | None = None
    for conc, grp in data.groupby("concurrency"):
        ttft = _num(grp["ttft_ms_p90"].mean())
        if ttft is None or ttft >= (obj.ttft_ms or 0):
            continue
        cand = _cell_score(grp, "throughput_tps")
        cand.detail = f"at concurrency {conc:g} (TTFT p90 {ttft:.0f} ms)"
        if best is None or (cand.value or 0) > (best.value or 0):
            best = cand
    return best or Score(None, reason=f"no concurrency kept TTFT p90 under {obj.ttft_ms:g} ms")


def _t(n: int) -> float:
    return t_quantile(0.975, n - 1) / math.sqrt(n) if n >= 2 else math.inf


@dataclass
class Separation:
    """How to tell the co-leaders apart: more of the CI's basis (repeats or requests)."""

    n_now: int
    n_needed: int | None  # None: no amount up to `cap` separates them (the means are too close)
    basis: str
    cap: int = 200


def separation(leader: Score, other: Score, cap: int = 200) -> Separation:
    """Smallest n with non-overlapping CIs if the means and spreads stay as measured.

    A half-width shrinks like t(0.975, n-1)/sqrt(n); the CIs stop overlapping when the two
    half-widths sum to less than the difference of the means.
    """
    n = max(min(leader.n, other.n), 2)
    d = abs((leader.value or 0) - (other.value or 0))
    spread = (leader.half or 0) + (other.half or 0)
    basis = leader.basis or other.basis or "repeats"
    if d <= 0 or spread <= 0:
        return Separation(n, None, basis, cap=cap)
    for k in range(n + 1, cap + 1):
        if spread * _t(k) / _t(n) < d:
            return Separation(n, k, basis, cap=cap)
    return Separation(n, None, basis, cap=cap)
