"""In-process state: a bounded cache with a TTL per key (cachetools ``TLRUCache``)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from cachetools import TLRUCache

__all__ = ["MemoryStore"]

DEFAULT_MAX_ENTRIES = 1_000_000


def _expiry(key: str, value: tuple[str, float], now: float) -> float:
    return value[1]


class MemoryStore:
    """A ``StateStore`` in memory; the least recently used keys go first when full."""

    def __init__(
        self, max_entries: int = DEFAULT_MAX_ENTRIES, timer: Callable[[], float] = time.monotonic
    ) -> None:
        self._timer = timer
        self._data: TLRUCache[str, tuple[str, float]] = TLRUCache(
            maxsize=max_entries, ttu=_expiry, timer=timer
        )

    async def get(self, key: str) -> str | None:
        entry = self._data.get(key)
        return None if entry is None else entry[0]

    async def set(self, key: str, value: str, ttl: float) -> None:
        self._data[key] = (value, self._timer() + ttl)

    async def set_many(self, items: Sequence[tuple[str, str]], ttl: float, *,
                       durable: bool = False) -> None:
        expires = self._timer() + ttl
        for key, value in items:
            self._data[key] = (value, expires)

    async def delete(self, key: str) -> None:
        self._data.pop(key, None)

    async def delete_many(self, keys: Sequence[str]) -> None:
        for key in keys:
            self._data.pop(key, None)

    async def aclose(self) -> None:
        self._data.clear()

    def __len__(self) -> int:
        return len(self._data)
