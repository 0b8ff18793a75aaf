"""Sweep strategies: which server configuration to launch next (`strategy` in the sweep spec).

    strategy = "grid"                  # default: every configuration `repeats` times
    strategy = "race"                  # drop a configuration once it is clearly below the best
    strategy = "halving"               # successive halving over repeats
    [strategy_options]                 # knobs of the chosen strategy (all optional)
    launch_cv = 0.03                   # race: expected launch-to-launch spread, before data

What ranks a launch is not a strategy knob: it is the one objective, `[report] objective` (see
`bench.objective`), so the launches a race drops are judged on what the page recommends by.

Use: `st = parse_strategy(spec.strategy, spec.strategy_options)` (before any launch: one-line
ValueError on a bad knob), `s = make_strategy(st, config_ids, repeats)`, then
`while (cid := s.ask()) is not None:` launch `cid`, run its cells, and
`s.tell(cid, launch_score(rows, objective))`. `s.best()` is the winner; `s.arms[cid].dropped`
says why a configuration stopped being launched.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from bench.objective import Objective, launch_score, legacy_objective
from bench.strategies.adaptive import Halving, Race
from bench.strategies.base import Arm, Grid, Strategy
from omni.errors import error_location, error_message

__all__ = [
    "Arm", "Grid", "Halving", "Objective", "Race", "Strategy", "StrategySpec", "launch_score",
    "make_strategy", "parse_strategy",
]

_ONLY_FOR = {
    "confidence": "race", "launch_cv": "race", "prior_df": "race", "tolerance": "race", "eta": "halving",
}


class StrategySpec(BaseModel):
    """The spec's `strategy`: a name, or a table with the name and its knobs."""

    model_config = ConfigDict(extra="forbid")
    name: Literal["grid", "race", "halving"] = "grid"
    confirm: int = Field(2, ge=1, description="launches the final winner gets (capped at repeats)")
    confidence: float = Field(0.95, gt=0.5, lt=1)
    launch_cv: float = Field(0.03, gt=0, lt=1)
    prior_df: float = Field(4.0, gt=0)
    tolerance: float = Field(0.0, ge=0, lt=1)
    eta: float = Field(2.0, gt=1)

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _knobs_match(self) -> StrategySpec:
        for key, owner in _ONLY_FOR.items():
            if key in self.model_fields_set and self.name != owner:
                raise ValueError(f"{key} applies to strategy {owner!r} only: remove it or use {owner!r}")
        if "confirm" in self.model_fields_set and self.name == "grid":
            raise ValueError("confirm applies to strategies 'race' and 'halving' only: remove it")
        return self


def parse_strategy(name: str, options: Mapping[str, Any] | None = None) -> StrategySpec:
    """Validate the spec's `strategy` and `strategy_options`; raises ValueError with one line.

    `objective` is no strategy knob (the spec maps the older table to `[report] objective` before
    this); given here, the error names the `[report] objective` it stands for.
    """
    if options and "objective" in options:
        text = legacy_objective(options["objective"])
        raise ValueError(f"strategy_options.objective is now [report] objective = {text!r}: the one "
                         "objective ranks launches and the report alike") from None
    try:
        return StrategySpec.model_validate({**(options or {}), "name": name})
    except ValidationError as err:
        e = err.errors()[0]
        key = error_location(e)
        if e["type"] == "extra_forbidden":
            known = sorted(set(StrategySpec.model_fields) - {"name"})
            raise ValueError(f"unknown strategy option {key!r}: use one of {', '.join(known)}") from None
        if key == "name":
            raise ValueError(f"strategy {name!r} is not known: use grid, race or halving") from None
        msg = error_message(e)
        if not key:
            raise ValueError(msg) from None
        raise ValueError(f"strategy_options.{key}: {msg} (got {e.get('input')!r})") from None


def make_strategy(spec: StrategySpec | str, config_ids: Sequence[str], repeats: int) -> Strategy:
    """Build the strategy the spec names for these configurations (confirm is capped at repeats)."""
    spec = spec if isinstance(spec, StrategySpec) else StrategySpec.model_validate(spec)
    if spec.name == "grid":
        return Grid(config_ids, repeats)
    confirm = min(spec.confirm, repeats)
    if spec.name == "halving":
        return Halving(config_ids, repeats, eta=spec.eta, confirm=confirm)
    return Race(
        config_ids, repeats, confidence=spec.confidence, launch_cv=spec.launch_cv,
        prior_df=spec.prior_df, tolerance=spec.tolerance, confirm=confirm,
    )
