"""Shared fixtures: a tiny generated model (hermetic cache) and real xllamacpp servers on loopback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bench.genmodel import ensure_model
from bench.server import free_port, http_json
from tests.bench.benchutil import SMALL, TINY


@pytest.fixture(scope="session", autouse=True)
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Generated models go to a per-session cache, not the user's ~/.cache."""
    path = tmp_path_factory.mktemp("models")
    old = os.environ.get("OMNI_MODEL_CACHE")
    os.environ["OMNI_MODEL_CACHE"] = str(path)
    yield path
    if old is None:
        os.environ.pop("OMNI_MODEL_CACHE", None)
    else:
        os.environ["OMNI_MODEL_CACHE"] = old


@pytest.fixture(scope="session")
def tiny_model(model_cache: Path) -> Path:
    return ensure_model(TINY)


@pytest.fixture(scope="session")
def small_model(model_cache: Path) -> Path:
    return ensure_model(SMALL)


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., str]]:
    """Start `python -m bench.xllamacpp_server MODEL ARGS` on a free loopback port; returns its URL."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(model: Path, *args: str) -> str:
        port = free_port()
        log = (tmp_path / f"server-{port}.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.xllamacpp_server", "-m", str(model), "--port", str(port), *args],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        procs.append(proc)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"server exited: {(tmp_path / f'server-{port}.log').read_text()[-2000:]}")
            if http_json(base + "/health", timeout=1)[0] == 200:
                return base
            time.sleep(0.05)
        pytest.fail("server never became healthy")

    yield start
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
