"""The report's charts, drawn with matplotlib and returned as `data:image/svg+xml` URIs.

Why SVG data URIs: the page must be one file that opens offline and prints sharply; text is
stored as paths, so it reads the same on a box without the fonts. Each function returns a `Plot`
whose `uri` is None (with the reason) when the sweep has nothing to draw, so the page can say so.
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

from bench.report.options import ReportOptions
from bench.report.summary import GB, ConfigSummary

plt.rcParams.update({
    "svg.fonttype": "path", "svg.hashsalt": "omni-report", "font.size": 10, "axes.titlesize": 11,
    "axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False, "axes.spines.right": False,
    "legend.fontsize": 8, "legend.framealpha": 0.9,
})
MAX_BARS = 24  # configurations per bar chart: the fastest, so a 100-launch sweep stays readable
MAX_LINES = 8  # configurations per line chart
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
    caption = ("Bars: mean per-request rate at each configuration's lowest concurrency, measured by our "
               "streaming client; whiskers: 95 % confidence interval; black diamond: the server's own "
               "timings; red tick: memory-bandwidth ceiling; dashed line: the decode goal." + note)
    if not shown:
        return Plot("rates", title, caption, reason="no configuration produced a rate")
    color = colors(summaries)
    y = np.arange(len(shown))
    fig, (ax1, ax2) = plt.subplots(1, 2, sharey=True, figsize=(10, 1.2 + 0.55 * len(shown)))
    for ax, attr, name in ((ax1, "decode", "Decode"), (ax2, "prefill", "Prefill")):
        vals = [getattr(s, f"{attr}_tps") or 0.0 for s in shown]
        errs = np.array([_err(getattr(s, f"{attr}_tps"), getattr(s, f"{attr}_lo"), getattr(s, f"{attr}_hi"))
                         for s in shown]).T
        ax.barh(y, vals, xerr=errs, color=[color[s.config_id] for s in shown], capsize=3, height=0.6)
        ax.set_xlabel(f"{name} rate (tokens/s per request)")
        ax.set_title(name)
        ax.set_xlim(left=0)
    server = [(i, s.server_decode_tps) for i, s in enumerate(shown) if s.server_decode_tps is not None]
    if server:
        ax1.scatter([v for _, v in server], [i for i, _ in server], marker="D", s=28, color="black", zorder=3,
                    label="server's own timings")
    ticks = []
    for i, s in enumerate(shown):
        c = s.ceiling.tokens_per_s if s.ceiling else None
        label = _wrap(s.label)
        if c:
            ax1.plot([c, c], [i - 0.4, i + 0.4], color="red", lw=2.5, label="ceiling" if i == 0 else None)
            if s.efficiency is not None:
                label += f"\n{s.efficiency * 100:.0f} % of ceiling" + (" (!)" if s.above_ceiling else "")
        ticks.append(label)
    goal = opts.min_decode_tps
    ax1.axvline(goal, color="black", ls="--", lw=1, label=f"goal {goal:g} tok/s")
    height = fig.get_size_inches()[1]
    ax1.legend(loc="upper left", bbox_to_anchor=(0, -0.5 / (0.75 * height)), ncol=3, frameon=False)
    ax1.set_yticks(y, ticks)
    ax1.invert_yaxis()
    ax1.set_xlim(left=0)
    return Plot("rates", title, caption, _uri(fig))


def _workload(rows: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """Rows of the most common (input, output) workload, so lines compare like with like."""
    if not len(rows):
        return rows, ""
    counts = rows.groupby(["input_tokens", "output_tokens"], dropna=False).size()
    (inp, out) = counts.idxmax()
    sel = rows[(rows["input_tokens"] == inp) & (rows["output_tokens"] == out)]
    return sel, f"workload: {inp:g} input / {out:g} output tokens"


def latency(rows: pd.DataFrame, summaries: Sequence[ConfigSummary]) -> Plot:
    title = "Time to first token and inter-token latency vs concurrency"
    data, workload = _workload(rows.dropna(subset=["ttft_ms_p50"]))
    data, note = _top_rows(data, summaries)
    caption = f"Solid: p50, dashed: p90, dotted: p99; mean over repeats; {workload}.{note}"
    if not len(data):
        return Plot("latency", title, caption, reason="no successful cell recorded latencies")
    color = colors(summaries)
    labels = {s.config_id: s.label for s in summaries}
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    panels = ((axes[0], "ttft", "Time to first token"), (axes[1], "itl", "Inter-token latency"))
    for ax, metric, name in panels:
        for cid, grp in data.groupby("config_id", sort=False):
            g = grp.groupby("concurrency").mean(numeric_only=True).sort_index()
            for pct, ls in (("p50", "-"), ("p90", "--"), ("p99", ":")):
                col = f"{metric}_ms_{pct}"
                if col in g and g[col].notna().any():
                    ax.plot(g.index, g[col], ls=ls, marker="o", ms=3, color=color.get(cid),
                            label=_wrap(labels.get(cid, cid), 40) if pct == "p50" else None)
        ax.set_title(name)
        ax.set_ylabel(f"{name} (ms)")
        _concurrency_axis(ax, data["concurrency"])
        ax.set_ylim(bottom=0)
    for pct, ls in (("p50", "-"), ("p90", "--"), ("p99", ":")):
        axes[1].plot([], [], ls=ls, color="black", label=pct)
    axes[1].legend(loc="upper left", bbox_to_anchor=(1.02, 1))
    return Plot("latency", title, caption, _uri(fig))


def throughput(rows: pd.DataFrame, summaries: Sequence[ConfigSummary]) -> Plot:
    title = "Throughput vs concurrency per configuration"
    data, workload = _workload(rows.dropna(subset=["throughput_tps"]))
    data, note = _top_rows(data, summaries)
    caption = f"Output tokens of all requests / wall time of the cell; whiskers: 95 % CI; {workload}.{note}"
    if not len(data):
        return Plot("throughput", title, caption, reason="no successful cell recorded throughput")
    color = colors(summaries)
    labels = {s.config_id: s.label for s in summaries}
    fig, ax = plt.subplots(figsize=(10, 4.2))
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
    ax.set_ylabel("throughput (output tokens/s, all requests)")
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1))
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
                             figsize=(7.5, (1.6 + 0.5 * len(shown)) * (1 + len(gpus))))
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
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18 * 4 / (1.6 + 0.5 * len(shown))), ncol=2,
              frameon=False)
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
    fig.tight_layout()
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
    fig, ax = plt.subplots(figsize=(10, 4.5))
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
    ax.set_ylabel("decode rate (tokens/s per request)")
    ax.set_ylim(0, max(s.decode_tps or 0 for s in pts) * 1.12 or 1)
    ax.margins(x=0.1)
    ax.ticklabel_format(axis="x", useOffset=False)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1))
    return Plot("pareto", title, caption, _uri(fig))


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
    fig, ax = plt.subplots(figsize=(10, 4))
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
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1))
    return Plot("timeseries", title, caption, _uri(fig))
