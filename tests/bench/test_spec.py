"""Spec validation (one line, naming the key and the fix), expansion order, validity rules, dry-run."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import pytest

from bench.cli_sweep import demo_text
from bench.plan import cells, config_id, count_runs, server_configs
from bench.spec import SpecError, load_spec, numa_prefix, parse_spec
from tests.bench.benchutil import run_bench, write_spec

BASE = """
name = "t"
engine = "xllamacpp"
[server]
model = "{model}"
[axes]
"--threads" = [1, 2]
"-np" = [1, 4]
"env.GGML_SCHED_MAX_COPIES" = [1]
[workload]
input_tokens = [32]
output_tokens = [8, 16]
concurrency = [1, 4]
"""


def spec_of(text: str, model: str = "m.gguf"):
    return parse_spec(tomllib.loads(text.replace("{model}", model)))


@pytest.mark.parametrize(("patch", "needle"), [
    (("[workload]", "[workload]\nrepeets = 2"), "unknown key 'workload.repeets'"),
    (('"-np" = [1, 4]', '"-np" = []'), "axis '-np' is empty"),
    (('"-np" = [1, 4]', 'threads = [1]'), "axis 'threads' is not a flag, env or prefix"),
    (("concurrency = [1, 4]", 'concurrency = "four"'), "workload.concurrency"),
    (("concurrency = [1, 4]", "concurrency = [0]"), "workload.concurrency"),
    (('engine = "xllamacpp"', 'engine = "llamacpp"'), "engine 'llamacpp' is not supported: use one of"),
    (('"-np" = [1, 4]', 'numa = ["interleave=everything"]'),
     "numa 'interleave=everything' is not understood"),
    (("[workload]", '[[exclude]]\n"--thread" = 1\n[workload]'),
     "exclude[0] names '--thread', which is not an axis"),
    (('name = "t"', 'name = "t"\nstrategy = "annealing"'), "strategy 'annealing' is not known"),
    (("concurrency = [1, 4]", "concurrency = [1, 4]\n[strategy_options]\neta = 3"),
     "eta applies to strategy 'halving' only"),
    (('model = "{model}"', 'model = "{model}"\n[server.generate]\nn_embd = 64'), "not both"),
    (("[server]\n", "[server]\nport = 70000\n"), "server.port"),
    (("[workload]", "[report]\nheadroom_gb = 80\n[workload]"),
     "unknown key 'report.headroom_gb': the report understands min_decode_tps, min_headroom_gb,"),
    (("[workload]", "[report]\nmin_decode_tps = 0\n[workload]"),
     "report.min_decode_tps: Input should be greater"),
    (("[workload]", "[report]\ngpu_bandwidth_gbps = [4800, -1]\n[workload]"), "report.gpu_bandwidth_gbps[1]"),
    (("[workload]", '[report]\nmemory_channels = "eight"\n[workload]'), "report.memory_channels"),
])
def test_bad_spec_is_one_line_naming_the_key(patch: tuple[str, str], needle: str):
    text = BASE.replace(*patch)
    with pytest.raises(SpecError) as err:
        spec_of(text)
    msg = str(err.value)
    assert needle in msg
    assert "\n" not in msg and msg.startswith("bad spec: ")


def test_cli_bad_spec_prints_one_line_and_starts_nothing(tmp_path: Path):
    spec = write_spec(tmp_path / "s.toml", BASE.replace("{model}", str(tmp_path / "missing.gguf")))
    proc = run_bench("sweep", str(spec), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0, proc.stderr
    assert "missing.gguf" in proc.stderr and "does not exist" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "out").exists()
    bad_toml = write_spec(tmp_path / "b.toml", "engine = \n")
    proc = run_bench("sweep", str(bad_toml))
    assert proc.returncode == 2 and "is not valid TOML" in proc.stderr and "Traceback" not in proc.stderr


def test_relaunch_axes_expand_first_outermost_with_stable_ids():
    spec = spec_of(BASE)
    cfgs = server_configs(spec)
    assert [c.label for c in cfgs] == [
        "threads=1 np=1 GGML_SCHED_MAX_COPIES=1", "threads=1 np=4 GGML_SCHED_MAX_COPIES=1",
        "threads=2 np=1 GGML_SCHED_MAX_COPIES=1", "threads=2 np=4 GGML_SCHED_MAX_COPIES=1",
    ]
    assert cfgs[1].args == ["--threads", "1", "-np", "4"] and cfgs[1].env == {"GGML_SCHED_MAX_COPIES": "1"}
    assert [c.cell_id for c in cells(spec, cfgs[0])] == [
        "in32-out8-c1", "in32-out8-c4", "in32-out16-c1", "in32-out16-c4"]
    assert cfgs[0].config_id == config_id(spec, cfgs[0].axes) == server_configs(spec_of(BASE))[0].config_id
    assert len({c.config_id for c in cfgs}) == 4


def test_validity_rules_exclude_configs_and_cells():
    text = BASE.replace("[workload]", '[[exclude]]\n"--threads" = 2\n"-np" = 1\n'
                                      '[[exclude]]\n"-np" = 1\nconcurrency = 4\n[workload]')
    spec = spec_of(text)
    cfgs = server_configs(spec)
    assert [c.label.split(" G")[0] for c in cfgs] == ["threads=1 np=1", "threads=1 np=4", "threads=2 np=4"]
    assert [c.concurrency for c in cells(spec, cfgs[0])] == [1, 1]  # one slot: no concurrency 4
    assert len(cells(spec, cfgs[1])) == 4
    assert count_runs(spec, cfgs) == (10, 10)


def test_flag_values_true_false_and_raw_args():
    text = BASE.replace('"-np" = [1, 4]', '"--no-warmup" = [true, false]\n"args.placement" = '
                                          '[["-ot", "exps=CPU"], "--n-cpu-moe 2"]')
    args = [c.args for c in server_configs(spec_of(text))]
    assert args[0] == ["--threads", "1", "--no-warmup", "-ot", "exps=CPU"]
    assert args[3] == ["--threads", "1", "--n-cpu-moe", "2"]


def test_numa_prefix_and_its_refusal_without_numactl(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    assert numa_prefix("none") == []
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty PATH: no numactl
    with pytest.raises(SpecError, match=r"needs numactl, which is not installed: `sudo apt-get install"):
        numa_prefix("interleave=all")
    assert numa_prefix("cpunodebind=0 membind=0", strict=False) == [
        "numactl", "--cpunodebind=0", "--membind=0"]


def test_dry_run_prints_every_launch_and_the_count(tmp_path: Path):
    numa = '"-np" = [1, 4]\nnuma = ["none", "cpunodebind=0 membind=0"]'
    text = BASE.replace("{model}", str(tmp_path / "m.gguf")).replace('"-np" = [1, 4]', numa)
    spec = write_spec(tmp_path / "s.toml", text)
    proc = run_bench("sweep", str(spec), "--dry-run")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.count("argv:   ") == 8 and out.count("prefix: ") == 8
    assert "numactl --cpunodebind=0 --membind=0" in out
    assert "env:    GGML_SCHED_MAX_COPIES=1" in out
    assert "-m bench.xllamacpp_server -m " in out and "--threads 2 -np 4" in out
    assert "8 server configurations x 1 repeats = 8 launches; 32 workload cells, 32 runs" in out
    assert "does not exist" in out  # the missing model is a warning in a dry run, not a stop
    assert not list(tmp_path.glob("reports"))


def test_demo_spec_is_valid_and_adapts_to_the_machine():
    spec = parse_spec(tomllib.loads(demo_text()))
    threads = spec.axes["--threads"]
    assert threads[0] == 1 and (len(threads) == 1) == ((os.cpu_count() or 1) <= 2)
    assert spec.server.generate is not None and spec.workload.concurrency == [1, 4]


def test_example_specs_load_and_the_reference_template_dry_runs(tmp_path: Path):
    specs = Path(__file__).resolve().parents[2] / "bench" / "specs"
    for path in specs.glob("*.toml"):
        load_spec(path)
    proc = run_bench("sweep", str(specs / "llama-server-deepseek-r1.toml"), "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert "-ngl 99 -ot exps=CPU" in proc.stdout and "--fit on" in proc.stdout  # the comparison rows
    assert "-ts 47,15 -ot" in proc.stdout and "--numa distribute" in proc.stdout  # the plan


def test_every_results_column_is_documented():
    from bench.schema import FIXED_COLUMNS

    doc = (Path(__file__).resolve().parents[2] / "docs" / "bench.md").read_text()
    missing = [c for c in FIXED_COLUMNS if f"`{c}`" not in doc and c not in doc]
    assert not missing, f"docs/bench.md lacks {missing}"


def test_genmodel_cli(tmp_path: Path):
    out = tmp_path / "m.gguf"
    proc = run_bench("genmodel", "--n-embd", "64", "--n-layer", "1", "--n-ff", "64", "--n-vocab", "512",
                     "--n-expert", "2", "--n-expert-used", "1", "--dtype", "q8_0", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert out.is_file() and str(out) in proc.stdout
    proc = run_bench("genmodel", "--n-expert", "2", "--n-expert-used", "3")
    assert proc.returncode == 2 and proc.stderr.startswith("error: genmodel")
    assert "Traceback" not in proc.stderr


REPORT_TABLE = """
min_decode_tps = 11.5
min_headroom_gb = 0
host_bandwidth_gbps = 409.6
gpu_bandwidth_gbps = [1792, 1792]
memory_channels = 8
"""


def test_report_table_is_typed_and_left_to_the_report():
    spec = spec_of(BASE.replace("[workload]", f"[report]{REPORT_TABLE}[workload]"))
    assert spec.report.min_decode_tps == 11.5 and spec.report.gpu_bandwidth_gbps == [1792, 1792]
    assert spec.report.memory_channels == 8 and spec.report.min_headroom_gb == 0
    assert spec_of(BASE.replace("[workload]", "[report]\ngpu_bandwidth_gbps = 4800\n[workload]")).report \
        .gpu_bandwidth_gbps == [4800]
    assert spec_of(BASE).report.min_decode_tps is None  # the report owns the defaults


@pytest.mark.parametrize("table", [
    "min_decode_tps = 15", "min_decode_tps = 0", "min_decode_tps = -1", 'min_decode_tps = "fast"',
    "min_headroom_gb = 0", "min_headroom_gb = -0.5", "host_bandwidth_gbps = 0", "host_bandwidth_gbps = 1e3",
    "gpu_bandwidth_gbps = 1792", "gpu_bandwidth_gbps = []", "gpu_bandwidth_gbps = [1, 0]",
    'gpu_bandwidth_gbps = ["x"]', "memory_channels = 0", "memory_channels = 12", "memory_channels = 2.5",
    "headroom_gb = 80", "min_decode_tps = 10\nmin_headroom_gb = 100",
    "vram_budget_gib = 3", "vram_budget_gib = [90, 30]", "vram_budget_gib = [90, 0]", 'vram_budget_gib = "3"',
])
def test_report_table_accepts_exactly_what_the_report_accepts(table: str):
    """The spec refuses before a launch what the report would refuse after the sweep, and no more."""
    from bench.report.options import FIELDS, ReportOptions

    data = tomllib.loads(table)
    try:
        ReportOptions.model_validate(data)
        report_ok = set(data) <= set(FIELDS)
    except ValueError:
        report_ok = False
    try:
        spec_of(BASE.replace("[workload]", f"[report]\n{table}\n[workload]"))
        spec_ok = True
    except SpecError as err:
        assert "\n" not in str(err) and "report." in str(err)
        spec_ok = False
    assert spec_ok == report_ok


def test_report_table_has_the_report_options_keys():
    from bench.report.options import FIELDS
    from bench.spec import ReportSpec

    assert tuple(ReportSpec.model_fields) == FIELDS
