"""What "best" means: the one objective that both prunes launches (race, halving) and recommends.

Why one home: the strategy used to rank a launch by the geometric mean of `throughput_tps` over all
cells while the page recommended by decode at concurrency 1, so a race could drop the configuration
the page would have recommended. Now the spec's `[report] objective` (the report's `--objective`
re-judges a recorded sweep) is parsed here, and the same cell selection scores one launch for the
strategy (`launch_score`) and every repeat of a configuration for the page
(`bench.report.objective.score`, which adds the confidence interval).

    decode                      decode tokens/s per request at the lowest concurrency (one user)
    throughput@N                aggregate output tokens/s at concurrency N
    throughput:ttft_p90<MS      the most aggregate tokens/s at any concurrency whose TTFT p90 < MS
    decode_per_gb               decode tokens/s per GB of peak GPU memory (VRAM)

The older `[strategy_options] objective = { metric = ..., concurrency = ... }` table maps onto this
vocabulary where it has an equivalent (`legacy_objective`) and is a one-line error otherwise.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bench.metric_registry import GB, METRICS, Metric
from bench.schema import OK_STATUSES

if TYPE_CHECKING:
    import pandas as pd

SYNTAX = "decode | throughput@N | throughput:ttft_p90<MS | decode_per_gb"
DEFAULT = "decode"
DISAGREE = (0.8, 1.25)  # client/server decode ratio outside this band: judge by the lower of the two
PRUNING = ("race", "halving")  # strategies whose launches the objective decides
_THROUGHPUT_AT = re.compile(r"throughput@(\d+)")
_TTFT_LIMIT = re.compile(r"throughput:ttft_p90<(\d+(?:\.\d+)?)")
_GPU_PEAK = re.compile(r"gpu\d+_mem_peak_bytes")
_LENGTHS = ("concurrency", "input_tokens", "output_tokens")


@dataclass(frozen=True)
class Objective:
    text: str
    kind: str  # decode | throughput_at | throughput_ttft | decode_per_gb
    concurrency: int | None = None
    ttft_ms: float | None = None

    @property
    def canonical(self) -> str:
        """The objective spelt one way (aliases and spaces folded), to compare two of them."""
        if self.kind == "throughput_at":
            return f"throughput@{self.concurrency}"
        if self.kind == "throughput_ttft":
            return f"throughput:ttft_p90<{self.ttft_ms:g}"
        return self.kind

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
    t = str(text).strip().replace(" ", "")
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


def legacy_objective(value: Any) -> str:
    """`[strategy_options] objective` (the older strategy-only form) as the one objective's text.

    `{ metric = "decode_tps", concurrency = 1 }` is `decode`, `{ metric = "throughput_tps",
    concurrency = N }` is `throughput@N`, a string is read as the objective itself; anything else
    (a geometric mean over every cell, a latency metric) has no equivalent: ValueError, one line.
    """
    if isinstance(value, str):
        return parse_objective(value).text
    fix = f"set [report] objective = \"{SYNTAX}\" instead (it ranks launches and the report alike)"
    if not isinstance(value, Mapping) or set(value) - {"metric", "concurrency"}:
        raise ValueError(f"strategy_options.objective {value!r} is not understood: {fix}")
    metric, conc = value.get("metric", "throughput_tps"), value.get("concurrency")
    if metric == "decode_tps" and conc == 1:
        return "decode"
    if metric == "throughput_tps" and isinstance(conc, int) and not isinstance(conc, bool) and conc >= 1:
        return f"throughput@{conc}"
    raise ValueError(f"strategy_options.objective {dict(value)!r} has no equivalent in the one objective: "
                     f"{fix}")


def spec_objective(spec: Mapping[str, Any]) -> str | None:
    """The objective text a spec (its TOML as a dict) names, or None for the default.

    `[report] objective` wins; the older `[strategy_options] objective` is mapped to it, and a spec
    that names both differently is a one-line ValueError (which one would rank the launches?).
    """
    report = spec.get("report")
    text = report.get("objective") if isinstance(report, Mapping) else None
    options = spec.get("strategy_options")
    if not isinstance(options, Mapping) or "objective" not in options:
        return text
    legacy = legacy_objective(options["objective"])
    if text is not None and parse_objective(text).canonical != parse_objective(legacy).canonical:
        raise ValueError(f"two objectives: [report] objective = {text!r} and strategy_options.objective "
                         f"(= {legacy!r}); remove strategy_options.objective, [report] objective ranks both")
    return text if text is not None else legacy


# -- which cells an objective reads (one place for the page and the strategy) -----------------------

def _frame(rows: pd.DataFrame | Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    import pandas as pd

    frame = rows.copy() if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    for col in frame.columns:
        if col in METRICS or col in _LENGTHS or _GPU_PEAK.fullmatch(col):
            frame[col] = pd.to_numeric(frame[col], errors="coerce")
    return frame


def _mean(series: pd.Series) -> float | None:
    import pandas as pd

    v = pd.to_numeric(series, errors="coerce").mean()
    return float(v) if v == v and math.isfinite(v) else None


def judged_decode(client: float | None, server: float | None) -> float | None:
    """The decode figure that ranks: the lower of client and server timings when they disagree."""
    if client is None or not server:
        return client
    return client if DISAGREE[0] <= client / server <= DISAGREE[1] else min(client, server)


def decode_cell(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows of the decode cell: the lowest concurrency measured, its longest output."""
    measured = rows.dropna(subset=["decode_tps"]) if "decode_tps" in rows else rows.iloc[0:0]
    if not len(measured):
        return measured
    at = measured[measured["concurrency"] == measured["concurrency"].min()]
    return at[at["output_tokens"] == at["output_tokens"].max()] if "output_tokens" in at else at


