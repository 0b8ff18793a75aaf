"""Render every file of the stack from a :class:`StackConfig`: pure, so tests compare it with golden files.

Why render here and upload with ``files.put`` instead of ``files.template``: the exact bytes the
host receives are the bytes the tests check with the real tools (promtool, docker-compose,
systemd-analyze), and one place computes argv lists, so YAML quoting never depends on a template.
"""

from __future__ import annotations

import json
import posixpath
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

from omni.llamacpp import LlamaArgs

from .config import ModelSpec, StackConfig, numa_launch

TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "phase5"
#: AMD family 1Ah (Zen 5): Memgraph crashes in glibc's AVX-512 string functions there.
ZEN5_GLIBC_TUNABLES = "glibc.cpu.hwcaps=-AVX512F,-AVX512VL,-AVX512BW,-AVX512CD,-AVX512DQ"
GRAFANA_UID = 472  # the grafana image's user; the password file must be readable by it
DASHBOARD = TEMPLATES / "observability" / "omni-inference.json"
LLAMA_SERVER = "/app/llama-server"  # in our images and in the official server-cuda images
#: the script the ik-llama-cpp-python sdist lacks (writes common/build-info.cpp); the bench's too
IK_BUILD_INFO = Path(__file__).resolve().parents[2] / "scripts" / "ik_build_info.cmake"
LLAMA_ENGINES = ("llama-server", "ik_llama")  # same HTTP API: health check, /metrics, verify row


class RenderError(ValueError):
    """A combination the templates cannot express; one line with the fix."""


def q(value: Any) -> str:
    """A JSON scalar or list: valid YAML, and no quoting surprises (``on``, ``08``, ``: ``)."""
    return json.dumps(value, ensure_ascii=False)


@cache
def _env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True,
                             autoescape=False)
    env.filters["q"] = q
    return env


def _render(template: str, **context: Any) -> str:
    return _env().get_template(template).render(**context)


def is_zen5(cpu: dict[str, Any] | None) -> bool:
    """AMD family 1Ah from ``facts.hardware.CpuInfo`` (``vendor`` AuthenticAMD, ``family`` 26)."""
    if not cpu or not cpu.get("available", True):
        return False
    family = cpu.get("family")
    if isinstance(family, str):
        text = family.strip().lower()
        family = int(text, 16) if text.startswith("0x") else int(text) if text.isdigit() else None
    return "AMD" in str(cpu.get("vendor") or "").upper() and family == 0x1A


def model_mount(model: ModelSpec) -> tuple[str, str]:
    """(host folder, path inside the container): the folder, so split GGUFs come along."""
    return posixpath.dirname(model.path), f"/models/{model.name}/{posixpath.basename(model.path)}"


def llama_server_argv(model: ModelSpec) -> list[str]:
    """llama-server flags in the bench spec's vocabulary, written by omni.llamacpp (the one home of
    llama.cpp's flags: a malformed value is one line naming the flag); ``--metrics`` feeds Prometheus."""
    _, inside = model_mount(model)
    args = LlamaArgs()
    fields: list[tuple[str, Any, str]] = [
        ("model", inside, "--model"),
        ("alias", model.served_name, "--alias"),
        ("host", "0.0.0.0", "--host"),
        ("port", model.port, "--port"),
        ("metrics", True, "--metrics"),
        ("ctx_size", model.ctx_size, "--ctx-size"),
        ("parallel", model.parallel, "--parallel"),
        ("n_gpu_layers", model.ngl, "-ngl"),
        ("tensor_split", model.tensor_split or None, "--tensor-split"),
        *(("override_tensor", pattern, "-ot") for pattern in model.override_tensor),
        ("threads", model.threads or None, "--threads"),
        ("threads_batch", model.threads_batch or None, "--threads-batch"),
        ("cache_type_k", None if model.cache_type_k == "f16" else model.cache_type_k, "--cache-type-k"),
        ("cache_type_v", None if model.cache_type_v == "f16" else model.cache_type_v, "--cache-type-v"),
        ("mlock", model.mlock, "--mlock"),
    ]
    for name, value, spelling in fields:
        args.set(name, value, spelling)
    return args.to_argv() + numa_launch(model.numa)[1] + model.extra_args


