"""Shared cooldowns: a cooldown one router process starts is seen by every other at once.

The request path reads only the local :class:`router.cooldown.Cooldowns`: no
Redis round trip is added to it. Sharing happens beside it:

* **write**: a listener on the local ``Cooldowns`` queues every cooldown this
  router starts or extends; a background task writes the queue in one
  pipeline: ``SET {prefix}cd:{deployment_id} <entry> PX <remaining ms>`` and
  ``PUBLISH {prefix}cooldowns <entry>``. Entries queued while a write runs are
  coalesced (latest per deployment) into the next pipeline. Requests never
  wait for it.
* **read**: one subscriber task per event loop (``redis.asyncio`` connections
  belong to the loop that made them; the router's sync twins run a loop of
  their own), started on first use (:meth:`SharedCooldowns.ensure_started`,
  or :meth:`SharedCooldowns.start` to also wait for the first load) and stopped
  by :meth:`SharedCooldowns.aclose`. Every (re)subscription is followed by one
  load (one pipeline of ``GET``, no multi-key command, so it works on a Cluster)
  of the keys of this router's deployments, because pub/sub loses what
  is published while a subscriber is disconnected; a router that starts later
  learns the cooldowns in force the same way. redis-py re-subscribes by itself
  after a dropped connection, and the server's subscribe confirmation is what
  triggers the load; after an error the subscription is made anew every
  ``retry_interval`` seconds. After each load, this router's own cooldowns in
  force are written again (Redis may have missed them while it was down).
* **apply**: an entry carries Unix times (``until_wall``); it is converted to
  the local clock on receipt (``until = now() + until_wall - wall()``) and
  given to :meth:`Cooldowns.merge`, which extends and never shortens. Entries
  this router published (its ``instance_id``) and entries for deployments it
  does not have are ignored.
* **Redis down**: local cooldowns keep working; the breaker of that Redis
  (shared with the router's other Redis users, :mod:`router.state.breaker`)
  logs one warning when Redis fails and one when it answers again; writes are
  skipped for ``retry_interval`` seconds after a failure, and recovery is
  automatic.
* **Cluster**: classic pub/sub, not sharded. A classic message published on
  any node reaches the subscribers of every node (the cluster bus forwards
  it), so the subscriber may listen on any node and moves to the next
  startup node when its node fails; cooldowns are rare, so the broadcast
  costs nothing that matters. Sharded pub/sub would tie the subscriber to
  the channel slot's owner and need redis-py 8's cluster pub/sub. The
  ``PUBLISH`` goes through the same node client (:meth:`RedisStore.bus`).

Limits: wall clocks of the router machines must agree (a skew of s seconds
moves a shared cooldown's end by s; NTP keeps it to milliseconds). ``SET``
overwrites, so two routers extending the same deployment within one pub/sub
delay may leave the shorter entry in the key; live subscribers still apply
the longer one (extend-only), only a router loading in that instant reads the
shorter one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from router.cooldown import CooldownEntry
from router.state.breaker import Breaker, breaker_of, failures
from router.state.source import RedisSource, connected

if TYPE_CHECKING:

    from router.clock import Clock
    from router.cooldown import Cooldowns

__all__ = ["RedisSource", "SharedCooldowns"]

log = logging.getLogger("router.shared_cooldowns")

_LISTEN_TIMEOUT = 1.0  # a get_message's own wait: the connection's socket timeout is short
_FORMAT = 1


@dataclass
class _LoopState:
    """The background work of one event loop."""

    loop: asyncio.AbstractEventLoop
    ready: asyncio.Event
    subscriber: asyncio.Task[None] | None = None
    writer: asyncio.Task[None] | None = None
    pending: dict[str, CooldownEntry] = field(default_factory=dict)
    closed: bool = False


class SharedCooldowns:
    """Shares one router's :class:`Cooldowns` with every router on the same Redis.

    ``deployment_ids`` are this router's deployments (the keys it loads and
    the entries it accepts). ``instance_id`` names this router in what it
    publishes (default: a random id). Call :meth:`ensure_started` on the
    request path (cheap: one dict lookup) and :meth:`aclose` on each event
    loop the router ran on.
    """

    def __init__(
        self,
        redis: RedisSource,
        cooldowns: Cooldowns,
        clock: Clock,
        deployment_ids: Iterable[str],
        *,
        instance_id: str | None = None,
        retry_interval: float = 5.0,
    ) -> None:
        self._redis = redis
        self._cooldowns = cooldowns
        self._clock = clock
        self._ids = tuple(dict.fromkeys(deployment_ids))
        self._known = frozenset(self._ids)
        self.instance_id = instance_id or uuid.uuid4().hex
        self._retry_interval = retry_interval
        self._breaker = breaker_of(redis, clock, retry_interval,
                                   what="shared cooldowns in Redis", log=log)
        # The subscriber's own state when the breaker is the Redis store's: a
        # dropped subscription (a quick restart) is retried on its own cadence
        # and must not make every request of the router skip Redis.
        self._listening = self._breaker if self._breaker is not getattr(
            redis, "breaker", None) else Breaker(
                clock, retry_interval, log=log, what="shared cooldowns' subscription to Redis")
        self._channel = f"{redis.prefix}cooldowns"
        self._loops: dict[int, _LoopState] = {}
        self._loads = 0
        cooldowns.listen(self._on_local)

    @property
    def degraded(self) -> bool:
        """True while Redis is failing (cooldowns are local only)."""
        return self._breaker.degraded or self._listening.degraded

    @property
    def loads(self) -> int:
        """How many times cooldowns in force were loaded from Redis (start and reconnects)."""
        return self._loads

    def key(self, deployment_id: str) -> str:
        """The Redis key holding ``deployment_id``'s shared cooldown."""
        return f"{self._redis.prefix}cd:{deployment_id}"

    async def claim_probe(self, deployment_id: str, interval: float) -> bool:
        """Claim the one probe of a deployment on probation, for every router process.

        ``SET probe-key NX PX interval``: True for the one caller that set it.
        Only a deployment on probation (after a ``Retry-After``) pays this round
        trip. With Redis failing, True: the local claim alone decides.
        """
        async def claim() -> bool:
            client = await connected(self._redis)
            won = await client.set(f"{self._redis.prefix}probe:{{{deployment_id}}}",
                                   self.instance_id, nx=True,
                                   px=max(1, int(interval * 1000)))
            return bool(won)

        return bool(await self._breaker.guard(claim, True))

    # -- lifetime -----------------------------------------------------------------------

    def ensure_started(self) -> None:
        """Start this event loop's subscriber if it is not running (needs a running loop)."""
        self._state(asyncio.get_running_loop())

    async def start(self, timeout: float = 2.0) -> bool:
        """Start, and wait until the cooldowns in force were loaded (True) or ``timeout``."""
        state = self._state(asyncio.get_running_loop())
        try:
            await asyncio.wait_for(state.ready.wait(), timeout)
        except TimeoutError:
            return False
        return not self.degraded

    async def aclose(self) -> None:
        """Stop this event loop's subscriber, after the writes already queued."""
        state = self._loops.pop(id(asyncio.get_running_loop()), None)
        if state is None:
            return
        state.closed = True
        if state.writer is not None:
            await asyncio.wait([state.writer], timeout=1.0)
        tasks = [t for t in (state.writer, state.subscriber) if t is not None and not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            # redis-py can swallow a cancellation (one that lands as its own read
            # timeout fires); the ``closed`` flag then ends the loop at its next turn.
            _, late = await asyncio.wait(tasks, timeout=_LISTEN_TIMEOUT + 1.0)
            for task in late:
                task.cancel()

    def _state(self, loop: asyncio.AbstractEventLoop) -> _LoopState:
        state = self._loops.get(id(loop))
        if state is None or state.loop is not loop:
            state = self._loops[id(loop)] = _LoopState(loop, asyncio.Event())
        if state.subscriber is None or state.subscriber.done():
            state.subscriber = loop.create_task(self._subscribe(state))
        return state

    # -- writing ------------------------------------------------------------------------

    def _on_local(self, entry: CooldownEntry) -> None:
        """The ``Cooldowns`` listener: queue this router's own new cooldowns."""
        if entry.origin is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # recorded outside any event loop: it stays local
        self._queue(self._state(loop), [entry])

    def _queue(self, state: _LoopState, entries: Iterable[CooldownEntry]) -> None:
        for entry in entries:
            state.pending[entry.deployment_id] = entry  # later entries end later
        if state.pending and (state.writer is None or state.writer.done()):
            state.writer = state.loop.create_task(self._write(state))

    async def _write(self, state: _LoopState) -> None:
        while state.pending:
            batch, state.pending = state.pending, {}
            # Redis down: these stay local (re-sent after the next load)
            await self._breaker.guard(partial(self._write_batch, batch.values()), None)

    async def _write_batch(self, entries: Iterable[CooldownEntry]) -> None:
        client, bus = await connected(self._redis), _bus(self._redis)
        pipe = client.pipeline(transaction=False)
        news = bus.pipeline(transaction=False) if bus is not client else pipe
        now = self._clock.now()
        for entry in entries:
            remaining = entry.until - now
            if remaining > 0:
                payload = self._encode(entry)
                pipe.set(self.key(entry.deployment_id), payload, px=max(1, int(remaining * 1000)))
                news.publish(self._channel, payload)
        for batch in dict.fromkeys((pipe, news)):
            if len(batch):
                await batch.execute()

    def _encode(self, entry: CooldownEntry) -> str:
        wall = self._clock.wall()
        now = self._clock.now()
        return json.dumps({
            "v": _FORMAT,
            "deployment_id": entry.deployment_id,
            "until_wall": entry.until_wall,
            "started_wall": wall - (now - entry.started),
            "reason": entry.reason,
            "status": entry.status,
            "times": entry.times,
            "origin": self.instance_id,
            "probe": entry.probe,
        })

    # -- reading ------------------------------------------------------------------------

    async def _subscribe(self, state: _LoopState) -> None:
        while not state.closed:
            try:
                await self._listen(state)
            except failures() as exc:
                self._listening.trip(exc)
            except Exception:  # a bug must not end sharing for good, nor spin
                log.exception("shared cooldowns: subscriber failed; restarting it")
            state.ready.set()  # start() waits for the first load, or for its failure
            if not state.closed:
                await asyncio.sleep(self._retry_interval)  # real time: never move a test clock

    async def _listen(self, state: _LoopState) -> None:
        pubsub = _bus(self._redis).pubsub()
        try:
            await pubsub.subscribe(self._channel)
            while not state.closed:
                message = await pubsub.get_message(timeout=_LISTEN_TIMEOUT)
                if message is None:
                    continue
                if message["type"] == "subscribe":  # first subscription, or redis-py's resubscribe
                    await self._load(state)
                elif message["type"] == "message":
                    self._apply(message["data"])
        except failures():
            _drop_bus(self._redis)  # a Cluster node failed: listen on another next time
            raise
        finally:
            await _quietly_close(pubsub)

    async def _load(self, state: _LoopState) -> None:
        """Apply the cooldowns in force in Redis; then re-send this router's own."""
        epoch = self._breaker.epoch
        if self._ids:
            pipe = (await connected(self._redis)).pipeline(transaction=False)
            for deployment_id in self._ids:
                pipe.get(self.key(deployment_id))
            for raw in await pipe.execute():
                if raw is not None:
                    self._apply(raw)
        self._loads += 1
        self._listening.succeeded()
        self._breaker.succeeded(epoch)  # Redis answered a load begun after any failure
        state.ready.set()
        own = [e for e in self._cooldowns.active()
               if e.origin is None and e.deployment_id in self._known]
        self._queue(state, own)

    def _apply(self, raw: Any) -> None:
        entry = self._decode(raw)
        if entry is not None:
            self._cooldowns.merge(entry)

    def _decode(self, raw: Any) -> CooldownEntry | None:
        """The entry in local clock time; ``None`` for our own, foreign or unreadable ones."""
        try:
            data = json.loads(raw)
            origin = str(data["origin"])
            deployment_id = str(data["deployment_id"])
            until_wall = float(data["until_wall"])
            started_wall = float(data["started_wall"])
            status = None if data.get("status") is None else int(data["status"])
            entry_fields = (str(data["reason"]), status, int(data["times"]))
            probe = None if data.get("probe") is None else float(data["probe"])
        except (ValueError, TypeError, KeyError) as exc:
            log.debug("shared cooldowns: ignoring an unreadable entry (%s)", type(exc).__name__)
            return None
        if origin == self.instance_id or deployment_id not in self._known:
            return None
        if not (math.isfinite(until_wall) and math.isfinite(started_wall)):
            return None
        now, wall = self._clock.now(), self._clock.wall()
        reason, status, times = entry_fields
        return CooldownEntry(
            deployment_id=deployment_id, until=now + (until_wall - wall), until_wall=until_wall,
            reason=reason, status=status, times=times, started=now - (wall - started_wall),
            origin=origin, probe=probe if probe is not None and math.isfinite(probe) else None,
        )

    def __repr__(self) -> str:
        return (f"SharedCooldowns(instance_id={self.instance_id!r}, "
                f"deployments={len(self._ids)}, degraded={self.degraded})")


def _bus(source: RedisSource) -> Any:
    """The client for PUBLISH/SUBSCRIBE: ``source.bus()`` when it has one (a Cluster)."""
    bus = getattr(source, "bus", None)
    return source.client() if bus is None else bus()


def _drop_bus(source: RedisSource) -> None:
    drop = getattr(source, "drop_bus", None)
    if drop is not None:
        drop()


async def _quietly_close(pubsub: Any) -> None:
    with contextlib.suppress(*failures()):
        await pubsub.aclose()
