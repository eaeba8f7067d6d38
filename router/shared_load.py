"""Load counters shared by every router process through Redis, and the admission step.

With Redis configured, several router processes balance as one and enforce
one rpm/tpm limit per deployment. Per deployment, under the store's prefix:

* ``load:{<id>}:inflight``: a sorted set, one member per request in flight on
  the deployment (any process), scored with the Unix time its *hold* ends;
* ``load:{<id>}:req:{minute}``: requests sent in that wall-clock minute
  (``int(wall // 60)``, the load tracker's minute), INCR;
* ``load:{<id>}:tok:{minute}``: tokens of the requests that ended in it, INCRBY.

The deployment id in braces is a Redis Cluster hash tag: a deployment's keys
share one slot, so its MULTI transaction runs on one node of a Cluster while
different deployments spread over the nodes.

Every operation is one pipeline (one round trip) of atomic commands, never a
read-modify-write: :meth:`SharedLoad.reserve` (MULTI: drop expired holds,
ZADD this request, INCR the minute, read the tokens), :meth:`SharedLoad.release`
(ZREM, INCRBY tokens), :meth:`SharedLoad.read_group` (ZCOUNT and two GETs per
deployment; no multi-key command, so a Cluster splits the pipeline by node).
Every key expires: the minute counters after two minutes, the sorted set
``max_hold`` + 60 s after its last write.

**rpm across processes.** ``reserve`` INCRs the minute counter in the same
transaction that registers the request. The counter's value says how many
requests of this minute came first, across processes; over ``rpm``, the
reservation is rolled back (ZREM + DECR) and refused, so of N concurrent
attempts exactly ``rpm`` pass. ``tpm`` is checked on the tokens already
counted (they are known only when requests end).

**A crashed process** cannot DECR what it held. A hold is therefore not a
counter but a member that stops counting when its score passes: at most
``min(time left + HOLD_GRACE, max_hold)`` after the reservation for a call
with a deadline, ``max_hold`` (default 600 s) for a stream or a call without
one. That is the bound on how long a crash inflates a deployment's in-flight
figure; it is also why a stream running past ``max_hold`` stops counting in
the shared figure (its local count is unaffected). Hold ends are Unix times,
so hosts are assumed to agree on the time to within seconds (NTP).

**Redis failing** must not stop routing: every operation falls back (no
shared figures; reservations decided on this process's figures; releases
Redis missed are remembered and sent again once it answers), the
breaker of that Redis (shared with the router's other Redis users, see
:mod:`router.state.breaker`) skips it for ``retry_interval`` seconds, one
warning is logged per outage and one when Redis answers again. Releases run
in the background (at most ``MAX_BACKLOG`` at once; beyond that a hold
expires by itself), so they never hold a request.

:class:`Admission` is what the attempt loop calls after the strategy picked:
the Redis reservation when configured, then a synchronous re-check of the
local figures right before the load is acquired (no ``await`` in between),
which makes ``max_parallel_requests`` exact within a process and rpm/tpm
exact without Redis, whatever the checks' order.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import math
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from router.load import MinuteUsage, SharedFigures
from router.state.breaker import breaker_of
from router.state.source import RedisSource, connected, hash_tag

if TYPE_CHECKING:
    from router.clock import Clock
    from router.deployment import Deployment
    from router.limits import DeploymentLimits
    from router.load import LoadHandle, LoadTracker
    from router.request import RouteRequest

__all__ = [
    "HOLD_GRACE",
    "Admission",
    "Refusal",
    "Reservation",
    "SharedLoad",
]

log = logging.getLogger("router.shared_load")
T = TypeVar("T")

DEFAULT_MAX_HOLD = 600.0
#: Seconds a hold outlives its request's deadline (the release may lag a little).
HOLD_GRACE = 5.0
MINUTE_TTL = 120
#: Background releases and cancels running at most; beyond it holds expire by themselves.
MAX_BACKLOG = 1024
#: Holds whose release Redis missed, remembered to be dropped once it answers again.
MAX_UNRELEASED = 10_000
#: Missed releases sent again per background pipeline.
REPLAY_BATCH = 500


@dataclass(frozen=True, slots=True)
class Reservation:
    """A request admitted on ``deployment_id``; give it back with ``release``.

    ``member`` is its entry in the shared in-flight set, ``minute`` the minute
    it was counted in; both are ``None`` when Redis was not used.
    """

    deployment_id: str
    member: str | None = None
    minute: int | None = None


@dataclass(frozen=True, slots=True)
class Refusal:
    """``deployment_id`` cannot take the request now: ``kind`` says which limit.

    ``"rate"``: rpm/tpm used up this minute (do not pick it again for this
    request); ``"parallel"``: at ``max_parallel_requests`` (the checks see it
    too, so re-running them waits for a slot).
    """

    deployment_id: str
    kind: Literal["rate", "parallel"]
    reason: str


class SharedLoad:
    """Per-deployment in-flight and per-minute counters in Redis (see the module docstring)."""

    def __init__(
        self,
        redis: RedisSource,
        clock: Clock,
        *,
        instance_id: str | None = None,
        max_hold: float = DEFAULT_MAX_HOLD,
        retry_interval: float = 5.0,
    ) -> None:
        self._redis = redis
        self._clock = clock
        self._instance = instance_id or uuid.uuid4().hex[:16]
        self._seq = itertools.count(1)
        self._max_hold = max_hold
        self._set_ttl = math.ceil(max_hold) + 60
        self._breaker = breaker_of(redis, clock, retry_interval,
                                   what="shared load counters in Redis", log=log)
        self._tasks: set[asyncio.Task[None]] = set()
        self._unreleased: collections.deque[Reservation] = collections.deque(
            maxlen=MAX_UNRELEASED)

    @property
    def degraded(self) -> bool:
        """True while Redis is being skipped after a failure."""
        return self._breaker.degraded

    # -- keys -------------------------------------------------------------------------

    def _key(self, deployment_id: str, kind: str, minute: int | None = None) -> str:
        tail = "" if minute is None else f":{minute}"
        return f"{self._redis.prefix}load:{hash_tag(deployment_id)}:{kind}{tail}"

    # -- reading ----------------------------------------------------------------------

    async def read_group(self, deployment_ids: Sequence[str]) -> dict[str, SharedFigures]:
        """Shared figures of ``deployment_ids`` in one round trip (``{}`` when Redis fails)."""
        if not deployment_ids:
            return {}
        none: dict[str, SharedFigures] = {}
        figures = await self._guard(lambda: self._read(deployment_ids), none)
        if figures and self._unreleased:  # Redis answers again: drop the holds it kept
            self.in_background(self._replay())
        return figures

    async def _read(self, ids: Sequence[str]) -> dict[str, SharedFigures]:
        now = self._clock.wall()
        minute = int(now // 60)
        pipe = (await connected(self._redis)).pipeline(transaction=False)
        for i in ids:
            pipe.zcount(self._key(i, "inflight"), f"({now!r}", "+inf")
            pipe.get(self._key(i, "req", minute))
            pipe.get(self._key(i, "tok", minute))
        values = await pipe.execute()
        return {
            i: SharedFigures(int(values[3 * k]), _int(values[3 * k + 1]), _int(values[3 * k + 2]))
            for k, i in enumerate(ids)
        }

    # -- reserving and releasing ------------------------------------------------------

    async def reserve(
        self, deployment_id: str, limits: DeploymentLimits | None, hold: float | None = None
    ) -> Reservation | Refusal:
        """Count one request on ``deployment_id``, atomically against its rpm/tpm.

        ``hold``: seconds the request may last (``None``: ``max_hold``). A
        :class:`Refusal` has been rolled back already. When Redis fails the
        result is a :class:`Reservation` without ``member``: the caller decides
        on local figures.
        """
        fallback = Reservation(deployment_id)
        return await self._guard(lambda: self._reserve(deployment_id, limits, hold), fallback)

    async def _reserve(
        self, deployment_id: str, limits: DeploymentLimits | None, hold: float | None
    ) -> Reservation | Refusal:
        now = self._clock.wall()
        minute = int(now // 60)
        held = self._max_hold if hold is None else min(max(hold, 0.0) + HOLD_GRACE, self._max_hold)
        member = f"{self._instance}:{next(self._seq)}"
        inflight = self._key(deployment_id, "inflight")
        requests = self._key(deployment_id, "req", minute)
        pipe = (await connected(self._redis)).pipeline(transaction=True)
        pipe.zremrangebyscore(inflight, "-inf", now)
        pipe.zadd(inflight, {member: now + held})
        pipe.expire(inflight, self._set_ttl)
        pipe.incr(requests)
        pipe.expire(requests, MINUTE_TTL)
        pipe.get(self._key(deployment_id, "tok", minute))
        result = await pipe.execute()
        reservation = Reservation(deployment_id, member, minute)
        why = None if limits is None else limits.rate_refusal(
            MinuteUsage(int(result[3]) - 1, _int(result[5])))
        if why is None:
            return reservation
        await self._cancel(reservation)
        return Refusal(deployment_id, "rate", why + " across every router")

    async def release(self, reservation: Reservation, tokens: int = 0) -> None:
        """The request ended: drop its hold, add its ``tokens`` to this minute.

        When Redis misses it, the hold is remembered (at most ``MAX_UNRELEASED``)
        and dropped once Redis answers again, so an outage does not leave the
        deployment looking busy for ``max_hold``; the tokens are not counted.
        """
        if not await self._guard(lambda: self._release(reservation, tokens), False):
            self._missed(reservation)

    async def _release(self, reservation: Reservation, tokens: int) -> bool:
        if reservation.member is None and tokens <= 0:
            return True
        pipe = (await connected(self._redis)).pipeline(transaction=False)
        if reservation.member is not None:
            pipe.zrem(self._key(reservation.deployment_id, "inflight"), reservation.member)
        if tokens > 0:
            key = self._key(reservation.deployment_id, "tok", int(self._clock.wall() // 60))
            pipe.incrby(key, tokens)
            pipe.expire(key, MINUTE_TTL)
        await pipe.execute()
        return True

    async def cancel(self, reservation: Reservation) -> None:
        """Undo a reservation whose request was never sent (hold and request count)."""
        if not await self._guard(lambda: self._cancel(reservation), False):
            self._missed(reservation)

    async def _cancel(self, reservation: Reservation) -> bool:
        if reservation.member is None or reservation.minute is None:
            return True
        pipe = (await connected(self._redis)).pipeline(transaction=False)
        pipe.zrem(self._key(reservation.deployment_id, "inflight"), reservation.member)
        pipe.decr(self._key(reservation.deployment_id, "req", reservation.minute))
        await pipe.execute()
        return True

    def _missed(self, reservation: Reservation) -> None:
        if reservation.member is not None:
            self._unreleased.append(reservation)

    async def _replay(self) -> None:
        """Drop a batch of the holds whose release Redis missed (ZREM is idempotent)."""
        batch = [self._unreleased.popleft()
                 for _ in range(min(REPLAY_BATCH, len(self._unreleased)))]
        if batch and not await self._guard(lambda: self._drop_holds(batch), False):
            self._unreleased.extendleft(reversed(batch))

    async def _drop_holds(self, batch: Sequence[Reservation]) -> bool:
        pipe = (await connected(self._redis)).pipeline(transaction=False)
        for reservation in batch:
            if reservation.member is not None:
                pipe.zrem(self._key(reservation.deployment_id, "inflight"), reservation.member)
        await pipe.execute()
        return True

    def in_background(self, operation: Awaitable[None]) -> None:
        """Run ``operation`` (a ``release``/``cancel``) without making anyone wait.

        Without a running event loop, or with ``MAX_BACKLOG`` operations
        already running, it is dropped (closed): the hold then expires on its own.
        """
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is None or len(self._tasks) >= MAX_BACKLOG:
            if asyncio.iscoroutine(operation):
                operation.close()
            return
        task = loop.create_task(_run(operation))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        """Wait for this event loop's background releases."""
        loop = asyncio.get_running_loop()
        mine = [t for t in list(self._tasks) if t.get_loop() is loop]
        await asyncio.gather(*mine, return_exceptions=True)

    # -- Redis failures ---------------------------------------------------------------

    async def _guard(self, op: Callable[[], Awaitable[T]], fallback: T) -> T:
        return await self._breaker.guard(op, fallback)

    def __repr__(self) -> str:
        return f"SharedLoad(prefix={self._redis.prefix!r}, instance={self._instance!r})"