def ktransformers_argv(model: ModelSpec) -> list[str]:
    """Legacy ``ktransformers.server.main`` flags that exist (``--gpu_split`` is parsed and unused)."""
    argv = ["--model_path", f"/models/{model.name}-config", "--gguf_path", f"/models/{model.name}",
            "--model_name", model.served_name, "--host", "0.0.0.0", "--port", str(model.port)]
    if model.kt_optimize_config_path:
        argv += ["--optimize_config_path", model.kt_optimize_config_path]
    if model.kt_cpu_infer:
        argv += ["--cpu_infer", str(model.kt_cpu_infer)]
    if model.kt_cache_lens:
        argv += ["--cache_lens", str(model.kt_cache_lens)]
    return argv + model.extra_args


def _gpu_devices(gpus: str) -> dict[str, Any] | None:
    if gpus == "none":
        return None
    device: dict[str, Any] = {"driver": "nvidia", "capabilities": ["gpu"]}
    if gpus == "all":
        device["count"] = "all"
    else:
        device["device_ids"] = gpus.split(",")
    return device


def _inference_service(config: StackConfig, model: ModelSpec) -> dict[str, Any]:
    spec = config.inference
    prefix = numa_launch(model.numa)[0]
    folder, _ = model_mount(model)
    volumes = [f"{folder}:/models/{model.name}:ro"]
    if model.engine == "ktransformers":
        entrypoint = [*prefix, "/opt/venv/bin/python", "-m", "ktransformers.server.main"]
        command, image = ktransformers_argv(model), f"omni/ktransformers:{spec.ktransformers.version}"
        volumes.append(f"{model.kt_model_path}:/models/{model.name}-config:ro")
        build = "Dockerfile.ktransformers"
    else:
        if spec.image and prefix and model.engine == "llama-server":
            raise RenderError(
                f"model {model.name}: numa {model.numa!r} needs numactl, which the official image "
                f"{spec.image} lacks: unset inference.image (build on the host) "
                "or use numa '--numa distribute'"
            )
        entrypoint = [*prefix, LLAMA_SERVER]
        command = llama_server_argv(model)
        image = spec.image or f"omni/llama-server:{spec.build.llama_cpp_ref}-cuda{spec.build.cuda_version}"
        build = None if spec.image else "Dockerfile.llama-server"
        if model.engine == "ik_llama":  # always built: no official image of the fork; same /app path
            image = f"omni/ik-llama-server:{spec.ik_llama.version}-cuda{spec.build.cuda_version}"
            build = "Dockerfile.ik_llama"
    return {
        "service": model.service, "image": image, "build": build, "entrypoint": entrypoint,
        "command": command, "env": model.env, "volumes": volumes, "port": model.port,
        "bind": config.bind, "numactl": bool(prefix), "mlock": model.mlock,
        "profile": "ktransformers" if model.engine == "ktransformers" else None,
        "gpu": _gpu_devices(model.gpus),
        "health": model.engine in LLAMA_ENGINES,
    }


def render_inference(config: StackConfig) -> dict[str, str]:
    services = [_inference_service(config, m) for m in config.inference.enabled]
    files = {"compose.yaml": _render("inference/compose.yaml.j2", services=services, network=config.network)}
    if any(s["build"] == "Dockerfile.llama-server" for s in services):
        files["Dockerfile.llama-server"] = _render("inference/Dockerfile.llama-server.j2",
                                                   build=config.inference.build)
    if any(s["build"] == "Dockerfile.ik_llama" for s in services):
        files["Dockerfile.ik_llama"] = _render("inference/Dockerfile.ik_llama.j2",
                                               ik=config.inference.ik_llama, build=config.inference.build)
        files["ik-build-info.cmake"] = IK_BUILD_INFO.read_text()
    if any(s["profile"] for s in services):
        files["Dockerfile.ktransformers"] = _render("inference/Dockerfile.ktransformers.j2",
                                                    kt=config.inference.ktransformers,
                                                    cuda_version=config.inference.build.cuda_version)
    return files


