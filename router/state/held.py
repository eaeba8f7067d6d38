"""Writes to a shared store that a request waits for only briefly.

A request waits for a Redis write ``hold`` seconds at most (a healthy Redis
answers well within it), unless the write is to be awaited until Redis
answers (``hold=False``: a durable write, bounded by the breaker's deadline);
a write the hold cuts short is sent again in the background (the writes here
may be repeated safely: ``SET``, ``DEL``), with at most ``max_backlog`` of them
running at once. While the breaker is open,
or beyond the backlog, nothing is sent and the caller keeps its record
locally. Used by :class:`router.state.resilient.ResilientStore` (ownership
records) and :class:`router.conversations.redis_store.RedisConversations`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from router.state.breaker import Breaker, Held

__all__ = ["HeldWrites"]


class HeldWrites:
    """Sends writes through ``breaker``, each waited for ``hold`` seconds at most."""

    def __init__(self, breaker: Breaker, hold: float, max_backlog: int) -> None:
        self._breaker = breaker
        self._hold = hold
        self._max_backlog = max_backlog
        self._backlog: set[asyncio.Task[bool]] = set()

    @property
    def backlog(self) -> int:
        """Writes still running in the background."""
        return len(self._backlog)

    async def write(self, op: Callable[[], Awaitable[None]], *, hold: bool = True) -> bool:
        """``True`` once ``op`` reached the store within the hold; ``False`` when it was
        not sent (breaker open, backlog full), failed, or finishes in the background.
        ``hold=False``: wait for ``op`` to the end (the breaker's deadline bounds it)."""
        breaker = self._breaker
        if not hold:
            return breaker.allows() and await breaker.guard(_acked(op), False)
        if not breaker.allows() or len(self._backlog) >= self._max_backlog:
            return False
        try:
            return await breaker.guard(_acked(op), False, hold=self._hold)
        except Held:
            task = asyncio.get_running_loop().create_task(breaker.guard(_acked(op), False))
            self._backlog.add(task)
            task.add_done_callback(self._backlog.discard)
            return False

    async def flush(self) -> None:
        """Wait for this loop's background writes (each ends within the breaker's deadline)."""
        loop = asyncio.get_running_loop()
        mine = [t for t in list(self._backlog) if t.get_loop() is loop]
        if mine:
            await asyncio.wait(mine)


def _acked(op: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[bool]]:
    async def run() -> bool:
        await op()
        return True
    return run
