"""Per-deployment load figures, tied to each request's lifetime.

:meth:`LoadTracker.acquire` returns a :class:`LoadHandle`, the one handle
type of the router, that the request holds until it ends (for a stream:
until the stream ends or is closed). Releasing is idempotent, so a
cancelled, failed or abandoned request gives its in-flight slot back exactly
once and the counters never drift.

Figures kept per deployment id (strategies and checks read them
synchronously):

* requests in flight (``max(local, shared)`` while a merged shared figure is
  fresh, see :meth:`LoadTracker.merge_shared`);
* requests and tokens in the current wall-clock minute ``int(wall() // 60)``,
  the same minute the Redis usage counters are keyed by; a request counts at
  acquire, its tokens at release (usage is known only then);
* EWMAs (``alpha`` 0.3) of the latency of successful requests, the latency
  per output token of successful non-stream requests (the plain latency when
  the token count is unknown, as LiteLLM does) and the time to first token
  of streams.

A timeout (``release(timed_out=True)``) is a failure that still feeds each
latency figure a penalty sample, ``max(2 x that figure, elapsed)``: twice the
figure makes a deployment that times out at once (a short deadline) look
worse than its history, and the elapsed time makes one that hung for the
whole deadline look as bad as it was. The TTFT and per-token figures get it
only when no first token came (a stream that stalls later keeps its TTFT).
Other failures feed no latency: a fast error says nothing about how fast
the deployment serves.

A strategy whose cost model needs more than these figures keeps its own
state and subscribes to the samples (:meth:`LoadTracker.listen`, a
:class:`LoadListener`); ``peak-ewma`` does
(:mod:`router.strategies.peak_figures`).

The tracker may be used from two event loops in two threads (the router's
sync twins run their own loop in a thread), so mutations hold a lock and
:meth:`LoadTracker.wait_for_release` wakes a waiter on its own loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple, Protocol

from router.errors import UpstreamTimeoutError

if TYPE_CHECKING:
    from router.clock import Clock
    from router.cost import TokenUsage

__all__ = [
    "DEFAULT_SHARED_TTL",
    "DeploymentLoad",
    "LoadHandle",
    "LoadListener",
    "LoadTracker",
    "MinuteUsage",
    "SharedFigures",
]

DEFAULT_EWMA_ALPHA = 0.3
DEFAULT_SHARED_TTL = 1.0
_PENALTY_FACTOR = 2.0


class MinuteUsage(NamedTuple):
    """Requests and tokens of one deployment in the current minute.

    A named tuple rather than a frozen dataclass: strategies build one per
    candidate per pick, and a tuple is several times cheaper to make.
    """

    requests: int
    tokens: int


_NO_USAGE = MinuteUsage(0, 0)


@dataclass(frozen=True, slots=True)
class SharedFigures:
    """Figures counted across every router process (read from Redis)."""

    in_flight: int
    requests: int
    tokens: int


@dataclass(frozen=True, slots=True)
class DeploymentLoad:
    """Every figure of one deployment at one instant (for inspection and tests).

    ``in_flight``, ``requests`` and ``tokens`` are the effective figures (shared
    ones included while fresh); ``local_*`` are this process's own. ``None``
    means "not measured yet".
    """

    deployment_id: str
    in_flight: int
    local_in_flight: int
    requests: int
    tokens: int
    local_requests: int
    local_tokens: int
    minute: int
    latency: float | None
    latency_per_token: float | None
    ttft: float | None
    shared: SharedFigures | None


class LoadListener(Protocol):
    """Sees every request's samples (a strategy's own cost model subscribes one).

    Called under the tracker's lock, in the request's thread: keep it short
    and never call back into the tracker's mutating methods.
    """

    def started(self, handle: LoadHandle) -> None:
        """``handle`` was acquired."""

    def answered(self, handle: LoadHandle, latency: float, now: float) -> None:
        """A success sample: a plain answer, or a stream's first token."""

    def timed_out(self, handle: LoadHandle, elapsed: float, now: float) -> None:
        """``handle`` failed by timing out after ``elapsed`` seconds."""


