"""Prompt-cache affinity: requests sharing a cache key prefer the deployment that served it.

Upstream prompt caches (OpenAI's and Azure's, keyed by ``prompt_cache_key``
and the prompt's prefix) live on the deployment that served the prompt, so a
request sent elsewhere pays the whole prefill again. With
``prompt_cache_affinity`` (on by default; it only acts on requests that give a
key), the router remembers, per model group, which deployment last served each
``prompt_cache_key`` (and, with ``prompt_cache_affinity_instructions: N``,
each ``instructions`` of at least N characters, by its first N), and prefers
it next time.

The preference is soft. The strategy picks as always; the remembered
deployment replaces its pick only if it is among the deployments that can
serve now (not cooling down, not removed by a check or an ``order`` tier, not
failed for this request) and is not clearly worse than the pick by the
strategy's own cost (:func:`router.strategies.base.cost_reader`:
``peak-ewma``'s expected latency, ``least-busy``'s requests in flight...; for a
strategy without one, requests in flight): at most
``prompt_cache_affinity_slack`` (2) times the pick's cost. So a hot key
follows its deployment until that one is overloaded, slow or down, and then
moves, and the new deployment becomes the remembered one.

Per process and bounded (:data:`MAX_KEYS`, least recently used first); the
remembered deployment is a preference, so a process that has not seen a key
simply routes as the strategy says.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from cachetools import LRUCache

from router.strategies.base import cost_reader

if TYPE_CHECKING:
    from router.deployment import Deployment
    from router.load import LoadTracker
    from router.request import RouteRequest
    from router.strategies.base import Strategy

__all__ = ["MAX_KEYS", "CacheAffinity"]

#: Cache keys remembered per router at most.
MAX_KEYS = 100_000


class CacheAffinity:
    """Remembers and prefers the deployment of each prompt-cache key (see the module)."""

    def __init__(
        self, strategy: Strategy, load: LoadTracker, *, slack: float = 2.0,
        instructions: int | None = None, max_keys: int = MAX_KEYS,
    ) -> None:
        self._costs = cost_reader(strategy, load)
        self._slack = slack
        self._instructions = instructions
        self._served: LRUCache[tuple[str, str], str] = LRUCache(max_keys)

    def key(self, request: RouteRequest) -> str | None:
        """The request's cache key: its ``prompt_cache_key``, else (opt-in) a long
        ``instructions``' first characters."""
        key = request.params.get("prompt_cache_key")
        if isinstance(key, str) and key:
            return key
        n = self._instructions
        if n is not None:
            text = request.params.get("instructions")
            if isinstance(text, str) and len(text) >= n:
                return "\0" + text[:n]  # never equal to a prompt_cache_key
        return None

    def choose(
        self, available: Sequence[Deployment], request: RouteRequest, picked: Deployment
    ) -> Deployment:
        """``picked``, or the key's deployment when it can serve and is not clearly worse."""
        key = self.key(request)
        if key is None:
            return picked
        remembered = self._served.get((picked.model_name, key))
        if remembered is None or remembered == picked.id:
            return picked
        for d in available:
            if d.id == remembered:
                return d if self._close_enough(d, picked) else picked
        return picked

    def served(self, request: RouteRequest, deployment: Deployment) -> None:
        """``deployment`` served ``request``: its key now points there."""
        key = self.key(request)
        if key is not None:
            self._served[(deployment.model_name, key)] = deployment.id

    def _close_enough(self, preferred: Deployment, picked: Deployment) -> bool:
        mine, theirs = self._costs((preferred, picked))
        return mine <= self._slack * theirs
