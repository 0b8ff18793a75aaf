"""Expand a spec into server configurations (relaunch axes, outermost) and workload cells.

Why this order: a server start costs minutes on a 281 GB model, so every configuration launches
once and runs all its workload cells; validity rules (`[[exclude]]`) prune combinations first.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from typing import Any

from pydantic import BaseModel

from bench.spec import WORKLOAD_AXES, AxisValue, Spec, axis_argv


class ServerConfig(BaseModel):
    """One server launch: the axis values and the argv/env/prefix they contribute."""

    config_id: str
    label: str
    axes: dict[str, AxisValue]
    args: list[str]  # argv fragment from the axes (after the base args)
    env: dict[str, str]  # env from the axes (over the base env)
    numa: str


class Cell(BaseModel):
    """One workload point measured on a running server."""

    cell_id: str
    input_tokens: int
    output_tokens: int
    concurrency: int
    requests: int
    warmup: int


def _allowed(spec: Spec, key: str, want: Any) -> list[Any]:
    """A rule's list means "any of these", except where the list is itself one raw-args value.

    For an ``args.*`` axis a value may be an argv list (``["-ot", "exps=CPU"]``), so a list in a
    rule is read as any-of only when each element is one of that axis's values.
    """
    if not isinstance(want, list):
        return [want]
    if key.startswith("args.") and not all(w in spec.axes.get(key, []) for w in want):
        return [want]
    return want


def _matches(spec: Spec, rule: dict[str, Any], values: dict[str, Any]) -> bool:
    return all(key in values and values[key] in _allowed(spec, key, want) for key, want in rule.items())


def _excluded(spec: Spec, values: dict[str, Any], only_axes: bool) -> bool:
    for rule in spec.exclude:
        if only_axes and any(k in WORKLOAD_AXES for k in rule):
            continue
        if _matches(spec, rule, values):
            return True
    return False


def config_id(spec: Spec, axes: dict[str, AxisValue]) -> str:
    """Stable id of a launch: same engine, base launch and axis values → same id (resume key)."""
    s = spec.server
    ident = {
        "engine": spec.engine, "args": s.args, "env": s.env, "numa": s.numa, "axes": axes,
        "model": s.generate.ident() if s.generate else s.model, "extra": s.extra,
    }
    return "c" + hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:8]


def _label(axes: dict[str, AxisValue]) -> str:
    if not axes:
        return "base"
    parts = []
    for k, v in axes.items():
        name = k.removeprefix("env.").removeprefix("args.").lstrip("-")
        val = " ".join(v) if isinstance(v, list) else str(v).lower() if isinstance(v, bool) else str(v)
        parts.append(f"{name}={val}")
    return " ".join(parts)


def server_configs(spec: Spec) -> list[ServerConfig]:
    """All valid server configurations, first axis outermost."""
    keys = list(spec.axes)
    out = []
    for combo in itertools.product(*(spec.axes[k] for k in keys)):
        axes = dict(zip(keys, combo, strict=True))
        if _excluded(spec, axes, only_axes=True):
            continue
        args: list[str] = []
        env: dict[str, str] = {}
        numa = spec.server.numa
        for k, v in axes.items():
            if k == "numa":
                numa = str(v)
            elif k.startswith("env."):
                if v is not False:
                    env[k[4:]] = "1" if v is True else str(v)
            else:
                args += axis_argv(k, v)
        cfg = ServerConfig(
            config_id=config_id(spec, axes), label=_label(axes), axes=axes, args=args, env=env, numa=numa
        )
        if cells(spec, cfg):
            out.append(cfg)
    return out


def cells(spec: Spec, config: ServerConfig) -> list[Cell]:
    """Workload cells for one configuration (rules may mix relaunch and workload axes)."""
    w = spec.workload
    out = []
    for n_in, n_out, conc in itertools.product(w.input_tokens, w.output_tokens, w.concurrency):
        values = {**config.axes, "input_tokens": n_in, "output_tokens": n_out, "concurrency": conc}
        if _excluded(spec, values, only_axes=False):
            continue
        out.append(Cell(
            cell_id=f"in{n_in}-out{n_out}-c{conc}", input_tokens=n_in, output_tokens=n_out,
            concurrency=conc, requests=max(w.requests, conc), warmup=w.warmup,
        ))
    return out


def count_runs(spec: Spec, configs: list[ServerConfig]) -> tuple[int, int]:
    """(cells over all configs, runs = cells x repeats)."""
    n_cells = sum(len(cells(spec, c)) for c in configs)
    return n_cells, n_cells * spec.workload.repeats
