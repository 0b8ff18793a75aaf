"""5.2 agent orchestration and 5.4 AutoGLM: services whose image or build folder the owner names."""

from __future__ import annotations

from pyinfra.api import deploy

from .compose import host_stack, start, upload
from .config import StackConfig
from .render import render_service


def _service(config: StackConfig, key: str) -> list[str]:
    spec = getattr(config, key)
    changes = upload(config, key, render_service(config, key))
    start(config, key, [key], changes, build=bool(spec.build))
    return [key]


@deploy("Agent framework service")
def agents(config: StackConfig | None = None) -> list[str]:
    """The Microsoft Agent Framework service on 8080, pointed at the inference endpoint."""
    return _service(config or host_stack(), "agents")


@deploy("AutoGLM")
def autoglm(config: StackConfig | None = None) -> list[str]:
    """AutoGLM with the host's USB bus (the phone over ADB) and its data volume."""
    return _service(config or host_stack(), "autoglm")
