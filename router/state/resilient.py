"""Redis when it answers, memory when it does not: routing never stops for Redis.

:class:`ResilientStore` writes through to a local :class:`MemoryStore` and to
Redis, and reads locally first (a record seen by this process needs no round
trip), then from Redis. Every Redis call goes through the breaker of that
Redis (:mod:`router.state.breaker`, shared with the other Redis users of the
router): when Redis fails, for ``retry_interval`` seconds every operation
skips Redis (no connection timeout paid per request), one warning is logged,
and records written meanwhile stay usable in this process from memory.

Writes are off the request's critical path: the local write is immediate,
and a request waits for the Redis write at most ``write_hold`` seconds (a
healthy Redis answers well within it, so the record is normally in Redis
before the response reaches the caller). A write the hold cuts short is sent
again in the background; at most ``max_backlog`` of them run at once, beyond
that a record stays local (as while the breaker is open). The hold is generous
(a busy event loop, not Redis, is what usually delays a write) and is cut
short when the breaker trips: a frozen Redis costs a write ``write_hold`` at
most, and nothing once the first timeout has opened the breaker. The one
exception is a *durable* batch (``set_many(..., durable=True)``: a record that
carries a response's owner, which readers find only in Redis): it is awaited
until Redis takes it or the breaker's deadline passes, and kept locally if
Redis fails it.

Local-first reads suit records that never change once written (response
ownership: an id's owner is fixed). Do not use it for counters.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from router.clock import Clock
from router.state.base import BatchStore
from router.state.breaker import breaker_of
from router.state.held import HeldWrites
from router.state.memory import MemoryStore

__all__ = ["ResilientStore"]

log = logging.getLogger("router.state")

#: Seconds a request waits for a Redis write before leaving it to the background.
WRITE_HOLD = 0.25
#: Redis writes left running in the background at most (per store).
MAX_BACKLOG = 1024


class ResilientStore:
    """A write-through pair of memory and a shared store, behind a breaker.

    The breaker is ``shared.breaker`` when the shared store has one (a
    :class:`router.state.redis.RedisStore`), else one of its own driven by
    ``clock`` and ``retry_interval``.
    """

    def __init__(
        self,
        shared: BatchStore,
        clock: Clock,
        *,
        local: MemoryStore | None = None,
        retry_interval: float = 5.0,
        write_hold: float = WRITE_HOLD,
        max_backlog: int = MAX_BACKLOG,
    ) -> None:
        self._shared = shared
        self._local = local or MemoryStore()
        self._breaker = breaker_of(shared, clock, retry_interval,
                                   what="shared state store", log=log)
        self._writes = HeldWrites(self._breaker, write_hold, max_backlog)

    @property
    def degraded(self) -> bool:
        """True while the breaker is open (Redis is being skipped)."""
        return self._breaker.degraded

    @property
    def shared(self) -> BatchStore:
        """The shared store behind the memory (the Redis store)."""
        return self._shared

    @property
    def backlog(self) -> int:
        """Redis writes still running in the background."""
        return self._writes.backlog

    async def get(self, key: str) -> str | None:
        value = await self._local.get(key)
        if value is not None:
            return value
        return await self._breaker.guard(lambda: self._shared.get(key), None)

    async def set(self, key: str, value: str, ttl: float) -> None:
        await self._local.set(key, value, ttl)
        await self._writes.write(lambda: self._shared.set(key, value, ttl))

    async def set_many(self, items: Sequence[tuple[str, str]], ttl: float, *,
                       durable: bool = False) -> None:
        """Write locally and to Redis, held (see the module docstring); ``durable``: wait
        for Redis however long it takes (within the breaker's deadline)."""
        await self._local.set_many(items, ttl)
        await self._writes.write(lambda: self._shared.set_many(items, ttl), hold=not durable)

    async def delete_many(self, keys: Sequence[str]) -> None:
        await self._local.delete_many(keys)
        await self._writes.write(lambda: self._shared.delete_many(keys))

    async def delete(self, key: str) -> None:
        await self._local.delete(key)
        await self._writes.write(lambda: self._shared.delete(key))

    async def flush(self) -> None:
        """Wait for this loop's background writes (each ends within the breaker's deadline)."""
        await self._writes.flush()

    async def aclose(self) -> None:
        await self.flush()
        await self._breaker.guard(self._shared.aclose, None)
