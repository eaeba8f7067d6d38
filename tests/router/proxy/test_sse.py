"""SSE: OpenAI's framing, and the writer's batching, bounds and timeouts."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from router.proxy.errors import ApiError
from router.proxy.sse import BATCH_BYTES, EventWriter, frame, pump


def test_frame() -> None:
    data = {"type": "response.output_text.delta", "delta": "a\nb", "sequence_number": 3}
    text = frame(data).decode()
    assert text.endswith("\n\n")
    event, payload, *rest = text.split("\n")
    assert event == "event: response.output_text.delta"
    assert json.loads(payload.removeprefix("data: ")) == data
    assert rest == ["", ""]


@pytest.mark.parametrize("delta", ["é 日本語 😀", "\u2028 \x00", "half \ud83d", 'q"\\'])
def test_frame_carries_any_text_on_one_data_line(delta: str) -> None:
    """Non-ASCII text goes out as UTF-8; a lone surrogate (a model's emoji cut in half, as
    the router reads it) escaped; never a raw newline inside the data line."""
    data = {"type": "response.output_text.delta", "delta": delta}
    event, payload, *rest = frame(data).split(b"\n")
    assert event == b"event: response.output_text.delta" and rest == [b"", b""]
    assert json.loads(payload.removeprefix(b"data: ")) == data


def test_frame_without_type() -> None:
    assert frame({"x": 1}).startswith(b"event: message\n")


class _Answer:
    """Stands in for a StreamResponse: records writes; ``block`` makes a write hang."""

    def __init__(self, block: bool = False) -> None:
        self.writes: list[bytes] = []
        self.block = block

    async def write(self, data: bytes) -> None:
        if self.block:
            await asyncio.sleep(3600)
        self.writes.append(data)


class _Event:
    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data


async def _events(count: int, *, size: int = 1, gap: float | None = None,
                  fail: Exception | None = None) -> AsyncIterator[_Event]:
    for i in range(count):
        if gap is not None:
            await asyncio.sleep(gap)
        yield _Event({"type": "delta", "sequence_number": i, "delta": "x" * size})
    if fail is not None:
        raise fail


async def test_events_already_here_go_out_together() -> None:
    answer = _Answer()
    await pump(_events(10), EventWriter(answer, 1.0))  # type: ignore[arg-type]
    assert [w.count(b"event: delta") for w in answer.writes] == [10]


async def test_events_in_bursts_go_out_a_burst_at_a_time() -> None:
    async def bursts() -> AsyncIterator[_Event]:
        for burst in range(3):
            await asyncio.sleep(0.01)  # the upstream's next read
            for i in range(4):
                yield _Event({"type": "delta", "sequence_number": burst * 4 + i})

    answer = _Answer()
    writer = EventWriter(answer, 1.0)  # type: ignore[arg-type]
    await pump(bursts(), writer)
    assert [w.count(b"event: delta") for w in answer.writes] == [4, 4, 4]
    assert writer.sequence == 11


async def test_events_that_must_be_waited_for_are_not_held_back() -> None:
    answer = _Answer()
    await pump(_events(4, gap=0.01), EventWriter(answer, 1.0))  # type: ignore[arg-type]
    assert [w.count(b"event: delta") for w in answer.writes] == [1, 1, 1, 1]


async def test_batches_are_bounded() -> None:
    answer = _Answer()
    await pump(_events(100, size=BATCH_BYTES // 10), EventWriter(answer, 1.0))  # type: ignore[arg-type]
    assert max(len(w) for w in answer.writes) < 2 * BATCH_BYTES


async def test_a_write_that_hangs_times_out_and_stops_the_read() -> None:
    reading = asyncio.Event()
    stopped: list[bool] = []

    async def endless() -> AsyncIterator[_Event]:
        try:
            while True:
                reading.set()
                await asyncio.sleep(0.001)
                yield _Event({"type": "delta"})
        finally:
            stopped.append(True)

    events = endless()
    with pytest.raises(TimeoutError):
        await pump(events, EventWriter(_Answer(block=True), 0.05))  # type: ignore[arg-type]
    assert reading.is_set()
    await events.aclose()  # as the server's handler closes the Router's stream
    assert stopped == [True]


async def test_a_slow_reader_holds_one_batch_at_most() -> None:
    """Backpressure: while a write waits for the client, the read stops at a full batch."""
    produced = 0

    async def plenty() -> AsyncIterator[_Event]:
        nonlocal produced
        for i in range(1000):
            produced += 1
            await asyncio.sleep(0)
            yield _Event({"type": "delta", "sequence_number": i, "delta": "x" * 1000})

    class _Slow(_Answer):
        async def write(self, data: bytes) -> None:
            await asyncio.sleep(0.05)
            self.writes.append(data)

    answer = _Slow()
    task = asyncio.ensure_future(pump(plenty(), EventWriter(answer, 1.0)))  # type: ignore[arg-type]
    await asyncio.sleep(0.12)  # about two writes
    written = sum(w.count(b"event: delta") for w in answer.writes)
    assert produced - written <= 2 * (BATCH_BYTES // 1000 + 1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_error_after_events_keeps_them_and_adds_error_event() -> None:
    answer = _Answer()
    writer = EventWriter(answer, 1.0)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError):
        await pump(_events(3, fail=RuntimeError("cut")), writer)
    await writer.end_with_error(ApiError(502, "cut", "server_error", None, "upstream_error"))
    text = b"".join(answer.writes).decode()
    assert text.count("event: delta") == 3 and text.endswith("\n\n")
    last = json.loads(text.rstrip().rsplit("data: ", 1)[1])
    assert last == {"type": "error", "code": "upstream_error", "message": "cut",
                    "param": None, "sequence_number": 3}


async def test_a_stream_cancelled_from_inside_ends_the_pump() -> None:
    async def cut() -> AsyncIterator[_Event]:
        yield _Event({"type": "delta"})
        raise asyncio.CancelledError

    answer = _Answer()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(pump(cut(), EventWriter(answer, 1.0)), 2.0)  # type: ignore[arg-type]
    assert b"".join(answer.writes).count(b"event: delta") == 1


async def test_a_second_cancel_still_waits_for_the_read_to_finish() -> None:
    """The handler is cancelled (client gone), then cancelled again while the stream's read
    is still cleaning up: the pump returns only once the read has finished, so the Router's
    stream is never closed under a running read."""
    cleaned: list[str] = []
    started = asyncio.Event()

    async def slow_cleanup() -> AsyncIterator[_Event]:
        try:
            started.set()
            await asyncio.sleep(3600)
            yield _Event({"type": "delta"})
        finally:
            await asyncio.sleep(0.05)  # closing the upstream connection, say
            cleaned.append("done")

    task = asyncio.ensure_future(pump(slow_cleanup(), EventWriter(_Answer(), 1.0)))  # type: ignore[arg-type]
    await started.wait()
    task.cancel()
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cleaned == ["done"]
