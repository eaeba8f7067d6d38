"""How long to wait before a retry, and whether one fits the deadline.

A retry that can go to another deployment goes at once (after the
``retry_after`` floor, LiteLLM's setting): the failure was that
deployment's. A retry that must go back to the same deployment honours the
upstream's ``Retry-After`` / ``retry-after-ms`` when given, else backs off
exponentially with full jitter. A wait that would end past the request's
deadline means no retry.

How many retries an error allows is :meth:`RetryPolicy.retries_for`; whether
one may go *now* is also a matter of the group's retry budget
(:mod:`router.budget`), which the attempt loop asks after this policy. Which
errors are retried at all is :data:`router.errors.ERROR_TABLE`; an exhausted
quota never is, whatever ``retry_policy`` says (see :mod:`router.policies`).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field

from router.errors import UpstreamError
from router.policies import policy_value

__all__ = ["RetryPolicy"]

BACKOFF_BASE = 0.25
BACKOFF_CAP = 8.0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """``num_retries`` retries per model group; ``min_wait`` is the floor between tries.

    ``per_error`` is LiteLLM's ``retry_policy`` (``{"RateLimitErrorRetries": 3}``).
    """

    num_retries: int
    min_wait: float = 0.0
    per_error: Mapping[str, int] = field(default_factory=dict)

    def retries_for(self, error: UpstreamError, requested: int | None) -> int:
        """Retries ``error`` allows: the request's ``num_retries`` (for retryable
        errors), else the ``retry_policy`` entry for its kind, else
        ``num_retries`` for retryable errors and none for the others."""
        if requested is not None:
            return requested if error.retryable else 0
        configured = policy_value(self.per_error, "Retries", error)
        if configured is not None:
            return configured
        return self.num_retries if error.retryable else 0

    def fewest_retries(self, requested: int | None) -> int:
        """The fewest retries any error may allow this request: the request's
        ``num_retries``, else the lowest of ``num_retries`` and every ``retry_policy``
        entry (so a try that must be left for elsewhere is left whatever fails next)."""
        if requested is not None:
            return requested
        return min([self.num_retries, *self.per_error.values()])

    def wait(
        self, retry: int, error: UpstreamError, *, same_deployment: bool, rng: random.Random
    ) -> float:
        """Seconds to wait before retry number ``retry`` (0-based)."""
        if not same_deployment:
            return self.min_wait
        if error.retry_after is not None:
            return max(self.min_wait, error.retry_after)
        ceiling = min(BACKOFF_CAP, BACKOFF_BASE * (2**retry))
        return max(self.min_wait, rng.uniform(0, ceiling))
