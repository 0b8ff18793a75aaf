"""Per-configuration speed figures: decode/prefill rate bars (ceiling, goal) and decode vs memory."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np

from bench.metric_registry import METRICS, axis_label, shown_unit
from bench.report.options import ReportOptions
from bench.report.plots.style import (
    MAX_BARS,
    SPAN_LOG,
    WIDTH,
    Plot,
    colors,
    fastest,
    fit_limits,
    to_uri,
    wants_log,
    wrap,
)
from bench.report.summary import GB, ConfigSummary


def _err(value: float | None, lo: float | None, hi: float | None) -> tuple[float, float]:
    if value is None or lo is None or hi is None:
        return (0.0, 0.0)
    return (max(value - lo, 0.0), max(hi - value, 0.0))


def rates(summaries: Sequence[ConfigSummary], opts: ReportOptions) -> Plot:
    title = "Decode and prefill tokens/s per configuration"
    shown, note = fastest([s for s in summaries if s.decode_tps is not None or s.prefill_tps is not None],
                          MAX_BARS)
    caption = ("Mean per-request rate at each configuration's lowest concurrency, measured by our "
               "streaming client; whiskers: 95 % confidence interval; black diamond: the server's own "
               "timings; red tick: memory-bandwidth ceiling; dashed line: the decode goal. Bars on a "
               f"linear axis; dots on a log axis when the rates span more than {SPAN_LOG:g}x." + note)
    if not shown:
        return Plot("rates", title, caption, reason="no configuration produced a rate")
    color = colors(summaries)
    y = np.arange(len(shown))
    panel_h = 0.9 + 0.45 * len(shown)
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(WIDTH, 2 * panel_h + 1.2))
    labels = []
    for s in shown:
        label = wrap(s.label, 28)
        if s.efficiency is not None:
            label += f"\n{s.efficiency * 100:.0f} % of ceiling" + (" (!)" if s.above_ceiling else "")
        labels.append(label)
    for ax, attr in ((ax1, "decode"), (ax2, "prefill")):
        rate = METRICS[f"{attr}_tps"]
        vals = [getattr(s, f"{attr}_tps") for s in shown]
        refs: list[float | None] = list(vals)
        if attr == "decode":
            refs += [s.ceiling.tokens_per_s if s.ceiling else None for s in shown]
            refs += [s.server_decode_tps for s in shown] + [opts.min_decode_tps]
        log = wants_log(refs)
        errs = np.array([_err(getattr(s, f"{attr}_tps"), getattr(s, f"{attr}_lo"), getattr(s, f"{attr}_hi"))
                         for s in shown]).T
        his = [(v or 0) + e for v, e in zip(vals, errs[1], strict=True)]
        los = [(v or 0) - e for v, e in zip(vals, errs[0], strict=True)]
        lo_hi = fit_limits(ax, [*refs, *his, *(x for x in los if x > 0)], "x", log)
        colors_ = [color[s.config_id] for s in shown]
        if log:
            have = [i for i, v in enumerate(vals) if v]
            errs_log = errs.copy()
            for i, v in enumerate(vals):  # a whisker may not cross the log axis's lower limit
                if v:
                    errs_log[0][i] = min(errs[0][i], v - lo_hi[0] * 1.01)
            ax.errorbar([vals[i] for i in have], [y[i] for i in have], xerr=errs_log[:, have], fmt="none",
                        ecolor="black", capsize=3, lw=1, zorder=2)
            ax.scatter([vals[i] for i in have], [y[i] for i in have], s=110, c=[colors_[i] for i in have],
                       edgecolor="black", zorder=3)
        else:
            ax.barh(y, [v or 0 for v in vals], xerr=errs, color=colors_, capsize=3, height=0.6)
        ax.set_xlabel(rate.axis("per request", *(["log scale"] if log else [])))
        ax.set_title(rate.short.capitalize())
        ax.set_yticks(y, labels)
        ax.invert_yaxis()
    server = [(i, s.server_decode_tps) for i, s in enumerate(shown) if s.server_decode_tps is not None]
    if server:
        ax1.scatter([v for _, v in server], [i for i, _ in server], marker="D", s=22, facecolor="white",
                    edgecolor="black", lw=1.2, zorder=5, label="server's own timings")
    first = True
    for i, s in enumerate(shown):
        c = s.ceiling.tokens_per_s if s.ceiling else None
        if c:
            ax1.plot([c, c], [i - 0.4, i + 0.4], color="red", lw=2.5, label="ceiling" if first else None,
                     zorder=4)
            first = False
    goal = opts.min_decode_tps
    unit = shown_unit(METRICS["decode_tps"].unit)
    ax1.axvline(goal, color="black", ls="--", lw=1, label=f"goal {goal:g} {unit}")
    height = fig.get_size_inches()[1]
    fig.legend(*ax1.get_legend_handles_labels(), loc="lower center", ncol=3, frameon=False,
               bbox_to_anchor=(0.5, 0))
    fig.tight_layout(h_pad=2.0, rect=(0, 0.45 / height, 1, 1))
    return Plot("rates", title, caption, to_uri(fig))


def pareto(summaries: Sequence[ConfigSummary]) -> Plot:
    title = "Decode tokens/s vs the server's peak memory (Pareto front)"
    pts, note = fastest([s for s in summaries if s.decode_tps is not None and s.mem_peak_total is not None],
                        MAX_BARS)
    caption = ("Each point is a configuration: the server's peak host memory (mapped model pages "
               "included) plus peak GPU memory, against "
               "decode tokens/s. The grey line joins the configurations no other beats on both "
               "(black outline)." + note)
    if not pts:
        return Plot("pareto", title, caption, reason="no config has both a decode rate and a memory peak")
    color = colors(summaries)
    fig, ax = plt.subplots(figsize=(WIDTH, 4.5))
    front, best = [], -1.0
    for s in sorted(pts, key=lambda s: (s.mem_peak_total, -(s.decode_tps or 0))):
        if (s.decode_tps or 0) > best:
            front.append(s)
            best = s.decode_tps or 0
    ax.step([s.mem_peak_total / GB for s in front], [s.decode_tps for s in front], where="post",
            color="grey", lw=1, zorder=1, label="Pareto front")
    for s in pts:
        ax.scatter(s.mem_peak_total / GB, s.decode_tps, s=60, color=color[s.config_id], zorder=2,
                   edgecolor="black" if s in front else "none", label=wrap(s.label, 40))
    server, gpu = METRICS["server_mem_peak_bytes"], METRICS["gpu_mem_peak_bytes"]
    ax.set_xlabel(axis_label(f"{server.short} + {gpu.short}", server.unit))  # what mem_peak_total sums
    rates_ = [s.decode_tps for s in pts]
    log = wants_log(rates_)
    fit_limits(ax, rates_, "y", log)
    ax.set_ylabel(METRICS["decode_tps"].axis("per request", *(["log scale"] if log else [])))
    ax.margins(x=0.1)
    ax.ticklabel_format(axis="x", useOffset=False)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=1, frameon=False)
    return Plot("pareto", title, caption, to_uri(fig))
