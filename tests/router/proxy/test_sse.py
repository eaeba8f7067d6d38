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
    assert rest == [b"", b""]
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


async def _nothing(data: dict[str, Any]) -> None:
    return None


async def test_first_event_alone_then_ready_events_batched() -> None:
    answer = _Answer()
    await pump(_events(10), EventWriter(answer, 1.0), _nothing)  # type: ignore[arg-type]
    assert answer.writes[0].count(b"event: delta") == 1
    assert len(answer.writes) < 10
    assert b"".join(answer.writes).count(b"event: delta") == 10


async def test_events_that_must_be_waited_for_are_not_held_back() -> None:
    answer = _Answer()
    await pump(_events(4, gap=0.01), EventWriter(answer, 1.0), _nothing)  # type: ignore[arg-type]
    assert [w.count(b"event: delta") for w in answer.writes] == [1, 1, 1, 1]


async def test_batches_are_bounded() -> None:
    answer = _Answer()
    await pump(_events(100, size=BATCH_BYTES // 10), EventWriter(answer, 1.0),  # type: ignore[arg-type]
               _nothing)
    assert max(len(w) for w in answer.writes) < 2 * BATCH_BYTES


async def test_a_write_that_hangs_times_out() -> None:
    with pytest.raises(TimeoutError):
        await pump(_events(3), EventWriter(_Answer(block=True), 0.05), _nothing)  # type: ignore[arg-type]


async def test_error_after_events_keeps_them_and_adds_error_event() -> None:
    answer = _Answer()
    writer = EventWriter(answer, 1.0)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError):
        await pump(_events(3, fail=RuntimeError("cut")), writer, _nothing)
    await writer.end_with_error(ApiError(502, "cut", "server_error", None, "upstream_error"))
    text = b"".join(answer.writes).decode()
    assert text.count("event: delta") == 3 and text.endswith("\n\n")
    last = json.loads(text.rstrip().rsplit("data: ", 1)[1])
    assert last == {"type": "error", "code": "upstream_error", "message": "cut",
                    "param": None, "sequence_number": 3}
