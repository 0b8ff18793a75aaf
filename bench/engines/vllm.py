"""vLLM launch template (argv/env + health URL; unit-tested, not started here)."""

from __future__ import annotations

from typing import Any, ClassVar

from bench.engines.base import Engine
from bench.plan import ServerConfig
from bench.spec import ServerSpec


class VLLM(Engine):
    """`vllm serve MODEL`; accepts ignore_eos and min_tokens as extra sampling params."""

    name = "vllm"
    runnable = False
    fixed_length_fields: ClassVar[dict[str, Any]] = {"ignore_eos": True}

    def argv(self, server: ServerSpec, model: str, config: ServerConfig, port: int) -> list[str]:
        return [server.binary or "vllm", "serve", model, "--host", server.host, "--port", str(port),
                *server.args, *config.args]
