"""The ``StateStore`` interface: small string values with a TTL on every key; and
``BatchStore``, a store that also writes and deletes several keys in one round trip."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

__all__ = ["BatchStore", "StateStore"]


class StateStore(Protocol):
    """Keys and values are strings; ``ttl`` is in seconds and always given.

    ``get`` returns ``None`` for a missing or expired key. Implementations
    never raise for a missing key.
    """

    async def get(self, key: str) -> str | None: ...

    async def set(self, key: str, value: str, ttl: float) -> None: ...

    async def delete(self, key: str) -> None: ...

    async def aclose(self) -> None: ...


class BatchStore(StateStore, Protocol):
    """Several keys in one round trip (the ownership records of one response)."""

    async def set_many(self, items: Sequence[tuple[str, str]], ttl: float, *,
                       durable: bool = False) -> None:
        """Write every ``(key, value)`` with the same ``ttl``.

        ``durable``: wait until the shared store (Redis) has taken the write
        (a store in front of Redis does not cut the wait short after a hold;
        the breaker's deadline still bounds it, and a write Redis fails stays
        local); stores with nothing behind them ignore it.
        """
        ...

    async def delete_many(self, keys: Sequence[str]) -> None: ...
