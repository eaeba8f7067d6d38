"""Upstreams that hang, close the connection, or garble a stream half-way.

* The request's ``timeout`` bounds the whole call: each attempt gets only the
  time left, a retry that cannot start before the deadline is not started,
  and a backoff never sleeps past it.
* A connection closed before the first event (plain call or stream) is a
  :class:`ConnectionError` that fails over; after events reached the caller it
  is a :class:`StreamInterruptedError` from the iterator, never a clean end,
  and nothing is sent elsewhere. So are an SSE ``error`` event, a malformed
  event and a stall past ``stream_timeout`` in the middle of a stream.

Time bounds are generous upper limits only (see each test for why they are safe).
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import pytest

from router.clock import ManualClock
from router.errors import (
    ConnectionError,
    MalformedResponseError,
    ServerError,
    ServiceUnavailableError,
    StreamInterruptedError,
    TimeoutError,
)
from tests.conftest import InOrder, openai_dep
from tests.faults.conftest import PAUSE, attempts_of, created_event, error_event, wait_until


async def _consume(router: Any, **params: Any) -> tuple[list[str], Any]:
    """Open a stream and read it; the event types received and the error raised (or None)."""
    stream = await router.aresponses(model="gpt-4o", input="x", stream=True, **params)
    types: list[str] = []
    try:
        async for event in stream:
            types.append(event.type)
    except StreamInterruptedError as exc:
        return types, exc
    return types, None


# --------------------------------------------------------------------------- deadlines


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_each_attempt_gets_only_the_time_left(upstreams, make_router, stream):
    """``a`` hangs for its own 0.3 s attempt timeout; ``b`` hangs with none, so only the
    request's deadline can end its attempt; ``c`` would serve but is never reached.
    Bound: the deadline is 1 s; 2.5 s leaves 1.5 s for a loaded machine."""
    a, b, c = await upstreams("a", "b", "c")
    a.faults.hang()
    b.faults.hang()
    router = make_router([openai_dep(a, timeout=0.3), openai_dep(b), openai_dep(c)],
                         routing_strategy=InOrder(), num_retries=5)

    started = time.monotonic()
    with pytest.raises(TimeoutError) as info:
        await router.aresponses(model="gpt-4o", input="x", stream=stream, timeout=1.0)
    elapsed = time.monotonic() - started

    assert elapsed < 2.5
    assert attempts_of(info.value.trail) == [
        ("gpt-4o", "a", "TimeoutError"), ("gpt-4o", "b", "TimeoutError"),
    ]
    assert c.hits == 0  # no retry started past the deadline


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_an_attempt_that_uses_up_the_deadline_starts_no_retry(upstreams, make_router,
                                                                   stream):
    """Bound: 0.5 s deadline, 2 s upper limit."""
    a, b = await upstreams("a", "b")
    a.faults.hang()
    router = make_router([openai_dep(a), openai_dep(b)], routing_strategy=InOrder(),
                         num_retries=3)

    started = time.monotonic()
    with pytest.raises(TimeoutError) as info:
        await router.aresponses(model="gpt-4o", input="x", stream=stream, timeout=0.5)

    assert time.monotonic() - started < 2.0
    assert attempts_of(info.value.trail) == [("gpt-4o", "a", "TimeoutError")]
    assert b.hits == 0


async def test_backoff_never_sleeps_past_the_deadline(upstreams, make_router):
    """One deployment answering 503 forever, many retries allowed: the backoffs
    (on the manual clock) stop before the deadline, and the caller gets the
    upstream's error, not a generic timeout."""
    (solo,) = await upstreams("solo")
    solo.faults.fail(503)
    clock = ManualClock()
    router = make_router([openai_dep(solo)], num_retries=50, retry_budget=False,
                         clock=clock, rng=random.Random(3))

    with pytest.raises(ServiceUnavailableError) as info:
        await router.aresponses(model="gpt-4o", input="x", timeout=4.0)

    assert sum(clock.slept) < 4.0
    assert 1 < len(clock.slept) < 50  # stopped by the deadline, not by num_retries
    assert solo.hits == len(info.value.trail.attempts) == len(clock.slept) + 1


