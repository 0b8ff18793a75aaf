"""Shared look of every report figure: matplotlib settings, sizes, limits, colours, SVG data URIs.

Why narrow figures (WIDTH inches, panels stacked, legends below): the page is read on phones too;
a 390 px screen shows a WIDTH-inch figure at ~0.6 of its size, so 12 pt text stays ~9.5 px. Rates
that span more than SPAN_LOG x use a log axis (CPU and GPU rows on one linear axis squash the CPU
ones onto zero), and every reference line (ceiling, goal, capacity) is inside the axis limits.
"""

from __future__ import annotations

import base64
import io
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from bench.report.summary import ConfigSummary

plt.rcParams.update({
    "svg.fonttype": "path", "svg.hashsalt": "omni-report", "font.size": 12, "axes.titlesize": 12.5,
    "axes.labelsize": 12, "xtick.labelsize": 11.5, "ytick.labelsize": 11.5,
    "axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False, "axes.spines.right": False,
    "legend.fontsize": 11, "legend.framealpha": 0.9,
})
WIDTH = 6.4  # inches: every figure, so the page scales them alike (see the module docstring)
SPAN_LOG = 10.0  # max/min of the plotted rates above which the axis is logarithmic
MAX_BARS = 24  # configurations per bar chart: the fastest, so a 100-launch sweep stays readable
MAX_LINES = 8  # configurations per line chart (and panels per small-multiples figure)
MAX_POINTS = 1500  # per time-series line: keeps the file small, far below what the eye resolves


@dataclass(frozen=True)
class Plot:
    key: str
    title: str
    caption: str
    uri: str | None = None
    reason: str = ""


def to_uri(fig: plt.Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="svg", metadata={"Date": None}, bbox_inches="tight")
    plt.close(fig)
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def wants_log(values: Sequence[float | None]) -> bool:
    """True when the positive values span more than SPAN_LOG x."""
    pos = [float(v) for v in values if v is not None and v == v and v > 0]
    return len(pos) >= 2 and max(pos) / min(pos) > SPAN_LOG


def fit_limits(ax: plt.Axes, values: Sequence[float | None], axis: str = "x", log: bool = False) -> tuple:
    """Axis limits holding every value and reference line, with a margin; 0-based when linear."""
    pos = [float(v) for v in values if v is not None and v == v and (v > 0 or not log)]
    if not pos:
        return ()
    (ax.set_xscale if axis == "x" else ax.set_yscale)("log" if log else "linear")
    if log:
        lo, hi = min(pos) / 1.6, max(pos) * 1.6
    else:
        lo, hi = 0.0, max(max(pos) * 1.08, 1e-9)
    (ax.set_xlim if axis == "x" else ax.set_ylim)(lo, hi)
    return lo, hi


def wrap(label: str, width: int = 30) -> str:
    return "\n".join(textwrap.wrap(label, width, break_on_hyphens=False) or [label])


def fastest(items: Sequence[ConfigSummary], n: int) -> tuple[list[ConfigSummary], str]:
    """The n fastest (decode) of `items` in sweep order, and a caption note when some were left out."""
    if len(items) <= n:
        return list(items), ""
    keep = {id(s) for s in sorted(items, key=lambda s: -(s.decode_judged or 0))[:n]}
    return [s for s in items if id(s) in keep], f" Showing the {n} fastest of {len(items)} configurations."



def colors(summaries: Sequence[ConfigSummary]) -> dict[str, tuple]:
    cmap = plt.get_cmap("tab10" if len(summaries) <= 10 else "tab20")
    return {s.config_id: cmap(i % cmap.N) for i, s in enumerate(summaries)}
