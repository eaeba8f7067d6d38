"""What each hook's event says, through a real Router.

One test per hook and per way a request ends: served, failed before or
after routing, retried, fallen back, a deployment cooling down, streams that
complete, break, are closed early or are cancelled, and the sync twin. Cost
figures are hand-computed (see tests/router/test_cost.py for the arithmetic).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from router.clock import ManualClock
from router.errors import (
    BadRequestError,
    InvalidRequestError,
    ServerError,
    StreamInterruptedError,
    UnknownModelError,
)
from router.events import (
    CooldownEvent,
    EndUser,
    FailureEvent,
    FallbackEvent,
    RetryEvent,
    SuccessEvent,
)
from tests.conftest import InOrder, openai_dep

PRICED = {"input_cost_per_token": 2.5e-6, "output_cost_per_token": 1e-5,
          "cache_read_input_token_cost": 1.25e-6}
# 1,000 x 2.5e-6 + 200 x 1.25e-6 + 300 x 1e-5 = 0.00575
USAGE = {"input_tokens": 1200, "input_tokens_details": {"cached_tokens": 200},
         "output_tokens": 300, "output_tokens_details": {"reasoning_tokens": 0},
         "total_tokens": 1500}
USAGE_COST = 0.00575


class Recorder:
    """A callback that keeps every event (a plain callable: it gets every hook)."""

    def __init__(self) -> None:
        self.events: list[Any] = []

    def __call__(self, event: Any) -> None:
        self.events.append(event)

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


def mock_dep(name: str, group: str = "m", **info: Any) -> dict[str, Any]:
    return {"model_name": group, "litellm_params": {"model": "mock/x"},
            "model_info": {"id": name, **info}}


async def test_a_served_request_reports_where_what_and_who(make_router):
    rec = Recorder()
    router = make_router([mock_dep("m1", **PRICED)], callbacks=[rec], clock=ManualClock())
    answer = await router.aresponses(
        model="m", input="one two three", user="u-7", safety_identifier="s-9",
        metadata={"team": "search"})
    await router.drain_callbacks()
    [event] = rec.events
    assert isinstance(event, SuccessEvent)
    assert (event.requested_model, event.model_group, event.deployment_id, event.provider) == (
        "m", "m", "m1", "mock")
    assert (event.attempt, event.stream, event.ttft, event.latency) == (1, False, None, 0.0)
    assert (event.usage.input_tokens, event.usage.output_tokens) == (3, 5)
    # 3 x 2.5e-6 + 5 x 1e-5 = 0.0000575
    assert event.cost == pytest.approx(5.75e-5, rel=1e-12)
    assert answer.routing.cost == event.cost
    assert event.response_id == answer.id
    assert event.response_status == "completed"
    assert event.end_user == EndUser("u-7", "s-9", {"team": "search"})
    assert event.trail is answer.routing.trail


async def test_a_deployment_without_prices_costs_none(make_router):
    rec = Recorder()
    router = make_router([mock_dep("m1")], callbacks=[rec])
    answer = await router.aresponses(model="m", input="hi")
    await router.drain_callbacks()
    assert answer.routing.cost is None
    assert rec.events[0].cost is None
    assert rec.events[0].usage is not None
    assert rec.events[0].end_user == EndUser()


async def test_cost_is_on_the_routing_even_without_callbacks(upstreams, make_router):
    (up,) = await upstreams("a", extra_fields={"usage": USAGE})
    router = make_router([openai_dep(up, model_info=PRICED)])
    answer = await router.aresponses(model="gpt-4o", input="hi")
    assert answer.routing.cost == pytest.approx(USAGE_COST, rel=1e-12)
    stream = await router.aresponses(model="gpt-4o", input="hi", stream=True)
    assert stream.routing.cost is None  # not known before the terminal event
    async for _ in stream:
        pass
    assert stream.routing.cost == pytest.approx(USAGE_COST, rel=1e-12)
    assert stream.response.routing.cost == stream.routing.cost


async def test_a_stream_is_costed_and_reported_at_its_terminal_event(upstreams, make_router):
    (up,) = await upstreams("a", extra_fields={"usage": USAGE})
    rec = Recorder()
    router = make_router([openai_dep(up, model_info=PRICED)], callbacks=[rec])
    stream = await router.aresponses(model="gpt-4o", input="hi", stream=True, user="u1")
    await router.drain_callbacks()
    assert rec.events == []  # not before its end
    types = [e.type async for e in stream]
    await router.drain_callbacks()
    [event] = rec.events
    assert types[-1] == "response.completed"
    assert isinstance(event, SuccessEvent)
    assert event.stream and event.ttft is not None and event.latency >= event.ttft
    assert event.usage.cached_tokens == 200
    assert event.cost == pytest.approx(USAGE_COST, rel=1e-12)
    assert event.response_id == stream.response.id
    assert event.end_user.user == "u1"
    await stream.aclose()  # closing after the end reports nothing more
    await router.drain_callbacks()
    assert len(rec.events) == 1


async def test_an_upstream_error_reports_a_failure(upstreams, make_router):
    (up,) = await upstreams("a")
    up.faults.fail(400, message="bad input")
    rec = Recorder()
    router = make_router([openai_dep(up)], callbacks=[rec])
    with pytest.raises(BadRequestError) as caught:
        await router.aresponses(model="gpt-4o", input="hi", user="u2")
    await router.drain_callbacks()
    [event] = rec.events
    assert isinstance(event, FailureEvent)
    assert (event.model_group, event.deployment_id, event.attempt) == ("gpt-4o", "a", 1)
    assert (event.error_class, event.status, event.message) == ("BadRequestError", 400,
                                                                "bad input")
    assert event.error is caught.value
    assert event.trail is caught.value.trail
    assert event.end_user.user == "u2"
    assert event.usage is None and event.cost is None


async def test_an_unknown_model_fails_without_a_deployment(make_router):
    rec = Recorder()
    router = make_router([mock_dep("m1")], callbacks=[rec])
    with pytest.raises(UnknownModelError):
        await router.aresponses(model="nope", input="hi")
    await router.drain_callbacks()
    [event] = rec.events
    assert (event.error_class, event.deployment_id, event.attempt) == (
        "UnknownModelError", None, 0)
    assert event.requested_model == event.model_group == "nope"


@pytest.mark.parametrize("stream", [False, True])
async def test_a_request_rejected_before_routing_reports_a_failure(make_router, stream):
    rec = Recorder()
    router = make_router([mock_dep("m1")], callbacks=[rec])
    with pytest.raises(InvalidRequestError, match=r"^timeout: "):
        await router.aresponses(model="m", input="hi", timeout=-1, stream=stream,
                                user="u-42")
    await router.drain_callbacks()
    [event] = rec.events
    assert isinstance(event, FailureEvent)
    assert (event.error_class, event.deployment_id, event.attempt) == (
        "InvalidRequestError", None, 0)
    assert event.requested_model == event.model_group == "m"
    assert event.stream is stream
    assert event.end_user.user == "u-42"
    assert "timeout" in (event.message or "")


async def test_a_request_without_a_model_reports_one_fixed_group(make_router):
    rec = Recorder()
    router = make_router([mock_dep("m1")], callbacks=[rec])
    for model in (None, "", 42):
        with pytest.raises(InvalidRequestError, match=r"^model: "):
            await router.aresponses(model=model, input="hi")
    await router.drain_callbacks()
    assert [(e.requested_model, e.model_group) for e in rec.events] == [
        ("<invalid>", "<invalid>")] * 3  # one metrics label, however it was wrong


async def test_a_retry_is_reported_before_the_success(upstreams, make_router):
    a, b = await upstreams("a", "b")
    a.faults.fail(500, times=1)
    rec = Recorder()
    router = make_router([openai_dep(a), openai_dep(b)], callbacks=[rec],
                         routing_strategy=InOrder(), num_retries=1)
    await router.aresponses(model="gpt-4o", input="hi", user="u3")
    await router.drain_callbacks()
    retry, success = rec.events
    assert isinstance(retry, RetryEvent)
    assert (retry.model_group, retry.deployment_id, retry.attempt) == ("gpt-4o", "a", 1)
    assert (retry.error_class, retry.status, retry.end_user.user) == ("ServerError", 500, "u3")
    assert retry.wait >= 0
    assert (success.deployment_id, success.attempt) == ("b", 2)
    assert [(x.deployment_id, x.error) for x in success.trail.attempts] == [
        ("a", "ServerError"), ("b", None)]


async def test_a_fallback_is_reported(upstreams, make_router):
    a, b = await upstreams("a", "b")
    a.faults.fail(500)
    rec = Recorder()
    router = make_router([openai_dep(a, "g1"), openai_dep(b, "g2")], callbacks=[rec],
                         num_retries=0, fallbacks=[{"g1": ["g2"]}])
    answer = await router.aresponses(model="g1", input="hi")
    await router.drain_callbacks()
    fallback, success = rec.events
    assert isinstance(fallback, FallbackEvent)
    assert (fallback.from_group, fallback.to_group, fallback.attempt, fallback.error_class) == (
        "g1", "g2", 1, "ServerError")
    assert (success.requested_model, success.model_group, success.deployment_id) == (
        "g1", "g2", "b")
    assert success.trail.fallbacks == ["g2"] == answer.routing.fallbacks


async def test_a_cooldown_is_reported(upstreams, make_router):
    a, b = await upstreams("a", "b")
    a.faults.fail(429, retry_after=30, times=1)
    rec = Recorder()
    clock = ManualClock()
    router = make_router([openai_dep(a), openai_dep(b)], callbacks=[rec], clock=clock,
                         routing_strategy=InOrder(), num_retries=1)
    await router.aresponses(model="gpt-4o", input="hi")
    await router.drain_callbacks()
    [cooldown] = rec.of(CooldownEvent)
    assert cooldown == CooldownEvent(
        deployment_id="a", model_group="gpt-4o", reason="RateLimitError", status=429,
        seconds=30.0, until_wall=clock.wall() + 30, times=1, origin=None)
    assert [type(e).__name__ for e in rec.events] == [
        "CooldownEvent", "RetryEvent", "SuccessEvent"]


async def test_a_stream_broken_after_its_first_event_reports_a_failure(upstreams, make_router):
    (up,) = await upstreams("a")
    up.faults.cut_stream(after_events=3)
    rec = Recorder()
    router = make_router([openai_dep(up)], callbacks=[rec])
    stream = await router.aresponses(model="gpt-4o", input="hi", stream=True)
    with pytest.raises(StreamInterruptedError) as caught:
        async for _ in stream:
            pass
    await router.drain_callbacks()
    [event] = rec.events
    assert (event.error_class, event.deployment_id, event.stream) == (
        "StreamInterruptedError", "a", True)
    assert event.ttft is not None
    assert event.error is caught.value


async def test_a_stream_closed_before_its_end_reports_stream_closed(make_router):
    rec = Recorder()
    router = make_router([mock_dep("m1")], callbacks=[rec])
    stream = await router.aresponses(model="m", input="hi", stream=True)
    await stream.__anext__()
    await stream.aclose()
    await stream.aclose()  # twice: still one report
    await router.drain_callbacks()
    [event] = rec.events
    assert (event.error_class, event.error, event.deployment_id) == ("StreamClosed", None, "m1")


async def test_a_failed_terminal_event_reports_a_failure_with_its_class(upstreams, make_router):
    (up,) = await upstreams("a")
    up.faults.failed_response(code="rate_limit_exceeded", message="slow down")
    rec = Recorder()
    router = make_router([openai_dep(up, model_info=PRICED)], callbacks=[rec])
    stream = await router.aresponses(model="gpt-4o", input="hi", stream=True)
    types = [e.type async for e in stream]
    await router.drain_callbacks()
    [event] = rec.events
    assert types[-1] == "response.failed"
    assert (event.error_class, event.deployment_id, event.error) == ("RateLimitError", "a", None)
    assert event.ttft is not None


async def test_a_cancelled_request_reports_its_cancellation(upstreams, make_router):
    (up,) = await upstreams("a")
    up.faults.hang()
    rec = Recorder()
    router = make_router([openai_dep(up)], callbacks=[rec])
    task = asyncio.create_task(router.aresponses(model="gpt-4o", input="hi"))
    for _ in range(500):  # until the upstream holds the request
        if up.requests:
            break
        await asyncio.sleep(0.005)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await router.drain_callbacks()
    [event] = rec.events
    assert (event.error_class, event.message) == ("CancelledError", None)


def test_the_sync_twin_reports_too(make_router):
    rec = Recorder()
    router = make_router([mock_dep("m1")], callbacks=[rec])
    answer = router.responses(model="m", input="hi")
    router.close()  # drains the callbacks of the sync twins' loop
    [event] = rec.events
    assert (event.deployment_id, event.response_id) == ("m1", answer.id)


async def test_events_are_immutable(make_router):
    rec = Recorder()
    router = make_router([mock_dep("m1")], callbacks=[rec])
    await router.aresponses(model="m", input="hi")
    await router.drain_callbacks()
    with pytest.raises(AttributeError):
        rec.events[0].cost = 1.0  # type: ignore[misc]


async def test_a_server_error_after_retries_is_one_failure_with_the_whole_trail(
    upstreams, make_router
):
    a, b = await upstreams("a", "b")
    a.faults.fail(500)
    b.faults.fail(503)
    rec = Recorder()
    router = make_router([openai_dep(a), openai_dep(b)], callbacks=[rec],
                         routing_strategy=InOrder(), num_retries=1)
    with pytest.raises(ServerError):
        await router.aresponses(model="gpt-4o", input="hi")
    await router.drain_callbacks()
    failures = rec.of(FailureEvent)
    assert len(failures) == 1
    [failure] = failures
    assert (failure.deployment_id, failure.attempt, failure.error_class) == (
        "b", 2, "ServiceUnavailableError")
    assert len(rec.of(RetryEvent)) == 1