def main_workload(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows of the most measured (input, output) length pair: throughputs compare like with like."""
    keys = [k for k in ("input_tokens", "output_tokens") if k in rows]
    if not len(rows) or not keys:
        return rows
    top = rows.groupby(keys, dropna=False).size().idxmax()
    top = top if isinstance(top, tuple) else (top,)
    keep = rows[keys[0]] == top[0]
    for key, value in zip(keys[1:], top[1:], strict=True):
        keep &= rows[key] == value
    return rows[keep]


def vram_gb(rows: pd.DataFrame) -> float:
    """Peak GPU memory over these rows, summed over GPUs (each GPU's own peak), in GB."""
    return sum(float(rows[c].max()) for c in rows.columns
               if _GPU_PEAK.fullmatch(c) and rows[c].notna().any()) / GB


@dataclass
class Cell:
    """The rows (every repeat given) an objective reads, or why there are none."""

    rows: pd.DataFrame | None
    detail: str = ""
    reason: str = ""


def throughput_cell(obj: Objective, rows: pd.DataFrame) -> Cell:
    """For throughput@N and throughput:ttft_p90<MS: the concurrency's rows on the main workload."""
    measured = rows.dropna(subset=["throughput_tps"]) if "throughput_tps" in rows else rows.iloc[0:0]
    data = main_workload(measured)
    if obj.kind == "throughput_at":
        at = data[data["concurrency"] == obj.concurrency]
        if not len(at):
            return Cell(None, reason=f"no successful cell at concurrency {obj.concurrency}")
        return Cell(at, f"at concurrency {obj.concurrency}")
    best: Cell | None = None
    best_value = -math.inf
    for conc, grp in data.groupby("concurrency"):
        ttft = _mean(grp["ttft_ms_p90"]) if "ttft_ms_p90" in grp else None
        if ttft is None or ttft >= (obj.ttft_ms or 0):
            continue
        value = _mean(grp["throughput_tps"]) or 0.0
        if value > best_value:
            best, best_value = Cell(grp, f"at concurrency {conc:g} (TTFT p90 {ttft:.0f} ms)"), value
    return best or Cell(None, reason=f"no concurrency kept TTFT p90 under {obj.ttft_ms:g} ms")


def launch_score(rows: Iterable[Mapping[str, Any]] | pd.DataFrame,
                 objective: Objective | str) -> float | None:
    """One launch's value on the objective (higher is better), or None when it failed or has none.

    A launch with a row that is neither ok nor partial (failed start, oom-guard, dead server, no
    request succeeded) failed: a configuration that cannot run its workload cannot be the winner.
    A partial row (some requests failed) still counts; its rates already show the loss. The cells
    and the figure are the page's (`bench.report.objective.score`), over this launch's rows only.
    """
    obj = parse_objective(objective) if isinstance(objective, str) else objective
    frame = _frame(rows)
    if not len(frame):
        return None
    status = frame["status"].astype(str) if "status" in frame else None
    if status is not None and not status.isin(OK_STATUSES).all():
        return None
    if obj.kind in ("decode", "decode_per_gb"):
        cell = decode_cell(frame)
        if not len(cell):
            return None
        server = _mean(cell["server_decode_tps"]) if "server_decode_tps" in cell else None
        value = judged_decode(_mean(cell["decode_tps"]), server)
        if obj.kind == "decode_per_gb" and value is not None:
            vram = vram_gb(frame)
            value = value / vram if vram > 0 else None
    else:
        picked = throughput_cell(obj, frame)
        value = _mean(picked.rows["throughput_tps"]) if picked.rows is not None else None
    return value if value is not None and value > 0 else None
