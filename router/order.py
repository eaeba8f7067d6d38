"""``order``: use a deployment of a higher ``order`` only when the lower ones cannot serve.

``litellm_params.order`` ranks the deployments of a group (1 first). Of the
deployments that *can* serve a request right now, only those of the lowest
order present are offered to the strategy; the next order comes into play
when every deployment of the lower ones is unavailable: cooling down,
removed by a pre-call check, or already failed for this request. A
deployment without ``order`` ranks after every ordered one (LiteLLM would
never use it while any ordered deployment is healthy; last is the useful
reading). A group where no deployment sets ``order`` is left untouched.

This is deliberately *not* a pre-call check: checks see the whole group,
before the attempt loop removes the deployments that cool down or already
failed, and narrowing there would retry a failed order-1 deployment instead
of moving on to order 2. :meth:`OrderTiers.narrow` must run on what is left
after those removals, just before the strategy picks.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from router.deployment import Deployment

__all__ = ["OrderTiers"]


def _rank(deployment: Deployment) -> float:
    order = deployment.config.litellm_params.order
    return math.inf if order is None else order


class OrderTiers:
    """Narrows available deployments to their lowest ``order``; built once per router."""

    def __init__(self, deployments: Iterable[Deployment]) -> None:
        self._groups = frozenset(
            d.model_name for d in deployments if d.config.litellm_params.order is not None
        )

    @property
    def active(self) -> bool:
        """False when no deployment sets ``order`` (``narrow`` is then the identity)."""
        return bool(self._groups)

    def ranks(self, group: str) -> bool:
        """Whether some deployment of ``group`` sets ``order`` (a failed one then never
        comes back before the next order: see :mod:`router.retry_targets`)."""
        return group in self._groups

    def narrow(self, available: Sequence[Deployment]) -> Sequence[Deployment]:
        """The deployments of the lowest order in ``available`` (one group's).

        Returns ``available`` itself when nothing is removed (so per-sequence
        caches of the strategies stay valid).
        """
        if not available or available[0].model_name not in self._groups:
            return available
        best = min(_rank(d) for d in available)
        kept = [d for d in available if _rank(d) == best]
        return available if len(kept) == len(available) else kept
