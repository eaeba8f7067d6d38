"""``usage-based-routing`` (and ``-v2``): the deployment with the fewest tokens this minute.

Usage is :meth:`LoadTracker.usage` (this process's counts, or the counts
shared through Redis while fresh), per wall-clock minute. A deployment at or
over its ``rpm`` (requests this minute) or ``tpm`` (tokens this minute) is
never chosen while one under its limits remains; when every candidate is
over, the least over (the lowest ``used / limit`` of its worst limit) is
returned: a strategy always returns a candidate, and the hard limit is a
pre-call check's business. Ties in tokens go to fewer requests, then random.

Exact up to :data:`~router.strategies.sampling.EXACT_LIMIT` candidates.
Above that, pairs of distinct random candidates are compared, up to
:data:`_ROUNDS` pairs until one under its limits is found.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import TYPE_CHECKING

from router.strategies.base import LoadReader, Needs
from router.strategies.sampling import EXACT_LIMIT, TupleCache, lowest, two_distinct

if TYPE_CHECKING:
    from router.deployment import Deployment
    from router.load import LoadTracker
    from router.request import RouteRequest
    from router.strategies.base import StrategyContext

__all__ = ["UsageBased"]

_ROUNDS = 4

#: (how far over its worst limit, or 0.0 when under all; tokens; requests)
_Key = tuple[float, int, int]


def _limits(candidates: Sequence[Deployment]) -> list[tuple[int | None, int | None]]:
    return [(d.config.litellm_params.rpm, d.config.litellm_params.tpm) for d in candidates]


def _rank(requests: int, tokens: int, rpm: int | None, tpm: int | None) -> _Key:
    over = 0.0
    if rpm is not None:
        over = requests / rpm if rpm else math.inf
    if tpm is not None:
        over = max(over, tokens / tpm if tpm else math.inf)
    return (over if over >= 1.0 else 0.0, tokens, requests)


class UsageBased(LoadReader):
    """Fewest tokens this minute among the deployments under their rpm/tpm.

    ``load``: the tracker to read; the router binds its own when ``None``. As
    in LiteLLM, a router using it makes ``rpm``/``tpm`` hard limits.
    """


    needs = Needs.SHARED_USAGE | Needs.RATE_LIMITS

    def __init__(self, load: LoadTracker | None = None, rng: random.Random | None = None) -> None:
        self._random = (rng or random.Random()).random
        self._limits: TupleCache[list[tuple[int | None, int | None]]] = TupleCache()
        super().__init__(load)

    def _bound(self, load: LoadTracker) -> None:
        self._usage = load.usage
        self._minute = load.minute

    @classmethod
    def from_context(cls, context: StrategyContext) -> UsageBased:
        return cls(context.load, context.rng)

    def key(self, deployment: Deployment, minute: int | None = None) -> _Key:
        """How this deployment ranks now (lower is better)."""
        params = deployment.config.litellm_params
        return _rank(*self._usage(deployment.id, minute), params.rpm, params.tpm)

    def _keys(self, candidates: Sequence[Deployment]) -> list[_Key]:
        """Every candidate's rank: :func:`_rank` inlined, as this runs per candidate."""
        usage, minute, inf = self._usage, self._minute(), math.inf
        keys: list[_Key] = []
        for d, (rpm, tpm) in zip(candidates, self._limits.get(candidates, _limits), strict=True):
            requests, tokens = usage(d.id, minute)
            over = 0.0 if rpm is None else (requests / rpm if rpm else inf)
            if tpm is not None:
                over_tpm = tokens / tpm if tpm else inf
                if over_tpm > over:
                    over = over_tpm
            keys.append((over if over >= 1.0 else 0.0, tokens, requests))
        return keys

    def pick(self, candidates: Sequence[Deployment], request: RouteRequest) -> Deployment:
        n = len(candidates)
        if n == 1:
            return candidates[0]
        if n <= EXACT_LIMIT:
            return lowest(candidates, self._keys(candidates), self._random)
        best, best_key = candidates[0], (math.inf, 0, 0)
        minute = self._minute()
        for _ in range(_ROUNDS):
            i, j = two_distinct(self._random, n)
            for d in (candidates[i], candidates[j]):
                key = self.key(d, minute)
                if key < best_key:
                    best, best_key = d, key
            if best_key[0] == 0.0:
                break
        return best
