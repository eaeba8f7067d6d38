"""The ``StateStore`` interface: small string values with a TTL on every key."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

__all__ = ["StateStore"]


class StateStore(Protocol):
    """Keys and values are strings; ``ttl`` is in seconds and always given.

    ``get`` returns ``None`` for a missing or expired key. Implementations
    never raise for a missing key.
    """

    async def get(self, key: str) -> str | None: ...

    async def set(self, key: str, value: str, ttl: float) -> None: ...

    async def set_many(self, items: Sequence[tuple[str, str]], ttl: float) -> None:
        """Write every ``(key, value)`` with the same ``ttl``, in one round trip."""
        ...

    async def delete(self, key: str) -> None: ...

    async def aclose(self) -> None: ...
