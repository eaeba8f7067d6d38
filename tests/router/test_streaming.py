"""Streams handed to the caller (router/streaming.py), driven by hand-made generators."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from router.clock import ManualClock
from router.errors import (
    ConnectionError,
    MalformedResponseError,
    StreamInterruptedError,
    UpstreamError,
)
from router.load import LoadHandle, LoadTracker
from router.streaming import ResponseStream
from router.types import AttemptTrail, RoutingInfo, StreamEvent


def _ev(kind: str, **fields: Any) -> StreamEvent:
    return StreamEvent({"type": kind, **fields})


def _final(text: str = "hi") -> dict[str, Any]:
    return {"id": "resp_1", "status": "completed", "output": [
        {"type": "message", "content": [{"type": "output_text", "text": text}]}]}


CREATED = _ev("response.created", response={"id": "resp_1", "status": "in_progress"})


class Upstream:
    """An async generator of events that remembers whether it was closed."""

    def __init__(self, events: list[StreamEvent], fail: Exception | None = None) -> None:
        self.events = events
        self.fail = fail
        self.closed = False
        self.yielded = 0

    async def run(self) -> AsyncIterator[StreamEvent]:
        try:
            for event in self.events:
                self.yielded += 1
                yield event
            if self.fail is not None:
                raise self.fail
        finally:
            self.closed = True


class Recorder:
    def __init__(self) -> None:
        self.seen: list[str] = []

    async def __call__(self, event: StreamEvent) -> None:
        self.seen.append(event.type)


def _stream(
    upstream: Upstream, *, first: StreamEvent = CREATED
) -> tuple[ResponseStream, LoadTracker, ManualClock, Recorder, LoadHandle]:
    clock = ManualClock()
    load = LoadTracker(clock)
    handle = load.acquire("d1")
    observe = Recorder()
    return ResponseStream(first, upstream.run(), handle, observe), load, clock, observe, handle


async def test_first_event_comes_first_then_the_rest() -> None:
    up = Upstream([_ev("response.output_text.delta", delta="h"),
                   _ev("response.completed", response=_final())])
    stream, _, _, observe, _ = _stream(up)
    assert up.yielded == 0  # nothing more read before the caller asks
    events = [e async for e in stream]
    assert [e.type for e in events] == [
        "response.created", "response.output_text.delta", "response.completed"]
    assert events[0] is CREATED
    # the router handles the first event itself; no later response.created: no call
    assert observe.seen == []


async def test_observer_sees_only_the_first_created_event_after_the_first() -> None:
    up = Upstream([CREATED, _ev("response.output_text.delta", delta="h"), CREATED,
                   _ev("response.completed", response=_final())])
    stream, _, _, observe, _ = _stream(up, first=_ev("response.queued"))
    events = [e async for e in stream]
    assert len(events) == 5
    assert observe.seen == ["response.created"]


async def test_terminal_event_releases_the_slot_and_sets_response() -> None:
    up = Upstream([_ev("response.completed", response=_final("done"))])
    stream, load, clock, _, _ = _stream(up)
    assert load.in_flight("d1") == 1
    assert stream.response is None
    assert (await stream.__anext__()).type == "response.created"
    assert load.in_flight("d1") == 1
    clock.advance(2.0)
    event = await stream.__anext__()
    assert event.type == "response.completed"
    # released at the terminal event, before the caller asks for the end
    assert load.in_flight("d1") == 0
    assert load.latency("d1") == pytest.approx(2.0)
    assert stream.response is not None
    assert stream.response.output_text == "done"
    with pytest.raises(StopAsyncIteration):
        await stream.__anext__()
    assert load.in_flight("d1") == 0
    assert up.closed


@pytest.mark.parametrize("kind", ["response.incomplete", "response.failed"])
async def test_other_terminal_events(kind: str) -> None:
    up = Upstream([_ev(kind, response={"id": "resp_1", "status": kind.split(".")[1]})])
    stream, load, _, _, _ = _stream(up)
    [e async for e in stream]
    assert load.in_flight("d1") == 0
    assert stream.response is not None and stream.response.id == "resp_1"


async def test_a_failed_response_event_counts_as_a_failure_not_a_latency_sample() -> None:
    failed = {"id": "resp_1", "status": "failed",
              "error": {"code": "server_error", "message": "boom"}}
    up = Upstream([_ev("response.failed", response=failed)])
    clock = ManualClock()
    load = LoadTracker(clock)
    seen: list[UpstreamError] = []
    stream = ResponseStream(CREATED, up.run(), load.acquire("d1"), None, seen.append)
    stream.routing = RoutingInfo("g", "d1", "mock", AttemptTrail("g"))
    clock.advance(1.0)
    kinds = [e.type async for e in stream]
    assert kinds == ["response.created", "response.failed"]  # passed on, as before
    assert [type(e).__name__ for e in seen] == ["ServerError"]
    assert seen[0].deployment_id == "d1"
    assert load.in_flight("d1") == 0
    assert load.latency("d1") is None  # a failure feeds no latency sample


async def test_response_carries_routing_when_set() -> None:
    up = Upstream([_ev("response.completed", response=_final())])
    stream, _, _, _, _ = _stream(up)
    routing = RoutingInfo("g", "d1", "mock", AttemptTrail("g"))
    stream.routing = routing
    [e async for e in stream]
    assert stream.response is not None and stream.response.routing is routing


@pytest.mark.parametrize("error", [
    ConnectionError("cut", model_group="g", deployment_id="d1"),
    MalformedResponseError("junk", model_group="g", deployment_id="d1"),
], ids=lambda e: type(e).__name__)
async def test_upstream_error_after_first_event_is_an_interruption(error: Exception) -> None:
    up = Upstream([_ev("response.output_text.delta", delta="h")], fail=error)
    stream, load, clock, _, _ = _stream(up)
    trail = AttemptTrail("g")
    stream.routing = RoutingInfo("g", "d1", "mock", trail)
    seen: list[str] = []
    clock.advance(1)
    with pytest.raises(StreamInterruptedError) as info:
        async for event in stream:
            seen.append(event.type)
    assert seen == ["response.created", "response.output_text.delta"]
    err = info.value
    assert err.__cause__ is error
    assert (err.model_group, err.deployment_id) == ("g", "d1")
    assert err.trail is trail
    assert load.in_flight("d1") == 0
    assert load.latency("d1") is None  # a failure is not a latency sample
    assert stream.response is None
    assert up.closed
    with pytest.raises(StopAsyncIteration):
        await stream.__anext__()


async def test_foreign_exception_is_raised_as_is_and_releases() -> None:
    up = Upstream([], fail=KeyError("oops"))
    stream, load, _, _, _ = _stream(up)
    await stream.__anext__()
    with pytest.raises(KeyError):
        await stream.__anext__()
    assert load.in_flight("d1") == 0


async def test_aclose_releases_and_closes_the_generator() -> None:
    up = Upstream([_ev("response.output_text.delta", delta=str(i)) for i in range(10)])
    stream, load, _, _, _ = _stream(up)
    await stream.__anext__()
    await stream.__anext__()
    assert up.yielded == 1 and not up.closed
    await stream.aclose()
    assert up.closed
    assert load.in_flight("d1") == 0
    assert load.latency("d1") is None  # closed before the end: not a success
    await stream.aclose()  # idempotent
    assert load.in_flight("d1") == 0
    with pytest.raises(StopAsyncIteration):
        await stream.__anext__()
    assert up.yielded == 1


async def test_close_before_reading_drops_the_pending_first_event() -> None:
    up = Upstream([_ev("response.completed", response=_final())])
    stream, load, _, _, _ = _stream(up)
    await stream.aclose()
    assert [e async for e in stream] == []
    assert load.in_flight("d1") == 0


async def test_async_with_closes() -> None:
    up = Upstream([_ev("response.output_text.delta", delta="x")] * 3)
    stream, load, _, _, _ = _stream(up)
    async with stream as s:
        assert s is stream
        await s.__anext__()
        await s.__anext__()
    assert up.closed
    assert load.in_flight("d1") == 0


async def test_aclose_after_completion_keeps_the_success() -> None:
    up = Upstream([_ev("response.completed", response=_final())])
    stream, load, clock, _, _ = _stream(up)
    clock.advance(1.5)
    await stream.__anext__()
    await stream.__anext__()
    await stream.aclose()
    assert load.in_flight("d1") == 0
    assert load.latency("d1") == pytest.approx(1.5)
