"""How long to wait before a retry, and whether one fits the deadline.

A retry that can go to another deployment goes at once (after the
``retry_after`` floor, LiteLLM's setting): the failure was that
deployment's. A retry that must go back to the same deployment honours the
upstream's ``Retry-After`` / ``retry-after-ms`` when given, else backs off
exponentially with full jitter. A wait that would end past the request's
deadline means no retry.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from router.errors import UpstreamError

__all__ = ["RetryPolicy"]

BACKOFF_BASE = 0.25
BACKOFF_CAP = 8.0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """``num_retries`` retries per model group; ``min_wait`` is the floor between tries."""

    num_retries: int
    min_wait: float = 0.0

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
