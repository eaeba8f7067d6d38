"""What the Redis users of a router need to know of a Redis, without importing redis-py.

The request path imports these (shared load, shared cooldowns) whether or not
Redis is configured; redis-py itself (several MB of modules) is imported only
by :mod:`router.state.redis`, when a router is configured with a Redis.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import redis.asyncio as aioredis

__all__ = ["RedisSource", "connected", "hash_tag"]


class RedisSource(Protocol):
    """Where a Redis user gets its client and key prefix (:class:`RedisStore` fits)."""

    @property
    def prefix(self) -> str: ...

    def client(self) -> aioredis.Redis: ...


def hash_tag(name: str) -> str:
    """``{name}``: Redis Cluster hashes only the text between the first ``{`` and ``}``.

    Braces inside ``name`` are replaced, so the tag is exactly ``name``.
    """
    return "{" + name.replace("{", "(").replace("}", ")") + "}"


async def connected(source: RedisSource) -> aioredis.Redis:
    """``source``'s client, initialised when the source can (:meth:`RedisStore.ready`)."""
    ready: Any = getattr(source, "ready", None)
    if ready is None:
        return source.client()
    client: aioredis.Redis = await ready()
    return client
