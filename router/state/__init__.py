"""State shared between requests (and, with Redis, between router processes)."""

from router.state.base import StateStore
from router.state.memory import MemoryStore

__all__ = ["MemoryStore", "StateStore"]
