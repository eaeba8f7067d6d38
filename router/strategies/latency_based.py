"""``latency-based-routing``: the fastest deployment, by LiteLLM's measure.

Fastest means the lowest EWMA latency per output token of plain requests,
or for a stream (``request.stream``) the lowest EWMA time to first token.
The pick is random among the deployments within
``routing_strategy_args["lowest_latency_buffer"]`` of the best (a fraction:
0.5 means up to 1.5x the best; default 0, i.e. only the best and its exact
ties), which spreads load over near-equals as LiteLLM does.

A deployment not measured yet is tried first, one probe at a time: while
its first request is in flight it waits behind the measured ones (if none
is measured, the least busy unmeasured one is chosen). Otherwise a new
deployment that hangs would receive every request until its first answer.

Exact up to :data:`~router.strategies.sampling.EXACT_LIMIT` candidates;
above that the same rule is applied to two distinct random candidates.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from router.strategies.base import LoadReader
from router.strategies.sampling import EXACT_LIMIT, number_arg, random_min, two_distinct

if TYPE_CHECKING:
    from router.deployment import Deployment
    from router.load import LoadTracker
    from router.request import RouteRequest
    from router.strategies.base import StrategyContext

__all__ = ["LatencyBased"]

# Relative slack under which two figures count as equal: float noise in
# ``now() - started`` must not decide between identical deployments.
_TIE = 1e-9


class LatencyBased(LoadReader):
    """Lowest latency per output token (TTFT for streams), with LiteLLM's buffer.

    ``load``: the tracker to read; the router binds its own when ``None``.
    """


    def __init__(
        self, load: LoadTracker | None = None, rng: random.Random | None = None, *,
        buffer: float = 0.0,
    ) -> None:
        if not buffer >= 0:
            raise ValueError(f"LatencyBased: buffer must be >= 0, got {buffer!r}")
        self._random = (rng or random.Random()).random
        self._slack = (1.0 + buffer) * (1.0 + _TIE)
        super().__init__(load)

    @classmethod
    def from_context(cls, context: StrategyContext) -> LatencyBased:
        buffer = number_arg(context.args, "lowest_latency_buffer", 0.0)
        return cls(context.load, context.rng, buffer=buffer)

    def pick(self, candidates: Sequence[Deployment], request: RouteRequest) -> Deployment:
        n = len(candidates)
        if n == 1:
            return candidates[0]
        load = self.load
        figure = load.ttft if request.stream else load.latency_per_token
        if n > EXACT_LIMIT:
            i, j = two_distinct(self._random, n)
            candidates = (candidates[i], candidates[j])
        return self._choose(candidates, figure)

    def _choose(
        self, candidates: Sequence[Deployment], figure: Callable[[str], float | None]
    ) -> Deployment:
        in_flight = self.load.in_flight
        measured: list[tuple[float, Deployment]] = []
        idle_new: list[Deployment] = []
        probing: list[Deployment] = []
        for d in candidates:
            value = figure(d.id)
            if value is not None:
                measured.append((value, d))
            elif in_flight(d.id) == 0:
                idle_new.append(d)
            else:
                probing.append(d)
        rand = self._random
        if idle_new:
            return idle_new[int(rand() * len(idle_new))]
        if measured:
            limit = min(v for v, _ in measured) * self._slack
            near = [d for v, d in measured if v <= limit]
            return near[int(rand() * len(near))]
        return random_min(probing, lambda d: in_flight(d.id), rand)
