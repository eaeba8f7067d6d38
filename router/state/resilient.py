"""Redis when it answers, memory when it does not: routing never stops for Redis.

:class:`ResilientStore` writes through to a local :class:`MemoryStore` and to
Redis, and reads locally first (a record seen by this process needs no round
trip), then from Redis. When Redis fails, a small breaker opens: for
``retry_interval`` seconds every operation skips Redis (no connection timeout
paid per request), one warning is logged, and records written meanwhile stay
usable in this process from memory. The first operation after the interval
tries Redis again and closes the breaker when it answers.

Local-first reads suit records that never change once written (response
ownership: an id's owner is fixed). Do not use it for counters.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from router.clock import Clock
from router.state.base import StateStore
from router.state.breaker import Breaker
from router.state.memory import MemoryStore

__all__ = ["ResilientStore"]

log = logging.getLogger("router.state")
T = TypeVar("T")


class ResilientStore:
    """A write-through pair of memory and a shared store, behind a breaker."""

    def __init__(
        self,
        shared: StateStore,
        clock: Clock,
        *,
        local: MemoryStore | None = None,
        retry_interval: float = 5.0,
    ) -> None:
        self._shared = shared
        self._local = local or MemoryStore()
        self._breaker = Breaker(clock, retry_interval, what="shared state store", log=log)

    @property
    def degraded(self) -> bool:
        """True while the breaker is open (Redis is being skipped)."""
        return self._breaker.degraded

    async def get(self, key: str) -> str | None:
        value = await self._local.get(key)
        if value is not None:
            return value
        return await self._guard(lambda: self._shared.get(key), None)

    async def set(self, key: str, value: str, ttl: float) -> None:
        await self._local.set(key, value, ttl)
        await self._guard(lambda: self._shared.set(key, value, ttl), None)

    async def delete(self, key: str) -> None:
        await self._local.delete(key)
        await self._guard(lambda: self._shared.delete(key), None)

    async def aclose(self) -> None:
        await self._guard(self._shared.aclose, None)

    async def _guard(self, op: Callable[[], Awaitable[T]], fallback: T) -> T:
        return await self._breaker.guard(op, fallback)
