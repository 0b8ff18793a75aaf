"""Per-cell statistics from request records: percentiles, means and t-based 95 % intervals.

Why a hand-written t table: scipy is a heavy dependency for one quantile; the table below is the
exact two-sided 95 % Student t quantile for df 1..30 and a Cornish-Fisher expansion beyond (error
< 1e-4), which is what the CI columns need.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from bench.schema import RequestRecord

_T975 = (
    12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281,
    2.2010, 2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860,
    2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423,
)
_Z975 = 1.959964


def t975(df: int) -> float:
    """Two-sided 95 % Student t quantile."""
    if df < 1:
        raise ValueError("df must be >= 1")
    if df <= len(_T975):
        return _T975[df - 1]
    z = _Z975
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


def ci95(values: Sequence[float]) -> tuple[float | None, float | None]:
    """t-based 95 % confidence interval of the mean; (None, None) with fewer than 2 values."""
    xs = [v for v in values if v is not None and math.isfinite(v)]
    if len(xs) < 2:
        return None, None
    arr = np.asarray(xs, dtype=float)
    half = t975(len(arr) - 1) * arr.std(ddof=1) / math.sqrt(len(arr))
    m = float(arr.mean())
    return m - half, m + half


def _clean(values: Iterable[float | None]) -> np.ndarray:
    return np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)


def pct(values: Iterable[float | None], q: float) -> float | None:
    arr = _clean(values)
    return float(np.percentile(arr, q)) if arr.size else None


def mean(values: Iterable[float | None]) -> float | None:
    arr = _clean(values)
    return float(arr.mean()) if arr.size else None


def summarize(records: list[RequestRecord], wall_s: float | None) -> dict[str, Any]:
    """Row fields for one cell run from its measured (non-warm-up) requests."""
    measured = [r for r in records if not r.warmup]
    ok = [r for r in measured if r.ok]
    out: dict[str, Any] = {
        "ok_requests": len(ok),
        "errors": len(measured) - len(ok),
        "dropped_connections": sum(r.retries for r in records),
        "token_count_mismatches": sum(r.token_count_mismatch for r in ok),
        "burst_requests": sum(r.burst for r in ok),
        "input_tokens_measured": mean(r.input_tokens for r in ok),
        "output_tokens_measured": mean(r.output_tokens for r in ok),
        "cell_wall_s": wall_s,
    }
    series = {
        "ttft_ms": [r.ttft_ms for r in ok],
        "ttft_content_ms": [r.ttft_content_ms for r in ok],
        "itl_ms": [x for r in ok for x in r.itl_ms],
        "tpot_ms": [r.tpot_ms for r in ok],
        "e2e_ms": [r.e2e_ms for r in ok],
    }
    for name, xs in series.items():
        for q in (50, 90, 99):
            out[f"{name}_p{q}"] = pct(xs, q)
        out[f"{name}_mean"] = mean(xs)
    # a burst-delivered request's client span is not a decode time (see RequestRecord.burst)
    timed = [r for r in ok if not r.burst] or ok
    rates = {
        "decode_tps": [r.decode_tps for r in timed],
        "server_decode_tps": [r.server_decode_tps for r in ok],
        "prefill_tps": [r.prefill_tps for r in ok],
        "server_prefill_tps": [r.server_prefill_tps for r in ok],
    }
    for name, xs in rates.items():
        out[name] = mean(xs)
        lo, hi = ci95(xs)
        out[f"{name}_ci95_lo"], out[f"{name}_ci95_hi"] = lo, hi
    out["decode_tps_p50"] = pct([r.decode_tps for r in ok], 50)
    total_out = sum(r.output_tokens or 0 for r in ok)
    out["throughput_tps"] = total_out / wall_s if wall_s and ok else None
    out["ci_basis"] = "requests" if len(ok) >= 2 else ""
    return out
