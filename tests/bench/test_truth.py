"""`python -m benchmarks.truth` without a server: the engine benchmark's command line follows the
launch (placement flags only; mainline llama-bench repacks CPU weights exactly when the server did)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.report.summary import ConfigSummary
from benchmarks.truth import bench_command, client_vs_server, table
from omni.ik_llama import check_argv
from omni.llama_flags import ArgError

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


def test_client_vs_server_reads_the_paired_ratio_and_flags_short_windows():
    rows = [{"decode_tps": "900", "server_decode_tps": "1000", "decode_client_over_server": "0.99",
             "server_decode_window_ms": "12"},
            {"decode_tps": "1100", "server_decode_tps": "1000", "decode_client_over_server": "1.0",
             "server_decode_window_ms": "14"}]
    out = client_vs_server(rows)
    assert out["client_over_server"] == pytest.approx(0.995) and out["client_server_agree"] is True
    assert out["server_decode_window_ms"] == 13 and "13 ms per request" in out["client_server_note"]
    assert client_vs_server(rows, tolerance=0.001)["client_server_agree"] is False
    old = client_vs_server([{"decode_tps": "90", "server_decode_tps": "100"}])  # a sweep before pairing
    assert old["client_over_server"] == pytest.approx(0.9) and old["client_server_agree"] is False
    assert "client_server_note" not in old
    bursts = client_vs_server([{"decode_tps": "900", "server_decode_tps": "100",
                                "decode_client_over_server": ""}])
    assert "client_over_server" not in bursts and "bursts" in bursts["client_server_note"]
    rec = {"config_label": "case=x", "engine": "ik_llama", "decode_tps": 90.0, "server_decode_tps": 100.0,
           "server_prefill_tps": 1.0, **old}
    assert "| 0.900 | NO |" in table([rec])


def test_the_report_flags_disagreement_on_the_paired_ratio():
    """The page's client/server check reads the same pairing as the truth tool, not the two means."""
    s = ConfigSummary("c1", "x", "llama-server", "ok", "", [], {}, decode_tps=900.0, server_decode_tps=1000.0)
    assert s.client_server_ratio == pytest.approx(0.9) and not s.decode_disagrees
    s.decode_paired = 0.5  # e.g. a few requests stalled while the means happened to agree
    assert s.client_server_ratio == 0.5 and s.decode_disagrees and s.decode_judged == 900.0