def render_memgraph(config: StackConfig, cpu: dict[str, Any] | None) -> dict[str, str]:
    spec = config.memgraph
    tunables = spec.glibc_tunables == "on" or (spec.glibc_tunables == "auto" and is_zen5(cpu))
    return {"compose.yaml": _render("memgraph/compose.yaml.j2", spec=spec, bind=config.bind_for("memgraph"),
                                    tunables=ZEN5_GLIBC_TUNABLES if tunables else None,
                                    network=config.network)}


def client_env(config: StackConfig, key: str) -> dict[str, str]:
    """What an agent needs to reach the stack: the OpenAI endpoint (and Memgraph, Phoenix)."""
    model = config.target_model(key)
    env: dict[str, str] = {}
    if model:
        # Microsoft Agent Framework's OpenAIChatClient reads exactly these three
        env |= {"OPENAI_BASE_URL": f"http://omni-{model.service}:{model.port}/v1", "OPENAI_API_KEY": "none",
                "OPENAI_CHAT_MODEL_ID": model.served_name}
    if config.memgraph.enabled:
        env["MEMGRAPH_URI"] = "bolt://omni-memgraph:7687"  # the container port, not the published one
    if config.phoenix.enabled:
        env["PHOENIX_SIGNAL_FILE"] = "/phoenix/restart-requested"
    return env | getattr(config, key).env


def render_service(config: StackConfig, key: str) -> dict[str, str]:
    """agents (port 8080) or autoglm (USB devices): an image or build the owner names."""
    spec = getattr(config, key)
    env = client_env(config, key)
    if key == "agents" and spec.port:
        env.setdefault("PORT", str(spec.port))
    return {"compose.yaml": _render("service/compose.yaml.j2", name=key, spec=spec, env=env,
                                    bind=config.bind_for(key), usb=key == "autoglm",
                                    phoenix_dir=config.phoenix.state_dir if config.phoenix.enabled else None,
                                    network=config.network)}


def render_observability(config: StackConfig) -> dict[str, str]:
    spec = config.observability
    root = config.project_dir("observability")
    targets = [m for m in config.inference.enabled if m.engine in LLAMA_ENGINES]
    return {
        "compose.yaml": _render("observability/compose.yaml.j2", spec=spec, root=root,
                                bind=config.bind_for("observability"), network=config.network),
        "prometheus.yml": _render("observability/prometheus.yml.j2", spec=spec, models=targets),
        "grafana/provisioning/datasources/prometheus.yaml": _render(
            "observability/grafana-datasource.yaml.j2", spec=spec),
        "grafana/provisioning/dashboards/omni.yaml": _render("observability/grafana-dashboards.yaml.j2"),
        "grafana/dashboards/omni-inference.json": DASHBOARD.read_text(),
    }


def phoenix_projects(config: StackConfig, deployed: list[str]) -> list[tuple[str, str]]:
    """(compose project, compose file) pairs Phoenix recreates: inventory's list, else all deployed."""
    names = config.phoenix.projects or deployed
    return [(f"omni-{name}", f"{config.project_dir(name)}/compose.yaml") for name in names]


def render_phoenix(config: StackConfig, deployed: list[str]) -> dict[str, str]:
    spec = config.phoenix
    root = config.project_dir("phoenix")
    env = {"PHOENIX_STATE_DIR": spec.state_dir, "PHOENIX_LOG_DIR": "/var/log/omni-phoenix",
           "PHOENIX_GRACE_S": str(spec.grace_s), "PHOENIX_COOLDOWN_S": str(spec.cooldown_s),
           "PHOENIX_MAX_PER_HOUR": str(spec.max_per_hour), "PHOENIX_TIMEOUT_S": str(spec.timeout_s),
           "PHOENIX_PROJECTS": " ".join(f"{p}={f}" for p, f in phoenix_projects(config, deployed))}
    start_timeout = spec.grace_s + spec.timeout_s * max(1, len(deployed)) + 60
    return {
        "phoenix.env": "".join(f"{k}={q(v)}\n" for k, v in env.items()),
        "omni-phoenix-restart.sh": (TEMPLATES / "phoenix/omni-phoenix-restart.sh").read_text(),
        "omni-phoenix.path": _render("phoenix/omni-phoenix.path.j2", spec=spec),
        "omni-phoenix.service": _render("phoenix/omni-phoenix.service.j2", root=root,
                                        start_timeout=start_timeout),
    }
