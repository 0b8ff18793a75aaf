"""The llama.cpp-family argument model: parse, typed reading, round trip, errors, dialects."""

from __future__ import annotations

import pytest

from omni.llama_flags import LLAMA_CPP, ArgError, F
from omni.llama_overrides import EXPS_REGEX
from omni.llamacpp import LlamaArgs, build, decode_rate, parse

ARGV = ["-m", "x.gguf", "--host", "127.0.0.1", "--port", "8080", "-ngl", "99",
        "-ot", r"blk\.1\.=CUDA0,exps=CPU", "--n-cpu-moe", "2", "-ts", "3,1", "-sm", "row", "-mg", "1",
        "-t", "16", "-tb", "32", "-c", "8192",
        "-np", "4", "-b", "2048", "-ub", "512", "-fa", "on", "-kvu", "-ctk", "q8_0", "-ctv", "q8_0",
        "--numa", "distribute", "--mlock", "--no-mmap", "-fit", "off", "-fitt", "1024", "-fitc", "4096",
        "--weird-flag", "5", "--jinja"]


def test_parse_reads_every_flag_that_matters_typed():
    a = parse(ARGV)
    assert (a.model, a.host, a.port, a.n_gpu_layers) == ("x.gguf", "127.0.0.1", 8080, 99)
    assert a.override_tensor == [(r"blk\.1\.", "CUDA0"), ("exps", "CPU")]
    assert (a.n_cpu_moe, a.cpu_moe, a.tensor_split) == (2, False, (3.0, 1.0))
    assert (a.split_mode, a.main_gpu) == ("row", 1)
    assert (a.threads, a.threads_batch, a.ctx_size, a.parallel) == (16, 32, 8192, 4)
    assert (a.batch_size, a.ubatch_size, a.flash_attn, a.kv_unified) == (2048, 512, "on", True)
    assert (a.cache_type_k, a.cache_type_v, a.numa) == ("q8_0", "q8_0", "distribute")
    assert (a.mlock, a.no_mmap, a.fit) == (True, True, "off")
    assert (a.get("fit_target"), a.get("fit_ctx")) == ("1024", 4096)
    assert a.unknown == ["--weird-flag", "5", "--jinja"]


def test_round_trip_keeps_order_spelling_and_unknown_flags():
    assert parse(ARGV).to_argv() == ARGV
    argv = ["llama-server", "--threads", "4", "--unknown", "-t", "8", "--n-gpu-layers=7", "--cpu-moe"]
    assert parse(argv).to_argv() == argv


def test_aliases_equals_form_and_last_one_wins():
    a = parse(["-t", "4", "--threads=8", "--gpu-layers", "all", "--n-gpu-layers=auto"])
    assert a.threads == 8 and a.n_gpu_layers == "auto"
    assert [it.token for it in a.given("threads")] == ["-t", "--threads"]
    assert parse(["-kvu", "-no-kvu"]).kv_unified is False
    assert parse(["-nocb"]).get("cont_batching") is False


def test_overrides_in_llama_cpp_order():
    a = parse(["-ot", "a=CUDA0", "--n-cpu-moe", "2", "-cmoe", "-ot", "b=CPU"])
    assert a.overrides == [("a", "CUDA0"), (rf"blk\.0{EXPS_REGEX}", "CPU"), (rf"blk\.1{EXPS_REGEX}", "CPU"),
                           (EXPS_REGEX, "CPU"), ("b", "CPU")]


def test_env_fills_absent_flags_only():
    env = {"LLAMA_ARG_N_GPU_LAYERS": "5", "LLAMA_ARG_THREADS": "3", "LLAMA_ARG_CPU_MOE": "1"}
    a = parse(["-ngl", "7"], env=env)
    assert (a.n_gpu_layers, a.threads, a.cpu_moe) == (7, 3, True)
    assert a.overrides == [(EXPS_REGEX, "CPU")]
    assert a.to_argv() == ["-ngl", "7"]  # the env stays the env


@pytest.mark.parametrize(("argv", "needle"), [
    (["-t", "many"], "-t 'many': not a whole number"),
    (["--threads=x"], "--threads 'x'"),
    (["-ngl", "lots"], "-ngl 'lots'"),
    (["-ts", "a,b"], "-ts 'a,b'"),
    (["-sm", "diagonal"], "-sm 'diagonal': not one of none, layer, row, tensor"),
    (["-ot", "exps"], "-ot 'exps': not PATTERN=BUFFER"),
    (["-c"], "-c needs a value"),
    (["-fa", "maybe"], "-fa 'maybe'"),
])
def test_malformed_values_are_one_line_errors_naming_the_flag(argv, needle):
    with pytest.raises(ArgError) as err:
        parse(argv)
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_lenient_parse_records_problems_and_keeps_tokens():
    a = parse(["-ngl", "many", "-t", "4"], lenient=True)
    assert a.n_gpu_layers is None and a.threads == 4
    assert a.problems and "-ngl 'many'" in a.problems[0]
    assert a.to_argv() == ["-ngl", "many", "-t", "4"]


def test_set_and_build_render_argv():
    a = build(model="m.gguf", n_gpu_layers=99, override_tensor=["exps=CPU"], tensor_split=(3.0, 1.0),
              mlock=True)
    assert a.to_argv() == ["-m", "m.gguf", "-ngl", "99", "-ot", "exps=CPU", "-ts", "3,1", "--mlock"]
    a.set("n_gpu_layers", "all").set("mlock", False).set("threads", 8)
    assert a.to_argv() == ["-m", "m.gguf", "-ngl", "all", "-ot", "exps=CPU", "-ts", "3,1", "-t", "8"]
    p = parse(["-t", "4", "--x", "--threads", "6"]).set("threads", 2)
    assert p.to_argv() == ["-t", "2", "--x"]
    with pytest.raises(KeyError):
        p.set("no_such_flag", 1)


def test_a_dialect_adds_its_flags_without_copying():
    ik = LLAMA_CPP.extend(F("fused_moe", "-fmoe", "--fused-moe", kind="switch"),
                          F("run_time_repack", "-rtr", "--run-time-repack", kind="switch"),
                          F("mla", "-mla", "--mla-use", kind="int"),
                          F("amb", "-amb", "--attention-max-batch", kind="int"),
                          name="ik_llama.cpp")
    a = parse(["-m", "x.gguf", "-fmoe", "-rtr", "-mla", "3", "-amb", "512", "-t", "8"], ik)
    assert (a.fused_moe, a.get("run_time_repack"), a.mla, a.amb, a.threads) == (True, True, 3, 512, 8)
    assert parse(["-fmoe"]).unknown == ["-fmoe"]  # plain llama.cpp does not know it
    with pytest.raises(ValueError, match="spelled by both"):
        LLAMA_CPP.extend(F("other", "-t"))


def test_set_keeps_the_text_and_spelling_it_is_given():
    a = LlamaArgs().set("tensor_split", "3.0,1", "--tensor-split").set("ctx_size", 4096, "--ctx-size")
    a.set("override_tensor", r"\.ffn_.*_exps\.=CPU", "-ot").set("mlock", True, "--mlock")
    assert a.to_argv() == ["--tensor-split", "3.0,1", "--ctx-size", "4096", "-ot", r"\.ffn_.*_exps\.=CPU",
                           "--mlock"]
    assert a.tensor_split == (3.0, 1.0) and a.override_tensor == [(r"\.ffn_.*_exps\.", "CPU")]
    with pytest.raises(ArgError, match="--tensor-split 'x'"):
        a.set("tensor_split", "x", "--tensor-split")
    with pytest.raises(KeyError, match="not a spelling of threads"):
        a.set("threads", 4, "--thread")


def test_decode_rate_counts_decode_steps_for_both_engines():
    """`predicted_ms` spans n - 1 decode steps in both engines; ik_llama.cpp's predicted_per_second
    divides n by it (the pinned mainline divides n - 1), so the rate is recomputed from the two."""
    ik = {"predicted_n": 12, "predicted_ms": 10.0, "predicted_per_second": 1200.0}
    mainline = {"predicted_n": 12, "predicted_ms": 10.0, "predicted_per_second": 1100.0}
    assert decode_rate(ik) == decode_rate(mainline) == pytest.approx(1100.0)
    assert decode_rate({"predicted_per_second": 50.0}) == 50.0  # an older server without n or ms
    assert decode_rate({"predicted_n": 1, "predicted_ms": 0.001, "predicted_per_second": 1e6}) == 1e6
    assert decode_rate({}) is None
