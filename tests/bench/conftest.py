"""Shared fixtures: a tiny generated model (hermetic cache) and real xllamacpp servers on loopback."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bench.genmodel.cache import ensure_model
from bench.server import free_port
from tests import servers
from tests.bench.benchutil import SMALL, TINY
from tests.llama_builds import ik_llama_server, mainline_llama_server


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
def serve(tmp_path: Path) -> Iterator[Callable[..., str]]:
    """Start `ARGV --host 127.0.0.1 --port P` (any llama-server-like command); returns its URL."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(*argv: str) -> str:
        port = free_port()
        procs.append(servers.start([*argv, "--host", "127.0.0.1", "--port", str(port)], port,
                                   tmp_path / f"server-{port}.log"))
        return f"http://127.0.0.1:{port}"

    yield start
    for proc in procs:
        servers.stop(proc)


@pytest.fixture
def start_server(serve: Callable[..., str]) -> Callable[..., str]:
    """Start `python -m bench.xllamacpp_server MODEL ARGS` on a free loopback port; returns its URL."""

    def start(model: Path, *args: str) -> str:
        return serve(sys.executable, "-m", "bench.xllamacpp_server", "-m", str(model), *args)

    return start


@pytest.fixture(scope="session")
def llama_server_binary() -> Path:
    """A REAL llama-server (CPU-only) built from the pinned llama.cpp source by our own scripts.

    Why build: the first-class engine is the binary users run, and its log and /props differ from
    the xllamacpp wheel's. The build (~7 min on 2 cores) is cached in ~/.cache/protocol-omni and
    locked against a parallel session; OMNI_LLAMA_SERVER=PATH reuses an existing binary instead.
    """
    return mainline_llama_server()


@pytest.fixture(scope="session")
def ik_llama_server_binary() -> Path:
    """A REAL ik_llama.cpp llama-server (CPU-only) from the fork's pinned source, built the same
    way; OMNI_IK_LLAMA_SERVER=PATH reuses an existing binary instead."""
    return ik_llama_server()
