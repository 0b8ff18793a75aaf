"""The server's own error line, picked from the real llama-server's log when a launch fails."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bench.server import error_line

pytestmark = pytest.mark.slow


def _fail(binary: Path, *args: str) -> str:
    proc = subprocess.run([str(binary), *args, "--host", "127.0.0.1", "--port", "1"], capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert proc.returncode != 0
    return proc.stdout + proc.stderr


def test_a_truncated_model_names_the_load_error(llama_server_binary: Path, tiny_model: Path, tmp_path: Path):
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(tiny_model.read_bytes()[: tiny_model.stat().st_size // 2])
    line = error_line(_fail(llama_server_binary, "-m", str(broken)))
    assert "error" in line.lower() and "exiting due to" not in line, line


def test_a_bad_flag_is_the_servers_own_refusal(llama_server_binary: Path, tiny_model: Path):
    line = error_line(_fail(llama_server_binary, "-m", str(tiny_model), "--no-such-flag"))
    assert "--no-such-flag" in line, line


def test_a_python_traceback_ends_in_its_exception():
    tail = ("loading\nTraceback (most recent call last):\n  File \"x.py\", line 1, in <module>\n"
            "    main()\nRuntimeError: CUDA out of memory\n")
    assert error_line(tail) == "RuntimeError: CUDA out of memory"
