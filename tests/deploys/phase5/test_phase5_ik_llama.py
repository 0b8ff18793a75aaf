"""Phase 5 with `engine = "ik_llama"`: the fork's image is built from the same pinned sdist as the
bench's, its rendered flags start the REAL fork (CPU build), and the health check and the verify row
are the llama-server ones."""

from __future__ import annotations

import re
import subprocess
import urllib.request
from pathlib import Path

import pytest
import yaml
from test_phase5_checks import rows_for

from bench.genmodel.cache import ensure_model
from bench.genmodel.shape import ModelShape
from bench.server import free_port
from deploys.stack import render
from deploys.stack.config import StackConfigError, stack_config
from omni.hostdata import host_data
from omni.ik_llama import SDIST_SHA256, SDIST_VERSION
from tests import servers

REPO = Path(__file__).resolve().parents[3]


def ik_config(**model: object):
    return stack_config(host_data(env={}, overrides={"inference": {"engine": "ik_llama"}, **(
        {"stack": {"inference": {"models": [model]}}} if model else {})}))


def test_host_data_engine_ik_llama_builds_the_pinned_fork(tmp_path, docker_compose):
    config = ik_config()
    assert config.inference.models[0].engine == "ik_llama"  # from the reference box's inference.engine
    files = render.render_inference(config)
    service = yaml.safe_load(files["compose.yaml"])["services"]["llm-architect"]
    assert service["image"] == f"omni/ik-llama-server:{SDIST_VERSION}-cuda12.8.1"
    assert service["build"]["dockerfile"] == "Dockerfile.ik_llama" and "Dockerfile.llama-server" not in files
    assert service["entrypoint"][-1] == "/app/llama-server" and "--metrics" in service["command"]
    assert service["healthcheck"]["test"][-1].endswith(":8000/v1/models")  # the same health check
    docker = files["Dockerfile.ik_llama"]
    assert f"ik-llama-cpp-python=={SDIST_VERSION}" in docker
    assert f'echo "{SDIST_SHA256}  ik_llama_cpp_python-{SDIST_VERSION}.tar.gz" | sha256sum -c -' in docker
    code = "\n".join(line for line in docker.splitlines() if not line.startswith("#"))
    assert "--target llama-server" in code and "GGML_CUDA_NO_VMM" not in code
    # the bench's preparation script pins the same bytes
    script = (REPO / "scripts" / "prepare_ik_llama_cpp.sh").read_text()
    assert re.search(rf"^version={re.escape(SDIST_VERSION)}$", script, re.M)
    assert re.search(rf"^sha256={SDIST_SHA256}\b", script, re.M)
    # Prometheus scrapes the fork's /metrics like llama-server's
    assert ":8000" in render.render_observability(config)["prometheus.yml"]
    (tmp_path / "compose.yaml").write_text(files["compose.yaml"])
    proc = subprocess.run([*docker_compose, "-f", str(tmp_path / "compose.yaml"), "config", "-q"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize(("extra", "named"), [
    (["-fmoe"], "-fmoe: fused MoE is on by default"),
    (["-mla", "9"], "-mla '9': not one of 0, 1, 2, 3"),
])
def test_bad_fork_flags_in_host_data_are_one_line(extra, named):
    with pytest.raises(StackConfigError) as err:
        ik_config(name="architect", path="/nvme/m.gguf", port=8000, engine="ik_llama", extra_args=extra)
    message = str(err.value)
    assert "\n" not in message and message.startswith("stack.inference.models[0]") and named in message


def test_rendered_flags_start_the_real_fork_and_pass_the_verify_row(tmp_path, ik_llama_server_binary):
    model = ensure_model(ModelShape(dtype="q8_0"))  # q8_0: -rtr has tensors to repack
    port = free_port()
    config = ik_config(name="architect", path=str(model), port=port, engine="ik_llama", ngl=0, threads=1,
                       ctx_size=512, parallel=1, numa="--numa distribute", kv_bytes_per_token=1,
                       extra_args=["-rtr", "-amb", "256"])
    argv = render.llama_server_argv(config.inference.models[0])
    argv[argv.index("--model") + 1] = str(model)  # the container's /models/... is this file here
    argv[argv.index("--host") + 1] = "127.0.0.1"
    proc = servers.start([str(ik_llama_server_binary), *argv], port, tmp_path / "server.log")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
            assert "llamacpp:tokens_predicted_total" in reply.read().decode()  # what the dashboard plots
        marker = {"phase": "phase5", "components": ["inference"], "bind": "127.0.0.1", "headroom_gib": 0,
                  "models": [{"name": "architect", "served_name": "architect", "engine": "ik_llama",
                              "port": port, "service": "llm-architect"}]}
        row = rows_for(marker, tmp_path)["/v1/models lists the model (architect)"]
        assert row["status"] == "PASS" and "(ik_llama)" in row["target"], row
    finally:
        servers.stop(proc)
    log = (tmp_path / "server.log").read_text()
    assert re.search(r"attn_max_b\s*=\s*256", log) and "Repacked" in log  # the fork applied -amb, -rtr
