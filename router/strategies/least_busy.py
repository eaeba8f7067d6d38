"""``least-busy``: the candidate with the fewest requests in flight; ties at random.

Exact up to :data:`~router.strategies.sampling.EXACT_LIMIT` candidates. Above
that, the less busy of two distinct random candidates (power of two choices):
O(1) per pick, and the busiest deployments are still avoided, since a
deployment loses every comparison against a less busy one.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TYPE_CHECKING

from router.strategies.base import LoadReader, Needs
from router.strategies.sampling import EXACT_LIMIT, random_min, two_distinct

if TYPE_CHECKING:
    from router.deployment import Deployment
    from router.load import LoadTracker
    from router.request import RouteRequest
    from router.strategies.base import StrategyContext

__all__ = ["LeastBusy"]


class LeastBusy(LoadReader):
    """Fewest in flight (``LoadTracker.in_flight``: shared figures included while fresh).

    ``load``: the tracker to read; the router binds its own when ``None``.
    """


    needs = Needs.SHARED_IN_FLIGHT

    def __init__(self, load: LoadTracker | None = None, rng: random.Random | None = None) -> None:
        self._random = (rng or random.Random()).random
        super().__init__(load)

    def _bound(self, load: LoadTracker) -> None:
        self._in_flight = load.in_flight

    @classmethod
    def from_context(cls, context: StrategyContext) -> LeastBusy:
        return cls(context.load, context.rng)

    def costs(self, candidates: Sequence[Deployment]) -> list[float]:
        """Each candidate's requests in flight (what :meth:`pick` minimises)."""
        in_flight = self._in_flight
        return [float(in_flight(d.id)) + 1.0 for d in candidates]

    def pick(self, candidates: Sequence[Deployment], request: RouteRequest) -> Deployment:
        n = len(candidates)
        if n == 1:
            return candidates[0]
        in_flight = self._in_flight
        if n > EXACT_LIMIT:
            i, j = two_distinct(self._random, n)
            a, b = candidates[i], candidates[j]
            return b if in_flight(b.id) < in_flight(a.id) else a
        return random_min(candidates, lambda d: in_flight(d.id), self._random)
