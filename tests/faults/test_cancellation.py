"""The caller gives up: ``task.cancel()`` at every point of a call, and streams left early.

Cancelled while waiting on the upstream, during a retry's backoff, while a
stream is being opened, while it is iterated, while waiting for a free slot
(``max_parallel_requests``), while waiting for a cooled deployment
(``panic_mode: wait``), and many calls cancelled at once: the caller gets
``CancelledError``, nothing is retried afterwards, and the leak check of
``conftest.py`` (no load, no connection in use, no task left) holds after each.
"""

from __future__ import annotations

import asyncio
import gc
import random
from typing import Any

import pytest

from router.clock import ManualClock
from router.errors import RateLimitError
from tests.conftest import InOrder, openai_dep
from tests.faults.conftest import (
    PAUSE,
    connections_in_use,
    created_event,
    wait_until,
)


class BlockingClock(ManualClock):
    """A manual clock whose ``sleep`` never returns: ``sleeping`` is set once a sleep starts."""

    def __init__(self) -> None:
        super().__init__()
        self.sleeping = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.sleeping.set()
        await asyncio.Event().wait()


def in_flight(router: Any) -> int:
    return int(router.services.load.total_in_flight())


async def _cancelled(task: asyncio.Task[Any]) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def _read_all(router: Any, **params: Any) -> list[str]:
    stream = await router.aresponses(model="gpt-4o", input="x", stream=True, **params)
    return [event.type async for event in stream]


def _call(router: Any, stream: bool, **params: Any) -> asyncio.Task[Any]:
    if stream:
        return asyncio.create_task(_read_all(router, **params))
    return asyncio.create_task(router.aresponses(model="gpt-4o", input="x", **params))


# --------------------------------------------------------------------------- points of a call


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_cancel_while_waiting_on_the_upstream(upstreams, make_router, stream):
    a, b = await upstreams("a", "b")
    a.faults.hang()
    router = make_router([openai_dep(a), openai_dep(b)], routing_strategy=InOrder())

    task = _call(router, stream)
    assert await wait_until(lambda: a.hits == 1)
    assert in_flight(router) == 1 and connections_in_use(router) == 1
    await _cancelled(task)

    assert in_flight(router) == 0
    assert router.cooldowns() == []  # the caller's cancellation is not the upstream's fault
    assert b.hits == 0  # and is not retried elsewhere
    a.faults.clear()
    served = await router.aresponses(model="gpt-4o", input="again")
    assert served.routing.deployment_id == "a"


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_cancel_during_backoff(upstreams, make_router, stream):
    (solo,) = await upstreams("solo")
    solo.faults.fail(503)
    clock = BlockingClock()
    router = make_router([openai_dep(solo)], num_retries=3, clock=clock)

    task = _call(router, stream)
    await asyncio.wait_for(clock.sleeping.wait(), 5.0)
    assert in_flight(router) == 0  # the failed attempt gave its slot back before waiting
    await _cancelled(task)

    assert solo.hits == 1  # the retry never went
    assert len(clock.slept) == 1


async def test_cancel_while_iterating_a_stream(upstreams, make_router, scripted):
    a = await scripted("a", [created_event(), PAUSE, {"type": "response.completed"}])
    (b,) = await upstreams("b")
    router = make_router([openai_dep(a), openai_dep(b)], routing_strategy=InOrder())
    received: list[str] = []

    async def read() -> None:
        stream = await router.aresponses(model="gpt-4o", input="x", stream=True)
        async for event in stream:
            received.append(event.type)

    task = asyncio.create_task(read())
    await asyncio.wait_for(a.paused.wait(), 5.0)
    assert await wait_until(lambda: received == ["response.created"])
    assert in_flight(router) == 1
    await _cancelled(task)

    assert in_flight(router) == 0
    assert connections_in_use(router) == 0
    assert b.hits == 0 and router.cooldowns() == []


