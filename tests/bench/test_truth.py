"""`python -m benchmarks.truth` without a server: the engine benchmark's command line follows the
launch (placement flags only; mainline llama-bench repacks CPU weights exactly when the server did)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.truth import bench_command
from omni.ik_llama import check_argv
from omni.llamacpp import ArgError

SERVER = ["/opt/llama/llama-server", "-m", "/m.gguf", "-t", "4", "-np", "2", "--port", "8080", "-ngl", "99"]


def llama_bench(extra: list[str], knows: set[str]) -> list[str]:
    return bench_command("llama-server", SERVER + extra, Path("/opt/llama"), 128, 64,
                         knows=knows.__contains__)


@pytest.mark.parametrize(("extra", "repack"), [([], "1"), (["-nr"], "0"), (["--no-repack"], "0"),
                                               (["-nr", "--repack"], "1")])
def test_llama_bench_repacks_exactly_when_the_server_did(extra: list[str], repack: str):
    cmd = llama_bench(extra, {"--repack", "--no-host"})
    assert cmd[0] == "/opt/llama/llama-bench"
    assert cmd[cmd.index("--repack") + 1] == repack and cmd.count("--repack") == 1
    assert "-nr" not in cmd and "--no-repack" not in cmd  # llama-bench spells it --repack 0|1 only
    assert "-np" not in cmd and "--port" not in cmd and "-t" in cmd and "--no-host" not in cmd


def test_no_host_follows_the_server_and_an_old_llama_bench_gets_neither_flag():
    cmd = llama_bench(["--no-host"], {"--repack", "--no-host"})
    assert cmd[cmd.index("--no-host"):][:2] == ["--no-host", "1"] and "--repack" in cmd
    old = llama_bench(["-nr", "--no-host"], set())
    assert "--repack" not in old and "--no-host" not in old


def test_the_fork_has_no_repack_switch():
    """ik_llama.cpp 0.1.5 repacks only on -rtr; mainline's --no-repack would stop its server."""
    with pytest.raises(ArgError, match=r"mainline llama\.cpp flag"):
        check_argv(["-m", "/m.gguf", "--no-repack"])
