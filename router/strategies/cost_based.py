"""``cost-based-routing``: the cheapest deployment by its ``model_info`` prices.

A deployment's price is ``input_cost_per_token + output_cost_per_token``
(a missing one of the two counts as 0); a deployment with neither ranks
after every priced one. Among the cheapest, the one with the fewest requests
in flight wins, then a random one.

The cheapest tier of a candidates tuple (a whole group) is computed once and
cached, so a pick costs O(1) when the tier is small; a tier larger than
:data:`~router.strategies.sampling.EXACT_LIMIT` is sampled (the less busy of
two distinct random members). A list (a group a check narrowed) is priced
afresh: O(n), like the filtering that made it.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import TYPE_CHECKING

from router.cost import Prices
from router.strategies.base import LoadReader
from router.strategies.sampling import EXACT_LIMIT, TupleCache, random_min, two_distinct

if TYPE_CHECKING:
    from router.deployment import Deployment
    from router.load import LoadTracker
    from router.request import RouteRequest
    from router.strategies.base import StrategyContext

__all__ = ["CostBased", "price"]


def price(deployment: Deployment) -> float:
    """Cost per input + output token; ``inf`` when the deployment declares no price."""
    prices = Prices.from_model_info(deployment.config.model_info)
    return math.inf if prices is None else prices.input + prices.output


def _cheapest_by(candidates: Sequence[Deployment], prices: list[float]) -> tuple[
        Deployment, ...]:
    low = min(prices)
    return tuple(d for d, p in zip(candidates, prices, strict=True) if p == low)


class CostBased(LoadReader):
    """Cheapest, then least busy, then random.

    ``load``: the tracker to read; the router binds its own when ``None``.
    """


    def __init__(self, load: LoadTracker | None = None, rng: random.Random | None = None) -> None:
        self._random = (rng or random.Random()).random
        self._cache: TupleCache[tuple[Deployment, ...]] = TupleCache()
        self._prices: dict[str, float] = {}  # by deployment id: prices never change
        super().__init__(load)

    def _bound(self, load: LoadTracker) -> None:
        self._in_flight = load.in_flight

    @classmethod
    def from_context(cls, context: StrategyContext) -> CostBased:
        return cls(context.load, context.rng)

    def pick(self, candidates: Sequence[Deployment], request: RouteRequest) -> Deployment:
        if len(candidates) == 1:
            return candidates[0]
        tier = self._cache.get(candidates, self._tier)
        n = len(tier)
        if n == 1:
            return tier[0]
        in_flight = self._in_flight
        if n > EXACT_LIMIT:
            i, j = two_distinct(self._random, n)
            a, b = tier[i], tier[j]
            return b if in_flight(b.id) < in_flight(a.id) else a
        return random_min(tier, lambda d: in_flight(d.id), self._random)

    def _tier(self, candidates: Sequence[Deployment]) -> tuple[Deployment, ...]:
        """The cheapest candidates (prices remembered by deployment id)."""
        prices = self._prices
        try:
            known = [prices[d.id] for d in candidates]
        except KeyError:
            prices.update((d.id, price(d)) for d in candidates)
            known = [prices[d.id] for d in candidates]
        return _cheapest_by(candidates, known)
