"""Assemble the page: load the sweep, summarise, judge, draw, fill the jinja2 template, write atomically.

Why atomic: the page is rewritten at the end of every sweep and on demand; a reader (or a browser
left open) must see the old file or the new one, never half of one.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd

from bench.metric_registry import metric, shown_unit
from bench.report import plots
from bench.report.ceiling import CACHE_RESIDENT_BYTES, human_bytes
from bench.report.criteria import criteria, recommend
from bench.report.data import OK_STATUSES, Sweep, launch_series, load_sweep, read_tail
from bench.report.hostfacts import HostFacts
from bench.report.modelbytes import ModelFileError, model_for_sweep
from bench.report.placements import budgets, placement_rows
from bench.report.placements import findings as place_findings
from bench.report.record import OPTIONS_FILE, command, option_rows, write_record
from bench.report.summary import GB, bandwidths, model_path, summarise
from bench.server import error_line
from omni.files import atomic_write_text

# the row table: (header, column, decimals or None for text); a registered metric's header and unit
# scale come from bench.metric_registry (header None here), the rest are the row's fixed columns
ROW_COLUMNS: tuple[tuple[str | None, str, int | None], ...] = (
    ("configuration", "config_label", None), ("status", "status", None), ("rep.", "repeat", 0),
    ("conc.", "concurrency", 0), ("in tok", "input_tokens", 0), ("out tok", "output_tokens", 0),
    ("req.", "requests", 0), (None, "errors", 0), (None, "ttft_ms_p50", 1), (None, "ttft_ms_p90", 1),
    (None, "itl_ms_p50", 2), (None, "e2e_ms_p50", 0), (None, "decode_tps", 1), (None, "server_decode_tps", 1),
    (None, "prefill_tps", 1), (None, "throughput_tps", 1), (None, "server_mem_peak_bytes", 2),
    (None, "host_mem_peak_bytes", 2), (None, "gpu_mem_peak_bytes", 2),
)


def _fmt(value: Any, digits: int = 1) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "—"
    return "—" if math.isnan(number) else f"{number:,.{digits}f}"


def _gb(value: Any, digits: int = 1) -> str:
    return _scaled(value, GB, digits)


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f} %"


def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent), autoescape=True,
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
    )
    env.globals.update(fmt=_fmt, gb=_gb, pct=_pct, cache_resident=CACHE_RESIDENT_BYTES, m=metric,
                       unit_of=lambda name: shown_unit(metric(name).unit))
    env.filters["gbf"] = lambda v: _gb(v, 3)
    env.filters["bytes"] = human_bytes
    env.filters["mib"] = lambda v: "—" if v is None else _fmt(v / 2**20, 1 if 0 < abs(v) < 10 * 2**20 else 0)
    env.filters["gib"] = lambda v: "—" if v is None else _fmt(v / 2**30, 2)
    return env


def _scaled(value: Any, scale: float, digits: int) -> str:
    try:
        return _fmt(float(value) / scale, digits)
    except (TypeError, ValueError):
        return "—"


def _rows_table(rows: pd.DataFrame) -> tuple[list[str], list[list[dict[str, Any]]]]:
    headers = [h or metric(col).header for h, col, _ in ROW_COLUMNS]
    values = []
    for _, r in rows.iterrows():
        cells = []
        for h, col, digits in ROW_COLUMNS:
            v = r.get(col)
            if digits is None:
                cells.append({"text": "" if v is None or v != v else str(v), "num": False})
            else:
                cells.append({"text": _scaled(v, 1.0 if h else metric(col).scale, digits), "num": True})
        values.append(cells)
    return headers, values


def _failures(sweep: Sweep) -> list[dict[str, str]]:
    """One entry per (configuration, status, reason), naming every cell and repeat it hit."""
    rows = sweep.rows
    bad = rows[~rows["status"].isin(OK_STATUSES) | (rows["errors"].fillna(0) > 0)]
    out = []
    for (_, status, reason), grp in bad.groupby(["config_id", "status", "error_reason"], sort=False):
        cells = sorted({
            f"concurrency {_fmt(r['concurrency'], 0)}, {_fmt(r['input_tokens'], 0)}→"
            f"{_fmt(r['output_tokens'], 0)} tokens" for _, r in grp.iterrows()
            if r["concurrency"] == r["concurrency"]
        })
        repeats = sorted({int(x) for x in grp["repeat"].dropna()})
        tails = [t for t in grp["log_tail_path"] if t]
        tail = read_tail(sweep, tails[-1]) if tails else ""
        out.append({
            "label": grp["config_label"].iloc[0], "status": status, "reason": reason,
            "cell": "; ".join(cells) or "no cell ran",
            "repeats": ", ".join(map(str, repeats)) or "?", "rows": len(grp),
            "tail": tail, "server_says": error_line(tail) if tail else "",
            "anchor": f"failure-{len(out)}",
        })
    return out


def _host_rows(host: HostFacts, sweep: Sweep) -> list[tuple[str, str]]:
    mem_total = sweep.rows["host_mem_total_bytes"].max() if len(sweep.rows) else None
    mem_total = mem_total if mem_total == mem_total and mem_total else host.mem_total_bytes
    unknown = "unknown"
    gpus = "; ".join(
        f"GPU {g.index}: {g.name or unknown}, {_gb(g.mem_total_bytes, 1)} GB, link {g.link or unknown}"
        for g in host.gpus) or f"none ({host.gpu_reason or unknown})"
    dimms = f"unknown ({host.dimm_reason or 'not recorded'})"
    if host.dimm_mts:
        slots = host.dimm_slots or "?"
        dimms = f"{host.dimm_count} populated of {slots} slots, {host.dimm_mts:g} MT/s configured"
    cpu = host.cpu or unknown
    if host.cores:
        cpu += f" ({host.sockets or '?'} socket(s), {host.cores} cores, {host.threads or '?'} threads)"
    return [
        ("host", host.hostname or unknown), ("CPU", cpu),
        ("NUMA nodes", str(host.numa_nodes) if host.numa_nodes else unknown),
        ("memory", f"{_gb(mem_total, 1)} GB MemTotal" if mem_total else unknown),
        ("DIMMs", dimms), ("GPUs", gpus), ("NVIDIA driver", host.driver or unknown),
        ("GPU PCIe links", "; ".join(host.pcie) or unknown),
        ("facts collected", host.collected_at or unknown),
        ("sweep directory", str(sweep.path)),
    ]


def context(sweep: Sweep) -> dict[str, Any]:
    summaries = summarise(sweep)
    opts = sweep.options
    rec = recommend(summaries, opts, sweep)
    rows = sweep.rows
    model, model_reason, model_source = None, "no model path in the launch argv or spec", ""
    for s in summaries:
        path = model_path(s.argv, sweep.spec, sweep.meta)
        if path:
            try:
                model, model_source = model_for_sweep(path, sweep.path)
            except ModelFileError as err:
                model_reason = str(err)
            break
    host_bw, gpu_bw = bandwidths(sweep, list(sweep.host.gpus))
    series = launch_series(sweep, rec.config.run_json) if rec.config else []
    label = rec.config.label if rec.config else "none"
    figures = [
        plots.rates(summaries, opts), plots.latency(sweep.ok_rows, summaries, "ttft"),
        plots.latency(sweep.ok_rows, summaries, "itl"), plots.throughput(sweep.ok_rows, summaries),
        plots.user_vs_aggregate(sweep.ok_rows, summaries),
        plots.memory(summaries, opts, sweep.gpu_indices()), plots.pareto(summaries),
        plots.timeseries(series, label, rec.config.host_total if rec.config else None, opts),
    ]
    headers, values = _rows_table(rows)
    placements = placement_rows(rows, summaries, sweep, model)
    meta = sweep.meta
    started = sorted([v for v in rows["started_at"] if v] + [meta.get("started_at") or ""])
    finished = sorted([v for v in rows["finished_at"] if v] + [meta.get("finished_at") or ""])
    row_id = rows["sweep_id"].iloc[0] if len(rows) else ""
    return {
        "sweep_id": meta.get("sweep_id") or row_id or sweep.path.name,
        "sweep_status": str(meta.get("status") or "unknown"),
        "spec_name": str(sweep.spec.get("name") or meta.get("spec_name") or "sweep"),
        "engines": ", ".join(sorted(set(rows["engine"]) - {""})) or "unknown",
        "n_configs": len(summaries), "n_rows": len(rows),
        "started": next((v for v in started if v), "unknown"), "finished": finished[-1] or "unknown",
        "hostname": sweep.host.hostname, "generated": datetime.now(UTC).isoformat(timespec="seconds"),
        "rec": rec, "criteria": criteria(rec, summaries, opts), "summaries": summaries,
        "thresholds": f"decode > {opts.min_decode_tps:g} tokens/s, headroom > {opts.min_headroom_gb:g} GB",
        "threshold_source": sweep.threshold_source,
        "model": model, "model_reason": model_reason,
        "host_bw": host_bw, "gpu_bw": gpu_bw, "model_source": model_source,
        "placements": placements, "placement_findings": place_findings(placements),
        "vram_budget": ", ".join(f"GPU{i} {b / 2**30:g} GiB" for i, b in budgets(sweep).items()),
        "free_at_launch": any(g.free_source == "launch" for r in placements for g in r.gpus),
        "plots": figures, "row_headers": headers, "row_values": values, "failures": _failures(sweep),
        "host_rows": _host_rows(sweep.host, sweep),
        "versions": [(k, ", ".join(v)) for k, v in sorted(sweep.versions.items())],
        "notes": sweep.notes, "spec_text": sweep.spec_text, "sweep_dir": str(sweep.path),
        "report_options": option_rows(sweep), "report_command": command(sweep) if sweep.given else "",
        "options_file": OPTIONS_FILE,
    }


def write_page(sweep: Sweep) -> Path:
    """index.html, then report-options.json saying what it was made with (same `generated` time)."""
    ctx = context(sweep)
    html = _env().get_template("page.html.j2").render(**ctx)
    target = atomic_write_text(sweep.path / "index.html", html)
    write_record(sweep, ctx["generated"])
    return target


def headline(sweep_dir: str | Path) -> str:
    """One terminal line: what the page recommends, or the co-leaders it could not separate."""
    sweep = load_sweep(sweep_dir)
    rec = recommend(summarise(sweep), sweep.options, sweep)
    if rec.config is None:
        return f"recommendation: none ({rec.why})"
    value = f"{rec.score.value:,.1f} {rec.objective.unit}" if rec.score and rec.score.value else ""
    if rec.coleaders:
        names = "; ".join([rec.config.label, *(c.label for c, _ in rec.coleaders)])
        return (f"recommendation ({rec.objective.text}): not separable, {len(rec.coleaders) + 1} co-leaders "
                f"(95 % CIs overlap): {names}")
    return f"recommendation ({rec.objective.text}): {rec.config.label} ({value})"


def render_report(sweep_dir: str | Path, **options: Any) -> Path:
    """Write `sweep_dir/index.html` and return its path; options override the [report] settings."""
    return write_page(load_sweep(sweep_dir, options))
