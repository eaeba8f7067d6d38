"""``cost-based-routing``: the cheapest deployment by its ``model_info`` prices.

A deployment's price is ``input_cost_per_token + output_cost_per_token``
(a missing one of the two counts as 0); a deployment with neither ranks
after every priced one. Among the cheapest, the one with the fewest requests
in flight wins, then a random one.

The cheapest tier of a candidates tuple (a whole group) is computed once and
cached, so a pick costs O(1) when the tier is small; a tier larger than
:data:`~router.strategies.sampling.EXACT_LIMIT` is sampled (the less busy of
two distinct random members). A list (a group a check narrowed) that lacks
only a few members of a group already seen whole keeps that group's tier
less the members removed (random draws from the tier when it is large); a
list that lost the whole tier, or any other list, is priced afresh: O(n).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from router.cost import Prices
from router.strategies.base import LoadReader
from router.strategies.sampling import (
    EXACT_LIMIT,
    Narrowed,
    TupleCache,
    Wholes,
    random_min,
    two_distinct,
)

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


#: Draws from a large tier of a narrowed list's whole before pricing the list.
_DRAWS = 8


def _cheapest_by(candidates: Sequence[Deployment], prices: list[float]) -> tuple[int, ...]:
    """Positions of the cheapest candidates."""
    low = min(prices)
    return tuple(i for i, p in enumerate(prices) if p == low)


class CostBased(LoadReader):
    """Cheapest, then least busy, then random.

    ``load``: the tracker to read; the router binds its own when ``None``.
    """


    def __init__(self, load: LoadTracker | None = None, rng: random.Random | None = None) -> None:
        self._random = (rng or random.Random()).random
        self._cache: TupleCache[tuple[int, ...]] = TupleCache()
        self._wholes = Wholes()
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
        if type(candidates) is not tuple and len(candidates) > EXACT_LIMIT:
            narrowed = self._wholes.narrowed(candidates)
            kept = None if narrowed is None else self._narrowed_tier(narrowed)
            if narrowed is not None and kept:
                return self._least_busy(narrowed.whole, kept)
        return self._least_busy(candidates, self._cache.get(candidates, self._tier))

    def _least_busy(self, candidates: Sequence[Deployment], tier: Sequence[int]) -> Deployment:
        """The least busy of the candidates at positions ``tier`` (sampled when many)."""
        n = len(tier)
        if n == 1:
            return candidates[tier[0]]
        in_flight = self._in_flight
        if n > EXACT_LIMIT:
            i, j = two_distinct(self._random, n)
            a, b = candidates[tier[i]], candidates[tier[j]]
            return b if in_flight(b.id) < in_flight(a.id) else a
        return random_min([candidates[i] for i in tier], lambda d: in_flight(d.id), self._random)

    def _narrowed_tier(self, narrowed: Narrowed) -> list[int]:
        """Positions in the whole of its cheapest members still in the list (maybe none)."""
        tier = self._cache.get(narrowed.whole, self._tier)
        if len(tier) > EXACT_LIMIT:
            return _draw_kept(narrowed, tier, self._random)
        return [i for i in tier if narrowed.has(i)]

    def _tier(self, candidates: Sequence[Deployment]) -> tuple[int, ...]:
        """Positions of the cheapest candidates (prices remembered by deployment id)."""
        if type(candidates) is tuple:
            self._wholes.learn(candidates)
        prices = self._prices
        try:
            known = [prices[d.id] for d in candidates]
        except KeyError:
            prices.update((d.id, price(d)) for d in candidates)
            known = [prices[d.id] for d in candidates]
        return _cheapest_by(candidates, known)


def _draw_kept(narrowed: Narrowed, tier: tuple[int, ...], rand: Callable[[], float]) -> list[int]:
    """Up to two distinct random tier positions still in the list (fewer after misses)."""
    kept: list[int] = []
    for _ in range(_DRAWS):
        i = tier[int(rand() * len(tier))]
        if i not in kept and narrowed.has(i):
            kept.append(i)
            if len(kept) == 2:
                break
    return kept
