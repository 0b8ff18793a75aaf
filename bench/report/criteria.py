"""The recommendation and the runbook's success criteria, judged pass / fail / unknown.

Why unknown is its own verdict: a criterion we did not measure (no memory samples, no decode
cell) must never read as a pass. A configuration whose measured rate is above its physical
ceiling is not recommended: that number is a measurement error, not a result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bench.report.options import ReportOptions
from bench.report.summary import GB, ConfigSummary

Verdict = Literal["pass", "fail", "unknown"]


@dataclass(frozen=True)
class Criterion:
    name: str
    goal: str
    measured: str
    verdict: Verdict


@dataclass(frozen=True)
class Recommendation:
    config: ConfigSummary | None
    meets_headroom: bool
    why: str


def recommend(summaries: list[ConfigSummary], opts: ReportOptions) -> Recommendation:
    """Best decode tokens/s among configs that keep the headroom goal; else say what is missing."""
    measured = [s for s in summaries if s.decode_tps is not None and s.served]
    trusted = [s for s in measured if not s.above_ceiling]
    if not measured:
        return Recommendation(None, False, "No configuration produced a decode measurement")
    if not trusted:
        return Recommendation(None, False, "Every measured rate is above its physical ceiling: "
                                           "measurement error, nothing to recommend")
    keeps = [s for s in trusted if s.headroom_gb is not None and s.headroom_gb > opts.min_headroom_gb]
    best = max(keeps or trusted, key=lambda s: s.decode_judged or 0.0)
    excluded = len(measured) - len(trusted)
    note = f" ({excluded} configuration(s) above their ceiling excluded)" if excluded else ""
    if keeps:
        return Recommendation(best, True, f"Fastest decode of the {len(keeps)} configuration(s) keeping "
                                          f"> {opts.min_headroom_gb:g} GB host memory free{note}")
    unknown = all(s.headroom_gb is None for s in trusted)
    why = ("host memory headroom was not measured; fastest decode shown" if unknown else
           f"no configuration keeps > {opts.min_headroom_gb:g} GB host memory free; fastest decode shown")
    return Recommendation(best, False, why[0].upper() + why[1:] + note)


def _fmt(value: float | None, unit: str, digits: int = 1) -> str:
    return "not measured" if value is None else f"{value:.{digits}f} {unit}"


def _decode_note(s: ConfigSummary | None) -> str:
    if s is None:
        return ""
    if s.above_ceiling:
        return " (above its physical ceiling: measurement error)"
    if s.decode_disagrees:
        return (f" (server timings; our client measured {s.decode_tps:.1f}, ratio "
                f"{s.client_server_ratio:.2f})" if s.decode_judged == s.server_decode_tps else
                f" (client; server timings say {s.server_decode_tps:.1f})")
    return ""


def criteria(rec: Recommendation, summaries: list[ConfigSummary], opts: ReportOptions) -> list[Criterion]:
    """The Definition-of-Done rows, judged on the recommended (or fastest) configuration."""
    s = rec.config
    decode = s.decode_judged if s else None
    if decode is None:
        v_decode: Verdict = "unknown"
    elif s is not None and s.above_ceiling:
        v_decode = "unknown"
    else:
        v_decode = "pass" if decode > opts.min_decode_tps else "fail"
    where = f" at concurrency {s.decode_concurrency:g}" if s and s.decode_concurrency else ""
    head = s.headroom_gb if s else None
    v_head: Verdict = "unknown" if head is None else ("pass" if head > opts.min_headroom_gb else "fail")
    total = f" of {s.host_total / GB:.1f} GB" if s and s.host_total else ""
    if s is not None and s.served:
        loaded = f"loaded and served requests ({_fmt(s.load_s, 's')} to healthy)"
        v_load: Verdict = "pass"
    elif summaries:
        failed = [x for x in summaries if not x.served]
        reason = next((x.error for x in failed if x.error), "")
        loaded = f"{len(failed)} of {len(summaries)} launches failed"
        loaded += f": {reason[:160]}" if reason else ""
        v_load = "fail" if len(failed) == len(summaries) else "unknown"
    else:
        loaded, v_load = "no launch recorded", "unknown"
    return [
        Criterion("Decode speed", f"> {opts.min_decode_tps:g} tokens/s per request",
                  _fmt(decode, "tokens/s") + where + _decode_note(s), v_decode),
        Criterion("Host memory headroom during inference",
                  f"> {opts.min_headroom_gb:g} GB MemAvailable, the server's mapped model pages not counted",
                  (f"lowest {s.headroom_basis if s else 'MemAvailable'}: " + _fmt(head, "GB") + total)
                  if head is not None else "not measured",
                  v_head),
        Criterion("Model loaded", "server healthy and serving", loaded, v_load),
    ]
