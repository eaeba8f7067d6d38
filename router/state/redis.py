"""A ``StateStore`` on Redis (``redis.asyncio``), every key prefixed and expiring.

One connection pool per event loop (redis-py's asyncio connections belong to
the loop that made them; the router's sync twins run on a loop of their
own). Socket timeouts are short: a slow Redis must not hold a request, and
:class:`router.state.resilient.ResilientStore` turns failures into a memory
fallback.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

__all__ = ["RedisSource", "RedisStore"]

SOCKET_TIMEOUT = 0.5


class RedisSource(Protocol):
    """Where a Redis user gets its client and key prefix (:class:`RedisStore` fits)."""

    @property
    def prefix(self) -> str: ...

    def client(self) -> aioredis.Redis: ...


class RedisStore:
    """Keys under ``prefix``; values are short strings; TTL in milliseconds precision."""

    def __init__(self, url: str, *, prefix: str = "rr:", **client_options: Any) -> None:
        self._url = url
        self._prefix = prefix
        self._options = {
            "socket_timeout": SOCKET_TIMEOUT,
            "socket_connect_timeout": SOCKET_TIMEOUT,
            "decode_responses": True,
            # A pooled connection that Redis closed (a restart) fails its next
            # command: retry once on a fresh one. Timeouts are not retried, so
            # a frozen Redis still costs a single SOCKET_TIMEOUT.
            "retry": Retry(NoBackoff(), 1),
            "retry_on_error": [RedisConnectionError],
            **client_options,
        }
        self._clients: dict[int, aioredis.Redis] = {}

    @property
    def prefix(self) -> str:
        return self._prefix

    def client(self) -> aioredis.Redis:
        """The client of the running event loop."""
        loop_id = id(asyncio.get_running_loop())
        found = self._clients.get(loop_id)
        if found is None:
            found = self._clients[loop_id] = aioredis.Redis.from_url(self._url, **self._options)
        return found

    async def get(self, key: str) -> str | None:
        value = await self.client().get(self._prefix + key)
        return None if value is None else str(value)

    async def set(self, key: str, value: str, ttl: float) -> None:
        await self.client().set(self._prefix + key, value, px=max(1, int(ttl * 1000)))

    async def delete(self, key: str) -> None:
        await self.client().delete(self._prefix + key)

    async def aclose(self) -> None:
        loop_id = id(asyncio.get_running_loop())
        client = self._clients.pop(loop_id, None)
        if client is not None:
            await client.aclose()

    def __repr__(self) -> str:  # the URL may carry a password
        return f"RedisStore(prefix={self._prefix!r})"
