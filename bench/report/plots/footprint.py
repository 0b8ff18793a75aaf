"""Memory figures: peak host and GPU memory per configuration against capacity; the best run over time."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from bench.metric_registry import METRICS, axis_label
from bench.report.options import ReportOptions
from bench.report.plots.style import MAX_BARS, MAX_POINTS, WIDTH, Plot, colors, fastest, to_uri, wrap
from bench.report.summary import GB, ConfigSummary


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
    labels = [wrap(s.label) for s in shown]
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
    ax.set_xlabel(METRICS["host_mem_peak_bytes"].axis("peak"))
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
        gx.set_xlabel(METRICS["gpu_mem_peak_bytes"].axis())
        gx.set_title(f"GPU {i}")
        gx.set_yticks(y, labels)
        gx.invert_yaxis()
    handles, names = ax.get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=1, frameon=False, bbox_to_anchor=(0.5, 0))
    fig.tight_layout(rect=(0, (0.3 + 0.24 * len(names)) / fig.get_size_inches()[1], 1, 1))
    return Plot("memory", title, caption, to_uri(fig))


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
        ax.plot(t, (total - df["host_available"]) / GB, label=METRICS["host_mem_peak_bytes"].short,
                color="tab:blue")
        ax.axhline(total / GB, color="black", lw=1, label=f"host capacity {total / GB:.0f} GB")
        if total / GB > opts.min_headroom_gb:
            ax.axhline(total / GB - opts.min_headroom_gb, color="red", ls="--", lw=1, label="headroom line")
    lines = (("host_cached", "host_cached_peak_bytes", "tab:green"),
             ("server_rss", "server_rss_peak_bytes", "tab:orange"))
    for col, name, c in lines:
        if col in df:
            ax.plot(t, df[col] / GB, label=METRICS[name].short, color=c)
    if "model_mapped" in df and df["model_mapped"].fillna(0).gt(0).any():
        mapped = df["model_mapped"].fillna(0)
        cached = np.maximum(df.get("model_cached", mapped).fillna(0), mapped)
        server = df["server_rss"] - mapped + np.where(mapped > 0, cached, 0)
        ax.plot(t, server / GB, label=METRICS["server_mem_peak_bytes"].short + " (incl. mapped model)",
                color="tab:red", ls="--")
    gpu = df["gpu_used"].dropna().tolist() if "gpu_used" in df else []
    width = max((len(g) for g in gpu if isinstance(g, list)), default=0)
    for i in range(width):
        ax.plot(t, [(g[i] if isinstance(g, list) and len(g) > i else np.nan) / GB for g in df["gpu_used"]],
                label=f"GPU {i} used", ls="-.", color=plt.get_cmap("Dark2")(i % 8))
    ax.set_xlabel("time since launch (s)")
    ax.set_ylabel(axis_label("memory", "bytes"))
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)
    return Plot("timeseries", title, caption, to_uri(fig))
