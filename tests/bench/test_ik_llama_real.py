"""The `ik_llama` engine against a REAL ik_llama.cpp llama-server, built CPU-only from the fork's
pinned source by scripts/prepare_ik_llama_cpp.sh + scripts/build_llama_cpp.sh (the
`ik_llama_server_binary` fixture, cached in ~/.cache/protocol-omni like the mainline build).

What only the real fork shows: its /props has slots and context but none of its own settings, so
fused MoE, MLA, the attention batch cap and run-time repacking are read back from its startup log;
MLA is silently dropped for a model that is not DeepSeek-style; `-fmoe` no longer exists.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.genmodel.cache import ensure_model
from bench.genmodel.shape import ModelShape
from tests.bench.benchutil import real_server_spec, rows_by_case, run_bench, write_spec

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]  # the first use builds the fork

# a q8_0 MoE: fused MoE has experts to fuse, and -rtr has q8_0 tensors to repack (Q8_0_R8)
TINY_MOE = ModelShape(n_embd=128, n_layer=2, n_ff=256, n_head=4, n_head_kv=2, n_vocab=1024,
                      n_expert=4, n_expert_used=2, dtype="q8_0")
# DEFAULTS: the fork's defaults (fused MoE on); TUNED: fused MoE off, weights repacked at load, an
#    MLA mode this Llama-style model cannot use (the fork drops it silently), an attention batch cap.
DEFAULTS, TUNED = "-np 2 -c 1024", "-np 1 -c 1024 -no-fmoe -rtr -mla 2 -amb 256"


@pytest.fixture(scope="module")
def moe_model(model_cache: Path) -> Path:
    return ensure_model(TINY_MOE)


@pytest.fixture(scope="module")
def sweep(ik_llama_server_binary: Path, moe_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("real-ik-llama")
    text = real_server_spec("real-ik-llama", "ik_llama", ik_llama_server_binary, moe_model, [DEFAULTS, TUNED])
    spec = write_spec(tmp / "s.toml", text)
    out = tmp / "sweep"
    proc = run_bench("sweep", str(spec), "--out", str(out), "--no-report")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def test_the_two_config_sweep_measures_through_the_fork(sweep: Path, ik_llama_server_binary: Path):
    by_case = rows_by_case(sweep)
    assert sorted(by_case) == sorted([DEFAULTS, TUNED])
    for rows in by_case.values():
        assert [r["concurrency"] for r in rows] == ["1", "2"]
        for r in rows:
            assert (r["status"], r["engine"], r["errors"]) == ("ok", "ik_llama", "0"), r["error_reason"]
            assert json.loads(r["launch_argv"])[0] == str(ik_llama_server_binary)
            assert r["version.ik_llama.cpp"].startswith("0 (") or "ik-0.1.5" in r["version.ik_llama.cpp"]
            assert float(r["output_tokens_measured"]) == 12
            # the truth check's two sides: our client's rate and the fork's own `timings`
            assert float(r["decode_tps"]) > 0 and float(r["server_decode_tps"]) > 0


def test_readback_comes_from_props_and_the_startup_log(sweep: Path):
    rows = rows_by_case(sweep)
    plain = json.loads(rows[DEFAULTS][0]["applied_config"])
    assert plain["readback_source"].startswith("/props") and "startup log" in plain["readback_source"]
    assert plain["total_slots"] == 2 and plain["n_ctx_slot"] == 512  # 1024 split over 2 slots
    assert (plain["log.threads"], plain["log.parallel"], plain["log.ctx_size"]) == (1, 2, 1024)
    assert plain["log.fused_moe"] == 1 and plain["log.attn_max_batch"] == 0 and "log.repacked" not in plain
    assert "log.mla_attn" not in plain  # printed for DeepSeek-style models only
    assert {r["config_mismatches"] for r in rows[DEFAULTS]} == {""}

    tuned = json.loads(rows[TUNED][0]["applied_config"])
    assert (tuned["log.fused_moe"], tuned["log.attn_max_batch"]) == (0, 256)
    assert tuned["log.repacked"] > 0  # -rtr: the q8_0 tensors were repacked at load
    assert {r["config_mismatches"] for r in rows[TUNED]} == {
        "-mla 2 asked, ignored: MLA applies to DeepSeek-style models only (deepseek2, glm-dsa, mistral4)"}


def test_truth_check_runs_llama_sweep_bench_with_each_placement(sweep: Path, ik_llama_server_binary: Path):
    """`python -m benchmarks.truth`: our rate, the server's timings and llama-sweep-bench side by side."""
    proc = run_bench(str(sweep), module="benchmarks.truth", timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    recs = {r["config_label"].removeprefix("case="): r
            for r in map(json.loads, (sweep / "truth.jsonl").read_text().splitlines())}
    assert sorted(recs) == sorted([DEFAULTS, TUNED])
    for case, r in recs.items():
        assert r["engine"] == "ik_llama" and r["bench_error"] == "", r
        cmd = r["bench_command"]
        assert cmd[0] == str(ik_llama_server_binary.parent / "llama-sweep-bench")
        assert "-np" not in cmd and "--port" not in cmd and "-t" in cmd  # placement flags only
        assert ("-rtr" in cmd and "-no-fmoe" in cmd) == (case == TUNED)
        assert r["bench_decode_tps"] > 0 and r["bench_prefill_tps"] > 0
        assert r["server_over_bench"] > 0
        # the tiny model decodes 12 tokens in a few ms: a ratio (with a note on the short window),
        # or, when every request came in bursts on a busy box, no ratio and a note saying so
        paired = r.get("client_over_server")
        assert paired > 0 if paired is not None else "bursts" in r["client_server_note"], r
    assert "| ours/server |" in proc.stdout


def test_the_fork_rejects_fmoe_as_the_engine_says(ik_llama_server_binary: Path, moe_model: Path):
    """The claim behind refusing -fmoe up front: this build exits on it as an unknown argument."""
    proc = subprocess.run([str(ik_llama_server_binary), "-m", str(moe_model), "-fmoe", "--port", "1"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "unknown argument: -fmoe" in proc.stdout + proc.stderr


@pytest.mark.parametrize(("case", "named"), [
    ("-fmoe -ngl 99", "-fmoe: fused MoE is on by default"),
    ("-mla 7", "-mla '7': not one of 0, 1, 2, 3"),
    ("-amb lots", "-amb 'lots': not a whole number"),
    ("-ngl all", "-ngl 'all': ik_llama.cpp takes a number"),
    ("-kvu", "-kvu is a mainline llama.cpp flag"),
])
def test_bad_flags_stop_the_sweep_in_one_line(tmp_path: Path, moe_model: Path, case: str, named: str):
    """Refused before any launch, so any existing file stands in for the binary (no build needed)."""
    text = real_server_spec("real-ik-llama", "ik_llama", sys.executable, moe_model, [DEFAULTS, case])
    spec = write_spec(tmp_path / "s.toml", text)
    proc = run_bench("sweep", str(spec), "--out", str(tmp_path / "out"), "--no-report")
    assert proc.returncode != 0
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and named in lines[0] and "Traceback" not in proc.stderr, proc.stderr
    assert not (tmp_path / "out" / "results.csv").exists()  # refused before any launch
