"""``simple-shuffle``: weighted random choice (LiteLLM's default strategy).

The weight is the deployment's ``weight``, else its ``rpm``, else its
``tpm``; a deployment without any gets the mean of the others, and a group
where none has one is chosen uniformly.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from router.deployment import Deployment
    from router.request import RouteRequest
    from router.strategies.base import StrategyContext

__all__ = ["SimpleShuffle"]


class SimpleShuffle:
    """Weighted random; uses only the injected ``rng``."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng or random.Random()

    @classmethod
    def from_context(cls, context: StrategyContext) -> SimpleShuffle:
        return cls(context.rng)

    def pick(self, candidates: Sequence[Deployment], request: RouteRequest) -> Deployment:
        if len(candidates) == 1:
            return candidates[0]
        weights = [d.weight for d in candidates]
        given = [w for w in weights if w is not None]
        if not given:
            return candidates[int(self._rng.random() * len(candidates))]
        mean = sum(given) / len(given)
        if mean <= 0:  # rpm: 0 everywhere says nothing about preference
            return candidates[int(self._rng.random() * len(candidates))]
        filled = [mean if w is None else w for w in weights]
        return self._rng.choices(candidates, weights=filled)[0]
