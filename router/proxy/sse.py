"""Server-Sent Events: framed as OpenAI frames Responses streams, written with backpressure.

Each event is ``event: <type>`` then ``data: <one line of JSON>`` then a
blank line; there is no ``[DONE]`` line (the stream ends after its terminal
event), so every OpenAI SDK parses it as it parses OpenAI's own.

:func:`pump` copies a stream of events to an :class:`EventWriter`. Events
that have already arrived together go out in one write, up to
:data:`BATCH_BYTES` (a send costs far more than joining a few frames); an
event that has to be waited for is never held back. Each write awaits the
client within ``write_timeout`` (backpressure), so a stream holds at most
one batch besides the one being written, whatever the reader's speed. One
reader task per stream does this, not one per event.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
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

    async def end_with_error(self, error: ApiError) -> None:
        """Write what is pending and a Responses ``error`` event after it."""
        self.add(error_event(error, self.sequence + 1))
        await self.flush()


async def pump(stream: AsyncIterator[Any], writer: EventWriter) -> None:
    """Every event of ``stream`` (objects with ``_data``) to ``writer``.

    A reader task takes events from ``stream`` into the writer's batch while
    this coroutine writes the batch out: events that are already here (an
    upstream read that held several) join the batch without a pause, and
    the batch is written as soon as the reader has to wait for the next
    one, so no event is held back. The reader stops at a full batch until
    the write has gone (backpressure). An error of the stream propagates here
    once the events before it are written; a failed write (``TimeoutError``,
    ``ConnectionError``) or a cancellation cancels the reader, and the
    stream's read with it.
    """
    more = asyncio.Event()  # the batch grew, or the stream ended
    room = asyncio.Event()  # the batch is below BATCH_BYTES
    room.set()

    async def read() -> None:
        try:
            async for event in stream:
                writer.add(event._data)
                more.set()
                if writer.full:
                    room.clear()
                    await room.wait()
        finally:
            more.set()

    reader = asyncio.ensure_future(read())
    try:
        while not reader.done():
            await more.wait()
            more.clear()
            await writer.flush()
            room.set()
        await writer.flush()  # what came before the end (or before the stream's error)
    finally:
        if not reader.done():
            reader.cancel()
            await _settled(reader)
        elif not reader.cancelled():
            reader.exception()  # retrieved: raised below, unless something else is raised
    reader.result()  # the stream's error, if it ended with one


async def _settled(task: asyncio.Task[None]) -> None:
    """Wait until ``task`` (cancelled) has finished, even if this task is cancelled again
    meanwhile (then that cancellation is raised once ``task`` is done): the Router's
    stream must not be closed while its read is still running."""
    cancelled = False
    while not task.done():
        try:
            await asyncio.wait([task])
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError
