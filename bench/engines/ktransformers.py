"""KTransformers launch templates (argv/env + health URL; unit-tested, not started here).

Verified against kvcache-ai/ktransformers sources (see docs/bench.md):
- legacy server `python -m ktransformers.server.main` takes `--model_path` (HF config dir),
  `--gguf_path`, `--optimize_config_path` (YAML placement rules: this is where GPU/CPU placement is
  decided) and `--cpu_infer`. `--gpu_split` is parsed into the config (a leftover of the ExLlamaV2
  argument set) and read by nothing: it does not split anything, so it is not an axis here.
- the current SGLang-based launch is `python -m sglang.launch_server ... --kt-weight-path
  --kt-method --kt-cpuinfer --kt-threadpool-count --kt-num-gpu-experts`.
- `ENABLE_DEEPGEMM` and `KTRANSFORMERS_BACKEND_GPU` appear in no KTransformers or SGLang source:
  setting them does nothing. SGLang's real switch is `SGLANG_ENABLE_JIT_DEEPGEMM`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from bench.engines.base import Engine
from bench.plan import ServerConfig
from bench.spec import ServerSpec, SpecError

NON_FUNCTIONAL = {
    "--gpu_split": "parsed by ktransformers.server.args and never read: placement comes from the "
                   "optimize YAML",
}
NONEXISTENT_ENV = {
    "ENABLE_DEEPGEMM": "not read by KTransformers or SGLang; SGLang's switch is SGLANG_ENABLE_JIT_DEEPGEMM",
    "KTRANSFORMERS_BACKEND_GPU": "not read by KTransformers or SGLang",
}


def refuse_placebos(args: list[str], env: dict[str, str]) -> None:
    """A flag or variable that does nothing would make a sweep axis measure noise: refuse it."""
    for flag, why in NON_FUNCTIONAL.items():
        if any(a == flag or a.startswith(flag + "=") for a in args):
            raise SpecError(f"{flag} does nothing ({why}): remove it from the spec")
    for name, why in NONEXISTENT_ENV.items():
        if name in env:
            raise SpecError(f"env {name} does nothing ({why}): remove it from the spec")


class KTransformersLegacy(Engine):
    """`ktransformers.server.main`: chat endpoint only, output length fixed by --max_new_tokens."""

    name = "ktransformers"
    health_path = "/v1/models"
    runnable = False
    fixed_length_fields: ClassVar[dict[str, Any]] = {}  # no ignore_eos: length = --max_new_tokens

    def argv(self, server: ServerSpec, model: str, config: ServerConfig, port: int) -> list[str]:
        x = server.extra
        argv = [server.binary or "python", "-m", "ktransformers.server.main",
                "--model_path", x.get("model_path", ""), "--gguf_path", model]
        if x.get("optimize_config_path"):
            argv += ["--optimize_config_path", x["optimize_config_path"]]
        argv += ["--host", server.host, "--port", str(port), *server.args, *config.args]
        return argv

    def preflight(self, server: ServerSpec, model: str) -> None:
        refuse_placebos([*server.args], server.env)
        if not server.extra.get("model_path"):
            raise SpecError("ktransformers needs server.extra.model_path (the HF config directory): add it")
        if not Path(model).exists():
            raise SpecError(f"server.model {model!r} (the --gguf_path) does not exist: fix the path")

    def check_config(self, config: ServerConfig) -> None:
        refuse_placebos(config.args, config.env)


class KTransformersSGLang(Engine):
    """SGLang with KTransformers' kt-kernel MoE backend (`--kt-*` flags)."""

    name = "ktransformers-sglang"
    runnable = False
    fixed_length_fields: ClassVar[dict[str, Any]] = {"ignore_eos": True}

    def argv(self, server: ServerSpec, model: str, config: ServerConfig, port: int) -> list[str]:
        x = server.extra
        argv = [server.binary or "python", "-m", "sglang.launch_server", "--model-path", model,
                "--host", server.host, "--port", str(port)]
        if x.get("kt_weight_path"):
            argv += ["--kt-weight-path", x["kt_weight_path"]]
        return [*argv, *server.args, *config.args]

    def preflight(self, server: ServerSpec, model: str) -> None:
        refuse_placebos([*server.args], server.env)

    def check_config(self, config: ServerConfig) -> None:
        refuse_placebos(config.args, config.env)
