"""The report's charts, drawn with matplotlib and returned as `data:image/svg+xml` URIs.

Why SVG data URIs: the page must be one file that opens offline and prints sharply; text is
stored as paths, so it reads the same on a box without the fonts. Each function returns a `Plot`
whose `uri` is None (with the reason) when the sweep has nothing to draw, so the page can say so.

One module per figure family: `style` (the shared look, limits, colours), `speed` (rates, Pareto
of decode vs memory), `concurrency` (latency, throughput, per-user vs aggregate) and `footprint`
(peak memory, memory over time). This package re-exports them, so `plots.rates(...)` still works.
"""

from bench.report.plots.concurrency import latency, throughput, user_vs_aggregate
from bench.report.plots.footprint import memory, timeseries
from bench.report.plots.speed import pareto, rates
from bench.report.plots.style import (
    MAX_BARS,
    MAX_LINES,
    MAX_POINTS,
    SPAN_LOG,
    WIDTH,
    Plot,
    colors,
    fastest,
    fit_limits,
    wants_log,
)

__all__ = [
    "MAX_BARS", "MAX_LINES", "MAX_POINTS", "SPAN_LOG", "WIDTH", "Plot", "colors", "fastest", "fit_limits",
    "latency", "memory", "pareto", "rates", "throughput", "timeseries", "user_vs_aggregate", "wants_log",
]
