"""CPU-only llama.cpp-family servers built from pinned sources by our own scripts, once per machine.

Why a module, not a conftest: the bench tests and the phase-5 tests both need the real binaries,
and one lock and one cache folder per build keep a parallel session from building twice.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

import pytest

LLAMA_CPP_PYTHON = "0.3.36"  # the llama-cpp-python sdist whose vendored llama.cpp scripts/ build
IK_LLAMA_CPP_PYTHON = "0.1.5"  # the ik-llama-cpp-python sdist scripts/prepare_ik_llama_cpp.sh pins


def llama_cpu_build_dir(tree: str = "llama.cpp", version: str = LLAMA_CPP_PYTHON) -> Path:
    """Where a CPU-only llama-server is built once per machine (and per pinned version)."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "protocol-omni" / f"{tree}-cpu-{version}"


def _script(name: str, *args: str, env: dict[str, str]) -> None:
    script = Path(__file__).resolve().parents[1] / "scripts" / name
    proc = subprocess.run(["bash", str(script), *args], env=env, capture_output=True, text=True, timeout=3000)
    if proc.returncode != 0:
        pytest.fail(f"scripts/{name} failed: {(proc.stdout + proc.stderr).strip()[-3000:]}")


def cpu_llama_server(tree: str, version: str, prepare: list[str], override: str,
                     build_env: dict[str, str] | None = None) -> Path:
    """Build (once, under a lock against parallel sessions) and return a CPU-only llama-server of
    `tree` from the pinned source `prepare` packs; the env var `override`=PATH reuses a binary."""
    given = os.environ.get(override)
    if given:
        if not (Path(given).is_file() and os.access(given, os.X_OK)):
            pytest.fail(f"{override}={given} is not an executable: fix the path or unset it")
        return Path(given)
    from tests.sysdeps import ensure_binary

    build = llama_cpu_build_dir(tree, version)
    exe = build / "bin" / "llama-server"
    build.parent.mkdir(parents=True, exist_ok=True)
    with (build.parent / f"{build.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (exe.is_file() and (build / ".stamp").is_file()):
            for binary, package in (("cmake", "cmake"), ("ninja", "ninja-build"), ("c++", "g++")):
                ensure_binary(binary, package)
        tarball = build / f"{tree}.tar.gz"
        env = {**os.environ, "PYTHON": sys.executable, "OMNI_LLAMA_CPU_ONLY": "1", "TARGETS": "llama-server",
               **(build_env or {})}
        if not tarball.is_file():
            _script(prepare[0], str(tarball), *prepare[1:], env=env)
        _script("build_llama_cpp.sh", str(tarball), str(build), env=env)  # returns at once when built
    if not os.access(exe, os.X_OK):
        pytest.fail(f"scripts/build_llama_cpp.sh finished but {exe} is missing; see {build}/build.log")
    return exe


def mainline_llama_server() -> Path:
    """llama-server, plus the llama-quantize and llama-gguf-split that genmodel's proxies need and
    the llama-bench the truth check runs. OMNI_LLAMA_TEST_BUILD (portable -O1) as for the fork:
    both builds fit the suite's time budget."""
    return cpu_llama_server("llama.cpp", LLAMA_CPP_PYTHON, ["prepare_llama_cpp.sh", LLAMA_CPP_PYTHON],
                            "OMNI_LLAMA_SERVER", {"OMNI_LLAMA_TEST_BUILD": "1",
                                                  "TARGETS": "llama-server llama-quantize llama-gguf-split "
                                                             "llama-bench"})


def ik_llama_server() -> Path:
    """llama-server and llama-sweep-bench (the truth check's) of the fork. OMNI_LLAMA_TEST_BUILD:
    portable -O1 code without the iqk flash-attention kernels, because the fork's iqk_* templates
    make an -O3 build the slowest step of the suite (docs/bench.md)."""
    return cpu_llama_server("ik_llama.cpp", IK_LLAMA_CPP_PYTHON, ["prepare_ik_llama_cpp.sh"],
                            "OMNI_IK_LLAMA_SERVER", {"OMNI_LLAMA_TEST_BUILD": "1",
                                                     "TARGETS": "llama-server llama-sweep-bench"})
