"""The first-class `llama-server` engine against a REAL llama-server, built CPU-only from the pinned
llama.cpp source by scripts/prepare_llama_cpp.sh + scripts/build_llama_cpp.sh (the
`llama_server_binary` fixture; ~7 min once per machine, cached in ~/.cache/protocol-omni).

What only the real binary shows: its default log level hides libllama's lines (`llama_context: n_ctx`,
`offloaded N/M layers`), it caps a slot context at the model's training context, and a CPU-only
build ignores `-ngl` with a warning — each must end up in the readback as data.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.engines import get_engine
from bench.engines.base import Launch
from bench.engines.llamacpp import parse_log
from bench.server import http_json
from tests.bench.benchutil import real_server_spec, rows_by_case, run_bench, write_spec

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]  # the first use builds llama-server


def test_the_built_binary_is_the_pinned_cpu_build(llama_server_binary: Path):
    proc = subprocess.run([str(llama_server_binary), "--version"], capture_output=True, text=True, timeout=30)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "version: " in out and "CUDA" not in out


def test_alias_names_the_model_as_llama_server_does(llama_server_binary: Path, tiny_model: Path, serve):
    """`--alias "architect, planner"`: the same /v1/models id and aliases from both engines (the
    xllamacpp entry point once split the alias into letters: id "a")."""
    commands = {"llama-server": [str(llama_server_binary)],
                "xllamacpp": [sys.executable, "-m", "bench.xllamacpp_server"]}
    for name, argv in commands.items():
        base = serve(*argv, "-m", str(tiny_model), "-t", "1", "--no-warmup", "--alias", "architect, planner")
        status, models = http_json(base + "/v1/models")
        assert status == 200, name
        assert [m["id"] for m in models["data"]] == ["architect"], (name, models)
        assert models["data"][0]["aliases"] == ["architect", "planner"], name
        assert http_json(base + "/props")[1]["model_alias"] == "architect", name


# MATCH: what was asked is applied (2 slots sharing one 1024-token KV cache; the default log level).
# CAPPED: libllama's lines (-lv 4); 16384 asked for 2 slots: the KV cache is 16384 but each slot is
#    capped at the model's training context (4096), and a CPU-only build ignores -ngl 99.
MATCH, CAPPED = "-np 2 -c 1024 -kvu", "-np 2 -c 16384 -ngl 99 -lv 4"


@pytest.fixture(scope="module")
def sweep(llama_server_binary: Path, tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("real-llama-server")
    text = real_server_spec("real-llama-server", "llama-server", llama_server_binary, tiny_model,
                            [MATCH, CAPPED])
    spec = write_spec(tmp / "s.toml", text)
    out = tmp / "sweep"
    proc = run_bench("sweep", str(spec), "--out", str(out), "--no-report")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def test_sweep_measures_through_the_real_binary(sweep: Path, llama_server_binary: Path):
    by_case = rows_by_case(sweep)
    assert sorted(by_case) == [MATCH, CAPPED]
    proc = subprocess.run([str(llama_server_binary), "--version"], capture_output=True, text=True, timeout=30)
    version = next(ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.startswith("version:"))
    for rows in by_case.values():
        assert [r["concurrency"] for r in rows] == ["1", "2"]
        for r in rows:
            assert (r["status"], r["engine"], r["errors"]) == ("ok", "llama-server", "0"), r["error_reason"]
            assert json.loads(r["launch_argv"])[0] == str(llama_server_binary)
            assert r["version.llama-server"] == version.removeprefix("version:").strip()
            assert float(r["input_tokens_measured"]) == 24 and float(r["output_tokens_measured"]) == 12
            assert float(r["decode_tps"]) > 0 and float(r["server_decode_tps"]) > 0  # the real `timings`
            assert int(r["server_rss_peak_bytes"]) > 1e6


def test_truth_check_runs_llama_bench_repacking_as_the_server_did(sweep: Path, llama_server_binary: Path):
    """`python -m benchmarks.truth` on mainline: the pinned llama-bench beside the server, with the
    placement flags and `--repack 1` (the server's default: CPU weights into the repacked buffer
    types where the CPU has them, AMX included), recorded as bench_repack."""
    proc = run_bench(str(sweep), module="benchmarks.truth", timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    recs = [json.loads(ln) for ln in (sweep / "truth.jsonl").read_text().splitlines()]
    assert sorted(r["config_label"].removeprefix("case=") for r in recs) == sorted([MATCH, CAPPED])
    for r in recs:
        assert r["engine"] == "llama-server" and r["bench_error"] == "", r
        cmd = r["bench_command"]
        assert cmd[0] == str(llama_server_binary.parent / "llama-bench")
        assert cmd[cmd.index("--repack") + 1] == "1" and r["bench_repack"] is True
        assert "-np" not in cmd and "-kvu" not in cmd and "-t" in cmd  # placement flags only
        assert r["bench_decode_tps"] > 0 and r["bench_prefill_tps"] > 0
    assert "| ours/server | agree |" in proc.stdout


def test_props_readback_matches_what_was_asked(sweep: Path):
    rows = rows_by_case(sweep)[MATCH]
    applied = json.loads(rows[0]["applied_config"])
    assert applied["total_slots"] == 2 and applied["n_ctx_slot"] == 1024  # unified: each slot sees all
    assert applied["model_path"].endswith(".gguf") and applied["build_info"]
    assert (applied["log.threads"], applied["log.parallel"], applied["log.ctx_slot"]) == (1, 2, 1024)
    assert applied["log.kv_unified"] is True
    assert "log.ctx_size" not in applied  # libllama's n_ctx line needs -lv 4 on llama-server
    assert {r["config_mismatches"] for r in rows} == {""}


def test_a_capped_context_and_ignored_gpu_layers_are_mismatches(sweep: Path):
    rows = rows_by_case(sweep)[CAPPED]
    applied = json.loads(rows[0]["applied_config"])
    assert applied["total_slots"] == 2 and applied["n_ctx_slot"] == 4096
    assert applied["log.ctx_size"] == 16384 and applied["log.ctx_train"] == 4096
    assert applied["log.gpu_layers_ignored"] is True and "AVX" in applied["log.system_info"]
    assert {r["config_mismatches"] for r in rows} == {"; ".join([
        "ctx_size asked 16384, but each slot is capped at the model's training context 4096",
        "n_gpu_layers asked 99, ignored: no usable GPU (llama.cpp built without GPU support?)",
    ])}


def test_log_parsing_of_the_real_server_logs(sweep: Path, llama_server_binary: Path, tiny_model: Path,
                                             serve, tmp_path: Path):
    """The engine's parser on the logs the sweep kept, and on a capped context at the default log
    level, where only /props x slots tells what a request may use."""
    rows = rows_by_case(sweep)
    verbose = (sweep / rows[CAPPED][0]["log_path"]).read_text()
    assert "exceeds the training context of the model" in verbose and "n_slots = 2" in verbose
    assert {k: v for k, v in parse_log(verbose).items() if k != "system_info"} == {
        "threads": 1, "parallel": 2, "ctx_slot": 4096, "ctx_size": 16384, "ctx_train": 4096,
        "kv_unified": False, "gpu_layers_ignored": True}
    plain = (sweep / rows[MATCH][0]["log_path"]).read_text()
    assert parse_log(plain) == {"threads": 1, "parallel": 2, "ctx_slot": 1024, "kv_unified": True}

    argv = [str(llama_server_binary), "-m", str(tiny_model), "-t", "1", "-np", "2", "-c", "16384",
            "--no-warmup"]
    base = serve(*argv)
    props = http_json(base + "/props")[1]
    rb = get_engine("llama-server").readback(Launch(argv, {}, [], base), props,
                                              next(tmp_path.glob("server-*.log")).read_text())
    assert rb.mismatches == ["ctx_size asked 16384, server applied 8192 "
                             "(capped at the model's training context 4096)"]