async def _run(operation: Awaitable[None]) -> None:
    await operation


def _int(value: Any) -> int:
    return 0 if value is None else int(value)


class Admission:
    """The attempt loop's last word before a request is counted and sent.

    Call :meth:`refresh` with the group's ids before the checks (one Redis
    round trip; nothing without Redis), :meth:`admit` with the picked
    deployment, then :meth:`acquire` at once (no ``await`` in between): its
    handle gives the load slot and the reservation back when released.
    """

    def __init__(
        self,
        load: LoadTracker,
        clock: Clock,
        limits: Mapping[str, DeploymentLimits],
        shared: SharedLoad | None = None,
    ) -> None:
        self._load = load
        self._clock = clock
        self._limits = dict(limits)
        self.shared = shared

    @property
    def active(self) -> bool:
        """Whether there is anything to admit: limits, or figures shared through Redis.

        When not, the attempt loop skips :meth:`refresh` and :meth:`admit`.
        """
        return bool(self._limits) or self.shared is not None

    async def refresh(self, deployment_ids: Sequence[str]) -> None:
        """Merge the shared figures of ``deployment_ids`` into the load tracker."""
        if self.shared is not None:
            figures = await self.shared.read_group(deployment_ids)
            if figures:
                self._load.merge_shared(figures)

    async def admit(self, deployment: Deployment, request: RouteRequest) -> Reservation | Refusal:
        """Reserve a place for ``request`` on ``deployment``, or say why not."""
        limits = self._limits.get(deployment.id)
        if self.shared is None:
            return self._local(Reservation(deployment.id), limits)
        busy = self._busy(deployment.id, limits)
        if busy is not None:
            return busy
        hold = None if request.stream else request.time_left(self._clock.now())
        outcome = await self.shared.reserve(deployment.id, limits, hold)
        if isinstance(outcome, Refusal):
            return outcome
        checked = self._local(outcome, limits)  # again: the figures may have moved meanwhile
        if isinstance(checked, Refusal):
            self.shared.in_background(self.shared.cancel(outcome))
        return checked

    def _local(
        self, reservation: Reservation, limits: DeploymentLimits | None
    ) -> Reservation | Refusal:
        deployment_id = reservation.deployment_id
        busy = self._busy(deployment_id, limits)
        if busy is not None or limits is None:
            return busy or reservation
        if reservation.member is None:  # Redis did not decide: the local figures do
            why = limits.rate_refusal(self._load.usage(deployment_id))
            if why is not None:
                return Refusal(deployment_id, "rate", why)
        return reservation

    def _busy(self, deployment_id: str, limits: DeploymentLimits | None) -> Refusal | None:
        if limits is None or limits.max_parallel is None:
            return None
        busy = self._load.in_flight(deployment_id)
        if busy < limits.max_parallel:
            return None
        return Refusal(deployment_id, "parallel",
                       f"max_parallel_requests {limits.max_parallel} reached ({busy} in flight)")

    def acquire(self, reservation: Reservation) -> LoadHandle:
        """Count the admitted request in the load tracker; releasing gives both back."""
        handle = self._load.acquire(reservation.deployment_id)
        if self.shared is not None:
            handle.on_release(lambda tokens: self.release(reservation, tokens))
        return handle

    def release(self, reservation: Reservation, tokens: int = 0) -> None:
        """Give a reservation back in the background (nothing to do without Redis)."""
        if self.shared is not None:
            self.shared.in_background(self.shared.release(reservation, tokens))
