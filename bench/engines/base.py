"""What an engine module provides: argv/env for one server config, its health URL, and a readback.

Why small classes: adding an engine is adding a ~60-line module (argv template + quirks), and
templates for engines we cannot run here are still unit-tested for the exact command they build.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Any, ClassVar

from bench.plan import ServerConfig
from bench.spec import ServerSpec, numa_prefix


@dataclass
class Launch:
    """A fully rendered server start: `prefix + argv` run with `os.environ | env`."""

    argv: list[str]
    env: dict[str, str]
    prefix: list[str]
    base_url: str
    health_path: str = "/health"

    @property
    def command(self) -> str:
        envs = [f"{k}={shlex.quote(v)}" for k, v in self.env.items()]
        return " ".join([*envs, shlex.join(self.prefix + self.argv)]).strip()


@dataclass
class Readback:
    """What the server says it applied, and every asked≠applied finding."""

    applied: dict[str, Any] = field(default_factory=dict)
    mismatches: list[str] = field(default_factory=list)


class Engine:
    """Base: subclasses set `name` and implement `argv`."""

    name: ClassVar[str] = ""
    health_path: ClassVar[str] = "/health"
    api_prefix: ClassVar[str] = "/v1"
    # request fields for a fixed output length (max_tokens is always sent)
    fixed_length_fields: ClassVar[dict[str, Any]] = {"ignore_eos": True}
    runnable: ClassVar[bool] = True  # False: template only (not started by our tests)

    def argv(self, server: ServerSpec, model: str, config: ServerConfig, port: int) -> list[str]:
        raise NotImplementedError

    def env(self, server: ServerSpec, config: ServerConfig) -> dict[str, str]:
        return {**server.env, **config.env}

    def launch(self, server: ServerSpec, model: str, config: ServerConfig, port: int) -> Launch:
        return Launch(
            argv=self.argv(server, model, config, port),
            env=self.env(server, config),
            prefix=numa_prefix(config.numa),
            base_url=f"http://{server.host}:{port}",
            health_path=self.health_path,
        )

    def preflight(self, server: ServerSpec, model: str) -> None:
        """Raise SpecError when the engine cannot be started at all (binary, model missing)."""

    def check_config(self, config: ServerConfig) -> None:
        """Raise SpecError for a configuration the engine would silently ignore."""

    def readback(self, launch: Launch, props: dict[str, Any] | None, log_text: str) -> Readback:
        return Readback(applied={"props": props} if props else {})

    def versions(self, server: ServerSpec, props: dict[str, Any] | None, log_text: str) -> dict[str, str]:
        return {}