async def test_cancel_while_waiting_for_a_free_slot(upstreams, make_router):
    (solo,) = await upstreams("solo")
    solo.faults.hang(times=1)
    router = make_router([openai_dep(solo, max_parallel_requests=1)])

    holder = _call(router, False)
    assert await wait_until(lambda: solo.hits == 1)
    waiter = _call(router, False)
    assert await wait_until(lambda: bool(router.services.load._waiters))  # waits for a slot
    assert solo.hits == 1 and in_flight(router) == 1
    await _cancelled(waiter)
    await _cancelled(holder)

    assert in_flight(router) == 0
    served = await router.aresponses(model="gpt-4o", input="x")  # the slot is free again
    assert served.routing.deployment_id == "solo"


async def test_cancel_while_waiting_for_a_cooled_deployment(upstreams, make_router):
    a, b = await upstreams("a", "b")
    a.faults.fail(429, retry_after=20, times=1)
    b.faults.fail(429, retry_after=10, times=1)
    clock = BlockingClock()
    router = make_router([openai_dep(a), openai_dep(b)], routing_strategy=InOrder(),
                         num_retries=1, panic_mode="wait", clock=clock)
    with pytest.raises(RateLimitError):
        await router.aresponses(model="gpt-4o", input="x")
    assert {c.deployment_id for c in router.cooldowns()} == {"a", "b"}

    task = _call(router, False, timeout=60)
    await asyncio.wait_for(clock.sleeping.wait(), 5.0)
    assert clock.slept == [pytest.approx(10.0)]  # waiting for b, the first to recover
    await _cancelled(task)
    assert (a.hits, b.hits) == (1, 1)


async def test_many_calls_cancelled_at_random_points(upstreams, make_router):
    """Timing decides where each cancellation lands (the first lands before its call
    starts); wherever it is, a cancelled call ends in CancelledError and nothing leaks."""
    a, b, c = await upstreams("a", "b", "c", latency=0.05, stream_chunks=8)
    b.faults.fail(503, rate=0.5, seed=2)
    router = make_router([openai_dep(u) for u in (a, b, c)], rng=random.Random(9),
                         allowed_fails=1000)
    rng = random.Random(5)

    tasks = [_call(router, i % 2 == 1) for i in range(24)]
    cancelled = [tasks[0].cancel()]
    for task in tasks[1:]:
        await asyncio.sleep(rng.uniform(0, 0.005))
        cancelled.append(rng.random() < 0.7 and task.cancel())
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)

    assert cancelled[0]
    for was_cancelled, outcome in zip(cancelled, outcomes, strict=True):
        if was_cancelled:  # never swallowed, never turned into another error
            assert isinstance(outcome, asyncio.CancelledError)
        else:
            assert isinstance(outcome, list) or outcome.status == "completed"
    assert in_flight(router) == 0


# --------------------------------------------------------------------------- leaving a stream


async def test_aclose_mid_stream_then_the_connection_is_reused(upstreams, make_router):
    (up,) = await upstreams("solo", stream_chunks=16)
    router = make_router([openai_dep(up)])

    stream = await router.aresponses(model="gpt-4o", input="x", stream=True)
    async for event in stream:
        if event.type == "response.output_text.delta":
            break
    await stream.aclose()

    assert in_flight(router) == 0 and connections_in_use(router) == 0
    assert len(await _read_all(router)) > 3


async def test_a_stream_abandoned_without_aclose_gives_its_slot_back(upstreams, make_router):
    (up,) = await upstreams("solo", stream_chunks=16)
    router = make_router([openai_dep(up)])

    async def read_one() -> None:
        stream = await router.aresponses(model="gpt-4o", input="x", stream=True)
        async for _ in stream:
            break  # the caller walks away without aclose() or `async with`

    await read_one()
    gc.collect()

    assert await wait_until(lambda: in_flight(router) == 0, timeout=1.0)