class _Stats:
    """The mutable figures of one deployment (guarded by the tracker's lock)."""

    __slots__ = (
        "id", "in_flight", "latency", "minute", "per_token", "requests", "shared", "shared_at",
        "shared_minute", "tokens", "ttft",
    )

    def __init__(self, deployment_id: str) -> None:
        self.id = deployment_id
        self.in_flight = 0
        self.minute = -1
        self.requests = 0
        self.tokens = 0
        self.latency: float | None = None
        self.per_token: float | None = None
        self.ttft: float | None = None
        self.shared: SharedFigures | None = None
        self.shared_at = 0.0
        self.shared_minute = -1

    def roll(self, minute: int) -> None:
        if minute != self.minute:
            self.minute = minute
            self.requests = 0
            self.tokens = 0


class _Waiter:
    __slots__ = ("future", "ids", "loop", "thread")

    def __init__(
        self, ids: Collection[str], future: asyncio.Future[bool], loop: asyncio.AbstractEventLoop
    ) -> None:
        self.ids = ids
        self.future = future
        self.loop = loop
        self.thread = threading.get_ident()


def _ewma(old: float | None, sample: float, alpha: float) -> float:
    return sample if old is None else old + alpha * (sample - old)


def _penalty(old: float | None, elapsed: float) -> float:
    return elapsed if old is None else max(_PENALTY_FACTOR * old, elapsed)


def _wake(future: asyncio.Future[bool]) -> None:
    if not future.done():
        future.set_result(True)


