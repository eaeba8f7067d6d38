"""A circuit breaker for calls to a shared store (Redis) that may go away or freeze.

One breaker guards one Redis for every component that uses it (ownership
records, shared load, shared cooldowns), so a request pays at most one Redis
timeout however many Redis steps it has: the first failure opens the breaker
for all of them.

* **Closed**: calls go to Redis, each bounded by ``deadline`` seconds (a
  frozen Redis accepts connections and never answers, so a socket timeout
  alone would let every waiting call run out its own timeout).
* **Tripping** releases every call still waiting on the same Redis at once:
  their deadlines are moved to now, so they fall back together instead of
  each waiting out its own timeout.
* **Open** for ``interval`` seconds: callers skip Redis and use their local
  fallback. One warning is logged when it opens, one when Redis answers again.
* **Half-open** after the interval: one call at a time probes Redis; the
  others keep using the fallback until the probe succeeds (closed) or fails
  (open for another interval).

Only an operation that *started* after the breaker last opened may close it
(callers read :attr:`Breaker.epoch` before the call): a late success of a
call that began before the outage says nothing about now.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from router.clock import Clock

__all__ = ["DEFAULT_DEADLINE", "Breaker", "Held", "breaker_of", "failures"]


def failures() -> tuple[type[BaseException], ...]:
    """What counts as the store failing (anything else is a bug and propagates).

    A function, not a constant, so that redis-py is imported only by routers
    that use Redis (it is only called while an exception is being handled).
    """
    from redis.exceptions import RedisError

    return (RedisError, OSError, TimeoutError)
#: Seconds one guarded call may take before it counts as a failure.
DEFAULT_DEADLINE = 0.5
T = TypeVar("T")


class Breaker:
    """Open for ``interval`` seconds after a failure; ``what`` names the store in logs,
    logged at ``level``; ``deadline``: seconds a guarded call may take (``None``: no bound)."""

    __slots__ = ("_clock", "_deadline", "_epoch", "_interval", "_level", "_log", "_open_until",
                 "_probing", "_waiting", "_what")

    def __init__(
        self, clock: Clock, interval: float, *, what: str, log: logging.Logger,
        deadline: float | None = DEFAULT_DEADLINE, level: int = logging.WARNING,
    ) -> None:
        self._clock = clock
        self._interval = interval
        self._deadline = deadline
        self._what = what
        self._log = log
        self._level = level
        self._open_until: float | None = None
        self._epoch = 0
        self._probing = False
        # guarded calls in flight per event loop (the sync twins run their own):
        # task -> why it was cut short (None while it runs)
        self._waiting: dict[asyncio.AbstractEventLoop, Waiting] = {}

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
        """A call failed: open (or keep open) for another ``interval``; release the waiters."""
        now = self._clock.now() if now is None else now
        if self._open_until is None:
            self._log.log(
                self._level, "%s failed (%s); using local state, retrying every %gs",
                self._what, type(exc).__name__, self._interval,
            )
        self._open_until = now + self._interval
        self._epoch += 1
        self._release_waiters()

    def succeeded(self, epoch: int | None = None) -> None:
        """A call begun at ``epoch`` (default: now) succeeded: close if no failure came since."""
        if self._open_until is None:
            return
        if epoch is not None and epoch != self._epoch:
            return  # began before the last failure: proves nothing
        self._open_until = None
        self._log.log(self._level, "%s answers again", self._what)

    async def guard(
        self, op: Callable[[], Awaitable[T]], fallback: T, *, hold: float | None = None
    ) -> T:
        """``await op()``, or ``fallback`` while open or when it fails (tripping the breaker).

        ``hold``: seconds (below the deadline) after which the call is cut short
        and :class:`Held` raised, which is not a failure: the caller decides
        what to do with a call Redis is slow to answer.
        """
        probe = False
        if self._open_until is not None:
            if self._probing or not self.allows():
                return fallback
            probe = self._probing = True
        epoch = self._epoch
        try:
            result = await self._bounded(op, hold)
        except failures() as exc:
            self.trip(exc)
            return fallback
        finally:
            if probe:
                self._probing = False
        self.succeeded(epoch)
        return result

    async def _bounded(self, op: Callable[[], Awaitable[T]], hold: float | None) -> T:
        """``op()`` within the deadline (or ``hold``); a trip meanwhile ends it at once.

        One timer per call cancels the task when the time is up; the
        cancellation is turned into ``TimeoutError`` (:class:`Held` for the
        hold), unless someone else cancelled the task too.
        """
        task = asyncio.current_task()
        if task is None:
            return await op()
        loop = task.get_loop()
        waiting = self._waiting.get(loop)
        if waiting is None:
            waiting = self._waiting[loop] = {}
        limit = self._deadline if hold is None or (
            self._deadline is not None and self._deadline <= hold) else hold
        timer = None if limit is None else loop.call_at(
            loop.time() + limit, _cut, waiting, task, _HELD if limit == hold else _TIMEOUT)
        waiting[task] = None
        try:
            return await op()
        except asyncio.CancelledError:
            why = waiting.get(task)
            if why is None:
                raise  # cancelled by someone else
            waiting[task] = None
            if task.uncancel() > 0:
                raise  # by someone else too
            raise (Held() if why is _HELD else TimeoutError(why)) from None
        finally:
            if timer is not None:
                timer.cancel()
            if waiting.pop(task, None) is not None:
                task.uncancel()  # cut, but the call ended anyway (the cancel was swallowed)
            if not waiting:
                self._waiting.pop(loop, None)

    def _release_waiters(self) -> None:
        """Cut every waiting call short, on whichever loop it runs."""
        here = _running_loop()
        for loop, waiting in list(self._waiting.items()):
            if loop is here:
                _cut_all(waiting)
            else:  # another thread's loop (a sync twin): let it cut its own
                with contextlib.suppress(RuntimeError):  # that loop is closed
                    loop.call_soon_threadsafe(_cut_all, waiting)

    def __repr__(self) -> str:
        return f"Breaker({self._what!r}, degraded={self.degraded})"


class Held(Exception):
    """A guarded call was cut short at its ``hold`` (Redis slow, not failed)."""


#: Why a call was cut short (the timer's or the trip's reason).
_TIMEOUT = "the call passed its deadline"
_TRIPPED = "the breaker opened"
_HELD = "held"

Waiting = dict["asyncio.Task[Any]", "str | None"]


def _cut(waiting: Waiting, task: asyncio.Task[Any], why: str) -> None:
    """Cancel ``task``'s guarded call, remembering why (once)."""
    if task in waiting and waiting[task] is None:
        waiting[task] = why
        task.cancel()


def _cut_all(waiting: Waiting) -> None:
    for task in list(waiting):
        _cut(waiting, task, _TRIPPED)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def breaker_of(
    source: object, clock: Clock, interval: float, *, what: str, log: logging.Logger
) -> Breaker:
    """The breaker ``source`` (a Redis store) shares with every user of that Redis,
    else a new one of the caller's own (a test double, a store with no breaker)."""
    found = getattr(source, "breaker", None)
    if isinstance(found, Breaker):
        return found
    return Breaker(clock, interval, what=what, log=log)
