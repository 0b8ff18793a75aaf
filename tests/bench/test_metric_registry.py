"""One metric registry: what summarize computes is what the row, results.csv and the report carry."""

from __future__ import annotations

import csv
import json

import pytest

from bench.metric_registry import CI_METRICS, METRICS, computed_by, metric
from bench.metrics import summarize
from bench.objective import Objective, parse_objective
from bench.report.data import NUMERIC, _read_rows
from bench.schema import FIXED_COLUMNS, NUMERIC_COLUMNS, RequestRecord, Row, RunRecord
from bench.store import SweepStore
from bench.strategies import parse_strategy


def _records() -> list[RequestRecord]:
    out = [RequestRecord(index=0, warmup=True, ok=True)]
    for i in range(1, 4):
        out.append(RequestRecord(
            index=i, ok=True, ttft_ms=10.0 * i, ttft_content_ms=11.0 * i, e2e_ms=100.0 + i,
            itl_ms=[3.0, 4.0 + i],
            tpot_ms=3.5, input_tokens=64, input_tokens_asked=64, output_tokens=16, client_tokens=16,
            decode_tps=250.0 + i, prefill_tps=6000.0 + i, server_decode_tps=260.0 + i,
            server_prefill_tps=7000.0 + 10 * i,
            server_timings={"predicted_n": 16.0, "predicted_ms": 10.0 + i},
        ))
    return out


def _row(**metrics: object) -> Row:
    return Row(sweep_id="s", config_id="c1", config_label="base", cell_id="in64-out16-c1", repeat=0,
               n_repeats=1, engine="xllamacpp", status="ok", concurrency=1, input_tokens=64, output_tokens=16,
               requests=3, warmup_requests=1, endpoint="completions", started_at="2026-01-01T00:00:00+00:00",
               **metrics)


def test_summarize_computes_exactly_the_registered_request_metrics():
    computed = summarize(_records(), 0.5)
    assert set(computed) - {"ci_basis"} == set(computed_by("requests"))
    assert all(computed[name] is not None for name in computed_by("requests")), computed


def test_every_metric_is_a_row_field_a_csv_column_and_a_report_number(tmp_path):
    assert set(METRICS) <= set(Row.model_fields)
    assert set(NUMERIC_COLUMNS) == set(NUMERIC) and set(METRICS) <= set(NUMERIC)
    row = _row(**summarize(_records(), 0.5), host_mem_peak_bytes=3 << 30, load_s=1.5)
    store = SweepStore(tmp_path)
    store.write_run(RunRecord(row=row, columns={}, requests=[], memory=[]))
    path = store.write_csv({})
    with path.open() as f:
        header = next(csv.reader(f))
    assert header[:len(FIXED_COLUMNS)] == list(FIXED_COLUMNS) and set(METRICS) <= set(header)
    frame = _read_rows(tmp_path)
    for name in METRICS:
        assert frame[name].dtype.kind in "fi", name  # read as a number, not text
    assert frame["ttft_content_ms_p99"].iloc[0] == pytest.approx(32.78)  # p99 of 11, 22, 33; dropped before
    assert frame["server_prefill_tps_ci95_hi"].iloc[0] > frame["server_prefill_tps"].iloc[0]
    assert frame["host_mem_peak_bytes"].iloc[0] == 3 << 30  # bytes stay exact integers


def test_metric_entries_are_complete_and_the_objective_ranks_by_registered_metrics():
    for m in METRICS.values():
        assert m.unit and m.description and m.short and m.direction in ("higher", "lower", ""), m
    assert set(CI_METRICS) == {"decode_tps", "server_decode_tps", "prefill_tps", "server_prefill_tps",
                               "throughput_tps"}
    assert metric("ttft_ms_p50").direction == "lower" and metric("throughput_tps").direction == "higher"
    assert Objective("decode", "decode").metric is metric("decode_tps")
    assert parse_objective("throughput@4").metric is metric("throughput_tps")
    with pytest.raises(ValueError, match="has no equivalent in the one objective"):
        parse_strategy("race", {"objective": {"metric": "tpot_ms_p90"}})
    schema = Row.model_json_schema()["properties"]["decode_tps"]
    assert schema["unit"] == "tokens/s" and json.dumps(schema["description"])


def test_client_and_server_decode_are_paired_and_pooled():
    """Summed steps over summed time on each clock, over the same requests (not a ratio of means)."""
    recs = _records()  # client spans 7+i ms, server 10+i ms, 15 steps each (i = 1, 2, 3)
    row = summarize(recs, 0.5)
    assert row["decode_client_over_server"] == pytest.approx((11 + 12 + 13) / (8 + 9 + 10))
    assert row["server_decode_window_ms"] == pytest.approx(12.0)
    recs[1].burst = True  # left out on both sides, as decode_tps leaves it out
    assert summarize(recs, 0.5)["decode_client_over_server"] == pytest.approx((12 + 13) / (9 + 10))
