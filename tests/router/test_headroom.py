"""Rate-limit headroom: the headers of every provider parsed, the refill model, and the
attempt loop leaving a deployment with no room out, end to end against real upstreams."""

from __future__ import annotations

import json
import random
from collections import Counter
from typing import Any

import httpx
import pytest

from router.clock import ManualClock
from router.errors import PinnedDeploymentUnavailableError, RateLimitError
from router.headroom import DEFAULT_RESET, Headroom, RateLimits, parse_duration, rate_limits
from router.request import build_request
from router.router import Router
from tests.conftest import openai_dep


@pytest.mark.parametrize(("text", "seconds"), [
    ("1s", 1.0), ("6m0s", 360.0), ("20ms", 0.02), ("1m30.5s", 90.5), ("1h2m", 3720.0),
    ("0.5", 0.5), ("2", 2.0), (" 3s ", 3.0), ("0s", 0.0), ("150ms", 0.15),
])
def test_durations_in_openais_forms(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "s", "1x", "1s2", "abc", "1s 2s", "-"])
def test_unreadable_durations_are_not_said(text: str) -> None:
    assert parse_duration(text) is None


def test_openai_headers() -> None:
    headers = httpx.Headers({
        "X-RateLimit-Limit-Requests": "500", "X-RateLimit-Remaining-Requests": "499",
        "x-ratelimit-remaining-tokens": "29000", "x-ratelimit-reset-requests": "120ms",
        "x-ratelimit-reset-tokens": "2s",
    })
    assert rate_limits(headers, 0.0) == RateLimits(499, 29000, 0.12, 2.0, 500)


def test_azure_headers_without_a_reset() -> None:
    headers = httpx.Headers({"x-ratelimit-remaining-requests": "9",
                             "x-ratelimit-remaining-tokens": "abc"})
    assert rate_limits(headers, 0.0) == RateLimits(9, None, None, None, None)


def test_anthropic_headers_take_the_smallest_tokens_and_the_latest_reset() -> None:
    wall = 1_800_000_000.0
    headers = httpx.Headers({
        "anthropic-ratelimit-requests-limit": "50",
        "anthropic-ratelimit-requests-remaining": "0",
        "anthropic-ratelimit-requests-reset": "2027-01-15T08:00:03Z",
        "anthropic-ratelimit-tokens-remaining": "9000",
        "anthropic-ratelimit-input-tokens-remaining": "4000",
        "anthropic-ratelimit-output-tokens-remaining": "7000",
        "anthropic-ratelimit-tokens-reset": "2027-01-15T08:00:10Z",
        "anthropic-ratelimit-output-tokens-reset": "not a date",
    })
    found = rate_limits(headers, wall)
    assert found is not None
    assert (found.requests, found.tokens, found.requests_limit) == (0, 4000, 50)
    assert found.requests_reset is not None and found.tokens_reset is not None
    assert found.tokens_reset - found.requests_reset == pytest.approx(7.0)


def test_no_headers_no_figures() -> None:
    assert rate_limits(httpx.Headers({"x-request-id": "r"}), 0.0) is None


def openai(remaining: int, *, limit: int | None = None, reset: str | None = None) -> httpx.Headers:
    headers = {"x-ratelimit-remaining-requests": str(remaining)}
    if limit is not None:
        headers["x-ratelimit-limit-requests"] = str(limit)
    if reset is not None:
        headers["x-ratelimit-reset-requests"] = reset
    return httpx.Headers(headers)


def test_an_empty_bucket_refills_evenly_until_its_reset() -> None:
    clock = ManualClock()
    room = Headroom(clock)
    assert not room.active and room.has_room("a")
    room.saw("a", openai(0, limit=10, reset="10s"))  # one request back per second
    assert room.active and not room.has_room("a")
    clock.advance(0.9)
    assert not room.has_room("a")
    clock.advance(0.2)
    assert room.has_room("a")
    room.sent("a")  # that one is used up
    assert not room.has_room("a")
    clock.advance(1.0)
    assert room.has_room("a")


