"""``Router.inspect()``: each deployment's live state, over real loopback upstreams."""

from __future__ import annotations

import asyncio

import pytest

from router.clock import ManualClock
from router.inspection import DeploymentState
from tests.conftest import InOrder, openai_dep, wait_until


async def test_a_fresh_router_reports_every_deployment_healthy_and_idle(upstreams, make_router):
    a, b, c = await upstreams("a", "b", "c")
    router = make_router([openai_dep(a), openai_dep(b), openai_dep(c, "other")])
    states = router.inspect()
    assert [s.deployment_id for s in states] == ["a", "b", "c"]
    assert states[0] == DeploymentState(
        deployment_id="a", model_group="gpt-4o", provider="openai", healthy=True,
        cooldown_until=None, cooldown_remaining=None, cooldown_reason=None,
        cooldown_status=None, cooldown_times=None, in_flight=0, requests=0, tokens=0,
        latency=None, ttft=None, peak_latency=None)
    assert [s.deployment_id for s in router.inspect("other")] == ["c"]


async def test_a_cooling_deployment_says_until_when_and_why(upstreams, make_router):
    a, b = await upstreams("a", "b")
    a.faults.fail(429, retry_after=40, times=1)
    clock = ManualClock()
    router = make_router([openai_dep(a), openai_dep(b)], clock=clock,
                         routing_strategy=InOrder(), num_retries=1)
    await router.aresponses(model="gpt-4o", input="hi")
    clock.advance(10)
    cooling, healthy = router.inspect()
    assert not cooling.healthy and healthy.healthy
    assert cooling.cooldown_until == pytest.approx(clock.wall() + 30)
    assert cooling.cooldown_remaining == pytest.approx(30)
    assert (cooling.cooldown_reason, cooling.cooldown_status, cooling.cooldown_times) == (
        "RateLimitError", 429, 1)
    clock.advance(31)
    assert router.inspect()[0].healthy


async def test_in_flight_latency_and_this_minutes_usage(upstreams, make_router):
    (up,) = await upstreams("a")
    router = make_router([openai_dep(up)])
    answer = await router.aresponses(model="gpt-4o", input="one two three")
    [state] = router.inspect()
    assert (state.requests, state.tokens) == (1, answer.usage.total_tokens)
    assert state.latency is not None and state.latency > 0
    assert state.in_flight == 0
    up.faults.hang()
    task = asyncio.create_task(router.aresponses(model="gpt-4o", input="hi"))
    assert await wait_until(lambda: bool(len(up.requests) >= 2))  # the upstream holds the request
    assert router.inspect()[0].in_flight == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert router.inspect()[0].in_flight == 0


async def test_a_stream_reports_its_time_to_first_token(upstreams, make_router):
    (up,) = await upstreams("a")
    router = make_router([openai_dep(up)])
    stream = await router.aresponses(model="gpt-4o", input="hi", stream=True)
    assert router.inspect()[0].in_flight == 1  # the stream holds its slot until its end
    async for _ in stream:
        pass
    [state] = router.inspect()
    assert state.ttft is not None and state.in_flight == 0
