"""What "best" means on the page, how each configuration scores on it, and when two cannot be told apart.

Why a chosen objective: a box serving one chatting user wants decode speed at concurrency 1; a box
serving agents wants aggregate tokens/s at its concurrency, or the most throughput whose TTFT p90
stays under a limit; a box short of VRAM wants tokens/s per GB. The spec's `[report] objective`
(or `--objective`) picks one, and the page states it. The vocabulary and the cells each objective
reads live in `bench.objective`, which a race or halving sweep also prunes its launches by; this
module adds what only the page needs: the confidence interval over repeats and the co-leaders.

Why co-leaders: a winner by noise misleads. Configurations whose 95 % confidence interval
overlaps the leader's are not separable by this data; the page lists them with that rule and
says how many more repeats (or requests) would separate them, and how long that would take.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from bench.objective import (
    SYNTAX,
    Objective,
    decode_cell,
    parse_objective,
    throughput_cell,
    vram_gb,
)
from bench.report.summary import ConfigSummary
from bench.stats import t_quantile

__all__ = ["SYNTAX", "Objective", "Score", "Separation", "parse_objective", "score", "separation"]


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


def score(obj: Objective, s: ConfigSummary, rows: pd.DataFrame) -> Score:
    """How configuration `s` (its ok rows `rows`) does on the objective: the cells are
    `bench.objective`'s (the ones a race or halving sweep pruned by), the CI over repeats."""
    if obj.kind in ("decode", "decode_per_gb"):
        if s.decode_judged is None:
            return Score(None, reason="no decode measurement")
        basis_rows = decode_cell(rows)
        base = _cell_score(basis_rows, "decode_tps") if len(basis_rows) else Score(s.decode_tps)
        scale = (s.decode_judged / s.decode_tps) if s.decode_tps else 1.0  # server timings when lower
        out = Score(s.decode_judged, s.decode_lo * scale if s.decode_lo is not None else None,
                    s.decode_hi * scale if s.decode_hi is not None else None, base.n, base.basis,
                    f"at concurrency {s.decode_concurrency:g}" if s.decode_concurrency else "")
        if obj.kind == "decode":
            return out
        vram = vram_gb(rows)
        if vram <= 0:
            return Score(None, reason="no GPU memory measured")
        return Score(out.value / vram, out.lo / vram if out.lo is not None else None,
                     out.hi / vram if out.hi is not None else None, out.n, out.basis,
                     f"{out.detail}, {vram:.1f} GB peak VRAM")
    cell = throughput_cell(obj, rows)
    if cell.rows is None:
        return Score(None, reason=cell.reason)
    out = _cell_score(cell.rows, "throughput_tps")
    out.detail = cell.detail
    return out


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