def test_attempts_sent_since_the_answer_use_up_the_room() -> None:
    clock = ManualClock()
    room = Headroom(clock)
    room.saw("a", openai(2, limit=100, reset="100s"))
    room.sent("a")
    assert room.has_room("a")
    room.sent("a")
    assert not room.has_room("a")
    room.saw("a", openai(1, limit=100, reset="99s"))  # a newer answer: figures anew
    assert room.has_room("a")


def test_without_a_reset_the_figure_holds_as_said_for_the_default_time() -> None:
    clock = ManualClock()
    room = Headroom(clock)
    room.saw("a", openai(0, limit=10))
    clock.advance(DEFAULT_RESET - 0.1)
    assert not room.has_room("a")
    clock.advance(0.2)
    assert room.has_room("a")


def test_no_tokens_left_is_no_room_until_the_token_reset() -> None:
    clock = ManualClock()
    room = Headroom(clock)
    room.saw("a", httpx.Headers({"x-ratelimit-remaining-tokens": "0",
                                 "x-ratelimit-reset-tokens": "3s"}))
    assert not room.has_room("a")
    clock.advance(3.0)
    assert room.has_room("a")


def test_candidates_without_room_are_left_out_unless_none_has_room() -> None:
    router = Router([{"model_name": "g", "model_info": {"id": i},
                      "litellm_params": {"model": "mock/x"}} for i in "abc"])
    a, b, c = router.deployments("g")
    clock = ManualClock()
    room = Headroom(clock)
    for d in (a, b):
        room.saw(d.id, openai(0, limit=60, reset="60s"))
    assert list(room.available([a, b, c])) == [c]
    assert list(room.available([a, b])) == [a, b]  # sent anyway: the upstream decides
    assert list(room.available([c])) == [c]


# -- end to end, against upstreams that limit requests and say so in headers


async def test_a_deployment_out_of_room_is_skipped_before_it_answers_429(
    upstreams: Any, make_router: Any
) -> None:
    small, = await upstreams("small", rate_limit=(3, 30.0))
    big, = await upstreams("big")
    router = make_router([openai_dep(small), openai_dep(big)], rng=random.Random(3))
    served = Counter[str]()
    for _ in range(30):
        response = await router.aresponses(model="gpt-4o", input="hi")
        served[response.routing.deployment_id] += 1
    assert small.rate_limited == 0
    assert served["small"] == small.hits == 3  # its whole limit, and not one request more
    assert served["big"] == 27


async def test_without_the_headers_the_router_learns_only_from_429s(
    upstreams: Any, make_router: Any
) -> None:
    small, = await upstreams("small", rate_limit=(3, 30.0))
    big, = await upstreams("big")
    router = make_router([openai_dep(small), openai_dep(big)], rng=random.Random(3),
                         use_rate_limit_headers=False)
    for _ in range(30):
        await router.aresponses(model="gpt-4o", input="hi")
    assert small.rate_limited >= 1  # then its Retry-After cools it down


async def test_the_429s_own_headers_count_too(upstreams: Any, make_router: Any) -> None:
    hidden, = await upstreams("hidden", rate_limit=(1, 30.0), rate_limit_headers=False)
    shown, = await upstreams("shown", rate_limit=(1, 30.0))
    router = make_router([openai_dep(hidden), openai_dep(shown)], rng=random.Random(0),
                         num_retries=0, disable_cooldowns=True)
    outcomes = Counter[str]()
    for _ in range(6):
        try:
            response = await router.aresponses(model="gpt-4o", input="hi")
            outcomes[response.routing.deployment_id] += 1
        except RateLimitError:
            outcomes["429"] += 1
    assert outcomes["shown"] == 1 and outcomes["hidden"] == 1
    assert shown.rate_limited == 0  # never sent to again once it said it was empty
    assert hidden.rate_limited == 4  # nothing says it is empty but its 429s (no cooldown)


