"""Shared fixtures: a tiny generated model (hermetic cache) and real xllamacpp servers on loopback."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bench.genmodel import ensure_model
from bench.server import free_port
from tests import servers
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


LLAMA_CPP_PYTHON = "0.3.36"  # the llama-cpp-python sdist whose vendored llama.cpp scripts/ build


def llama_cpu_build_dir() -> Path:
    """Where the CPU-only llama-server is built once per machine (and per pinned version)."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "protocol-omni" / f"llama.cpp-cpu-{LLAMA_CPP_PYTHON}"


def _script(name: str, *args: str, env: dict[str, str]) -> None:
    script = Path(__file__).resolve().parents[2] / "scripts" / name
    proc = subprocess.run(["bash", str(script), *args], env=env, capture_output=True, text=True, timeout=3000)
    if proc.returncode != 0:
        pytest.fail(f"scripts/{name} failed: {(proc.stdout + proc.stderr).strip()[-3000:]}")


@pytest.fixture(scope="session")
def llama_server_binary() -> Path:
    """A REAL llama-server (CPU-only) built from the pinned llama.cpp source by our own scripts.

    Why build: the first-class engine is the binary users run, and its log and /props differ from
    the xllamacpp wheel's. The build (~7 min on 2 cores) is cached in ~/.cache/protocol-omni and
    locked against a parallel session; OMNI_LLAMA_SERVER=PATH reuses an existing binary instead.
    """
    given = os.environ.get("OMNI_LLAMA_SERVER")
    if given:
        if not (Path(given).is_file() and os.access(given, os.X_OK)):
            pytest.fail(f"OMNI_LLAMA_SERVER={given} is not an executable: fix the path or unset it")
        return Path(given)
    from tests.sysdeps import ensure_binary

    build = llama_cpu_build_dir()
    exe = build / "bin" / "llama-server"
    build.parent.mkdir(parents=True, exist_ok=True)
    with (build.parent / f"{build.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (exe.is_file() and (build / ".stamp").is_file()):
            for binary, package in (("cmake", "cmake"), ("ninja", "ninja-build"), ("c++", "g++")):
                ensure_binary(binary, package)
        tarball = build / "llama.cpp.tar.gz"
        env = {**os.environ, "PYTHON": sys.executable, "OMNI_LLAMA_CPU_ONLY": "1",
               "TARGETS": "llama-server llama-quantize llama-gguf-split"}  # the tools genmodel needs
        if not tarball.is_file():
            _script("prepare_llama_cpp.sh", str(tarball), LLAMA_CPP_PYTHON, env=env)
        _script("build_llama_cpp.sh", str(tarball), str(build), env=env)  # returns at once when built
    if not os.access(exe, os.X_OK):
        pytest.fail(f"scripts/build_llama_cpp.sh finished but {exe} is missing; see {build}/build.log")
    return exe
