"""Every metric column header and plot axis label of the page comes from bench.metric_registry.

How: render the committed finished sweeps (reports/examples/) with every registry name and shown
unit swapped for a marker («name», «unit»). A header or axis label written by hand keeps its old
text and so carries no marker: it then has to be one of the page's few non-metric labels below,
and none of those may spell a metric's name. Axis labels are read off the real matplotlib figures
as they are saved (the SVG stores its text as paths, so it cannot be searched).
"""

from __future__ import annotations

import dataclasses
import html
import re
import shutil
from pathlib import Path

import matplotlib.figure
import pytest

from bench.metric_registry import FAMILIES, METRICS, SHOWN_UNITS, axis_label
from bench.report import render_report

EXAMPLES = Path(__file__).resolve().parents[2] / "reports" / "examples"
TABLES = ("rows", "configs", "ceilings", "placements", "coleaders")
# headers of columns that are no registry metric: the row's fixed columns, ratios, readback, text
NON_METRIC_HEADERS = {
    "configuration", "status", "rep.", "conc.", "in tok", "out tok", "req.", "95 % CI", "client / server",
    "launch command", "placement", "host bytes/token", "GPU bytes/token", "efficiency", "arithmetic / notes",
    "source", "predicted / measured − 1", "÷ --fit", "÷ template", "layers on GPU", "GPU weights MiB",
    "host-mapped MiB", "weights by buffer MiB", "KV / compute MiB", "CI over", "where", "fits?",
}
NON_METRIC_AXES = {"", "concurrency", "concurrency (parallel requests)", "time since launch (s)"}


def _mark(monkeypatch: pytest.MonkeyPatch) -> None:
    """Swap every page name and shown unit in the registry for a «marker» (restored after the test)."""
    for name, m in list(METRICS.items()):
        monkeypatch.setitem(METRICS, name, dataclasses.replace(m, short=f"«{name}»"))
    for name, f in list(FAMILIES.items()):
        monkeypatch.setitem(FAMILIES, name, dataclasses.replace(f, short=f"«{name}»", title=f"«{name}»"))
    for unit, (_, scale) in list(SHOWN_UNITS.items()):
        monkeypatch.setitem(SHOWN_UNITS, unit, (f"«{unit}»", scale))


def _headers(page: str, table: str) -> list[str]:
    if f'id="{table}"' not in page:
        return []
    body = page.split(f'id="{table}"')[1].split("</tr>")[0]  # the header row
    cells = re.findall(r"<th[^>]*>(.*?)</th>", body)
    return [html.unescape(re.sub(r"<[^>]+>", "", h)).strip() for h in cells]


@pytest.mark.parametrize("example", ["h200-moe", "placement"])
def test_metric_headers_and_axis_labels_come_from_the_registry(example, tmp_path, monkeypatch):
    sweep = tmp_path / example
    shutil.copytree(EXAMPLES / example, sweep)
    axes: list[str] = []
    save = matplotlib.figure.Figure.savefig

    def recording_savefig(fig, *args, **kwargs):
        shown = [ax for ax in fig.axes if ax.get_visible()]
        axes.extend(label for ax in shown for label in (ax.get_xlabel(), ax.get_ylabel()))
        return save(fig, *args, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", recording_savefig)
    _mark(monkeypatch)
    page = render_report(sweep).read_text()

    headers = {t: _headers(page, t) for t in TABLES}
    assert headers["rows"] and headers["configs"] and headers["ceilings"], "a data table went missing"
    hand_written = sorted({h for hs in headers.values() for h in hs if "«" not in h} - NON_METRIC_HEADERS)
    assert not hand_written, f"column headers not from bench.metric_registry: {hand_written}"
    hand_written = sorted({a for a in axes if "«" not in a} - NON_METRIC_AXES)
    assert not hand_written, f"axis labels not from bench.metric_registry: {hand_written}"

    # the markers are the registry's own spellings, not just present: exact headers and labels
    for name in ("errors", "ttft_ms_p50", "decode_tps", "server_mem_peak_bytes", "gpu_mem_peak_bytes"):
        assert METRICS[name].header in headers["rows"], name
    for name in ("load_s", "host_headroom_min_bytes", "host_cached_peak_bytes"):
        assert METRICS[name].header in headers["configs"], name
    assert f"of it: {METRICS['model_mapped_peak_bytes'].header}" in headers["configs"]
    if example == "placement":
        assert METRICS["predicted_decode_tps"].header in headers["placements"]
    for label in (METRICS["decode_tps"].axis("per request"), METRICS["decode_tps"].axis("per user"),
                  METRICS["throughput_tps"].axis("all users"), FAMILIES["ttft_ms"].axis(),
                  FAMILIES["itl_ms"].axis(), METRICS["gpu_mem_peak_bytes"].axis(),
                  axis_label("memory", "bytes")):
        assert any(a.startswith(label.rstrip(")")) for a in axes), (label, axes)


def test_the_non_metric_labels_name_no_metric():
    """The allow-lists above cannot hide a hand-written metric label: none holds a registry name."""
    shorts = {m.short for m in METRICS.values()} | {f.short for f in FAMILIES.values()}
    for label in NON_METRIC_HEADERS | NON_METRIC_AXES:
        hits = [s for s in shorts if re.search(rf"(^|\W){re.escape(s)}(\W|$)", label, re.IGNORECASE)]
        assert not hits, (label, hits)


def test_the_page_spells_metrics_as_before():
    """What the registry's page names read like (the page's tables and phone layout are sized for them)."""
    assert METRICS["decode_tps"].header == "decode tok/s" and METRICS["ttft_ms_p50"].header == "TTFT p50 ms"
    assert METRICS["server_mem_peak_bytes"].header == "server mem GB" and METRICS["errors"].header == "errors"
    assert METRICS["decode_tps"].axis("per request", "log scale") == "decode (tok/s, per request, log scale)"
    assert FAMILIES["itl_ms"].axis() == "ITL (ms)" and METRICS["host_mem_peak_bytes"].scale == 1e9
    assert all(m.short and m.header for m in METRICS.values())
