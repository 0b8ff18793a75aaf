"""The report's placement section from results rows: measured vs predicted, ratios, readback."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from bench.report.placements import findings, placement_rows
from bench.report.summary import ConfigSummary

READBACK = json.dumps({"offloaded_layers": 14, "total_layers": 14, "buffers_mib": {
    "CUDA0 model": 2900.5, "CUDA_Host model": 3100.0, "CPU_Mapped model": 40.0, "CUDA0 KV": 44.0,
    "CUDA0 compute": 300.0}})


def _summary(cid: str, decode: float | None, status: str = "ok") -> ConfigSummary:
    return ConfigSummary(cid, f"placement {cid}", "llama-server", status, "cmd", [], {}, decode_tps=decode,
                         served=decode is not None, gpu_peak={0: 4.1e9}, gpu_total={0: 80e9})


def test_rows_ratios_and_prediction_error():
    cols = ["config_id", "placement_source", "predicted_decode_tps", "placement_readback"]
    rows = pd.DataFrame([dict(zip(cols, r, strict=True)) for r in [
        ("p", "planner", 50.0, READBACK), ("p", "planner", 50.0, ""), ("n", "planner", 45.0, ""),
        ("f", "fit", None, "{}"), ("t", "template", None, ""), ("x", "grid", None, ""),
    ]])
    out = placement_rows(rows, [_summary("p", 40.0), _summary("n", 42.0), _summary("f", 20.0),
                                _summary("t", 25.0), _summary("x", None, "server-died")])
    p, n, f, t, x = out
    assert (p.source, f.source, t.source, x.source) == ("planner", "fit", "template", "grid")
    assert p.prediction_error == pytest.approx(0.25) and n.prediction_error == pytest.approx(45 / 42 - 1)
    assert (p.vs_fit, p.vs_template, t.vs_template) == (2.0, 1.6, 1.0)
    assert p.layers == "14/14" and p.gpu_weights_mib == 2900.5 and p.host_weights_mib == 3140.0
    assert p.other_mib == {"CUDA0 KV": 44.0, "CUDA0 compute": 300.0}
    assert x.decode_tps is None and x.prediction_error is None
    text = findings(out)
    assert text[0].startswith("planner's row placement p: 40.00 tokens/s, 0.952 x the best measured row "
                              "(placement n, 42.00)")
    assert "1.60 x" in text[1] and "2.00 x" in text[2]
    assert "max 25.0%" in text[3] and "placement x (server-died)" in text[4]


def test_a_sweep_without_placement_sources_has_no_section():
    rows = pd.DataFrame([{"config_id": "a", "placement_source": "", "predicted_decode_tps": None}])
    assert placement_rows(rows, [_summary("a", 10.0)]) == []
    assert findings([]) == []
