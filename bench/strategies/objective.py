"""The one number a launch is ranked by, computed from that launch's result rows.

Why one number: a strategy compares launches, while a launch yields one row per workload cell
(concurrency, input and output length). The default, the geometric mean of `throughput_tps`
over the cells, weighs every cell equally whatever its scale; `concurrency` narrows it to the
cells a user cares about (e.g. 1 for single-user decode speed).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bench.metric_registry import METRICS
from bench.schema import OK_STATUSES


class Objective(BaseModel):
    """Which results.csv column ranks a launch, and over which workload cells."""

    model_config = ConfigDict(extra="forbid")
    metric: str = Field("throughput_tps", min_length=1)
    concurrency: int | None = Field(None, ge=1)

    @field_validator("metric")
    @classmethod
    def _registered(cls, name: str) -> str:
        if name not in METRICS:
            rates = ", ".join(n for n, m in METRICS.items()
                              if m.unit in ("tokens/s", "ms") and "ci95" not in n)
            raise ValueError(f"{name!r} is not a results metric: use one of {rates}")
        return name

    @property
    def lower_is_better(self) -> bool:
        return METRICS[self.metric].direction == "lower"


def _number(value: Any) -> float | None:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) and x > 0 else None


def launch_score(rows: Iterable[Mapping[str, Any]], objective: Objective) -> float | None:
    """Higher-is-better score of one launch, or None when it failed or measured nothing.

    A launch with a row that is neither ok nor partial (failed start, oom-guard, dead server, no
    request succeeded) failed: a configuration that cannot run its workload cannot be the winner.
    A partial row (some requests failed) still counts; its throughput already shows the loss.
    """
    values: list[float] = []
    for row in rows:
        if str(row.get("status", "ok")) not in OK_STATUSES:
            return None
        if objective.concurrency is not None and _number(row.get("concurrency")) != objective.concurrency:
            continue
        x = _number(row.get(objective.metric))
        if x is None:
            return None
        values.append(1 / x if objective.lower_is_better else x)
    if not values:
        return None
    return math.exp(sum(math.log(v) for v in values) / len(values))