class LoadTracker:
    """Load figures per deployment id; see the module docstring for each figure.

    ``shared_ttl``: seconds a merged :class:`SharedFigures` stays authoritative;
    ``alpha``: the EWMA weight of a new sample.
    """

    def __init__(
        self,
        clock: Clock,
        *,
        shared_ttl: float = DEFAULT_SHARED_TTL,
        alpha: float = DEFAULT_EWMA_ALPHA,
    ) -> None:
        if not 0 < alpha <= 1:
            raise ValueError(f"LoadTracker: alpha must be in (0, 1], got {alpha!r}")
        if not shared_ttl >= 0:
            raise ValueError(f"LoadTracker: shared_ttl must be >= 0 seconds, got {shared_ttl!r}")
        self._clock = clock
        self._shared_ttl = shared_ttl
        self._alpha = alpha
        self._listeners: tuple[LoadListener, ...] = ()
        self._stats: dict[str, _Stats] = {}
        self._lock = threading.Lock()
        self._waiters: list[_Waiter] = []
        # The current minute is named by the wall clock, read once per minute:
        # acquire is on every request's path (see _new_minute).
        self._minute = 0
        self._minute_ends = -math.inf

    @property
    def clock(self) -> Clock:
        """The clock every figure is timed by."""
        return self._clock

    @property
    def alpha(self) -> float:
        """The EWMA weight of a new sample."""
        return self._alpha

    def listen(self, listener: LoadListener) -> None:
        """Have ``listener`` see every request's samples from now on."""
        with self._lock:
            self._listeners = (*self._listeners, listener)

    # -- the request's lifetime ------------------------------------------------------

    def acquire(self, deployment_id: str) -> LoadHandle:
        """Count one request in flight on ``deployment_id`` (and one this minute)."""
        now = self._clock.now()
        minute = self._minute if now < self._minute_ends else self._new_minute(now)
        with self._lock:
            stats = self._stats.get(deployment_id) or self._add(deployment_id)
            stats.in_flight += 1
            flight = stats.in_flight
            if stats.minute != minute:
                stats.roll(minute)
            stats.requests += 1
            if stats.shared is not None and now - stats.shared_at < self._shared_ttl:
                flight = max(flight, stats.shared.in_flight + 1)
            handle = LoadHandle(self, stats, now, flight)
            for listener in self._listeners:
                listener.started(handle)
        return handle

    def _new_minute(self, now: float) -> int:
        """Read the wall clock for the minute's name; remember when (monotonic) it ends.

        Between boundaries the name is reused without reading the wall clock
        again; a wall clock stepped mid-minute is seen at the next boundary.
        """
        wall = self._clock.wall()
        self._minute = minute = int(wall // 60)
        self._minute_ends = now + (minute + 1) * 60 - wall
        return minute

    def _add(self, deployment_id: str) -> _Stats:
        stats = self._stats[deployment_id] = _Stats(deployment_id)
        return stats

    def _first_token(self, handle: LoadHandle, elapsed: float) -> None:
        stats = handle._stats
        now = self._clock.now()
        with self._lock:
            stats.ttft = _ewma(stats.ttft, elapsed, self._alpha)
            for listener in self._listeners:
                listener.answered(handle, elapsed, now)

    def _release(
        self, handle: LoadHandle, ok: bool, output_tokens: int | None,
        total_tokens: int | None, timed_out: bool,
    ) -> None:
        now = self._clock.now() if handle._answered_at is None else handle._answered_at
        tokens = total_tokens if total_tokens is not None else output_tokens
        minute = self._minute if now < self._minute_ends else self._new_minute(now)
        stats = handle._stats
        elapsed = now - handle._started
        with self._lock:
            stats.in_flight -= 1
            if tokens:
                stats.roll(minute)
                stats.tokens += tokens
            if timed_out:
                self._penalise(stats, elapsed, now, handle)
                for listener in self._listeners:
                    listener.timed_out(handle, elapsed, now)
            elif ok:
                self._observe(stats, elapsed, now, handle, output_tokens)
            woken = self._take_waiters(stats.id) if self._waiters else None
        if woken:
            self._wake_all(woken)

    def _observe(
        self, stats: _Stats, elapsed: float, now: float, handle: LoadHandle,
        output_tokens: int | None,
    ) -> None:
        # The hot path: EWMAs inlined (a function call costs as much as the math).
        alpha, old = self._alpha, stats.latency
        stats.latency = elapsed if old is None else old + alpha * (elapsed - old)
        if handle._ttft is None:  # a stream's sample for listeners was its first token
            per_token = elapsed / output_tokens if output_tokens else elapsed
            old = stats.per_token
            stats.per_token = per_token if old is None else old + alpha * (per_token - old)
            for listener in self._listeners:
                listener.answered(handle, elapsed, now)

    def _penalise(self, stats: _Stats, elapsed: float, now: float, handle: LoadHandle) -> None:
        alpha = self._alpha
        stats.latency = _ewma(stats.latency, _penalty(stats.latency, elapsed), alpha)
        if handle._ttft is None:
            stats.ttft = _ewma(stats.ttft, _penalty(stats.ttft, elapsed), alpha)
            stats.per_token = _ewma(stats.per_token, _penalty(stats.per_token, elapsed), alpha)

    # -- waiting for a free slot -----------------------------------------------------

    async def wait_for_release(
        self, deployment_ids: Collection[str], timeout: float | None
    ) -> bool:
        """Wait until a handle of one of ``deployment_ids`` is released.

        True when one was, False after ``timeout`` seconds (real time; ``None``:
        no limit, ``<= 0``: False at once). Only releases after the call count,
        and a release on another thread may slip in between the caller's own
        check and this call, so callers re-check the slot after either answer.
        """
        if timeout is not None and timeout <= 0:
            return False
        loop = asyncio.get_running_loop()
        ids = deployment_ids if isinstance(deployment_ids, set | frozenset) else set(
            deployment_ids)
        waiter = _Waiter(ids, loop.create_future(), loop)
        with self._lock:
            self._waiters.append(waiter)
        try:
            async with asyncio.timeout(timeout):
                return await waiter.future
        except TimeoutError:
            return False
        finally:
            with self._lock:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)

    def _take_waiters(self, deployment_id: str) -> list[_Waiter]:
        woken = [w for w in self._waiters if deployment_id in w.ids]
        if woken:
            self._waiters = [w for w in self._waiters if deployment_id not in w.ids]
        return woken

    @staticmethod
    def _wake_all(waiters: list[_Waiter]) -> None:
        here = threading.get_ident()
        for waiter in waiters:
            if waiter.thread == here:
                _wake(waiter.future)
            else:
                # RuntimeError: that loop is closed, so nobody waits there any more.
                with contextlib.suppress(RuntimeError):
                    waiter.loop.call_soon_threadsafe(_wake, waiter.future)

    # -- shared figures --------------------------------------------------------------

    def merge_shared(self, figures: Mapping[str, SharedFigures]) -> None:
        """Store figures counted across router processes; they count for ``shared_ttl``."""
        now, minute = self._clock.now(), self.minute()
        with self._lock:
            for deployment_id, shared in figures.items():
                stats = self._stats.get(deployment_id) or self._add(deployment_id)
                stats.shared = shared
                stats.shared_at = now
                stats.shared_minute = minute

    def _fresh_shared(self, stats: _Stats, now: float) -> SharedFigures | None:
        if stats.shared is None or now - stats.shared_at >= self._shared_ttl:
            return None
        return stats.shared

    # -- reading ---------------------------------------------------------------------

    def in_flight(self, deployment_id: str) -> int:
        """Requests in flight: ``max(local, shared)`` while a shared figure is fresh."""
        stats = self._stats.get(deployment_id)
        if stats is None:
            return 0
        if stats.shared is None:
            return stats.in_flight
        shared = self._fresh_shared(stats, self._clock.now())
        return stats.in_flight if shared is None else max(stats.in_flight, shared.in_flight)

    def local_in_flight(self, deployment_id: str) -> int:
        """Requests in flight on ``deployment_id`` from this process only."""
        stats = self._stats.get(deployment_id)
        return 0 if stats is None else stats.in_flight

    def total_in_flight(self) -> int:
        """Requests in flight on every deployment, in this process."""
        return sum(s.in_flight for s in list(self._stats.values()))

    def minute(self) -> int:
        """The current minute window, ``int(wall() // 60)`` (the Redis counters' too)."""
        now = self._clock.now()
        return self._minute if now < self._minute_ends else self._new_minute(now)

    def usage(self, deployment_id: str, minute: int | None = None) -> MinuteUsage:
        """Requests and tokens this minute (shared ones while fresh and of this minute).

        ``minute``: :meth:`minute`, read once by a caller asking about many deployments.
        """
        stats = self._stats.get(deployment_id)
        if stats is None:
            return _NO_USAGE
        if minute is None:
            minute = self.minute()
        if stats.minute != minute:
            local = _NO_USAGE
        else:  # tuple.__new__ skips NamedTuple's Python-level __new__: half the cost
            local = tuple.__new__(MinuteUsage, (stats.requests, stats.tokens))
        if stats.shared is None or stats.shared_minute != minute:
            return local
        shared = self._fresh_shared(stats, self._clock.now())
        if shared is None:
            return local
        return MinuteUsage(max(local.requests, shared.requests), max(local.tokens, shared.tokens))

    def latency(self, deployment_id: str) -> float | None:
        """EWMA of successful request latency in seconds; ``None`` before any."""
        stats = self._stats.get(deployment_id)
        return None if stats is None else stats.latency

    def latency_per_token(self, deployment_id: str) -> float | None:
        """EWMA of seconds per output token of non-stream successes; ``None`` before any."""
        stats = self._stats.get(deployment_id)
        return None if stats is None else stats.per_token

    def ttft(self, deployment_id: str) -> float | None:
        """EWMA of the time to first token of streams, seconds; ``None`` before any."""
        stats = self._stats.get(deployment_id)
        return None if stats is None else stats.ttft

    def snapshot(self, deployment_id: str) -> DeploymentLoad:
        """Every figure of ``deployment_id`` now."""
        stats = self._stats.get(deployment_id) or _Stats(deployment_id)
        now, minute = self._clock.now(), self.minute()
        current = stats.minute == minute
        usage = self.usage(deployment_id)
        return DeploymentLoad(
            deployment_id=deployment_id,
            in_flight=self.in_flight(deployment_id),
            local_in_flight=stats.in_flight,
            requests=usage.requests,
            tokens=usage.tokens,
            local_requests=stats.requests if current else 0,
            local_tokens=stats.tokens if current else 0,
            minute=minute,
            latency=stats.latency,
            latency_per_token=stats.per_token,
            ttft=stats.ttft,
            shared=self._fresh_shared(stats, now),
        )


