"""Streaming through the Router over real Server-Sent Events.

A stream may be retried or failed over only before its first event reaches
the caller; after that an upstream failure is raised from the iterator as
:class:`StreamInterruptedError`, never as a clean end. The stream holds its
deployment's load slot until it ends, fails or is closed.
"""

from __future__ import annotations

import random
import time
from typing import Any

import pytest
from openai.types.responses import Response as OpenAIResponse

from router.errors import (
    ConnectionError,
    MalformedResponseError,
    ServiceUnavailableError,
    StreamInterruptedError,
    UpstreamError,
)
from router.streaming import ResponseStream, SyncResponseStream
from tests.conftest import InOrder, openai_dep


def in_flight(router: Any) -> int:
    return router.services.load.total_in_flight()


async def test_stream_events_in_order_with_attribute_access(upstreams, make_router):
    (up,) = await upstreams("east")
    router = make_router([openai_dep(up)])

    stream = await router.aresponses(model="gpt-4o", input="stream this", stream=True)
    assert isinstance(stream, ResponseStream)
    assert stream.routing.deployment_id == "east"
    assert stream.routing.model_group == "gpt-4o"
    assert stream.response is None

    events = []
    async for event in stream:
        events.append(event)
        if event.type == "response.output_text.delta":
            assert in_flight(router) == 1  # the slot is held while the stream runs

    types = [e.type for e in events]
    assert types[0] == "response.created"
    assert types[1] == "response.in_progress"
    assert types[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert len(deltas) >= 2
    text = "".join(deltas)
    assert text == "[east] turn 1: stream this"
    done = next(e for e in events if e.type == "response.output_text.done")
    assert done.text == text and done.item_id == events[-1].response.output[0].id
    assert events[0].response.status == "in_progress"

    assert stream.response is not None
    assert stream.response.output_text == text
    assert stream.response.status == "completed"
    assert stream.response.id == events[0].response.id
    OpenAIResponse.model_validate(stream.response.model_dump())
    assert in_flight(router) == 0


async def test_streamed_response_is_owned_by_its_deployment(upstreams, make_router):
    west, east = await upstreams("west", "east")
    router = make_router([openai_dep(west), openai_dep(east)], routing_strategy=InOrder())

    stream = await router.aresponses(model="gpt-4o", input="first", stream=True)
    async with stream:
        first = None
        async for event in stream:
            if event.type == "response.created":
                first = event.response.id
    got = await router.aget_responses(first)

    assert got.routing.deployment_id == "west"
    assert got.output_text == "[west] turn 1: first"
    assert east.hits == 0  # the owner was recorded from response.created: no discovery


async def test_stream_fails_over_before_the_first_event(upstreams, make_router):
    a, b = await upstreams("a", "b")
    a.faults.fail(503)
    router = make_router([openai_dep(a), openai_dep(b)], routing_strategy=InOrder(),
                         num_retries=1)

    stream = await router.aresponses(model="gpt-4o", input="x", stream=True)
    events = [event async for event in stream]

    assert stream.routing.deployment_id == "b"
    assert [(x.deployment_id, x.error) for x in stream.routing.attempts] == [
        ("a", "ServiceUnavailableError"), ("b", None),
    ]
    assert events[0].type == "response.created"
    assert stream.response.output_text.startswith("[b] turn 1")
    assert (a.hits, b.hits) == (1, 1)
    assert in_flight(router) == 0


async def test_stream_cut_before_any_event_is_retried(upstreams, make_router):
    a, b = await upstreams("a", "b")
    a.faults.cut_stream(after_events=0)
    router = make_router([openai_dep(a), openai_dep(b)], routing_strategy=InOrder(),
                         num_retries=1)

    stream = await router.aresponses(model="gpt-4o", input="x", stream=True)
    types = [event.type async for event in stream]

    assert stream.routing.deployment_id == "b"
    assert stream.routing.attempts[0].deployment_id == "a"
    assert stream.routing.attempts[0].error is not None
    assert types[-1] == "response.completed"
    assert in_flight(router) == 0


async def test_stream_falls_back_to_another_group_before_the_first_event(upstreams,
                                                                          make_router):
    a, mini = await upstreams("a", "mini")
    a.faults.fail(500)
    router = make_router(
        [openai_dep(a), openai_dep(mini, "gpt-4o-mini", model="openai/gpt-4o-mini")],
        num_retries=0, fallbacks=[{"gpt-4o": ["gpt-4o-mini"]}],
    )

    stream = await router.aresponses(model="gpt-4o", input="x", stream=True)
    async with stream:
        [event async for event in stream]

    assert stream.routing.fallbacks == ["gpt-4o-mini"]
    assert stream.routing.model_group == "gpt-4o-mini"
    assert stream.response.model == "gpt-4o-mini"


async def test_stream_cut_after_first_event_raises_from_the_iterator(upstreams, make_router):
    a, b = await upstreams("a", "b")
    a.faults.cut_stream(after_events=3)
    router = make_router([openai_dep(a), openai_dep(b)], routing_strategy=InOrder(),
                         num_retries=2)

    stream = await router.aresponses(model="gpt-4o", input="x", stream=True)
    received = []
    with pytest.raises(StreamInterruptedError) as info:
        async for event in stream:
            received.append(event.type)

    sent = ["response.created", "response.in_progress", "response.output_item.added"]
    # The abort may discard events still in flight: a prefix of what was sent.
    assert 1 <= len(received) <= 3 and received == sent[: len(received)]
    err = info.value
    assert isinstance(err.__cause__, UpstreamError)
    assert err.deployment_id == "a"
    assert err.model_group == "gpt-4o"
    assert err.trail is not None and err.trail.attempts[0].deployment_id == "a"
    assert stream.response is None
    assert b.hits == 0  # never failed over once events reached the caller
    assert in_flight(router) == 0
    with pytest.raises(StopAsyncIteration):  # the stream stays finished
        await stream.__anext__()


async def test_malformed_stream_is_an_error(upstreams, make_router):
    (up,) = await upstreams("solo")
    up.faults.malformed()
    router = make_router([openai_dep(up)], num_retries=0)

    with pytest.raises(MalformedResponseError) as info:
        await router.aresponses(model="gpt-4o", input="x", stream=True)

    assert info.value.deployment_id == "solo"
    assert len(info.value.trail.attempts) == 1
    assert in_flight(router) == 0


async def test_malformed_stream_fails_over(upstreams, make_router):
    a, b = await upstreams("a", "b")
    a.faults.malformed()
    router = make_router([openai_dep(a), openai_dep(b)], routing_strategy=InOrder(),
                         num_retries=1)

    stream = await router.aresponses(model="gpt-4o", input="x", stream=True)
    [event async for event in stream]

    assert [(x.deployment_id, x.error) for x in stream.routing.attempts] == [
        ("a", "MalformedResponseError"), ("b", None),
    ]
    assert in_flight(router) == 0


async def test_stream_every_deployment_failing_raises_before_iteration(upstreams,
                                                                      make_router):
    a, b = await upstreams("a", "b")
    a.faults.fail(503)
    b.faults.fail(503)
    router = make_router([openai_dep(a), openai_dep(b)], num_retries=1)

    with pytest.raises(ServiceUnavailableError) as info:
        await router.aresponses(model="gpt-4o", input="x", stream=True)

    assert len(info.value.trail.attempts) == 2
    assert a.hits + b.hits == 2
    assert in_flight(router) == 0


async def test_stream_to_a_dead_upstream_fails_over(upstreams, make_router):
    a, b = await upstreams("a", "b")
    await a.down()
    router = make_router([openai_dep(a), openai_dep(b)], routing_strategy=InOrder(),
                         num_retries=1)

    stream = await router.aresponses(model="gpt-4o", input="x", stream=True)
    [event async for event in stream]

    assert stream.routing.attempts[0].error == ConnectionError.__name__
    assert stream.routing.deployment_id == "b"


async def test_breaking_out_and_aclose_release_the_slot(upstreams, make_router):
    (up,) = await upstreams("east", stream_chunks=8)
    router = make_router([openai_dep(up)])

    stream = await router.aresponses(model="gpt-4o", input="x", stream=True)
    async for event in stream:
        if event.type == "response.output_text.delta":
            break
    assert in_flight(router) == 1
    await stream.aclose()
    assert in_flight(router) == 0
    await stream.aclose()  # idempotent
    assert in_flight(router) == 0
    assert stream.response is None

    # the router still serves normally afterwards (the connection was not left half-read)
    again = await router.aresponses(model="gpt-4o", input="y")
    assert again.output_text == "[east] turn 1: y"


async def test_async_with_stream_releases_the_slot_on_early_exit(upstreams, make_router):
    (up,) = await upstreams("east")
    router = make_router([openai_dep(up)])

    async with await router.aresponses(model="gpt-4o", input="x", stream=True) as stream:
        first = await stream.__anext__()
        assert first.type == "response.created"
        assert in_flight(router) == 1
    assert in_flight(router) == 0


async def test_many_streams_leave_no_load_behind(upstreams, make_router):
    a, b = await upstreams("a", "b")
    b.faults.cut_stream(after_events=2, rate=0.5, seed=3)
    router = make_router([openai_dep(a), openai_dep(b)], num_retries=0, rng=random.Random(5))

    outcomes = {"ok": 0, "cut": 0}
    for i in range(12):
        stream = await router.aresponses(model="gpt-4o", input=f"n{i}", stream=True)
        try:
            [event async for event in stream]
            outcomes["ok"] += 1
        except StreamInterruptedError:
            outcomes["cut"] += 1
    assert outcomes["ok"] >= 1 and outcomes["cut"] >= 1
    assert in_flight(router) == 0


async def test_stream_timeout_with_a_hanging_upstream(upstreams, make_router):
    (up,) = await upstreams("solo")
    up.faults.hang()
    router = make_router([openai_dep(up)], num_retries=2)

    started = time.monotonic()
    with pytest.raises(UpstreamError):
        await router.aresponses(model="gpt-4o", input="x", stream=True, timeout=0.4)

    assert time.monotonic() - started < 0.9
    assert in_flight(router) == 0


async def test_per_request_stream_timeout_bounds_the_wait_for_events(upstreams, make_router):
    a, b = await upstreams("a", "b")
    a.faults.slow(0.8)
    router = make_router([openai_dep(a), openai_dep(b)], routing_strategy=InOrder(),
                         num_retries=1)

    started = time.monotonic()
    stream = await router.aresponses(model="gpt-4o", input="x", stream=True,
                                     stream_timeout=0.2)
    [event async for event in stream]

    assert time.monotonic() - started < 0.7
    assert [(x.deployment_id, x.error) for x in stream.routing.attempts] == [
        ("a", "TimeoutError"), ("b", None),
    ]
    assert "stream_timeout" not in b.requests[0].json


async def test_router_stream_timeout_setting_bounds_the_wait_for_events(upstreams,
                                                                        make_router):
    a, b = await upstreams("a", "b")
    a.faults.slow(0.8)
    router = make_router([openai_dep(a), openai_dep(b)], routing_strategy=InOrder(),
                         num_retries=1, stream_timeout=0.2)

    started = time.monotonic()
    stream = await router.aresponses(model="gpt-4o", input="x", stream=True)
    [event async for event in stream]

    assert time.monotonic() - started < 0.7
    assert stream.routing.deployment_id == "b"


async def test_stream_with_failed_response_passes_the_terminal_event(upstreams, make_router):
    (up,) = await upstreams("solo")
    up.faults.failed_response(code="server_error", message="model broke")
    router = make_router([openai_dep(up)])

    stream = await router.aresponses(model="gpt-4o", input="x", stream=True)
    types = [event.type async for event in stream]

    assert types[-1] == "response.failed"
    assert stream.response.status == "failed"
    assert stream.response.error.code == "server_error"
    assert in_flight(router) == 0


async def test_mock_response_stream(upstreams, make_router):
    (up,) = await upstreams("east")
    router = make_router([openai_dep(up)])

    stream = await router.aresponses(model="gpt-4o", input="x", stream=True,
                                     mock_response="one two three")
    deltas = [e.delta async for e in stream if e.type == "response.output_text.delta"]

    assert "".join(deltas) == "one two three"
    assert stream.response.output_text == "one two three"
    assert up.hits == 0


def test_sync_stream_iteration(threaded_upstreams, make_router):
    a, b = threaded_upstreams("a", "b")
    a.faults.fail(503)
    router = make_router([openai_dep(a), openai_dep(b)], routing_strategy=InOrder(),
                         num_retries=1)

    stream = router.responses(model="gpt-4o", input="sync stream", stream=True)
    assert isinstance(stream, SyncResponseStream)
    events = list(stream)

    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[-1].type == "response.completed"
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == "[b] turn 1: sync stream"
    assert stream.response.output_text == text
    assert stream.routing.deployment_id == "b"
    assert router.services.load.total_in_flight() == 0


def test_sync_stream_close_and_interruption(threaded_upstreams, make_router):
    (up,) = threaded_upstreams("solo")
    router = make_router([openai_dep(up)])

    with router.responses(model="gpt-4o", input="x", stream=True) as stream:
        assert next(iter(stream)).type == "response.created"
        assert router.services.load.total_in_flight() == 1
    assert router.services.load.total_in_flight() == 0

    up.faults.cut_stream(after_events=2)
    stream = router.responses(model="gpt-4o", input="x", stream=True)
    seen = []
    with pytest.raises(StreamInterruptedError):
        for event in stream:
            seen.append(event.type)
    # The upstream aborts after two events; the reset may discard the second
    # before it is read, so the caller sees one or two, then the error.
    assert seen in (["response.created"], ["response.created", "response.in_progress"])
    assert router.services.load.total_in_flight() == 0