# --------------------------------------------------------------------------- closed connections


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_connection_closed_before_the_answer_fails_over(upstreams, make_router, stream):
    """``a`` holds the request, then goes away: the router sees a broken connection
    and serves from ``b``."""
    a, b = await upstreams("a", "b")
    a.faults.hang()
    router = make_router([openai_dep(a), openai_dep(b)], routing_strategy=InOrder(),
                         num_retries=1)

    task = asyncio.create_task(
        router.aresponses(model="gpt-4o", input="x", stream=stream))
    assert await wait_until(lambda: a.hits == 1)
    await a.down()
    result = await task
    if stream:
        async with result:
            [event async for event in result]

    assert attempts_of(result.routing.trail) == [
        ("gpt-4o", "a", "ConnectionError"), ("gpt-4o", "b", None),
    ]
    assert b.hits == 1


@pytest.mark.parametrize("after", [1, 2, 5])
async def test_stream_cut_after_events_is_an_interruption(upstreams, make_router, after):
    a, b = await upstreams("a", "b", stream_chunks=4)
    a.faults.cut_stream(after_events=after)
    router = make_router([openai_dep(a), openai_dep(b)], routing_strategy=InOrder(),
                         num_retries=3)

    types, error = await _consume(router)

    assert isinstance(error, StreamInterruptedError)
    assert isinstance(error.__cause__, ConnectionError)
    assert error.deployment_id == "a" and error.model_group == "gpt-4o"
    assert 1 <= len(types) <= after and types[0] == "response.created"
    assert "response.completed" not in types
    assert b.hits == 0  # events reached the caller: never sent elsewhere


async def test_stream_cut_just_before_its_terminal_event_is_not_a_clean_end(upstreams,
                                                                             make_router):
    (a,) = await upstreams("a")
    router = make_router([openai_dep(a)], num_retries=2)
    full, error = await _consume(router)
    assert error is None and full[-1] == "response.completed"

    a.faults.cut_stream(after_events=len(full) - 1)
    types, error = await _consume(router)

    assert isinstance(error, StreamInterruptedError)
    assert "response.completed" not in types
    assert a.hits == 2  # not retried


async def test_a_stream_cut_mid_way_counts_toward_the_cooldown(upstreams, make_router):
    """A broken connection is ``counted`` in the error table, in a stream too: a
    deployment that cuts every stream half-way must leave the rotation."""
    a, b = await upstreams("a", "b")
    a.faults.cut_stream(after_events=2)
    router = make_router([openai_dep(a), openai_dep(b)], routing_strategy=InOrder(),
                         allowed_fails=0, cooldown_time=30)

    _, error = await _consume(router)

    assert isinstance(error, StreamInterruptedError)
    assert [c.deployment_id for c in router.cooldowns()] == ["a"]


# --------------------------------------------------------------------------- garbled streams


@pytest.mark.parametrize(("tail", "cause"), [
    pytest.param([error_event("server_error")], ServerError, id="error-event"),
    pytest.param([b"event: response.in_progress\ndata: {not json\n\n"], MalformedResponseError,
                 id="malformed-event"),
    pytest.param([], ConnectionError, id="eof-without-terminal-event"),
])
async def test_failure_after_the_first_event_is_raised_from_the_iterator(
    upstreams, make_router, scripted, tail, cause
):
    a = await scripted("a", [created_event(), *tail])
    (b,) = await upstreams("b")
    router = make_router([openai_dep(a), openai_dep(b)], routing_strategy=InOrder(),
                         num_retries=2)

    types, error = await _consume(router)

    assert types == ["response.created"]
    assert isinstance(error, StreamInterruptedError)
    assert type(error.__cause__) is cause
    assert error.trail is not None and attempts_of(error.trail) == [("gpt-4o", "a", None)]
    assert (a.hits, b.hits) == (1, 0)


async def test_stall_mid_stream_past_stream_timeout_is_an_interruption(upstreams, make_router,
                                                                      scripted):
    """Bound: stream_timeout 0.3 s; 2.5 s upper limit."""
    a = await scripted("a", [created_event(), PAUSE, {"type": "response.completed"}])
    (b,) = await upstreams("b")
    router = make_router([openai_dep(a), openai_dep(b)], routing_strategy=InOrder())

    started = time.monotonic()
    types, error = await _consume(router, stream_timeout=0.3)

    assert time.monotonic() - started < 2.5
    assert types == ["response.created"]
    assert isinstance(error, StreamInterruptedError)
    assert isinstance(error.__cause__, TimeoutError)
    assert b.hits == 0
