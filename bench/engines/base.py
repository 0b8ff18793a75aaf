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
from omni.secrets import MASK, is_secret_name, redact_env


@dataclass
class Launch:
    """A fully rendered server start: `prefix + argv` run with `os.environ | env`."""

    argv: list[str]
    env: dict[str, str]
    prefix: list[str]
    base_url: str
    health_path: str = "/health"

    @property
    def shown_env(self) -> dict[str, str]:
        """``env`` as written anywhere (rows, launch.json, logs, report): secrets as ``***``."""
        return redact_env(self.env)

    @property
    def shown_argv(self) -> list[str]:
        """``argv`` as written anywhere: the value after a secret flag (``--api-key``) as ``***``."""
        shown = list(self.argv)
        for i, arg in enumerate(shown):
            flag, eq, _ = arg.partition("=")
            if flag.startswith("-") and is_secret_name(flag.lstrip("-").replace("-", "_")):
                if eq:
                    shown[i] = f"{flag}={MASK}"
                elif i + 1 < len(shown):
                    shown[i + 1] = MASK
        return shown

    @property
    def secrets(self) -> tuple[str, ...]:
        """The secret values this launch passes (env and flag values), to blank in what it writes."""
        values = [value for name, value in self.env.items() if is_secret_name(name) and value]
        values += [arg for arg, shown in zip(self.argv, self.shown_argv, strict=True) if arg != shown]
        return tuple(value.partition("=")[2] if value.startswith("-") else value for value in values)

    @property
    def command(self) -> str:
        """The command line as recorded (secrets masked); the process gets the real ``env``/``argv``."""
        def quote(word: str) -> str:
            return word if word == MASK else shlex.quote(word)

        envs = [f"{k}={quote(v)}" for k, v in self.shown_env.items()]
        return " ".join([*envs, *map(quote, self.prefix + self.shown_argv)]).strip()


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
