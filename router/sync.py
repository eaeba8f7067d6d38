"""Sync twins: run the router's coroutines on a private event loop thread.

The loop is started on first use and lives as long as the router, so pooled
connections are reused across sync calls. Calling a sync method from a
thread that is already running an event loop would block that loop: it
raises at once, pointing at the async method.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["LoopRunner"]

T = TypeVar("T")


class LoopRunner:
    """A daemon thread running one event loop, started lazily."""

    def __init__(self, name: str = "responses-router") -> None:
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def run(self, coro: Coroutine[Any, Any, T], *, async_name: str | None = None) -> T:
        """Run ``coro`` to completion on the private loop and return its result."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            coro.close()
            hint = f"use `await router.{async_name}(...)`" if async_name else "use the async method"
            raise RuntimeError(
                f"a sync router call was made inside a running event loop; {hint} instead"
            )
        loop = self._ensure_loop()
        return asyncio.run_coroutine_threadsafe(coro, loop).result()

    @property
    def started(self) -> bool:
        return self._loop is not None

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The private loop, or ``None`` before the first sync call."""
        return self._loop

    def stop(self) -> None:
        """Stop the loop and join its thread (idempotent)."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        loop.close()

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name=self._name, daemon=True
                )
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop
