"""The injected clock: a monotonic ``now()``, wall time ``wall()``, an awaitable ``sleep()``.

``now()`` measures durations inside one process; ``wall()`` (Unix seconds)
is what several router processes agree on, e.g. to name a per-minute window.

Everything that reads time takes a :class:`Clock`, so tests drive time by
hand (:class:`ManualClock`) instead of sleeping.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

__all__ = ["Clock", "ManualClock", "SystemClock"]


class Clock(Protocol):
    """Monotonic seconds, and a way to wait."""

    def now(self) -> float: ...

    def wall(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """``time.monotonic`` and ``asyncio.sleep``."""

    now = staticmethod(time.monotonic)
    wall = staticmethod(time.time)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class ManualClock:
    """A clock that moves only when told; ``sleep`` advances it at once."""

    def __init__(self, start: float = 1000.0, *, wall_start: float = 1_800_000_000.0) -> None:
        self._now = start
        self._wall_offset = wall_start - start
        self.slept: list[float] = []

    def now(self) -> float:
        return self._now

    def wall(self) -> float:
        """Unix seconds, moving with :meth:`now` (starts at ``wall_start``)."""
        return self._now + self._wall_offset

    def advance(self, seconds: float) -> None:
        self._now += seconds

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self._now += max(0.0, seconds)
        await asyncio.sleep(0)
