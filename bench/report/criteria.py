"""The recommendation and the runbook's success criteria, judged pass / fail / unknown.

Why unknown is its own verdict: a criterion we did not measure (no memory samples, no decode
cell) must never read as a pass. A configuration whose measured rate is above its physical
ceiling is not recommended: that number is a measurement error, not a result.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

from bench.report.data import Sweep
from bench.report.objective import Objective, Score, parse_objective, score, separation
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
    objective: Objective = dataclasses.field(default_factory=lambda: parse_objective("decode"))
    score: Score | None = None  # the leader's
    # configurations the leader cannot be told apart from (95 % CIs overlap), best first
    coleaders: tuple[tuple[ConfigSummary, Score], ...] = ()
    rule: str = ""
    separate: str = ""  # what would separate the co-leaders, with the estimated time


TIE_RULE = ("co-leaders: configurations whose 95 % confidence interval on the objective overlaps the "
            "leader's (upper bound >= the leader's lower bound); this data cannot order them")


def recommend(summaries: list[ConfigSummary], opts: ReportOptions,
              sweep: Sweep | None = None) -> Recommendation:
    """The leader on the objective among configs that keep the headroom goal, its co-leaders
    (not separable by the 95 % CIs) and what would separate them; else what is missing."""
    obj = parse_objective(opts.objective)
    served = [s for s in summaries if s.served]
    rows = sweep.ok_rows if sweep is not None else None
    scores = {s.config_id: score(obj, s, rows[rows["config_id"] == s.config_id]) if rows is not None
              else Score(s.decode_judged) for s in served}
    measured = [s for s in served if scores[s.config_id].value is not None]
    trusted = [s for s in measured if not s.above_ceiling]
    if not measured:
        reasons = sorted({scores[s.config_id].reason for s in served if scores[s.config_id].reason})
        return Recommendation(None, False, f"No configuration has a value for the objective ({obj.describe})"
                              + (f": {'; '.join(reasons)}" if reasons else ""), obj)
    if not trusted:
        return Recommendation(None, False, "Every measured rate is above its physical ceiling: "
                                           "measurement error, nothing to recommend", obj)
    keeps = [s for s in trusted if s.headroom_gb is not None and s.headroom_gb > opts.min_headroom_gb]
    pool = sorted(keeps or trusted, key=lambda s: -(scores[s.config_id].value or 0.0))
    best = pool[0]
    lead = scores[best.config_id]
    co = tuple((s, scores[s.config_id]) for s in pool[1:]
               if lead.lo is not None and scores[s.config_id].hi is not None
               and scores[s.config_id].hi >= lead.lo)
    separate = _separate(best, lead, co, sweep) if co else ""
    excluded = len(measured) - len(trusted)
    note = f" ({excluded} configuration(s) above their ceiling excluded)" if excluded else ""
    if lead.lo is None:
        note += (". No confidence interval (one repeat and fewer than two requests): run repeats >= 3 "
                 "before trusting the order")
    extra = {"objective": obj, "score": lead, "coleaders": co, "rule": TIE_RULE if co else "",
             "separate": separate}
    if keeps:
        return Recommendation(best, True, f"Best of the {len(keeps)} configuration(s) keeping "
                                          f"> {opts.min_headroom_gb:g} GB host memory free{note}", **extra)
    unknown = all(s.headroom_gb is None for s in trusted)
    why = ("host memory headroom was not measured; the best is shown" if unknown else
           f"no configuration keeps > {opts.min_headroom_gb:g} GB host memory free; the best is shown")
    return Recommendation(best, False, why[0].upper() + why[1:] + note, **extra)


def _separate(best: ConfigSummary, lead: Score, co: tuple[tuple[ConfigSummary, Score], ...],
              sweep: Sweep | None) -> str:
    """What would separate the leader from its co-leaders, and roughly how long it would take."""
    from bench.progress import human_s

    runner, other = co[0]
    sep = separation(lead, other)
    if sep.n_needed is None:
        gap = abs((lead.value or 0) - (other.value or 0)) / max(lead.value or 1, 1e-9) * 100
        return (f"{best.label} and {runner.label} differ by {gap:.1f} % on the mean, well inside the noise: "
                f"separating them would take more than {sep.cap} {sep.basis or 'repeats'} each if the spread "
                "stays as measured; treat them as equal and pick on another ground (memory, simplicity)")
    members = [best] + [s for s, _ in co]
    seconds = None
    if sweep is not None:  # one launch of each member as measured: load time + its cells' wall time
        rows = sweep.ok_rows
        per_config = []
        for s in members:
            mine = rows[rows["config_id"] == s.config_id]
            if not len(mine):
                continue
            repeats = max(mine["repeat"].nunique(), 1)
            per_config.append((s.load_s or 0.0) + float(mine["cell_wall_s"].fillna(0).sum()) / repeats)
        if per_config:
            launch = sum(per_config)
            seconds = ((sep.n_needed - sep.n_now) * launch if sep.basis == "repeats" else
                       launch * (sep.n_needed - sep.n_now) / max(sep.n_now, 1))
    more = (f"{sep.n_needed - sep.n_now} more repeat(s) of each of these {len(members)} configurations "
            f"(repeats = {sep.n_needed} instead of {sep.n_now})" if sep.basis == "repeats" else
            f"longer cells: requests = {sep.n_needed} instead of {sep.n_now} in the objective's cell "
            "(and repeats >= 3, so launch-to-launch noise is in the interval)")
    when = f", about {human_s(seconds)} more" if seconds is not None else ""
    return (f"To separate {best.label} from {runner.label}: {more}{when}, if the means and the spread stay "
            "as measured")


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