async def test_a_pinned_follow_up_goes_to_its_owner_even_out_of_room(
    upstreams: Any, make_router: Any
) -> None:
    small, = await upstreams("small", rate_limit=(1, 30.0))
    big, = await upstreams("big")
    router = make_router([openai_dep(small), openai_dep(big)], rng=random.Random(0),
                         optional_pre_call_checks=["responses_api_deployment_check"],
                         num_retries=0)
    first = None
    for _ in range(20):
        response = await router.aresponses(model="gpt-4o", input="hi")
        if response.routing.deployment_id == "small":
            first = response
            break
    assert first is not None
    with pytest.raises(PinnedDeploymentUnavailableError, match="RateLimitError"):
        # only its owner can read it, so it is sent there although the owner is empty
        await router.aresponses(model="gpt-4o", input="more", previous_response_id=first.id)
    assert small.rate_limited == 1


async def test_translated_providers_report_their_headers_too() -> None:
    hits = Counter[str]()

    def answer(request: httpx.Request) -> httpx.Response:
        key = request.headers["x-api-key"]
        hits[key] += 1
        headers = {"anthropic-ratelimit-requests-remaining": "0" if key == "empty" else "50",
                   "anthropic-ratelimit-requests-limit": "50",
                   "anthropic-ratelimit-requests-reset": "2099-01-01T00:00:00Z"}
        body = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude",
                "content": [{"type": "text", "text": "hi"}], "stop_reason": "end_turn",
                "usage": {"input_tokens": 1, "output_tokens": 1}}
        return httpx.Response(200, headers=headers, content=json.dumps(body).encode())

    client = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    router = Router([
        {"model_name": "claude", "model_info": {"id": key},
         "litellm_params": {"model": "anthropic/claude-x", "api_key": key,
                            "api_base": "http://anthropic.test"}}
        for key in ("empty", "full")], http_client=client, routing_strategy="simple-shuffle")
    try:
        for _ in range(20):
            await router.aresponses(model="claude", input="hi", store=False)
    finally:
        await router.aclose()
        await client.aclose()
    assert hits["empty"] == 1 and hits["full"] == 19


async def test_inspect_shows_each_deployments_rate_limit_room(
    upstreams: Any, make_router: Any
) -> None:
    small, = await upstreams("small", rate_limit=(5, 600.0))
    big, = await upstreams("big")
    router = make_router([openai_dep(small), openai_dep(big)], rng=random.Random(3))
    assert [s.rate_limit_room for s in router.inspect()] == [None, None]
    while small.hits < 2:
        await router.aresponses(model="gpt-4o", input="hi")
    room = {s.deployment_id: s.rate_limit_room for s in router.inspect()}
    assert room["big"] is None  # it sends no rate-limit headers
    assert room["small"] == pytest.approx(3, abs=0.05)  # 5 less the 2 it answered
    off = make_router([openai_dep(small)], use_rate_limit_headers=False)
    await off.aresponses(model="gpt-4o", input="hi")
    assert off.inspect()[0].rate_limit_room is None


def test_a_request_needing_more_tokens_than_are_left_goes_elsewhere() -> None:
    router = Router([{"model_name": "g", "model_info": {"id": i},
                      "litellm_params": {"model": "mock/x"}} for i in "ab"])
    a, b = router.deployments("g")
    clock = ManualClock()
    room = Headroom(clock)
    room.saw("a", httpx.Headers({"x-ratelimit-remaining-requests": "100",
                                 "x-ratelimit-remaining-tokens": "1000",
                                 "x-ratelimit-reset-tokens": "30s"}))

    def request(text: str, **params: Any) -> Any:
        return build_request("g", {"input": text, **params}, stream=False, default_timeout=None)

    assert list(room.available([a, b], request("hi"))) == [a, b]
    assert list(room.available([a, b], request("x" * 8000))) == [b]  # ~2,000 tokens
    assert list(room.available([a, b], request("hi", max_output_tokens=1500))) == [b]
    assert list(room.available([a], request("x" * 8000))) == [a]  # none has room: sent
    clock.advance(30)
    assert list(room.available([a, b], request("x" * 8000))) == [a, b]  # past the reset
