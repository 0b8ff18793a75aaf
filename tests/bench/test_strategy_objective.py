"""One objective: what a race/halving sweep prunes launches by is what the report recommends by.

Why: the strategy once ranked launches by the geometric mean of throughput over every cell while the
page recommended by decode at concurrency 1, so a race could drop the configuration the page would
have named. These tests hold the two to one definition (`bench.objective`) for every objective kind,
for the older `[strategy_options] objective` table too, and for a resumed sweep's hash.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pandas as pd
import pytest

from bench.objective import launch_score, parse_objective
from bench.report.objective import score
from bench.report.options import load_options
from bench.report.summary import ConfigSummary
from bench.spec import SpecError, parse_spec
from bench.store import spec_hash
from bench.sweep_state import preflight

BASE = """
name = "t"
engine = "xllamacpp"
strategy = "{strategy}"
[server]
model = "m.gguf"
[axes]
"--threads" = [1, 2]
[workload]
input_tokens = [32]
output_tokens = [16]
concurrency = [1, 4]
repeats = 3
"""

KINDS = ["decode", "throughput@4", "throughput:ttft_p90<500", "decode_per_gb"]


def _both(text: str, sweep_dir: Path) -> tuple[str, str]:
    """(the objective the sweep plan prunes by, the one the report recommends by), canonical."""
    data = tomllib.loads(text)
    plan = preflight(parse_spec(data), "m.gguf", check_model=False)
    opts = load_options(data, sweep_dir)[0]
    return plan.objective.canonical, parse_objective(opts.objective).canonical


@pytest.mark.parametrize("strategy", ["race", "halving"])
@pytest.mark.parametrize("objective", KINDS)
def test_the_sweep_prunes_by_the_objective_the_report_recommends_by(strategy: str, objective: str,
                                                                    tmp_path: Path):
    text = BASE.replace("{strategy}", strategy) + f'[report]\nobjective = "{objective}"\n'
    pruned, recommended = _both(text, tmp_path)
    assert pruned == recommended == parse_objective(objective).canonical


@pytest.mark.parametrize("strategy", ["race", "halving"])
def test_without_an_objective_both_use_decode(strategy: str, tmp_path: Path):
    assert _both(BASE.replace("{strategy}", strategy), tmp_path) == ("decode", "decode")


@pytest.mark.parametrize(("table", "objective"), [
    ('{ metric = "decode_tps", concurrency = 1 }', "decode"),
    ('{ metric = "throughput_tps", concurrency = 4 }', "throughput@4"),
    ('"throughput:ttft_p90<500"', "throughput:ttft_p90<500"),
])
def test_the_older_strategy_options_objective_drives_both(table: str, objective: str, tmp_path: Path):
    text = BASE.replace("{strategy}", "race") + f"[strategy_options]\nobjective = {table}\n"
    assert _both(text, tmp_path) == (objective, objective)


@pytest.mark.parametrize(("extra", "needle"), [
    ('[strategy_options]\nobjective = { metric = "tpot_ms_p90" }\n',
     "has no equivalent in the one objective: set [report] objective"),
    ('[strategy_options]\nobjective = { metric = "decode_tps", concurrency = 1 }\n[report]\n'
     'objective = "throughput@4"\n', "two objectives"),
    ('[report]\nobjective = "throughput@8"\n', "concurrency 8 is not in workload.concurrency"),
    ('[memory]\ngpu = false\n[report]\nobjective = "decode_per_gb"\n', "memory.gpu = false"),
])
def test_an_objective_the_strategy_cannot_prune_by_is_one_line(extra: str, needle: str):
    with pytest.raises(SpecError) as err:
        parse_spec(tomllib.loads(BASE.replace("{strategy}", "race") + extra))
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_a_report_flag_that_differs_from_the_pruning_objective_is_noted(tmp_path: Path):
    data = tomllib.loads(BASE.replace("{strategy}", "race") + '[report]\nobjective = "throughput@4"\n')
    opts, notes, _ = load_options(data, tmp_path, {"objective": "decode"})
    assert opts.objective == "decode"
    said = "chose which configurations to launch again by the objective 'throughput@4'"
    assert any(said in n for n in notes)
    assert not load_options(data, tmp_path)[1]


def test_a_changed_objective_refuses_the_resume_only_where_it_pruned():
    def h(strategy: str, objective: str) -> str:
        return spec_hash(BASE.replace("{strategy}", strategy) + f'[report]\nobjective = "{objective}"\n')

    assert h("race", "decode") != h("race", "throughput@4")
    assert h("halving", "decode") != h("halving", "throughput@4")
    assert h("grid", "decode") == h("grid", "throughput@4")  # grid launches everything either way


def _rows(cid: str, decode: list[float], thr4: list[float], ttft4: float, vram: float) -> pd.DataFrame:
    rows = []
    for rep, (d, t) in enumerate(zip(decode, thr4, strict=True)):
        common = {"config_id": cid, "status": "ok", "repeat": rep, "input_tokens": 32, "output_tokens": 16,
                  "ci_basis": "repeats", "ok_requests": 8, "gpu0_mem_peak_bytes": vram * 1e9}
        rows.append({**common, "concurrency": 1, "decode_tps": d, "throughput_tps": d, "ttft_ms_p90": 50.0})
        rows.append({**common, "concurrency": 4, "decode_tps": d / 2, "throughput_tps": t,
                     "ttft_ms_p90": ttft4})
    return pd.DataFrame(rows)


@pytest.mark.parametrize(("objective", "winner"), [
    ("decode", "a"), ("throughput@4", "b"), ("throughput:ttft_p90<500", "a"), ("decode_per_gb", "b"),
])
def test_launch_scores_and_the_page_put_the_same_configuration_first(objective: str, winner: str):
    """a: fast single stream, big VRAM; b: more throughput at c=4 with little VRAM, but its TTFT p90
    at c=4 breaks the 500 ms limit, where b is left with its c=1 throughput."""
    frames = {"a": _rows("a", [20, 21, 19], [40, 41, 39], 300.0, 8.0),
              "b": _rows("b", [15, 16, 14], [55, 56, 54], 900.0, 2.0)}
    obj = parse_objective(objective)
    per_launch = {cid: [launch_score(f[f["repeat"] == r], obj) for r in range(3)]
                  for cid, f in frames.items()}
    assert all(min(per_launch[winner]) > max(v) for cid, v in per_launch.items() if cid != winner)
    page = {}
    for cid, f in frames.items():
        d = f[f["concurrency"] == 1]["decode_tps"]
        s = ConfigSummary(cid, cid, "xllamacpp", "ok", "", [], {}, decode_concurrency=1.0,
                          decode_tps=float(d.mean()), decode_lo=float(d.min()), decode_hi=float(d.max()))
        page[cid] = score(obj, s, f).value
    assert max(page, key=lambda c: page[c] or 0) == winner
