"""Figures against concurrency: TTFT/ITL small multiples, throughput, per-user vs aggregate tokens/s.

Why one workload per figure: lines compare like with like, so rows of the sweep's most common
(input, output) token pair are drawn and the caption names it.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from bench.metric_registry import FAMILIES, METRICS
from bench.report.plots.style import (
    MAX_LINES,
    WIDTH,
    Plot,
    colors,
    fastest,
    fit_limits,
    to_uri,
    wants_log,
    wrap,
)
from bench.report.summary import ConfigSummary


def _top_rows(data: pd.DataFrame, summaries: Sequence[ConfigSummary]) -> tuple[pd.DataFrame, str]:
    ids = {s.config_id for s in summaries if s.config_id in set(data["config_id"])}
    kept, note = fastest([s for s in summaries if s.config_id in ids], MAX_LINES)
    return data[data["config_id"].isin({s.config_id for s in kept})], note



def _concurrency_axis(ax: plt.Axes, values: Sequence[float]) -> None:
    """Log-2 x axis with a tick at each measured concurrency, printed as an integer."""
    ticks = sorted({float(v) for v in values if v == v})
    ax.set_xscale("log", base=2)
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.set_xlabel("concurrency (parallel requests)")
    if len(ticks) == 1:
        ax.set_xlim(ticks[0] / 1.5, ticks[0] * 1.5)



def _workload(rows: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """Rows of the most common (input, output) workload, so lines compare like with like."""
    if not len(rows):
        return rows, ""
    counts = rows.groupby(["input_tokens", "output_tokens"], dropna=False).size()
    (inp, out) = counts.idxmax()
    sel = rows[(rows["input_tokens"] == inp) & (rows["output_tokens"] == out)]
    return sel, f"workload: {inp:g} input / {out:g} output tokens"


_PCTS = (("p50", "-"), ("p90", "--"), ("p99", ":"))


def _small_multiples(data: pd.DataFrame, summaries: Sequence[ConfigSummary], metric: str) -> plt.Figure:
    """One panel per configuration (shared axes), p50/p90/p99 lines vs concurrency in each."""
    color = colors(summaries)
    labels = {s.config_id: s.label for s in summaries}
    groups = list(data.groupby("config_id", sort=False))
    ncols = 1 if len(groups) == 1 else 2
    nrows = -(-len(groups) // ncols)
    fig, axes = plt.subplots(nrows, ncols, squeeze=False, sharex=True, sharey=True,
                             figsize=(WIDTH, 0.9 + 2.3 * nrows))
    values = [v for p, _ in _PCTS for v in data.get(f"{metric}_ms_{p}", pd.Series(dtype=float)).dropna()]
    log = wants_log(values)
    for k, (cid, grp) in enumerate(groups):
        ax = axes[k // ncols][k % ncols]
        g = grp.groupby("concurrency").mean(numeric_only=True).sort_index()
        for pct, ls in _PCTS:
            col = f"{metric}_ms_{pct}"
            if col in g and g[col].notna().any():
                ax.plot(g.index, g[col], ls=ls, marker="o", ms=3, color=color.get(cid), label=pct)
        ax.set_title(wrap(labels.get(cid, cid), 34), fontsize=10)
        _concurrency_axis(ax, data["concurrency"])
        ax.set_xlabel("concurrency" if k // ncols == nrows - 1 else "")
        if k % ncols == 0:
            ax.set_ylabel(FAMILIES[f"{metric}_ms"].axis())
    for k in range(len(groups), nrows * ncols):
        axes[k // ncols][k % ncols].set_visible(False)
    fit_limits(axes[0][0], values, "y", log)
    handles = [matplotlib.lines.Line2D([], [], color="black", ls=ls, label=p) for p, ls in _PCTS]
    fig.legend(handles=handles, loc="lower center", ncol=3, frameon=False, bbox_to_anchor=(0.5, 0))
    fig.tight_layout(rect=(0, 0.6 / (0.9 + 2.3 * nrows), 1, 1))
    return fig


def latency(rows: pd.DataFrame, summaries: Sequence[ConfigSummary], metric: str = "ttft") -> Plot:
    """TTFT or ITL vs concurrency as small multiples (one panel per configuration)."""
    name = FAMILIES[f"{metric}_ms"].title
    title = f"{name[0].upper()}{name[1:]} vs concurrency"
    data, workload = _workload(rows.dropna(subset=[f"{metric}_ms_p50"]))
    data, note = _top_rows(data, summaries)
    caption = (f"One panel per configuration, same axes: p50 solid, p90 dashed, p99 dotted; mean over "
               f"repeats; {workload}.{note}")
    if not len(data):
        return Plot(metric, title, caption, reason=f"no successful cell recorded {name.lower()}")
    return Plot(metric, title, caption, to_uri(_small_multiples(data, summaries, metric)))


def throughput(rows: pd.DataFrame, summaries: Sequence[ConfigSummary]) -> Plot:
    title = "Throughput vs concurrency per configuration"
    data, workload = _workload(rows.dropna(subset=["throughput_tps"]))
    data, note = _top_rows(data, summaries)
    caption = f"Output tokens of all requests / wall time of the cell; whiskers: 95 % CI; {workload}.{note}"
    if not len(data):
        return Plot("throughput", title, caption, reason="no successful cell recorded throughput")
    color = colors(summaries)
    labels = {s.config_id: s.label for s in summaries}
    fig, ax = plt.subplots(figsize=(WIDTH, 4.2))
    groups = list(data.groupby("config_id", sort=False))
    levels = data["concurrency"].dropna()
    span = max(np.log2(levels.max() / levels.min()), 1.0) if len(levels) else 1.0
    for k, (cid, grp) in enumerate(groups):
        g = grp.groupby("concurrency").mean(numeric_only=True).sort_index()
        lo = (g["throughput_tps"] - g["throughput_tps_ci95_lo"]).clip(lower=0).fillna(0)
        hi = (g["throughput_tps_ci95_hi"] - g["throughput_tps"]).clip(lower=0).fillna(0)
        dodge = 2 ** (0.015 * span * (k - (len(groups) - 1) / 2))  # side by side: whiskers stay visible
        ax.errorbar(g.index * dodge, g["throughput_tps"], yerr=[lo, hi], marker="o", ms=4, capsize=3,
                    color=color.get(cid), label=wrap(labels.get(cid, cid), 40))
    _concurrency_axis(ax, data["concurrency"])
    values = [*data["throughput_tps"], *data["throughput_tps_ci95_hi"]]
    log = wants_log(values)
    fit_limits(ax, values, "y", log)
    ax.set_ylabel(METRICS["throughput_tps"].axis("all requests", *(["log scale"] if log else [])))
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=1, frameon=False)
    return Plot("throughput", title, caption, to_uri(fig))


def user_vs_aggregate(rows: pd.DataFrame, summaries: Sequence[ConfigSummary]) -> Plot:
    """Per-user decode tokens/s vs aggregate tokens/s, one point per (configuration, concurrency)."""
    title = "Per-user vs aggregate tokens/s across concurrency (Pareto view)"
    data, workload = _workload(rows.dropna(subset=["throughput_tps", "decode_tps"]))
    data, note = _top_rows(data, summaries)
    caption = ("Each line is a configuration, each point a concurrency (labelled): up is faster for each "
               "user, right is more tokens for everyone. Points no other beats on both (the Pareto "
               f"front) have a black outline, joined by the grey line; mean over repeats; {workload}.{note}")
    if not len(data):
        return Plot("pareto-users", title, caption, reason="no successful cell with decode and throughput")
    color = colors(summaries)
    labels = {s.config_id: s.label for s in summaries}
    pts = (data.groupby(["config_id", "concurrency"], sort=False)[["throughput_tps", "decode_tps"]]
           .mean().reset_index())
    fig, ax = plt.subplots(figsize=(WIDTH, 4.8))
    for cid, g in pts.groupby("config_id", sort=False):
        g = g.sort_values("concurrency")
        ax.plot(g["throughput_tps"], g["decode_tps"], marker="o", ms=5, color=color.get(cid),
                label=wrap(labels.get(cid, cid), 50))
        for _, r in g.iterrows():
            ax.annotate(f"{r['concurrency']:g}", (r["throughput_tps"], r["decode_tps"]), fontsize=9,
                        xytext=(4, 3), textcoords="offset points")
    front, best = [], -1.0
    for _, r in pts.sort_values(["throughput_tps", "decode_tps"], ascending=False).iterrows():
        if r["decode_tps"] > best:
            front.append(r)
            best = r["decode_tps"]
    if front:
        ax.step([r["throughput_tps"] for r in front], [r["decode_tps"] for r in front], where="post",
                color="grey", lw=1, zorder=1, label="Pareto front")
        ax.scatter([r["throughput_tps"] for r in front], [r["decode_tps"] for r in front], s=70,
                   facecolor="none", edgecolor="black", zorder=3)
    for axis, col in (("x", "throughput_tps"), ("y", "decode_tps")):
        log = wants_log(list(pts[col]))
        fit_limits(ax, list(pts[col]) + ([max(pts[col]) * 1.12] if not log else []), axis, log)
    ax.set_xlabel(METRICS["throughput_tps"].axis("all users"))
    ax.set_ylabel(METRICS["decode_tps"].axis("per user"))
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=1, frameon=False)
    return Plot("pareto-users", title, caption, to_uri(fig))
