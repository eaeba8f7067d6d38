"""A circuit breaker for calls to a shared store (Redis) that may go away.

After a failure the breaker is *open* for ``interval`` seconds: callers skip
Redis and use their local fallback instead of paying a connection timeout per
request. It logs one warning when it opens and one when Redis answers again.
Only an operation that *started* after the breaker last opened may close it
(callers read :attr:`Breaker.epoch` before the call): a late success of a
call that began before the outage says nothing about now.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from redis.exceptions import RedisError

if TYPE_CHECKING:
    from router.clock import Clock

__all__ = ["FAILURES", "Breaker"]

#: What counts as the store failing (anything else is a bug and propagates).
FAILURES = (RedisError, OSError, TimeoutError)
T = TypeVar("T")


class Breaker:
    """Open for ``interval`` seconds after a failure; ``what`` names the store in logs."""

    __slots__ = ("_clock", "_epoch", "_interval", "_log", "_open_until", "_what")

    def __init__(self, clock: Clock, interval: float, *, what: str, log: logging.Logger) -> None:
        self._clock = clock
        self._interval = interval
        self._what = what
        self._log = log
        self._open_until: float | None = None
        self._epoch = 0

    @property
    def degraded(self) -> bool:
        """Whether the last outcome was a failure (until a later call succeeds)."""
        return self._open_until is not None

    @property
    def interval(self) -> float:
        return self._interval

    @property
    def epoch(self) -> int:
        """Counts trips; read it before a call and pass it to :meth:`succeeded`."""
        return self._epoch

    def allows(self, now: float | None = None) -> bool:
        """True unless the store failed less than ``interval`` seconds ago."""
        until = self._open_until
        return until is None or (self._clock.now() if now is None else now) >= until

    def trip(self, exc: BaseException, now: float | None = None) -> None:
        """A call failed: open (or keep open) for another ``interval``."""
        now = self._clock.now() if now is None else now
        if self._open_until is None:
            self._log.warning(
                "%s failed (%s); using local state, retrying every %gs",
                self._what, type(exc).__name__, self._interval,
            )
        self._open_until = now + self._interval
        self._epoch += 1

    def succeeded(self, epoch: int | None = None) -> None:
        """A call begun at ``epoch`` (default: now) succeeded: close if no failure came since."""
        if self._open_until is None:
            return
        if epoch is not None and epoch != self._epoch:
            return  # began before the last failure: proves nothing
        self._open_until = None
        self._log.warning("%s answers again", self._what)

    async def guard(self, op: Callable[[], Awaitable[T]], fallback: T) -> T:
        """``await op()``, or ``fallback`` while open or when it fails (tripping the breaker)."""
        if not self.allows():
            return fallback
        epoch = self._epoch
        try:
            result = await op()
        except FAILURES as exc:
            self.trip(exc)
            return fallback
        self.succeeded(epoch)
        return result
