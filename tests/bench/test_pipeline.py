"""The sweep pipeline's pieces: one validated plan, rows appended to results.csv."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from bench.schema import Row, RunRecord
from bench.spec import SpecError, parse_spec
from bench.store import SweepStore
from bench.sweep import preflight


def _run(config_id: str, repeat: int, decode: float, **columns: object) -> RunRecord:
    row = Row(sweep_id="s", config_id=config_id, config_label="base", cell_id="in8-out8-c1", repeat=repeat,
              n_repeats=2, engine="xllamacpp", status="ok", concurrency=1, input_tokens=8, output_tokens=8,
              requests=2, warmup_requests=0, endpoint="completions", decode_tps=decode,
              started_at=f"2026-01-01T00:00:0{repeat}+00:00")
    return RunRecord(row=row, columns=dict(columns), requests=[], memory=[])


def test_rows_are_appended_and_the_file_is_rewritten_only_for_a_new_column_or_at_the_end(tmp_path: Path):
    store = SweepStore(tmp_path)
    first = _run("c1", 0, 100.0, **{"axis.-t": 1})
    store.write_run(first)
    csv_path = store.append_row(first, {"host.cpu.model": "x"})  # no header yet: written whole
    before = csv_path.read_text()
    second = _run("c1", 1, 110.0, **{"axis.-t": 1})
    store.write_run(second)
    store.append_row(second, {"host.cpu.model": "x"})
    after = csv_path.read_text()
    assert after.startswith(before) and after.count("\n") == before.count("\n") + 1  # appended
    assert "decode_tps_ci95_lo" in before.splitlines()[0]
    third = _run("c2", 0, 90.0, **{"axis.-t": 2, "version.llama-server": "b1"})
    store.write_run(third)
    store.append_row(third, {"host.cpu.model": "x"})  # a new column: header rewritten with it
    lines = csv_path.read_text().splitlines()
    assert "version.llama-server" in lines[0] and len(lines) == 4
    store.write_csv({"host.cpu.model": "x"})  # the end of the sweep: CIs across the two repeats
    with csv_path.open(newline="") as f:
        c1 = [r for r in csv.DictReader(f) if r["config_id"] == "c1"]
    assert [r["ci_basis"] for r in c1] == ["repeats", "repeats"]
    assert all(float(r["decode_tps_ci95_lo"]) < 105.0 < float(r["decode_tps_ci95_hi"]) for r in c1)


def test_a_torn_last_line_is_replaced_by_the_run_files_on_rewrite(tmp_path: Path):
    store = SweepStore(tmp_path)
    run = _run("c1", 0, 100.0)
    store.write_run(run)
    path = store.append_row(run, {})
    with path.open("a") as f:
        f.write("s,c1,base,in8-ou")  # kill -9 in the middle of an append
    SweepStore(tmp_path).write_csv({})  # what a resumed sweep does first
    assert path.read_text().count("\n") == 2 and "in8-ou\n" not in path.read_text()


def test_preflight_validates_once_into_a_plan():
    spec = parse_spec({
        "name": "p", "engine": "xllamacpp", "server": {"model": "/nonexistent.gguf"},
        "axes": {"--threads": [1, 2]}, "workload": {"concurrency": [1, 2], "input_tokens": [8],
                                                   "output_tokens": [8]},
        "strategy": "race",
    })
    plan = preflight(spec, "/nonexistent.gguf", check_model=False)
    assert len(plan.configs) == 2 and all(len(c) == 2 for c in plan.cells.values())
    assert plan.n_runs == 4 * spec.workload.repeats and plan.strategy.name == "race"
    with pytest.raises(SpecError, match="does not exist"):
        preflight(spec, "/nonexistent.gguf")
