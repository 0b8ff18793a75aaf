"""Issue 19, class 11 (bench): bad input is one line and a non-zero exit, never a traceback, and
nothing is started or written."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bench.benchutil import run_bench

SPEC = """
name = "t"
engine = "xllamacpp"
[server]
generate = { n_embd = 128, n_layer = 2, n_ff = 256, n_head = 4, n_head_kv = 2, n_vocab = 1024 }
HOST
[axes]
"-np" = [1]
EXCLUDE
[workload]
input_tokens = [32]
output_tokens = [4]
concurrency = [1]
requests = 2
"""


def spec(tmp_path: Path, host: str = "", exclude: str = "") -> Path:
    path = tmp_path / "s.toml"
    path.write_text(SPEC.replace("HOST", host).replace("EXCLUDE", exclude))
    return path


def one_line_refusal(proc, needle: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert needle in proc.stderr


def test_binary_spec(tmp_path: Path) -> None:
    path = tmp_path / "b.toml"
    path.write_bytes(b"\xff\xfe\x00\x01binary")
    one_line_refusal(run_bench("sweep", str(path), "--out", str(tmp_path / "o")), "is not UTF-8 text")


def test_spec_that_excludes_every_configuration(tmp_path: Path) -> None:
    path = spec(tmp_path, exclude='[[exclude]]\n"-np" = 1')
    one_line_refusal(run_bench("sweep", str(path), "--dry-run"), "every server configuration is excluded")
    one_line_refusal(run_bench("sweep", str(path), "--out", str(tmp_path / "o")), "is excluded")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("host", ["nosuchhost.invalid", "192.0.2.1"])
def test_host_that_is_not_this_machine(tmp_path: Path, host: str) -> None:
    proc = run_bench("sweep", str(spec(tmp_path, host=f'host = "{host}"')), "--out", str(tmp_path / "o"))
    one_line_refusal(proc, f"server.host {host!r} is not an address of this machine")
    assert not (tmp_path / "o").exists()


def test_out_pointing_at_a_file(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("mine\n")
    proc = run_bench("sweep", str(spec(tmp_path)), "--out", str(tmp_path / "afile"))
    one_line_refusal(proc, "is a file, not a directory")
    assert (tmp_path / "afile").read_text() == "mine\n"
