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

from omni.errors import error_location, error_message


class ReportError(Exception):
    """Cannot write the report; the message is one line naming the problem and the fix."""


class ReportOptions(BaseModel):
    """What the page judges against (the runbook's Definition of Done by default)."""

    model_config = ConfigDict(extra="forbid")
    min_decode_tps: float = Field(15.0, gt=0)  # decode tokens/s per request, one user
    min_headroom_gb: float = Field(80.0, ge=0)  # host MemAvailable kept free during inference (10^9 B)
    host_bandwidth_gbps: float | None = Field(None, gt=0)  # measured host RAM bandwidth, GB/s
    gpu_bandwidth_gbps: list[Annotated[float, Field(gt=0)]] = Field(default_factory=list)  # per GPU
    memory_channels: int | None = Field(None, ge=1)  # override "one DIMM per channel"

    @field_validator("gpu_bandwidth_gbps", mode="before")
    @classmethod
    def _scalar_is_every_gpu(cls, value: Any) -> Any:
        return [value] if isinstance(value, int | float) else value


FIELDS = tuple(ReportOptions.model_fields)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise ReportError(f"{path} is not valid TOML ({err}); fix the syntax there") from None


def load_options(
    spec: Mapping[str, Any], sweep_dir: Path, overrides: Mapping[str, Any] | None = None,
) -> tuple[ReportOptions, list[str]]:
    """Merged options and notes about ignored keys; a bad value is a one-line ReportError."""
    merged: dict[str, Any] = {}
    notes: list[str] = []
    layers: list[tuple[str, Mapping[str, Any]]] = []
    table = spec.get("report")
    if isinstance(table, Mapping):
        layers.append(("spec [report]", table))
    side = sweep_dir / "report.toml"
    if side.is_file():
        data = _read_toml(side)
        layers.append((str(side.name), data.get("report", data)))
    layers.append(("command line", {k: v for k, v in (overrides or {}).items() if v is not None}))
    for source, values in layers:
        for key, value in values.items():
            if key in FIELDS:
                merged[key] = value
            else:
                notes.append(f"{source}: unknown key {key!r} ignored (known: {', '.join(FIELDS)})")
    try:
        return ReportOptions.model_validate(merged), notes
    except ValidationError as err:
        e = err.errors()[0]
        key, value = error_location(e), e.get("input")
        raise ReportError(f"report setting {key}={value!r}: {error_message(e)}") from None