class LoadHandle:
    """One request's claim on a deployment: the one load-handle type of the router.

    The attempt loop holds it with ``async with``: leaving the block releases
    it, as a success when the block ended normally (with the usage
    :meth:`report` gave) and as a failure when it raised (a timeout being a
    penalty sample). A stream outlives the block: :meth:`hand_over` passes the
    duty to release to the stream, which calls :meth:`release` when it ends.
    Releasing is idempotent: only the first call counts. ``on_release`` (the
    admission's) is called once with the request's tokens, to give a shared
    reservation back.
    """

    __slots__ = (
        "_answered_at", "_flight", "_handed_over", "_on_release", "_released", "_started",
        "_stats", "_tracker", "_ttft", "_usage",
    )

    def __init__(self, tracker: LoadTracker, stats: _Stats, started: float, flight: int) -> None:
        self._tracker = tracker
        self._stats = stats
        self._started = started
        self._flight = max(1, flight)  # in flight when it started, itself included
        self._ttft: float | None = None
        self._released = False
        self._handed_over = False
        self._usage: TokenUsage | None = None
        self._answered_at: float | None = None
        self._on_release: Callable[[int], None] | None = None

    @property
    def deployment_id(self) -> str:
        return self._stats.id

    @property
    def released(self) -> bool:
        return self._released

    @property
    def started(self) -> float:
        """When the request was counted (the tracker's clock)."""
        return self._started

    @property
    def flight(self) -> int:
        """Requests in flight on the deployment when this one started, itself included."""
        return self._flight

    @property
    def answered(self) -> bool:
        """Released, or a stream whose first token has arrived: no longer waiting."""
        return self._released or self._ttft is not None

    def on_release(self, callback: Callable[[int], None]) -> None:
        """Call ``callback(tokens)`` once, when the handle is released."""
        self._on_release = callback

    def report(self, usage: TokenUsage | None) -> None:
        """The answer is complete now, with ``usage``: the latency sample ends here,
        and the ``async with`` block releases the handle as a success (what the
        router does next, such as recording ownership, is not the deployment's)."""
        self._usage = usage
        self._answered_at = self._tracker._clock.now()

    def hand_over(self) -> LoadHandle:
        """Let the caller (a stream) release the handle; the ``async with`` block will not."""
        self._handed_over = True
        return self

    async def __aenter__(self) -> LoadHandle:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: object
    ) -> None:
        if self._handed_over and error is None:
            return
        if error is None or self._answered_at is not None:
            usage = self._usage
            if usage is None:
                self.release(ok=True)
            else:
                self.release(ok=True, output_tokens=usage.output_tokens,
                             total_tokens=usage.total_tokens)
        else:
            self.release(ok=False, timed_out=isinstance(error, UpstreamTimeoutError))

    def first_token(self) -> None:
        """Mark the stream's first token (feeds TTFT once; later calls are no-ops)."""
        if self._ttft is None and not self._released:
            self._ttft = self._tracker._clock.now() - self._started
            self._tracker._first_token(self, self._ttft)

    def release(
        self,
        ok: bool = True,
        *,
        output_tokens: int | None = None,
        total_tokens: int | None = None,
        timed_out: bool = False,
    ) -> None:
        """End the request: give the slot back, record its outcome and usage.

        ``ok``: it succeeded (feeds latency); ``timed_out``: it failed by
        timing out (a penalty sample; implies not ok); ``total_tokens`` (else
        ``output_tokens``) is added to this minute's tokens. Idempotent: only
        the first call counts.
        """
        if self._released:
            return
        self._released = True
        self._tracker._release(self, ok, output_tokens, total_tokens, timed_out)
        callback, self._on_release = self._on_release, None
        if callback is not None:
            callback(total_tokens or output_tokens or 0)

    def release_with(self, usage: TokenUsage | None) -> None:
        """Release as a success with ``usage``'s token counts (a stream's end)."""
        if usage is None:
            self.release(ok=True)
        else:
            self.release(ok=True, output_tokens=usage.output_tokens,
                         total_tokens=usage.total_tokens)
