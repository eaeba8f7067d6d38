"""Per-deployment load figures, tied to each request's lifetime.

:meth:`LoadTracker.acquire` returns a :class:`LoadHandle` that the request
holds until it ends (for a stream: until the stream ends or is closed).
Releasing is idempotent, so a cancelled, failed or abandoned request gives
its in-flight slot back exactly once and the counters never drift.
Strategies read :meth:`in_flight` and :meth:`latency` synchronously.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from router.clock import Clock

__all__ = ["LoadHandle", "LoadTracker"]

_EWMA_ALPHA = 0.3


class LoadTracker:
    """In-flight counts and a latency EWMA (successful requests) per deployment id."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._in_flight: dict[str, int] = {}
        self._latency: dict[str, float] = {}

    def acquire(self, deployment_id: str) -> LoadHandle:
        """Count one request in flight on ``deployment_id`` until the handle is released."""
        self._in_flight[deployment_id] = self._in_flight.get(deployment_id, 0) + 1
        return LoadHandle(self, deployment_id, self._clock.now())

    def in_flight(self, deployment_id: str) -> int:
        return self._in_flight.get(deployment_id, 0)

    def latency(self, deployment_id: str) -> float | None:
        """EWMA of successful request latency in seconds; ``None`` before any."""
        return self._latency.get(deployment_id)

    def total_in_flight(self) -> int:
        return sum(self._in_flight.values())

    def _release(self, deployment_id: str, started: float, ok: bool) -> None:
        self._in_flight[deployment_id] -= 1
        if ok:
            sample = self._clock.now() - started
            old = self._latency.get(deployment_id)
            self._latency[deployment_id] = (
                sample if old is None else old + _EWMA_ALPHA * (sample - old)
            )


class LoadHandle:
    """One request's claim on a deployment; release it exactly once (extra calls are no-ops)."""

    __slots__ = ("_deployment_id", "_released", "_started", "_tracker")

    def __init__(self, tracker: LoadTracker, deployment_id: str, started: float) -> None:
        self._tracker = tracker
        self._deployment_id = deployment_id
        self._started = started
        self._released = False

    def release(self, ok: bool = True) -> None:
        if not self._released:
            self._released = True
            self._tracker._release(self._deployment_id, self._started, ok)
