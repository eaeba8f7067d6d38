"""Server-Sent Events: framed as OpenAI frames Responses streams, written with backpressure.

Each event is ``event: <type>`` then ``data: <one line of JSON>`` then a
blank line; there is no ``[DONE]`` line (the stream ends after its terminal
event), so every OpenAI SDK parses it as it parses OpenAI's own.

:func:`pump` copies a stream of events to an :class:`EventWriter`. The first
event is written at once (with the headers). After it, events that have
already arrived together go out in one write, up to :data:`BATCH_BYTES` (a
send costs far more than joining a few frames); an event that has to be
waited for is never held back. Each write awaits the client within
``write_timeout`` (backpressure), so a stream holds at most one batch and
one read-ahead event, whatever the reader's speed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web

from router.proxy.errors import ApiError, error_event
from router.types import dump_json

__all__ = ["BATCH_BYTES", "HEADERS", "EventWriter", "frame", "pump"]

#: Answer headers of a stream (no proxy buffering, no caching).
HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}

#: The most a stream holds before writing: batching must not become buffering.
BATCH_BYTES = 64 * 1024


def frame(data: dict[str, Any]) -> bytes:
    """One event; its ``event:`` line is the data's ``type`` (``message`` when it has none)."""
    kind = data.get("type")
    name = kind if isinstance(kind, str) and kind and "\n" not in kind else "message"
    return b"event: " + name.encode() + b"\ndata: " + dump_json(data) + b"\n\n"


class EventWriter:
    """The events of one answer: batched frames, each write bounded by ``write_timeout``.

    A write that does not complete in time raises :class:`TimeoutError`
    (the client stopped reading); a closed connection raises
    :class:`ConnectionError`.
    """

    def __init__(self, response: web.StreamResponse, write_timeout: float) -> None:
        self._response = response
        self._timeout = write_timeout
        self._batch: list[bytes] = []
        self._size = 0
        self.sequence = 0  #: the last ``sequence_number`` seen
        self.started = False  #: something has been written

    @property
    def full(self) -> bool:
        return self._size >= BATCH_BYTES

    def add(self, data: dict[str, Any]) -> None:
        if isinstance(data.get("sequence_number"), int):
            self.sequence = data["sequence_number"]
        chunk = frame(data)
        self._batch.append(chunk)
        self._size += len(chunk)

    async def flush(self) -> None:
        if not self._batch:
            return
        data = b"".join(self._batch)
        self._batch.clear()
        self._size = 0
        async with asyncio.timeout(self._timeout):
            await self._response.write(data)
        self.started = True

    async def end_with_error(self, error: ApiError) -> None:
        """Write what is pending and a Responses ``error`` event after it."""
        self.add(error_event(error, self.sequence + 1))
        await self.flush()


async def pump(stream: AsyncIterator[Any], writer: EventWriter,
               seen: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
    """Every event of ``stream`` (objects with ``_data``) to ``writer``.

    ``seen`` is awaited with each event's data before the event is queued.
    Errors of the stream propagate, with the unwritten events still in
    ``writer`` (see :meth:`EventWriter.end_with_error`).
    """
    upcoming: asyncio.Future[Any] = asyncio.ensure_future(anext(stream))
    try:
        while True:
            try:
                data = (await upcoming)._data
            except StopAsyncIteration:
                break
            await seen(data)
            writer.add(data)
            upcoming = asyncio.ensure_future(anext(stream))
            if writer.started and not writer.full:
                await asyncio.sleep(0)  # one loop turn: is the next event already here?
            if not upcoming.done() or writer.full:
                await writer.flush()
    finally:
        upcoming.cancel()
    await writer.flush()
