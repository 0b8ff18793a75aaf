"""SGLang launch template (argv/env + health URL; unit-tested, not started here)."""

from __future__ import annotations

from typing import Any, ClassVar

from bench.engines.base import Engine
from bench.engines.ktransformers import refuse_placebos
from bench.plan import ServerConfig
from bench.spec import ServerSpec


class SGLang(Engine):
    """`python -m sglang.launch_server`; sampling params accept ignore_eos; /tokenize on recent builds."""

    name = "sglang"
    runnable = False
    fixed_length_fields: ClassVar[dict[str, Any]] = {"ignore_eos": True}

    def argv(self, server: ServerSpec, model: str, config: ServerConfig, port: int) -> list[str]:
        return [server.binary or "python", "-m", "sglang.launch_server", "--model-path", model,
                "--host", server.host, "--port", str(port), *server.args, *config.args]

    def preflight(self, server: ServerSpec, model: str) -> None:
        refuse_placebos([*server.args], server.env)

    def check_config(self, config: ServerConfig) -> None:
        refuse_placebos(config.args, config.env)
