"""Strategies that launch the clear losers fewer times than the grid: racing and successive halving.

Why: a real sweep relaunches a ~281 GB model for every configuration and repeat (minutes each),
and most configurations are clearly slower after a single launch. Both strategies launch every
configuration once, then spend the remaining repeats only on the ones that can still win.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from bench.stats import pooled_var, t_quantile
from bench.strategies.base import Arm, Strategy


class _Adaptive(Strategy):
    """Shared rules: a failed launch drops its configuration; the last one standing is confirmed."""

    def __init__(self, config_ids: Sequence[str], repeats: int, *, confirm: int = 1) -> None:
        super().__init__(config_ids, repeats)
        if not 1 <= confirm <= repeats:
            raise ValueError(f"confirm must be between 1 and repeats ({repeats}), got {confirm}")
        self.confirm = confirm

    def _failed(self, arm: Arm) -> None:
        if not arm.dropped:
            arm.dropped = f"launch {arm.launches} failed"

    def ask(self) -> str | None:
        alive = self.alive()
        first = self._next_fewest(alive, 1)  # every configuration gets one launch first
        if first is not None:
            return first
        if len(alive) == 1:  # the winner: launch it until it has `confirm` launches
            return self._next_fewest(alive, self.confirm)
        return self._next_more(alive)

    def _next_more(self, alive: list[Arm]) -> str | None:
        return self._next_fewest(alive, self.repeats)


MEASURE_FIRST = 2  # the leader and the runner-up are launched again before anything is dropped


class Race(_Adaptive):
    """Drop a configuration once its score is clearly below the leader's, then repeat the rest.

    After each launch, with s^2 the launch-to-launch variance of log scores (pooled over every
    configuration with >= 2 launches and shrunk toward `launch_cv`^2 worth `prior_df` degrees of
    freedom), configuration c is dropped when

        mean(leader) - mean(c) > t(confidence, df) * s * sqrt(1/n_leader + 1/n_c)

    (one-sided test on log scores, so the margin is relative). Nothing is dropped on the prior
    alone: after the first round the leader and the runner-up are launched again, so two degrees
    of freedom of real launch-to-launch noise (and the closest contender's second chance) come
    first. Survivors are then launched round-robin until one is left (it then gets `confirm`
    launches) or all have `repeats` launches.
    """

    name = "race"

    def __init__(
        self,
        config_ids: Sequence[str],
        repeats: int,
        *,
        confidence: float = 0.95,
        launch_cv: float = 0.03,
        prior_df: float = 4.0,
        tolerance: float = 0.0,
        confirm: int = 1,
    ) -> None:
        super().__init__(config_ids, repeats, confirm=confirm)
        if not 0.5 < confidence < 1:
            raise ValueError(f"confidence must be between 0.5 and 1, got {confidence}")
        if launch_cv <= 0 or prior_df <= 0:
            raise ValueError("launch_cv and prior_df must be > 0")
        if not 0 <= tolerance < 1:
            raise ValueError(f"tolerance must be in [0, 1), got {tolerance}")
        self.tolerance = -math.log1p(-tolerance)
        self.confidence = confidence
        self.launch_cv = launch_cv
        self.prior_df = prior_df

    def noise(self) -> tuple[float, float]:
        """(standard deviation of a log score, degrees of freedom) from the launches so far."""
        var, df = pooled_var([a.logs for a in self.arms.values()], self.launch_cv**2, self.prior_df)
        return math.sqrt(var), df

    def _leader(self) -> Arm | None:
        scored = [a for a in self.alive() if a.logs]
        return max(scored, key=lambda a: (a.mean_log, -a.order)) if scored else None

    def _next_more(self, alive: list[Arm]) -> str | None:
        # Before anything is dropped the noise prior must meet data: the leader and the runner-up
        # go again first, so a box much noisier than `launch_cv` widens the margins in time.
        if not self._measured_noise():
            ranked = sorted((a for a in alive if a.logs), key=lambda a: (-a.mean_log, a.order))
            for arm in ranked[:MEASURE_FIRST]:
                if len(arm.logs) < 2 and arm.launches < self.repeats:
                    return arm.config_id
        return super()._next_more(alive)

    def _measured_noise(self) -> bool:
        df = sum(len(a.logs) - 1 for a in self.arms.values() if len(a.logs) >= 2)
        return df >= min(MEASURE_FIRST, sum(1 for a in self.alive() if a.logs), self.repeats - 1)

    def _update(self) -> None:
        scored = [a for a in self.alive() if a.logs]
        if len(scored) < 2 or not self._measured_noise():
            return
        leader = max(scored, key=lambda a: (a.mean_log, -a.order))
        sd, df = self.noise()
        t = t_quantile(self.confidence, df)
        for arm in scored:
            if arm is leader:
                continue
            gap = leader.mean_log - arm.mean_log
            margin = t * sd * math.sqrt(1 / len(leader.logs) + 1 / len(arm.logs))
            if gap > margin - self.tolerance:
                arm.dropped = (
                    f"{100 * (1 - math.exp(-gap)):.1f}% below {leader.config_id} "
                    f"(margin {100 * (1 - math.exp(-margin)):.1f}%)"
                )


class Halving(_Adaptive):
    """Successive halving over repeats: after each round keep the best 1/`eta` of the survivors.

    Round k launches every survivor until it has k launches; its ranking uses the mean log score.
    Cost is about N * (1 + 1/eta + 1/eta^2 ...) launches, whatever the noise.
    """

    name = "halving"

    def __init__(
        self, config_ids: Sequence[str], repeats: int, *, eta: float = 2.0, confirm: int = 1
    ) -> None:
        super().__init__(config_ids, repeats, confirm=confirm)
        if eta <= 1:
            raise ValueError(f"eta must be > 1, got {eta}")
        self.eta = eta
        self.rung = 1  # launches every survivor has in the current round

    def _update(self) -> None:
        alive = self.alive()
        if len(alive) < 2 or any(a.launches < self.rung for a in alive):
            return
        keep = max(1, math.ceil(len(alive) / self.eta))
        ranked = sorted(alive, key=lambda a: (-a.mean_log, a.order))
        for arm in ranked[keep:]:
            arm.dropped = f"not in the top {keep} after round {self.rung}"
        self.rung += 1

    def _next_more(self, alive: list[Arm]) -> str | None:
        return self._next_fewest(alive, min(self.rung, self.repeats))
