"""The llama-server flags phase 5 renders start a real llama.cpp server (xllamacpp), which refuses
any flag it does not know: the inventory speaks the bench spec's vocabulary for real."""

from __future__ import annotations

import sys
import urllib.request

from bench.server import free_port
from deploys.stack.config import stack_config
from deploys.stack.render import llama_server_argv
from omni.hostdata import host_data
from tests import servers


def test_rendered_placement_flags_run_a_real_server(tmp_path):
    from bench.genmodel.cache import ensure_model
    from bench.genmodel.shape import ModelShape

    model = ensure_model(ModelShape())
    port = free_port()
    spec = {"name": "architect", "path": str(model), "port": port, "ngl": 0, "threads": 1, "threads_batch": 1,
            "override_tensor": [r"\.ffn_(up|down|gate)_exps\.=CPU"], "ctx_size": 512, "parallel": 2,
            "cache_type_k": "q8_0", "numa": "--numa distribute", "kv_bytes_per_token": 1}
    config = stack_config(host_data(env={}, overrides={"stack": {"inference": {"models": [spec]}}}))
    argv = llama_server_argv(config.inference.models[0])
    # the container sees the model under /models/<name>/ and listens on all its interfaces
    argv[argv.index("--model") + 1] = str(model)
    argv[argv.index("--host") + 1] = "127.0.0.1"
    assert argv[argv.index("--numa") + 1] == "distribute" and "--metrics" in argv
    argv = [sys.executable, "-m", "bench.xllamacpp_server", *argv]
    proc = servers.start(argv, port, tmp_path / "server.log")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
            metrics = reply.read().decode()
        assert "llamacpp:tokens_predicted_total" in metrics  # what the dashboard plots
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=5) as reply:
            assert reply.status == 200
    finally:
        servers.stop(proc)
