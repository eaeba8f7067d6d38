"""``simple-shuffle``: weighted random choice (LiteLLM's default strategy).

The weight is the deployment's ``weight``, else its ``rpm``, else its
``tpm``; a deployment without any gets the mean of the others, and a group
where none has one is chosen uniformly.

Exact at every size. The cumulative weights of a candidates tuple (a whole
group, as the deployment table hands it out) are built once and cached, so a
pick is one random draw and a bisection: O(log n). A list (a group a check
narrowed) that lacks only a few members of a group already seen whole is
drawn from the whole group's weights, a draw outside the list being drawn
again (rejection sampling: each kept deployment's chance stays proportional
to its weight); other lists, or draws that keep missing, weigh the list
afresh: O(n). A deployment without a weight gets the mean of its group (of
the list, when weighed afresh).
"""

from __future__ import annotations

import random
from bisect import bisect_right
from collections.abc import Sequence
from itertools import accumulate
from typing import TYPE_CHECKING, cast

from router.strategies.sampling import EXACT_LIMIT, TupleCache, Wholes

if TYPE_CHECKING:
    from router.deployment import Deployment
    from router.request import RouteRequest
    from router.strategies.base import StrategyContext

__all__ = ["SimpleShuffle"]

#: Draws from a narrowed list's whole before weighing the list afresh.
_DRAWS = 8


def _cumulative_weights(candidates: Sequence[Deployment]) -> list[float] | None:
    """Cumulative weights, or ``None`` when the choice is uniform."""
    weights = [d.weight for d in candidates]
    if None in weights:
        given = [w for w in weights if w is not None]
        if not given:
            return None
        mean = sum(given) / len(given)
        filled = [mean if w is None else w for w in weights]
    else:
        filled = cast("list[float]", weights)  # no None in it
    cumulative = list(accumulate(filled))
    if cumulative[-1] <= 0:  # rpm: 0 everywhere says nothing about preference
        return None
    return cumulative


class SimpleShuffle:
    """Weighted random; uses only the injected ``rng``."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self._random = (rng or random.Random()).random
        self._cache: TupleCache[list[float] | None] = TupleCache()
        self._wholes = Wholes()

    @classmethod
    def from_context(cls, context: StrategyContext) -> SimpleShuffle:
        return cls(context.rng)

    def pick(self, candidates: Sequence[Deployment], request: RouteRequest) -> Deployment:
        n = len(candidates)
        if n == 1:
            return candidates[0]
        if type(candidates) is not tuple and n > EXACT_LIMIT:
            drawn = self._from_whole(candidates)
            if drawn is not None:
                return drawn
        return self._draw(candidates, self._cache.get(candidates, self._weigh))

    def _draw(self, candidates: Sequence[Deployment], cumulative: list[float] | None
              ) -> Deployment:
        n = len(candidates)
        if cumulative is None:
            return candidates[int(self._random() * n)]
        return candidates[bisect_right(cumulative, self._random() * cumulative[-1], 0, n - 1)]

    def _weigh(self, candidates: Sequence[Deployment]) -> list[float] | None:
        if type(candidates) is tuple:
            self._wholes.learn(candidates)
        return _cumulative_weights(candidates)

    def _from_whole(self, candidates: Sequence[Deployment]) -> Deployment | None:
        """A draw from the whole group ``candidates`` was narrowed from, if known."""
        narrowed = self._wholes.narrowed(candidates)
        if narrowed is None:
            return None
        whole = narrowed.whole
        cumulative = self._cache.get(whole, self._weigh)
        n, rand = len(whole), self._random
        for _ in range(_DRAWS):
            if cumulative is None:
                i = int(rand() * n)
            else:
                i = bisect_right(cumulative, rand() * cumulative[-1], 0, n - 1)
            if narrowed.has(i):
                return whole[i]
        return None
