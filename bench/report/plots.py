"""The report's charts, drawn with matplotlib and returned as `data:image/svg+xml` URIs.

Why SVG data URIs: the page must be one file that opens offline and prints sharply; text is
stored as paths, so it reads the same on a box without the fonts. Each function returns a `Plot`
whose `uri` is None (with the reason) when the sweep has nothing to draw, so the page can say so.

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
import numpy as np
import pandas as pd

from bench.metric_registry import METRICS
from bench.report.options import ReportOptions
from bench.report.summary import GB, ConfigSummary

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


def _uri(fig: plt.Figure) -> str:
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


def _wrap(label: str, width: int = 30) -> str:
    return "\n".join(textwrap.wrap(label, width, break_on_hyphens=False) or [label])


def fastest(items: Sequence[ConfigSummary], n: int) -> tuple[list[ConfigSummary], str]:
    """The n fastest (decode) of `items` in sweep order, and a caption note when some were left out."""
    if len(items) <= n:
        return list(items), ""
    keep = {id(s) for s in sorted(items, key=lambda s: -(s.decode_judged or 0))[:n]}
    return [s for s in items if id(s) in keep], f" Showing the {n} fastest of {len(items)} configurations."


def _top_rows(data: pd.DataFrame, summaries: Sequence[ConfigSummary]) -> tuple[pd.DataFrame, str]:
    ids = {s.config_id for s in summaries if s.config_id in set(data["config_id"])}
    kept, note = fastest([s for s in summaries if s.config_id in ids], MAX_LINES)
    return data[data["config_id"].isin({s.config_id for s in kept})], note


def colors(summaries: Sequence[ConfigSummary]) -> dict[str, tuple]:
    cmap = plt.get_cmap("tab10" if len(summaries) <= 10 else "tab20")
    return {s.config_id: cmap(i % cmap.N) for i, s in enumerate(summaries)}


def _concurrency_axis(ax: plt.Axes, values: Sequence[float]) -> None:
    """Log-2 x axis with a tick at each measured concurrency, printed as an integer."""
    ticks = sorted({float(v) for v in values if v == v})
    ax.set_xscale("log", base=2)
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.set_xlabel("concurrency (parallel requests)")
    if len(ticks) == 1:
        ax.set_xlim(ticks[0] / 1.5, ticks[0] * 1.5)


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
        label = _wrap(s.label, 28)
        if s.efficiency is not None:
            label += f"\n{s.efficiency * 100:.0f} % of ceiling" + (" (!)" if s.above_ceiling else "")
        labels.append(label)
    for ax, attr, name in ((ax1, "decode", "Decode"), (ax2, "prefill", "Prefill")):
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
        ax.set_xlabel(f"{name} rate (tokens/s per request{', log scale' if log else ''})")
        ax.set_title(name)
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
    ax1.axvline(goal, color="black", ls="--", lw=1, label=f"goal {goal:g} tok/s")
    height = fig.get_size_inches()[1]
    fig.legend(*ax1.get_legend_handles_labels(), loc="lower center", ncol=3, frameon=False,
               bbox_to_anchor=(0.5, 0))
    fig.tight_layout(h_pad=2.0, rect=(0, 0.45 / height, 1, 1))
    return Plot("rates", title, caption, _uri(fig))


def _workload(rows: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """Rows of the most common (input, output) workload, so lines compare like with like."""
    if not len(rows):
        return rows, ""
    counts = rows.groupby(["input_tokens", "output_tokens"], dropna=False).size()
    (inp, out) = counts.idxmax()
    sel = rows[(rows["input_tokens"] == inp) & (rows["output_tokens"] == out)]
    return sel, f"workload: {inp:g} input / {out:g} output tokens"


_PCTS = (("p50", "-"), ("p90", "--"), ("p99", ":"))


def _small_multiples(data: pd.DataFrame, summaries: Sequence[ConfigSummary], metric: str,
                     name: str) -> plt.Figure:
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
        ax.set_title(_wrap(labels.get(cid, cid), 34), fontsize=10)
        _concurrency_axis(ax, data["concurrency"])
        ax.set_xlabel("concurrency" if k // ncols == nrows - 1 else "")
        if k % ncols == 0:
            ax.set_ylabel(f"{name} ({METRICS[f'{metric}_ms_p50'].unit})")
    for k in range(len(groups), nrows * ncols):
        axes[k // ncols][k % ncols].set_visible(False)
    fit_limits(axes[0][0], values, "y", log)
    handles = [matplotlib.lines.Line2D([], [], color="black", ls=ls, label=p) for p, ls in _PCTS]
    fig.legend(handles=handles, loc="lower center", ncol=3, frameon=False, bbox_to_anchor=(0.5, 0))
    fig.tight_layout(rect=(0, 0.6 / (0.9 + 2.3 * nrows), 1, 1))
    return fig


def latency(rows: pd.DataFrame, summaries: Sequence[ConfigSummary], metric: str = "ttft") -> Plot:
    """TTFT or ITL vs concurrency as small multiples (one panel per configuration)."""
    name = {"ttft": "Time to first token", "itl": "Inter-token latency"}[metric]
    title = f"{name} vs concurrency"
    data, workload = _workload(rows.dropna(subset=[f"{metric}_ms_p50"]))
    data, note = _top_rows(data, summaries)
    caption = (f"One panel per configuration, same axes: p50 solid, p90 dashed, p99 dotted; mean over "
               f"repeats; {workload}.{note}")
    if not len(data):
        return Plot(metric, title, caption, reason=f"no successful cell recorded {name.lower()}")
    return Plot(metric, title, caption, _uri(_small_multiples(data, summaries, metric, name)))


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
                    color=color.get(cid), label=_wrap(labels.get(cid, cid), 40))
    _concurrency_axis(ax, data["concurrency"])
    values = [*data["throughput_tps"], *data["throughput_tps_ci95_hi"]]
    log = wants_log(values)
    fit_limits(ax, values, "y", log)
    ax.set_ylabel("output tokens/s, all requests" + (" (log)" if log else ""))
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=1, frameon=False)
    return Plot("throughput", title, caption, _uri(fig))


def memory(summaries: Sequence[ConfigSummary], opts: ReportOptions, gpu_indices: Sequence[int]) -> Plot:
    title = "Peak memory per configuration against capacity"
    shown, note = fastest([s for s in summaries if s.host_committed is not None or s.gpu_peak], MAX_BARS)
    caption = ("Host: the server's memory (process-tree RSS with its memory-mapped model counted by the "
               "model's pages in the page cache, hatched), then the rest of the host's memory not available "
               "(MemTotal − MemAvailable, plus the mapped model pages the kernel counts as available). "
               "GPU: peak used memory (NVML). Solid line: capacity; dashed: capacity minus the "
               f"{opts.min_headroom_gb:g} GB headroom goal (stay left of it)." + note)
    if not shown:
        return Plot("memory", title, caption, reason="no memory samples recorded")
    gpus = [i for i in gpu_indices if any(i in s.gpu_peak for s in shown)]
    fig, axes = plt.subplots(1 + len(gpus), 1, squeeze=False,
                             figsize=(WIDTH, (1.6 + 0.5 * len(shown)) * (1 + len(gpus)) + 1.2))
    y = np.arange(len(shown))
    color = colors(summaries)
    bar_colors = [color[s.config_id] for s in shown]
    labels = [_wrap(s.label) for s in shown]
    ax = axes[0][0]
    server = [(s.server_mem or 0) / GB for s in shown]
    model = [min(s.model_mapped or 0, s.server_mem or 0) / GB for s in shown]
    rest = [max((s.host_committed or 0) / GB - v, 0) for s, v in zip(shown, server, strict=True)]
    ax.barh(y, server, color=bar_colors, height=0.6, label="server")
    ax.barh(y, model, color="none", edgecolor="black", hatch="///", lw=0, height=0.6,
            label="mapped model pages (in the server's memory)")
    ax.barh(y, rest, left=server, color="lightgrey", height=0.6, label="rest of the host, not available")
    total = max((s.host_total or 0) for s in shown) / GB
    if total:
        ax.axvline(total, color="black", lw=1.5, label=f"capacity {total:.0f} GB")
        if total > opts.min_headroom_gb:
            ax.axvline(total - opts.min_headroom_gb, color="red", ls="--", lw=1.2,
                       label=f"headroom line ({opts.min_headroom_gb:g} GB free)")
        else:
            ax.plot([], [], " ", label=f"no headroom line: {opts.min_headroom_gb:g} GB goal > capacity")
    ax.set_xlim(0, max([total, *(a + b for a, b in zip(server, rest, strict=True))]) * 1.04 or 1)
    ax.set_xlabel("host memory, peak (GB)")
    ax.set_title("Host RAM")
    ax.set_yticks(y, labels)
    ax.invert_yaxis()

    for k, i in enumerate(gpus, start=1):
        gx = axes[k][0]
        used = [s.gpu_peak.get(i, 0) / GB for s in shown]
        gx.barh(y, used, color=bar_colors, height=0.6)
        cap = max((s.gpu_total.get(i) or 0) for s in shown) / GB
        if cap:
            gx.axvline(cap, color="black", lw=1.5, label=f"capacity {cap:.0f} GB")
            gx.legend(loc="lower right", frameon=True)
        gx.set_xlim(0, max([cap, *used]) * 1.04 or 1)
        gx.set_xlabel(f"GPU {i} memory used, peak (GB)")
        gx.set_title(f"GPU {i}")
        gx.set_yticks(y, labels)
        gx.invert_yaxis()
    handles, names = ax.get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=1, frameon=False, bbox_to_anchor=(0.5, 0))
    fig.tight_layout(rect=(0, (0.3 + 0.24 * len(names)) / fig.get_size_inches()[1], 1, 1))
    return Plot("memory", title, caption, _uri(fig))


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
                   edgecolor="black" if s in front else "none", label=_wrap(s.label, 40))
    ax.set_xlabel("server's peak memory, host + GPUs (GB)")
    rates_ = [s.decode_tps for s in pts]
    log = wants_log(rates_)
    fit_limits(ax, rates_, "y", log)
    ax.set_ylabel("decode, tokens/s per request" + (" (log)" if log else ""))
    ax.margins(x=0.1)
    ax.ticklabel_format(axis="x", useOffset=False)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=1, frameon=False)
    return Plot("pareto", title, caption, _uri(fig))


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
                label=_wrap(labels.get(cid, cid), 50))
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
    ax.set_xlabel("aggregate output tokens/s (all users)")
    ax.set_ylabel("decode tokens/s per user")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=1, frameon=False)
    return Plot("pareto-users", title, caption, _uri(fig))


def timeseries(samples: list[dict], label: str, host_total: float | None, opts: ReportOptions) -> Plot:
    title = f"Memory during the best run ({label})"
    caption = ("The recommended configuration's launch, from start through loading and every workload "
               "cell: host memory in use (MemTotal − MemAvailable), page cache, server process tree "
               "RSS, the server's memory with its mapped model counted by its cached pages, and per-GPU "
               "used memory (NVML).")
    if len(samples) < 2:
        return Plot("timeseries", title, caption, reason="the launch has fewer than two memory samples")
    df = pd.DataFrame(samples)
    step = max(1, len(df) // MAX_POINTS)
    df = df.iloc[::step]
    t = df["t"]
    fig, ax = plt.subplots(figsize=(WIDTH, 4))
    total = host_total
    if total and "host_available" in df:
        ax.plot(t, (total - df["host_available"]) / GB, label="host in use", color="tab:blue")
        ax.axhline(total / GB, color="black", lw=1, label=f"host capacity {total / GB:.0f} GB")
        if total / GB > opts.min_headroom_gb:
            ax.axhline(total / GB - opts.min_headroom_gb, color="red", ls="--", lw=1, label="headroom line")
    lines = (("host_cached", "page cache", "tab:green"), ("server_rss", "server RSS", "tab:orange"))
    for col, name, c in lines:
        if col in df:
            ax.plot(t, df[col] / GB, label=name, color=c)
    if "model_mapped" in df and df["model_mapped"].fillna(0).gt(0).any():
        mapped = df["model_mapped"].fillna(0)
        cached = np.maximum(df.get("model_cached", mapped).fillna(0), mapped)
        server = df["server_rss"] - mapped + np.where(mapped > 0, cached, 0)
        ax.plot(t, server / GB, label="server incl. mapped model", color="tab:red", ls="--")
    gpu = df["gpu_used"].dropna().tolist() if "gpu_used" in df else []
    width = max((len(g) for g in gpu if isinstance(g, list)), default=0)
    for i in range(width):
        ax.plot(t, [(g[i] if isinstance(g, list) and len(g) > i else np.nan) / GB for g in df["gpu_used"]],
                label=f"GPU {i} used", ls="-.", color=plt.get_cmap("Dark2")(i % 8))
    ax.set_xlabel("time since launch (s)")
    ax.set_ylabel("memory (GB)")
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)
    return Plot("timeseries", title, caption, _uri(fig))
