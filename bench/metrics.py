"""Per-cell metrics from request records: the row fields `bench.metric_registry` names as computed
from requests (percentiles, means, t-based 95 % intervals from `bench.stats`).
"""

from __future__ import annotations

from typing import Any

from bench.schema import RequestRecord
from bench.stats import ci95, mean, pct


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
    # a burst-delivered request's client span is not a decode time (see RequestRecord.burst); the
    # server's rate is averaged over the same requests, so client/server compares like with like
    timed = [r for r in ok if not r.burst] or ok
    rates = {
        "decode_tps": [r.decode_tps for r in timed],
        "server_decode_tps": [r.server_decode_tps for r in timed],
        "prefill_tps": [r.prefill_tps for r in ok],
        "server_prefill_tps": [r.server_prefill_tps for r in ok],
    }
    for name, xs in rates.items():
        out[name] = mean(xs)
        lo, hi = ci95(xs)
        out[f"{name}_ci95_lo"], out[f"{name}_ci95_hi"] = lo, hi
    out["decode_tps_p50"] = pct([r.decode_tps for r in ok], 50)
    out |= paired_decode([r for r in ok if not r.burst])  # none: no token times were decode times
    total_out = sum(r.output_tokens or 0 for r in ok)
    out["throughput_tps"] = total_out / wall_s if wall_s and ok else None
    out["ci_basis"] = "requests" if len(ok) >= 2 else ""
    return out


def paired_decode(records: list[RequestRecord]) -> dict[str, float | None]:
    """Client vs server decode over the same requests, pooled (registry: decode_client_over_server).

    Why pooled, not a ratio of the two mean rates: a request whose whole decode takes 2 ms (a tiny
    model) swings its rate 5x when one thread waits out a scheduler slice, and means of rates are
    dominated by such requests; summed steps over summed time weigh every decode millisecond once,
    on both clocks alike."""
    steps_c = span_c = steps_s = span_s = 0.0
    windows = []
    for r in records:
        t = r.server_timings or {}
        n_s, ms_s = t.get("predicted_n"), t.get("predicted_ms")
        span = sum(r.itl_ms)
        if not (r.output_tokens and r.output_tokens > 1 and span > 0 and n_s and n_s > 1 and ms_s):
            continue
        steps_c, span_c = steps_c + r.output_tokens - 1, span_c + span
        steps_s, span_s = steps_s + n_s - 1, span_s + ms_s
        windows.append(ms_s)
    ratio = (steps_c / span_c) / (steps_s / span_s) if span_c and span_s and steps_s else None
    return {"decode_client_over_server": ratio, "server_decode_window_ms": pct(windows, 50)}
