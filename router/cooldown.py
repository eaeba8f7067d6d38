"""Cooldowns: take a failing deployment out of rotation for a while.

Rules (LiteLLM's, made explicit):

* a rate limit (429) cools the deployment at once, for the upstream's
  ``retry-after`` when it said one, else ``cooldown_time``;
* an exhausted quota, refused credentials (401/403) or an unknown model (404)
  cool it at once; quota for ``QUOTA_COOLDOWN_FACTOR`` x ``cooldown_time``;
* any other error that ``cools_down`` counts; more than ``allowed_fails`` (or
  the ``allowed_fails_policy`` entry for its kind) in ``FAIL_WINDOW`` seconds
  cools it for ``cooldown_time``;
* a cooldown is only ever extended, never shortened, by a new failure.

The router does not cool down the only deployment of a group (that would turn
one failure into an outage of the whole group).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from router.errors import (
    AuthenticationError,
    NotFoundError,
    PermissionDeniedError,
    QuotaExhaustedError,
    RateLimitError,
    UpstreamError,
)
from router.policies import policy_value

if TYPE_CHECKING:
    from router.clock import Clock
    from router.deployment import Deployment

__all__ = ["CooldownEntry", "Cooldowns"]

FAIL_WINDOW = 60.0
QUOTA_COOLDOWN_FACTOR = 12.0
_IMMEDIATE = (AuthenticationError, PermissionDeniedError, NotFoundError, RateLimitError)


@dataclass(frozen=True, slots=True)
class CooldownEntry:
    """``deployment_id`` is out of rotation until ``until`` (clock time) because of ``reason``."""

    deployment_id: str
    until: float
    reason: str


class Cooldowns:
    """Cooldown state of one router (memory)."""

    def __init__(
        self,
        clock: Clock,
        *,
        allowed_fails: int,
        cooldown_time: float,
        disabled: bool = False,
        allowed_fails_policy: Mapping[str, int] | None = None,
    ) -> None:
        self._clock = clock
        self._allowed_fails = allowed_fails
        self._policy = dict(allowed_fails_policy or {})
        self._cooldown_time = cooldown_time
        self._disabled = disabled
        self._entries: dict[str, CooldownEntry] = {}
        self._fails: dict[str, deque[float]] = {}

    def available(self, deployments: Sequence[Deployment]) -> Sequence[Deployment]:
        """``deployments`` minus those cooling down now (the same object when none is)."""
        if not self._entries:
            return deployments
        now = self._clock.now()
        self._expire(now)
        if not self._entries:
            return deployments
        return [d for d in deployments if d.id not in self._entries]

    def active(self) -> list[CooldownEntry]:
        """Cooldowns in force now, soonest recovery first."""
        self._expire(self._clock.now())
        return sorted(self._entries.values(), key=lambda e: e.until)

    def get(self, deployment_id: str) -> CooldownEntry | None:
        self._expire(self._clock.now())
        return self._entries.get(deployment_id)

    def record_failure(self, deployment_id: str, error: UpstreamError) -> CooldownEntry | None:
        """Account for ``error`` on ``deployment_id``; the cooldown it started, if any."""
        if self._disabled or not error.cools_down:
            return None
        now = self._clock.now()
        duration = self._immediate_duration(error)
        if duration is None:
            allowed = policy_value(self._policy, "AllowedFails", error)
            allowed = self._allowed_fails if allowed is None else allowed
            if not self._count_failure(deployment_id, now, allowed):
                return None
            duration = self._cooldown_time
        return self._extend(deployment_id, now + duration, type(error).__name__)

    def _immediate_duration(self, error: UpstreamError) -> float | None:
        if isinstance(error, QuotaExhaustedError):
            return self._cooldown_time * QUOTA_COOLDOWN_FACTOR
        if isinstance(error, RateLimitError) and error.retry_after:
            return error.retry_after
        if isinstance(error, _IMMEDIATE):
            return self._cooldown_time
        return None

    def _count_failure(self, deployment_id: str, now: float, allowed: int) -> bool:
        fails = self._fails.setdefault(deployment_id, deque())
        fails.append(now)
        while fails and fails[0] <= now - FAIL_WINDOW:
            fails.popleft()
        if len(fails) > allowed:
            fails.clear()
            return True
        return False

    def _extend(self, deployment_id: str, until: float, reason: str) -> CooldownEntry:
        current = self._entries.get(deployment_id)
        if current is not None and current.until >= until:
            return current
        entry = CooldownEntry(deployment_id, until, reason)
        self._entries[deployment_id] = entry
        return entry

    def _expire(self, now: float) -> None:
        expired = [k for k, e in self._entries.items() if e.until <= now]
        for key in expired:
            del self._entries[key]
