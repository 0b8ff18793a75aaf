"""Start and stop a real llama.cpp-style server on loopback for a test (xllamacpp or llama-server).

Why one place: the bench, report and phase-5 tests all start real servers; each needs the same
own-session start, health wait with the log tail on failure, and TERM-then-KILL teardown.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from bench.server import http_json


def start(argv: list[str], port: int, log_path: Path, timeout: float = 60) -> subprocess.Popen[bytes]:
    """Run ``argv`` (already listening on 127.0.0.1:``port``) until ``/health`` answers 200."""
    with log_path.open("wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{argv[0]} exited: {log_path.read_text(errors='replace')[-2000:]}")
        if http_json(f"http://127.0.0.1:{port}/health", timeout=1)[0] == 200:
            return proc
        time.sleep(0.05)
    stop(proc)
    pytest.fail(f"{argv[0]} never became healthy: {log_path.read_text(errors='replace')[-2000:]}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group, SIGKILL it after 10 s."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
