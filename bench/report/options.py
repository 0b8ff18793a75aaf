"""Report settings: success thresholds and the bandwidth figures the ceiling may need.

Sources, later wins: the spec's `[report]` table, then `report.toml` in the sweep dir, then
command-line flags / keyword arguments. `bench.spec.ReportSpec` checks the spec's table (same keys
and bounds) before a sweep starts; here unknown keys are listed on the page, not fatal, so a sweep
recorded by an older version still renders.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bench.objective import DEFAULT, PRUNING, parse_objective, spec_objective
from omni.errors import error_location, error_message


class ReportError(Exception):
    """Cannot write the report; the message is one line naming the problem and the fix."""


class ReportOptions(BaseModel):
    """What the page judges against (the runbook's Definition of Done by default).

    The headroom goal scales with the box judged: the runbook's 80 GiB is for the 384 GiB reference
    workstation, and applying it to a 25 GB laptop fails every demo. Unset, it is the same share
    (80/384) of `target_mem_gb`, which defaults to the sweep host's own MemTotal; set either to judge
    for another box. `threshold_source` says on the page which rule gave the numbers.
    """

    model_config = ConfigDict(extra="forbid")
    min_decode_tps: float = Field(15.0, gt=0)  # decode tokens/s per request, one user
    min_headroom_gb: float | None = Field(None, ge=0)  # host headroom kept during inference (10^9 B)
    target_mem_gb: float | None = Field(None, gt=0)  # MemTotal of the box judged (default: this host)
    objective: str = DEFAULT  # what "best" means: bench/objective.py (decode, throughput@N, ...)

    @field_validator("objective")
    @classmethod
    def _objective(cls, value: str) -> str:
        parse_objective(value)  # ValueError: one line with the syntax
        return value
    host_bandwidth_gbps: float | None = Field(None, gt=0)  # measured host RAM bandwidth, GB/s
    gpu_bandwidth_gbps: list[Annotated[float, Field(gt=0)]] = Field(default_factory=list)  # per GPU
    memory_channels: int | None = Field(None, ge=1)  # override "one DIMM per channel"
    # VRAM the placement may use per GPU, GiB (`bench plan --vram-budget`): rows over it are marked
    # and cannot be "best measured"; one number for every GPU, or a list per GPU index
    vram_budget_gib: list[Annotated[float, Field(gt=0)]] = Field(default_factory=list)

    @field_validator("gpu_bandwidth_gbps", "vram_budget_gib", mode="before")
    @classmethod
    def _scalar_is_every_gpu(cls, value: Any) -> Any:
        return [value] if isinstance(value, int | float) else value


FIELDS = tuple(ReportOptions.model_fields)


def reference_headroom_share() -> float:
    """The reference box's headroom goal over its RAM (80 GiB of 384 GiB), from the host data."""
    from omni.hostdata import REFERENCE_BOX

    return float(REFERENCE_BOX["memory_headroom_gib"]) / float(REFERENCE_BOX["memory"]["total_gib"])


def resolve_headroom(opts: ReportOptions, host_total_bytes: float | None) -> tuple[ReportOptions, str]:
    """Fill an unset headroom goal from the judged box's size; returns (options, where it came from)."""
    if opts.min_headroom_gb is not None:
        return opts, f"headroom {opts.min_headroom_gb:g} GB as set"
    share = reference_headroom_share()
    if opts.target_mem_gb is not None:
        total, whose = opts.target_mem_gb, f"the target box's {opts.target_mem_gb:g} GB (target_mem_gb)"
    elif host_total_bytes:
        total, whose = host_total_bytes / 1e9, f"this host's {host_total_bytes / 1e9:.1f} GB MemTotal"
    else:
        return opts.model_copy(update={"min_headroom_gb": 80.0}), (
            "headroom 80 GB: the reference box's goal (this sweep recorded no MemTotal)")
    goal = round(total * share, 1)
    return opts.model_copy(update={"min_headroom_gb": goal}), (
        f"headroom {goal:g} GB = {share * 100:.1f} % of {whose}, the reference box's 80 of 384 GiB; "
        "set min_headroom_gb, or target_mem_gb for the box you will run on")


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise ReportError(f"{path} is not valid TOML ({err}); fix the syntax there") from None


DEFAULT_SOURCE = "default"
COMMAND_LINE = "command line"


def load_options(
    spec: Mapping[str, Any], sweep_dir: Path, overrides: Mapping[str, Any] | None = None,
) -> tuple[ReportOptions, list[str], dict[str, str]]:
    """Merged options, notes about ignored keys and the source of every key (the layer that set
    it last, or "default"), so the page and report-options.json can say how they were judged;
    a bad value is a one-line ReportError."""
    merged: dict[str, Any] = {}
    notes: list[str] = []
    sources = dict.fromkeys(FIELDS, DEFAULT_SOURCE)
    layers: list[tuple[str, Mapping[str, Any]]] = []
    table = dict(spec["report"]) if isinstance(spec.get("report"), Mapping) else {}
    try:
        pruned_by = spec_objective(spec)  # [report] objective, or the older strategy_options table mapped
    except ValueError as err:
        notes.append(f"spec: {err}")
        pruned_by = None
    if pruned_by is not None and "objective" not in table:  # the older strategy-only form, mapped
        layers.append(("spec [strategy_options]", {"objective": pruned_by}))
    if table:
        layers.append(("spec [report]", table))
    side = sweep_dir / "report.toml"
    if side.is_file():
        data = _read_toml(side)
        layers.append((str(side.name), data.get("report", data)))
    layers.append((COMMAND_LINE, {k: v for k, v in (overrides or {}).items() if v is not None}))
    for source, values in layers:
        for key, value in values.items():
            if key in FIELDS:
                merged[key], sources[key] = value, source
            else:
                notes.append(f"{source}: unknown key {key!r} ignored (known: {', '.join(FIELDS)})")
    try:
        opts = ReportOptions.model_validate(merged)
    except ValidationError as err:
        e = err.errors()[0]
        key, value = error_location(e), e.get("input")
        raise ReportError(f"report setting {key}={value!r}: {error_message(e)}") from None
    strategy = str(spec.get("strategy", "grid"))
    try:
        pruning = parse_objective(pruned_by or DEFAULT)
    except ValueError:
        return opts, notes, sources
    if strategy in PRUNING and parse_objective(opts.objective).canonical != pruning.canonical:
        notes.append(f"this {strategy} sweep chose which configurations to launch again by the objective "
                     f"{pruning.text!r}; ranked here by {opts.objective!r}, the ones it dropped early have "
                     "fewer repeats")
    return opts, notes, sources
