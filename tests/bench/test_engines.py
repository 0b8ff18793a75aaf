"""Engine launch templates (exact argv/env), placebo flags refused, llama.cpp config readback."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from bench.engines import ENGINES, get_engine
from bench.engines.llamacpp import asked_values, compare, parse_log
from bench.plan import server_configs
from bench.server import http_json
from bench.spec import SpecError, parse_spec


def spec(engine: str, extra: str = "", axes: str = '"--threads" = [8]') -> object:
    return parse_spec(tomllib.loads(f"""
engine = "{engine}"
[server]
model = "/models/r1"
binary = "/opt/py/bin/python"
args = ["--flag", "1"]
env = {{ A = "1" }}
{extra}
[axes]
{axes}
"""))


def launch(engine: str, extra: str = "", axes: str = '"--threads" = [8]'):
    s = spec(engine, extra, axes)
    cfg = server_configs(s)[0]
    return get_engine(engine).launch(s.server, s.server.model, cfg, 30000)


def test_every_engine_is_registered():
    assert set(ENGINES) == {"llama-server", "xllamacpp", "ik_llama", "ktransformers", "ktransformers-sglang",
                            "sglang", "vllm"}
    assert {n for n, e in ENGINES.items() if e.runnable} == {"llama-server", "xllamacpp", "ik_llama"}


def test_ktransformers_legacy_template():
    ln = launch("ktransformers", '[server.extra]\nmodel_path = "/models/R1-config"\n'
                                 'optimize_config_path = "/opt/rules/DeepSeek-V3-Chat.yaml"',
                axes='"--cpu_infer" = [64]')
    assert ln.argv == [
        "/opt/py/bin/python", "-m", "ktransformers.server.main", "--model_path", "/models/R1-config",
        "--gguf_path", "/models/r1", "--optimize_config_path", "/opt/rules/DeepSeek-V3-Chat.yaml",
        "--host", "127.0.0.1", "--port", "30000", "--flag", "1", "--cpu_infer", "64",
    ]
    assert ln.env == {"A": "1"} and ln.health_path == "/v1/models"
    assert ln.base_url == "http://127.0.0.1:30000"
    assert get_engine("ktransformers").fixed_length_fields == {}  # length comes from --max_new_tokens


def test_ktransformers_sglang_kt_template():
    ln = launch("ktransformers-sglang", '[server.extra]\nkt_weight_path = "/models/r1-amx"',
                axes='"--kt-method" = ["AMXINT4"]\n"--kt-cpuinfer" = [96]\n"--kt-num-gpu-experts" = [8]')
    assert ln.argv[:9] == ["/opt/py/bin/python", "-m", "sglang.launch_server", "--model-path", "/models/r1",
                           "--host", "127.0.0.1", "--port", "30000"]
    assert ln.argv[9:] == ["--kt-weight-path", "/models/r1-amx", "--flag", "1", "--kt-method", "AMXINT4",
                           "--kt-cpuinfer", "96", "--kt-num-gpu-experts", "8"]


def test_sglang_and_vllm_templates():
    ln = launch("sglang", axes='"env.SGLANG_ENABLE_JIT_DEEPGEMM" = ["0"]\n"--tp" = [2]')
    assert ln.argv[1:3] == ["-m", "sglang.launch_server"] and ln.argv[-2:] == ["--tp", "2"]
    assert ln.env == {"A": "1", "SGLANG_ENABLE_JIT_DEEPGEMM": "0"} and ln.health_path == "/health"
    ln = launch("vllm", axes='"--tensor-parallel-size" = [2]')
    assert ln.argv == ["/opt/py/bin/python", "serve", "/models/r1", "--host", "127.0.0.1", "--port", "30000",
                       "--flag", "1", "--tensor-parallel-size", "2"]
    assert get_engine("vllm").fixed_length_fields == {"ignore_eos": True}


@pytest.mark.parametrize(("engine", "axes", "needle"), [
    ("ktransformers", '"--gpu_split" = ["24,24"]', "--gpu_split does nothing"),
    ("ktransformers-sglang", '"env.ENABLE_DEEPGEMM" = ["1"]', "env ENABLE_DEEPGEMM does nothing"),
    ("sglang", '"env.KTRANSFORMERS_BACKEND_GPU" = ["flashinfer"]', "KTRANSFORMERS_BACKEND_GPU does nothing"),
])
def test_placebo_flags_and_env_are_refused(engine: str, axes: str, needle: str):
    s = spec(engine, axes=axes)
    with pytest.raises(SpecError, match=needle):
        get_engine(engine).check_config(server_configs(s)[0])


def test_llama_server_binary_missing_is_one_line(tmp_path: Path):
    s = parse_spec(tomllib.loads(f'engine = "llama-server"\n[server]\nmodel = "{tmp_path}/m.gguf"\n'
                                 f'binary = "{tmp_path}/nope/llama-server"'))
    with pytest.raises(SpecError, match=r"llama-server binary .* not found: set server.binary"):
        get_engine("llama-server").preflight(s.server, s.server.model)


def test_asked_values_last_flag_wins():
    argv = ["x", "-t", "4", "--threads", "8", "-np", "2", "-c", "4096", "-ngl", "99"]
    assert asked_values(argv) == {"threads": "8", "parallel": "2", "ctx_size": "4096", "n_gpu_layers": "99"}


def test_compare_reports_each_mismatch():
    log = parse_log("llama threadpool init, n_threads = 2\ninitializing, n_slots = 1, n_ctx_slot = 512\n"
                    "load_tensors: offloaded 10/17 layers to GPU\n")
    found = compare({"threads": "4", "parallel": "2", "ctx_size": "1000", "n_gpu_layers": "99"},
                    {"total_slots": 1, "default_generation_settings": {"n_ctx": 512}}, log)
    assert found == ["parallel asked 2, server runs 1 slots", "threads asked 4, server uses 2",
                     "ctx_size asked 1000, server applied 512", "n_gpu_layers asked 99, offloaded 10/17"]
    assert compare({"threads": "2", "n_gpu_layers": "99"}, None,
                   parse_log("n_threads = 2\noffloaded 17/17 layers to GPU")) == []


@pytest.mark.slow
def test_readback_from_a_real_server(tiny_model: Path, start_server, tmp_path: Path):
    """Asked -c 1000 with 2 slots: llama.cpp rounds the context; the mismatch is recorded."""
    base = start_server(tiny_model, "-t", "1", "-np", "2", "-c", "1000")
    _, props = http_json(base + "/props")
    log = next(tmp_path.glob("server-*.log")).read_text()
    from bench.engines.base import Launch

    ln = Launch(argv=["x", "-t", "1", "-np", "2", "-c", "1000"], env={}, prefix=[], base_url=base)
    rb = get_engine("xllamacpp").readback(ln, props, log)
    assert rb.applied["total_slots"] == 2 and rb.applied["log.threads"] == 1
    slot_ctx = rb.applied["n_ctx_slot"]
    assert slot_ctx * 2 != 1000
    assert rb.mismatches == [f"ctx_size asked 1000, server applied {slot_ctx * 2}"]


def test_xllamacpp_entry_point_refuses_unknown_flags(tiny_model: Path):
    argv = [sys.executable, "-m", "bench.xllamacpp_server", "-m", str(tiny_model), "--bogus", "1"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "unknown argument '--bogus'" in proc.stderr
    for bad, needle in ((["-t", "two"], "-t 'two': not a whole number"),
                        (["--mlock"], "--mlock is a llama-server flag")):
        proc = subprocess.run([*argv[:5], *bad], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and needle in proc.stderr, proc.stderr


def test_numa_vocabulary_is_the_stacks_llama_cpp_flag_included():
    """The spec speaks omni.numa's words: llama.cpp's own --numa goes into the server argv."""
    ll = launch("llama-server", axes='numa = ["--numa distribute"]')
    assert ll.prefix == [] and ll.argv[-2:] == ["--numa", "distribute"]
    with pytest.raises(SpecError, match=r"'--numa distribute' is llama\.cpp's own flag, which engine vllm"):
        spec("vllm", axes='numa = ["none", "--numa distribute"]')
