"""Phase 5 test fixtures: inventories to render, and the real validators (promtool, docker-compose).

Why promtool is extracted from Debian's ``prometheus`` package instead of installed: installing the
package pulls web assets and may start a Prometheus daemon from its init script; we only need the
two static binaries, unpacked once into /tmp (root or not, no daemon, about 2 s).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
if str(ROOT) not in sys.path:  # tests/sysdeps.py is imported as tests.sysdeps from the repository root
    sys.path.insert(0, str(ROOT))

from tests.sysdeps import ensure_binary, extract_from_deb  # noqa: E402


@pytest.fixture(scope="session")
def deb_binaries():
    """``deb_binaries(package, *paths)`` -> {path: extracted file}, unpacked once per machine."""
    return extract_from_deb


@pytest.fixture(scope="session")
def promtool(deb_binaries) -> str:
    return str(deb_binaries("prometheus", "/usr/bin/promtool")["/usr/bin/promtool"])


@pytest.fixture(scope="session")
def docker_compose() -> list[str]:
    """The Compose the box runs: ``docker compose`` (v2, the plugin phase 4 installs) when this machine
    has it; else Debian 12's docker-compose 1.29, which validates the schema without a daemon
    (Debian ships no v2 plugin; docs/phase5.md says which one a run used)."""
    import subprocess

    v2 = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True, check=False) \
        if shutil.which("docker") else None
    if v2 is not None and v2.returncode == 0:
        return ["docker", "compose"]
    return [ensure_binary("docker-compose", "docker-compose")]


@pytest.fixture(scope="session")
def systemd_analyze() -> str:
    return ensure_binary("systemd-analyze", "systemd")


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory):
    """A real llama.cpp server (xllamacpp) on loopback with a tiny generated model, started with the
    flags phase 5 renders for llama-server; yields ``(base_url, served_model_id, metrics_port)``."""
    import urllib.request

    from bench.genmodel.cache import ensure_model
    from bench.genmodel.shape import ModelShape
    from bench.server import free_port
    from tests import servers

    model = ensure_model(ModelShape())
    port = free_port()
    argv = [sys.executable, "-m", "bench.xllamacpp_server", "--model", str(model), "--host", "127.0.0.1",
            "--port", str(port), "--metrics", "--ctx-size", "1024", "--parallel", "1", "--threads", "1"]
    proc = servers.start(argv, port, tmp_path_factory.mktemp("llama") / "server.log")
    url = f"http://127.0.0.1:{port}"
    with urllib.request.urlopen(f"{url}/v1/models", timeout=5) as reply:
        served = json.loads(reply.read())["data"][0]["id"]
    yield url, served, port
    servers.stop(proc)


@pytest.fixture(scope="session")
def ik_llama_server_binary():
    """The real ik_llama.cpp llama-server (CPU build, cached; see tests/llama_builds.py)."""
    from tests.llama_builds import ik_llama_server

    return ik_llama_server()
