"""The ask/tell interface every sweep strategy implements, and the per-configuration record.

Why ask/tell: the sweep loop owns launching (argv, env, health, memory guard); a strategy only
decides which server configuration to launch next from the scores seen so far. Strategies are
deterministic (ties go to spec order), so a resumed sweep that replays its recorded launches
through `tell` reaches the same state and asks for the same next launch.

Scores are "higher is better" and positive (tokens/s): `bench.objective.launch_score`, the same
objective the report recommends by. Internally a score is compared
on the log scale: launch-to-launch noise is roughly proportional to the value, so log scores
have one variance across fast and slow configurations.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from bench.stats import mean


@dataclass
class Arm:
    """One server configuration: its launches so far and why it stopped being launched."""

    config_id: str
    order: int
    logs: list[float] = field(default_factory=list)  # log(score) of each good launch
    failures: int = 0
    dropped: str = ""  # empty while still in the race; else the reason

    @property
    def launches(self) -> int:
        return len(self.logs) + self.failures

    @property
    def mean_log(self) -> float:
        m = mean(self.logs)
        return math.nan if m is None else m

    @property
    def score(self) -> float:
        """Geometric mean of the launch scores (nan before the first good launch)."""
        return math.exp(self.mean_log) if self.logs else math.nan


class Strategy(ABC):
    """Decides the next launch. `ask` returns a config id or None when the sweep is done."""

    name: ClassVar[str]

    def __init__(self, config_ids: Sequence[str], repeats: int) -> None:
        if not config_ids:
            raise ValueError("a strategy needs at least one configuration")
        if len(set(config_ids)) != len(config_ids):
            raise ValueError("configuration ids must be unique")
        if repeats < 1:
            raise ValueError(f"repeats must be >= 1, got {repeats}")
        self.repeats = repeats
        self.arms = {cid: Arm(cid, i) for i, cid in enumerate(config_ids)}

    @abstractmethod
    def ask(self) -> str | None:
        """The config id to launch next, or None when no more launches are needed."""

    def tell(self, config_id: str, score: float | None) -> None:
        """Record one finished launch; `score` None (or not a positive number) means it failed."""
        arm = self.arms[config_id]
        if score is None or not math.isfinite(score) or score <= 0:
            arm.failures += 1
            self._failed(arm)
        else:
            arm.logs.append(math.log(score))
        self._update()

    def _failed(self, arm: Arm) -> None:  # noqa: B027 - optional hook
        """Hook run when a launch of `arm` failed, before `_update`."""

    def _update(self) -> None:  # noqa: B027 - optional hook
        """Hook run after each `tell` (elimination rules live here)."""

    @property
    def launches(self) -> int:
        return sum(a.launches for a in self.arms.values())

    def alive(self) -> list[Arm]:
        return [a for a in self.arms.values() if not a.dropped]

    def best(self) -> str | None:
        """The configuration with the highest score among those still in the race."""
        scored = [a for a in self.alive() if a.logs] or [a for a in self.arms.values() if a.logs]
        if not scored:
            return None
        return max(scored, key=lambda a: (a.mean_log, -a.order)).config_id

    def _next_fewest(self, arms: Sequence[Arm], cap: int) -> str | None:
        """Among `arms` with fewer than `cap` launches, the one with fewest launches, spec order."""
        todo = [a for a in arms if a.launches < cap]
        if not todo:
            return None
        return min(todo, key=lambda a: (a.launches, a.order)).config_id


class Grid(Strategy):
    """Every configuration `repeats` times, configuration by configuration (the reference)."""

    name = "grid"

    def ask(self) -> str | None:
        for arm in sorted(self.arms.values(), key=lambda a: a.order):
            if arm.launches < self.repeats:
                return arm.config_id
        return None
