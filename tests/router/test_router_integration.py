"""The Router end to end over real loopback upstreams.

Each test starts a few :class:`router.testing.Upstream` servers, points a
Router at them and checks what the caller gets and what each upstream saw:
the public calls (async and sync), retries, cooldowns, fallbacks, errors,
secrets and configuration files. Waits are kept short (cooldowns of tenths of
a second) so the whole file runs in a few seconds.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import pytest

from router.clock import ManualClock
from router.config import ConfigWarning
from router.errors import (
    AuthenticationError,
    BadRequestError,
    ConfigError,
    ConnectionError,
    ContentPolicyViolationError,
    ContextWindowExceededError,
    InvalidRequestError,
    MalformedResponseError,
    NoDeploymentAvailableError,
    PinnedDeploymentUnavailableError,
    QuotaExhaustedError,
    RateLimitError,
    ResponseNotFoundError,
    RouterError,
    ServerError,
    ServiceUnavailableError,
    TimeoutError,
    UnknownModelError,
    UpstreamError,
)
from router.router import Router
from tests.conftest import InOrder, azure_dep, create_paths, openai_dep


def attempts_of(trail: Any) -> list[tuple[str, str, str | None]]:
    """``(group, deployment, error class or None)`` per attempt."""
    return [(a.model_group, a.deployment_id, a.error) for a in trail.attempts]


# --------------------------------------------------------------------------- public calls


async def test_async_public_calls_go_to_the_owning_deployment(upstreams, make_router):
    west, east = await upstreams("west", "east")
    router = make_router([openai_dep(west), openai_dep(east)], routing_strategy=InOrder())

    created = await router.aresponses(model="gpt-4o", input="start", background=True)
    rid = created.id
    assert created.status == "queued"
    assert created.routing.deployment_id == "west"

    cancelled = await router.acancel_responses(rid)
    got = await router.aget_responses(rid)
    items = await router.alist_input_items(rid, limit=10, order="asc")
    deleted = await router.adelete_responses(rid)

    assert cancelled.status == "cancelled" and cancelled.id == rid
    assert cancelled.routing.deployment_id == "west"
    assert got.id == rid and got.status == "cancelled"
    assert got.routing.deployment_id == "west" and got.routing.model_group == "gpt-4o"
    assert [item.content[0].text for item in items.data] == ["start"]
    assert items.has_more is False
    assert deleted.model_dump() == {"id": rid, "object": "response.deleted", "deleted": True}
    assert east.hits == 0
    assert [(r.method, r.path) for r in west.requests] == [
        ("POST", "/v1/responses"),
        ("POST", f"/v1/responses/{rid}/cancel"),
        ("GET", f"/v1/responses/{rid}"),
        ("GET", f"/v1/responses/{rid}/input_items"),
        ("DELETE", f"/v1/responses/{rid}"),
    ]
    assert west.requests[3].query == {"limit": "10", "order": "asc"}
    assert rid not in west.stored


async def test_follow_up_and_by_id_calls_find_an_unrecorded_owner(upstreams, make_router):
    west, east = await upstreams("west", "east")
    deployments = [openai_dep(west), openai_dep(east)]
    first_router = make_router(deployments, routing_strategy=InOrder())
    created = await first_router.aresponses(model="gpt-4o", input="remember me")

    # A second router (a restart without Redis) has no record of the id: it asks.
    fresh = make_router(list(reversed(deployments)))
    got = await fresh.aget_responses(created.id, model="gpt-4o")
    again = await fresh.aget_responses(created.id)

    assert got.routing.deployment_id == "west"
    assert again.routing.deployment_id == "west"
    # east was asked once during discovery, then never again (the owner is remembered)
    assert [(r.method, r.path) for r in east.requests] == [("GET", f"/v1/responses/{created.id}")]


async def test_by_id_call_for_an_unknown_id_names_it(upstreams, make_router):
    west, east = await upstreams("west", "east")
    router = make_router([openai_dep(west), openai_dep(east)])

    with pytest.raises(ResponseNotFoundError) as info:
        await router.aget_responses("resp_does_not_exist", model="gpt-4o")

    assert info.value.response_id == "resp_does_not_exist"
    assert "resp_does_not_exist" in str(info.value)
    assert west.hits == 1 and east.hits == 1


def test_sync_twins_from_plain_code(threaded_upstreams, make_router):
    west, east = threaded_upstreams("west", "east")
    router = make_router([openai_dep(west), openai_dep(east)], routing_strategy=InOrder())

    resp = router.responses(model="gpt-4o", input="sync hello")
    follow = router.responses(model="gpt-4o", input="more", previous_response_id=resp.id)
    background = router.responses(model="gpt-4o", input="bg", background=True)
    got = router.get_responses(resp.id)
    items = router.list_input_items(resp.id)
    cancelled = router.cancel_responses(background.id)
    deleted = router.delete_responses(resp.id)

    assert resp.output_text == "[west] turn 1: sync hello"
    assert resp.routing.deployment_id == "west"
    assert follow.output_text == "[west] turn 2: more"
    assert got.id == resp.id and got.routing.deployment_id == "west"
    assert items.data[0].content[0].text == "sync hello"
    assert cancelled.status == "cancelled"
    assert deleted.deleted is True
    assert east.hits == 0


def test_sync_router_as_context_manager(threaded_upstreams):
    (up,) = threaded_upstreams("east")
    with Router([openai_dep(up)]) as router:
        first = router.responses(model="gpt-4o", input="one")
        second = router.responses(model="gpt-4o", input="two")
    assert first.output_text == "[east] turn 1: one"
    assert second.output_text == "[east] turn 1: two"
    router.close()  # idempotent


@pytest.mark.parametrize(
    ("method", "args", "async_name"),
    [
        ("responses", {"model": "gpt-4o", "input": "x"}, "aresponses"),
        ("get_responses", {"response_id": "resp_1"}, "aget_responses"),
        ("delete_responses", {"response_id": "resp_1"}, "adelete_responses"),
        ("cancel_responses", {"response_id": "resp_1"}, "acancel_responses"),
        ("list_input_items", {"response_id": "resp_1"}, "alist_input_items"),
    ],
)
async def test_sync_call_inside_a_running_loop_points_at_the_async_method(
    upstreams, make_router, method, args, async_name
):
    (up,) = await upstreams("east")
    router = make_router([openai_dep(up)])
    call = getattr(router, method)

    with pytest.raises(RuntimeError, match=rf"router\.{async_name}\("):
        if "response_id" in args:
            call(args["response_id"])
        else:
            call(**args)

    assert up.hits == 0


async def test_async_with_router(upstreams):
    (up,) = await upstreams("east")
    async with Router([openai_dep(up)]) as router:
        assert isinstance(router, Router)
        resp = await router.aresponses(model="gpt-4o", input="ctx")
        assert resp.output_text == "[east] turn 1: ctx"
    await router.aclose()  # closing twice is harmless
    assert up.hits == 1


async def test_follow_ups_stay_on_the_owner_with_the_pinning_check(upstreams, make_router):
    a, b, c = await upstreams("a", "b", "c")
    router = make_router([openai_dep(u) for u in (a, b, c)],
                         optional_pre_call_checks=["responses_api_deployment_check"],
                         rng=random.Random(11))

    first = await router.aresponses(model="gpt-4o", input="turn one")
    owner = first.routing.deployment_id
    previous = first
    for turn in range(2, 7):
        previous = await router.aresponses(model="gpt-4o", input=f"turn {turn}",
                                           previous_response_id=previous.id)
        assert previous.routing.deployment_id == owner
    assert previous.output_text == f"[{owner}] turn 6: turn 6"
    ups = {u.name: u for u in (a, b, c)}
    assert ups[owner].hits == 6
    assert sum(u.hits for u in ups.values()) == 6


async def test_pinned_owner_failure_names_the_response(upstreams, make_router):
    a, b = await upstreams("a", "b")
    router = make_router([openai_dep(a), openai_dep(b)], routing_strategy=InOrder(),
                         optional_pre_call_checks=["responses_api_deployment_check"],
                         num_retries=1, allowed_fails=0, cooldown_time=5, rng=random.Random(2))
    first = await router.aresponses(model="gpt-4o", input="one")
    assert first.routing.deployment_id == "a"

    a.faults.fail(503)
    with pytest.raises(PinnedDeploymentUnavailableError) as info:
        await router.aresponses(model="gpt-4o", input="two", previous_response_id=first.id)
    err = info.value
    assert err.response_id == first.id
    assert err.deployment_id == "a"
    assert first.id in str(err) and "'a'" in str(err)
    assert isinstance(err.__cause__, ServiceUnavailableError)
    assert b.hits == 0  # never sent to a stranger that cannot read the response
    assert [c.deployment_id for c in router.cooldowns()] == ["a"]

    # the pin outranks the cooldown: once a recovers, its follow-up goes there at once
    a.faults.clear()
    follow = await router.aresponses(model="gpt-4o", input="three",
                                     previous_response_id=first.id)
    assert follow.routing.deployment_id == "a"
    assert follow.output_text == "[a] turn 2: three"
    assert b.hits == 0


# --------------------------------------------------------------------------- retries


async def test_retries_go_to_other_deployments_first(upstreams, make_router):
    a, b = await upstreams("a", "b")
    a.faults.fail(503, times=1)
    b.faults.fail(503, times=1)
    clock = ManualClock()
    router = make_router([openai_dep(a), openai_dep(b)], routing_strategy=InOrder(),
                         num_retries=2, clock=clock)

    resp = await router.aresponses(model="gpt-4o", input="retry me")

    assert attempts_of(resp.routing.trail) == [
        ("gpt-4o", "a", "ServiceUnavailableError"),
        ("gpt-4o", "b", "ServiceUnavailableError"),
        ("gpt-4o", "a", None),
    ]
    assert [x.status for x in resp.routing.attempts] == [503, 503, None]
    assert resp.routing.retries == 2
    assert resp.routing.deployment_id == "a"
    assert resp.output_text.startswith("[a] turn 1")
    assert (a.hits, b.hits) == (2, 1)
    # no wait before trying b; a backoff only before going back to a failed deployment
    assert len(clock.slept) == 1


async def test_three_deployments_two_failures_then_success(upstreams, make_router):
    a, b, c = await upstreams("a", "b", "c")
    a.faults.fail(503)
    b.faults.fail(500)
    clock = ManualClock()
    router = make_router([openai_dep(u) for u in (a, b, c)], routing_strategy=InOrder(),
                         num_retries=2, clock=clock)

    resp = await router.aresponses(model="gpt-4o", input="x")

    assert attempts_of(resp.routing.trail) == [
        ("gpt-4o", "a", "ServiceUnavailableError"),
        ("gpt-4o", "b", "ServerError"),
        ("gpt-4o", "c", None),
    ]
    assert (a.hits, b.hits, c.hits) == (1, 1, 1)
    assert clock.slept == []  # failing over to another deployment does not wait


async def test_per_request_num_retries_zero_fails_at_once(upstreams, make_router):
    a, b = await upstreams("a", "b")
    a.faults.fail(503)
    router = make_router([openai_dep(a), openai_dep(b)], routing_strategy=InOrder(),
                         num_retries=3)

    with pytest.raises(ServiceUnavailableError) as info:
        await router.aresponses(model="gpt-4o", input="x", num_retries=0)

    assert info.value.status == 503
    assert info.value.deployment_id == "a"
    assert attempts_of(info.value.trail) == [("gpt-4o", "a", "ServiceUnavailableError")]
    assert (a.hits, b.hits) == (1, 0)


async def test_rate_limit_on_single_deployment_waits_retry_after(upstreams, make_router):
    (up,) = await upstreams("solo")
    up.faults.fail(429, retry_after=0.3, times=1)
    router = make_router([openai_dep(up)], num_retries=1)

    started = time.monotonic()
    resp = await router.aresponses(model="gpt-4o", input="patience")
    elapsed = time.monotonic() - started

    assert resp.output_text == "[solo] turn 1: patience"
    assert 0.3 <= elapsed < 1.5
    assert attempts_of(resp.routing.trail) == [
        ("gpt-4o", "solo", "RateLimitError"),
        ("gpt-4o", "solo", None),
    ]
    assert resp.routing.attempts[1].started >= 0.3
    assert up.hits == 2
    assert router.cooldowns() == []  # the only deployment of a group is never cooled


async def test_retry_after_longer_than_the_deadline_is_not_waited(upstreams, make_router):
    (up,) = await upstreams("solo")
    up.faults.fail(429, retry_after=5, times=1)
    router = make_router([openai_dep(up)], num_retries=2)

    started = time.monotonic()
    with pytest.raises(RateLimitError) as info:
        await router.aresponses(model="gpt-4o", input="x", timeout=1)

    assert time.monotonic() - started < 0.8
    assert info.value.retry_after == 5
    assert up.hits == 1


async def test_bad_request_is_not_retried(upstreams, make_router):
    a, b = await upstreams("a", "b")
    a.faults.fail(400, message="Invalid 'input'.")
    b.faults.fail(400, message="Invalid 'input'.")
    router = make_router([openai_dep(a), openai_dep(b)], num_retries=3)

    with pytest.raises(BadRequestError) as info:
        await router.aresponses(model="gpt-4o", input="x")

    assert info.value.status == 400
    assert a.hits + b.hits == 1
    assert len(info.value.trail.attempts) == 1
    assert router.cooldowns() == []


async def test_timeout_bounds_the_whole_call_with_a_hanging_upstream(upstreams, make_router):
    a, b = await upstreams("a", "b")
    a.faults.hang()
    b.faults.hang()
    router = make_router([openai_dep(a), openai_dep(b)], num_retries=3)

    started = time.monotonic()
    with pytest.raises(UpstreamError) as info:
        await router.aresponses(model="gpt-4o", input="x", timeout=0.5)
    elapsed = time.monotonic() - started

    assert 0.45 <= elapsed < 1.0
    assert info.value.trail is not None and info.value.trail.attempts
    assert info.value.trail.duration < 1.0


async def test_timeout_with_a_hanging_upstream_is_a_timeout_error(upstreams, make_router):
    (up,) = await upstreams("solo")
    up.faults.hang()
    router = make_router([openai_dep(up)], num_retries=0)

    with pytest.raises(TimeoutError) as info:
        await router.aresponses(model="gpt-4o", input="x", timeout=0.4)

    assert info.value.trail.attempts[0].error == "TimeoutError"


async def test_per_attempt_deployment_timeout_moves_on(upstreams, make_router):
    a, b = await upstreams("a", "b")
    a.faults.hang()
    router = make_router([openai_dep(a, timeout=0.3), openai_dep(b, timeout=0.3)],
                         routing_strategy=InOrder(), num_retries=1)

    started = time.monotonic()
    resp = await router.aresponses(model="gpt-4o", input="x")

    assert time.monotonic() - started < 1.5
    assert resp.routing.deployment_id == "b"
    assert [x.deployment_id for x in resp.routing.attempts] == ["a", "b"]
    assert resp.routing.attempts[0].error is not None


async def test_failed_response_is_retried(upstreams, make_router):
    a, b = await upstreams("a", "b")
    a.faults.failed_response(times=1)
    router = make_router([openai_dep(a), openai_dep(b)], routing_strategy=InOrder(),
                         num_retries=1)

    resp = await router.aresponses(model="gpt-4o", input="x")

    assert resp.status == "completed"
    assert resp.routing.deployment_id == "b"
    assert attempts_of(resp.routing.trail) == [
        ("gpt-4o", "a", "ServerError"),
        ("gpt-4o", "b", None),
    ]
    assert "model failed" in resp.routing.attempts[0].message


async def test_failed_response_without_retries_raises_server_error(upstreams, make_router):
    (up,) = await upstreams("solo")
    up.faults.failed_response(code="server_error", message="boom")
    router = make_router([openai_dep(up)], num_retries=0)

    with pytest.raises(ServerError) as info:
        await router.aresponses(model="gpt-4o", input="x")

    assert info.value.code == "server_error"
    assert info.value.message == "boom"


async def test_malformed_body_is_retried_elsewhere(upstreams, make_router):
    a, b = await upstreams("a", "b")
    a.faults.malformed()
    router = make_router([openai_dep(a), openai_dep(b)], routing_strategy=InOrder(),
                         num_retries=1)

    resp = await router.aresponses(model="gpt-4o", input="x")
    assert resp.routing.deployment_id == "b"
    assert resp.routing.attempts[0].error == "MalformedResponseError"

    with pytest.raises(MalformedResponseError):
        await router.aresponses(model="gpt-4o", input="x", num_retries=0)


async def test_retry_policy_per_error_class(upstreams, make_router):
    a, b = await upstreams("a", "b")
    a.faults.fail(401)
    router = make_router([openai_dep(a), openai_dep(b)], routing_strategy=InOrder(),
                         num_retries=3, retry_policy={"AuthenticationErrorRetries": 0})

    with pytest.raises(AuthenticationError):
        await router.aresponses(model="gpt-4o", input="x")
    assert b.hits == 0


async def test_router_timeout_setting_is_the_default_deadline(upstreams, make_router):
    (up,) = await upstreams("solo")
    up.faults.hang()
    router = make_router([openai_dep(up)], timeout=0.3, num_retries=2)

    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await router.aresponses(model="gpt-4o", input="x")

    assert time.monotonic() - started < 0.8


async def test_cancelled_caller_gives_the_load_slot_back(upstreams, make_router):
    (up,) = await upstreams("solo")
    up.faults.hang()
    router = make_router([openai_dep(up)])

    task = asyncio.create_task(router.aresponses(model="gpt-4o", input="x"))
    for _ in range(200):  # until the upstream holds the request
        if up.hits:
            break
        await asyncio.sleep(0.01)
    assert router.services.load.total_in_flight() == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert router.services.load.total_in_flight() == 0
    assert router.cooldowns() == []


async def test_concurrent_requests_spread_and_leave_no_load(upstreams, make_router):
    a, b, c = await upstreams("a", "b", "c")
    c.faults.fail(503, rate=0.5, seed=1)
    router = make_router([openai_dep(u) for u in (a, b, c)], num_retries=2,
                         allowed_fails=1000, rng=random.Random(4))

    results = await asyncio.gather(
        *(router.aresponses(model="gpt-4o", input=f"q{i}") for i in range(30))
    )

    assert [r.output_text.split(": ", 1)[1] for r in results] == [f"q{i}" for i in range(30)]
    served = {r.routing.deployment_id for r in results}
    assert {"a", "b"} <= served
    assert a.hits + b.hits + c.hits == sum(len(r.routing.attempts) for r in results)
    assert router.services.load.total_in_flight() == 0


# --------------------------------------------------------------------------- cooldowns


async def test_failing_deployment_is_cooled_and_skipped(upstreams, make_router):
    a, b = await upstreams("a", "b")
    a.faults.fail(503)
    clock = ManualClock()
    router = make_router([openai_dep(a), openai_dep(b)], routing_strategy=InOrder(),
                         allowed_fails=0, cooldown_time=0.3, cooldown_jitter=0,
                         num_retries=1, clock=clock)

    first = await router.aresponses(model="gpt-4o", input="one")
    cooling = router.cooldowns()
    second = await router.aresponses(model="gpt-4o", input="two")

    assert attempts_of(first.routing.trail) == [
        ("gpt-4o", "a", "ServiceUnavailableError"), ("gpt-4o", "b", None),
    ]
    assert [(c.deployment_id, c.reason) for c in cooling] == [("a", "ServiceUnavailableError")]
    assert cooling[0].until == pytest.approx(clock.now() + 0.3)
    assert attempts_of(second.routing.trail) == [("gpt-4o", "b", None)]
    assert a.hits == 1

    a.faults.clear()
    clock.advance(0.29)
    assert [c.deployment_id for c in router.cooldowns()] == ["a"]
    clock.advance(0.02)
    assert router.cooldowns() == []
    third = await router.aresponses(model="gpt-4o", input="three")
    assert third.routing.deployment_id == "a"
    assert a.hits == 2


async def test_failures_below_allowed_fails_do_not_cool(upstreams, make_router):
    a, b = await upstreams("a", "b")
    a.faults.fail(503, times=1)
    router = make_router([openai_dep(a), openai_dep(b)], routing_strategy=InOrder(),
                         allowed_fails=1, cooldown_time=5, num_retries=1)

    first = await router.aresponses(model="gpt-4o", input="one")
    assert router.cooldowns() == []
    second = await router.aresponses(model="gpt-4o", input="two")

    assert first.routing.deployment_id == "b"
    assert second.routing.deployment_id == "a"


async def test_rate_limit_cools_at_once(upstreams, make_router):
    a, b = await upstreams("a", "b")
    a.faults.fail(429, times=1)  # no retry-after: cooldown_time applies
    clock = ManualClock()
    router = make_router([openai_dep(a), openai_dep(b)], routing_strategy=InOrder(),
                         allowed_fails=5, cooldown_time=0.3, cooldown_jitter=0,
                         num_retries=1, clock=clock)

    first = await router.aresponses(model="gpt-4o", input="one")
    cooling = router.cooldowns()
    second = await router.aresponses(model="gpt-4o", input="two")

    assert first.routing.deployment_id == "b"
    assert [(c.deployment_id, c.reason) for c in cooling] == [("a", "RateLimitError")]
    assert cooling[0].until == pytest.approx(clock.now() + 0.3)
    assert second.routing.deployment_id == "b"
    assert a.hits == 1
    clock.advance(0.31)
    third = await router.aresponses(model="gpt-4o", input="three")
    assert third.routing.deployment_id == "a"


async def test_rate_limit_cooldown_follows_retry_after(upstreams, make_router):
    a, b = await upstreams("a", "b")
    a.faults.fail(429, retry_after=0.4, times=1)
    clock = ManualClock()
    router = make_router([openai_dep(a), openai_dep(b)], routing_strategy=InOrder(),
                         cooldown_time=30, num_retries=1, clock=clock)

    await router.aresponses(model="gpt-4o", input="one")

    (entry,) = router.cooldowns()
    assert entry.deployment_id == "a"
    assert entry.until == pytest.approx(clock.now() + 0.4)
    clock.advance(0.41)
    assert router.cooldowns() == []


async def test_quota_exhausted_is_not_retried_and_cools_for_long(upstreams, make_router):
    a, b = await upstreams("a", "b")
    a.faults.fail(429, code="insufficient_quota", message="You exceeded your current quota")
    router = make_router([openai_dep(a), openai_dep(b)], routing_strategy=InOrder(),
                         cooldown_time=1, num_retries=2)

    with pytest.raises(QuotaExhaustedError) as info:
        await router.aresponses(model="gpt-4o", input="one")
    (entry,) = router.cooldowns()
    after = await router.aresponses(model="gpt-4o", input="two")

    assert attempts_of(info.value.trail) == [("gpt-4o", "a", "QuotaExhaustedError")]
    assert (entry.deployment_id, entry.reason, entry.status) == ("a", "QuotaExhaustedError", 429)
    assert entry.until - time.monotonic() > 5  # a multiple of cooldown_time
    assert attempts_of(after.routing.trail) == [("gpt-4o", "b", None)]
    assert a.hits == 1


async def test_quota_exhausted_is_not_retried_on_the_same_deployment(upstreams, make_router):
    (up,) = await upstreams("solo")
    up.faults.fail(429, code="insufficient_quota")
    router = make_router([openai_dep(up)], num_retries=3)

    with pytest.raises(QuotaExhaustedError) as info:
        await router.aresponses(model="gpt-4o", input="one")

    assert info.value.code == "insufficient_quota"
    assert len(info.value.trail.attempts) == 1
    assert up.hits == 1


# --------------------------------------------------------------------------- fallbacks


async def _groups(upstreams: Any) -> tuple[Any, ...]:
    return await upstreams("a", "b", "mini", "big")


def _two_groups(a: Any, b: Any, mini: Any, big: Any) -> list[dict[str, Any]]:
    return [
        openai_dep(a), openai_dep(b),
        openai_dep(mini, "gpt-4o-mini", model="openai/gpt-4o-mini"),
        openai_dep(big, "gpt-4o-big", model="openai/gpt-4o-big"),
    ]


async def test_generic_fallback_when_every_deployment_fails(upstreams, make_router):
    a, b, mini, big = await _groups(upstreams)
    a.faults.fail(503)
    b.faults.fail(503)
    router = make_router(_two_groups(a, b, mini, big), routing_strategy=InOrder(),
                         num_retries=1, fallbacks=[{"gpt-4o": ["gpt-4o-mini"]}])

    resp = await router.aresponses(model="gpt-4o", input="fall")

    assert resp.routing.fallbacks == ["gpt-4o-mini"]
    assert resp.routing.model_group == "gpt-4o-mini"
    assert resp.routing.requested_model == "gpt-4o"
    assert resp.routing.deployment_id == "mini"
    assert resp.model == "gpt-4o-mini"
    assert attempts_of(resp.routing.trail) == [
        ("gpt-4o", "a", "ServiceUnavailableError"),
        ("gpt-4o", "b", "ServiceUnavailableError"),
        ("gpt-4o-mini", "mini", None),
    ]
    assert big.hits == 0


async def test_default_fallbacks(upstreams, make_router):
    a, b, mini, big = await _groups(upstreams)
    a.faults.fail(500)
    b.faults.fail(500)
    router = make_router(_two_groups(a, b, mini, big), routing_strategy=InOrder(),
                         num_retries=1, default_fallbacks=["gpt-4o-big"])

    resp = await router.aresponses(model="gpt-4o", input="x")

    assert resp.routing.fallbacks == ["gpt-4o-big"]
    assert resp.routing.deployment_id == "big"
    assert mini.hits == 0


async def test_context_window_fallback(upstreams, make_router):
    a, b, mini, big = await _groups(upstreams)
    a.faults.fail(400, code="context_length_exceeded")
    router = make_router(
        _two_groups(a, b, mini, big), routing_strategy=InOrder(), num_retries=2,
        fallbacks=[{"gpt-4o": ["gpt-4o-mini"]}],
        context_window_fallbacks=[{"gpt-4o": ["gpt-4o-big"]}],
    )

    resp = await router.aresponses(model="gpt-4o", input="a very long input")

    assert resp.routing.fallbacks == ["gpt-4o-big"]
    assert resp.routing.deployment_id == "big"
    assert attempts_of(resp.routing.trail) == [
        ("gpt-4o", "a", "ContextWindowExceededError"), ("gpt-4o-big", "big", None),
    ]
    assert (b.hits, mini.hits) == (0, 0)  # not retried in the group; generic list unused


async def test_context_window_error_without_fallback_is_raised(upstreams, make_router):
    a, b, mini, big = await _groups(upstreams)
    a.faults.fail(400, code="context_length_exceeded")
    router = make_router(_two_groups(a, b, mini, big), routing_strategy=InOrder(),
                         num_retries=2)

    with pytest.raises(ContextWindowExceededError) as info:
        await router.aresponses(model="gpt-4o", input="x")

    assert info.value.code == "context_length_exceeded"
    assert a.hits + b.hits + mini.hits + big.hits == 1


async def test_content_policy_fallback(upstreams, make_router):
    a, b, mini, big = await _groups(upstreams)
    a.faults.fail(400, code="content_filter", message="filtered")
    router = make_router(
        _two_groups(a, b, mini, big), routing_strategy=InOrder(),
        content_policy_fallbacks=[{"gpt-4o": ["gpt-4o-mini"]}],
        context_window_fallbacks=[{"gpt-4o": ["gpt-4o-big"]}],
    )

    resp = await router.aresponses(model="gpt-4o", input="x")

    assert resp.routing.fallbacks == ["gpt-4o-mini"]
    assert resp.routing.attempts[0].error == "ContentPolicyViolationError"
    assert resp.routing.deployment_id == "mini"
    assert (b.hits, big.hits) == (0, 0)


async def test_content_policy_without_fallback_is_raised(upstreams, make_router):
    a, b, mini, big = await _groups(upstreams)
    a.faults.fail(400, code="content_filter")
    router = make_router(_two_groups(a, b, mini, big), routing_strategy=InOrder(),
                         context_window_fallbacks=[{"gpt-4o": ["gpt-4o-big"]}])

    with pytest.raises(ContentPolicyViolationError):
        await router.aresponses(model="gpt-4o", input="x")
    assert big.hits == 0


@pytest.mark.parametrize("given", [["gpt-4o-big"], [{"gpt-4o": ["gpt-4o-big"]}]])
async def test_per_request_fallbacks_replace_the_configured_ones(upstreams, make_router, given):
    a, b, mini, big = await _groups(upstreams)
    a.faults.fail(503)
    b.faults.fail(503)
    router = make_router(_two_groups(a, b, mini, big), routing_strategy=InOrder(),
                         num_retries=1, fallbacks=[{"gpt-4o": ["gpt-4o-mini"]}])

    resp = await router.aresponses(model="gpt-4o", input="x", fallbacks=given)

    assert resp.routing.fallbacks == ["gpt-4o-big"]
    assert resp.routing.deployment_id == "big"
    assert mini.hits == 0


async def test_disable_fallbacks(upstreams, make_router):
    a, b, mini, big = await _groups(upstreams)
    a.faults.fail(503)
    b.faults.fail(503)
    router = make_router(_two_groups(a, b, mini, big), routing_strategy=InOrder(),
                         num_retries=1, fallbacks=[{"gpt-4o": ["gpt-4o-mini"]}])

    with pytest.raises(ServiceUnavailableError) as info:
        await router.aresponses(model="gpt-4o", input="x", disable_fallbacks=True)

    assert info.value.trail.fallbacks == []
    assert len(info.value.trail.attempts) == 2
    assert mini.hits == 0


async def test_max_fallbacks_limits_the_chain(upstreams, make_router):
    a, b, mini, big = await _groups(upstreams)
    for up in (a, b, mini):
        up.faults.fail(503)
    router = make_router(_two_groups(a, b, mini, big), routing_strategy=InOrder(),
                         num_retries=0, max_fallbacks=1,
                         fallbacks=[{"gpt-4o": ["gpt-4o-mini", "gpt-4o-big"]}])

    with pytest.raises(ServiceUnavailableError) as info:
        await router.aresponses(model="gpt-4o", input="x")

    assert info.value.trail.fallbacks == ["gpt-4o-mini"]
    assert info.value.model_group == "gpt-4o-mini"
    assert big.hits == 0


async def test_fallback_chain_tries_each_group_in_order(upstreams, make_router):
    a, b, mini, big = await _groups(upstreams)
    for up in (a, b, mini):
        up.faults.fail(503)
    router = make_router(_two_groups(a, b, mini, big), routing_strategy=InOrder(),
                         num_retries=0, fallbacks=[{"gpt-4o": ["gpt-4o-mini", "gpt-4o-big"]}])

    resp = await router.aresponses(model="gpt-4o", input="x")

    assert resp.routing.fallbacks == ["gpt-4o-mini", "gpt-4o-big"]
    assert attempts_of(resp.routing.trail) == [
        ("gpt-4o", "a", "ServiceUnavailableError"),
        ("gpt-4o-mini", "mini", "ServiceUnavailableError"),
        ("gpt-4o-big", "big", None),
    ]


async def test_invalid_request_does_not_fall_back(upstreams, make_router):
    a, b, mini, big = await _groups(upstreams)
    a.faults.fail(400, message="Invalid value for 'temperature'.")
    router = make_router(_two_groups(a, b, mini, big), routing_strategy=InOrder(),
                         fallbacks=[{"gpt-4o": ["gpt-4o-mini"]}],
                         default_fallbacks=["gpt-4o-big"])

    with pytest.raises(BadRequestError) as info:
        await router.aresponses(model="gpt-4o", input="x", temperature=7)

    assert info.value.trail.fallbacks == []
    assert (b.hits, mini.hits, big.hits) == (0, 0, 0)


async def test_fallback_when_the_whole_group_is_cooling_down(upstreams, make_router):
    a, b, mini, big = await _groups(upstreams)
    a.faults.fail(429, times=1)
    b.faults.fail(429, times=1)
    router = make_router(_two_groups(a, b, mini, big), routing_strategy=InOrder(),
                         num_retries=1, cooldown_time=5,
                         fallbacks=[{"gpt-4o": ["gpt-4o-mini"]}])
    first = await router.aresponses(model="gpt-4o", input="one")
    assert first.routing.deployment_id == "mini"
    assert {c.deployment_id for c in router.cooldowns()} == {"a", "b"}

    second = await router.aresponses(model="gpt-4o", input="two")

    assert second.routing.deployment_id == "mini"
    assert second.routing.fallbacks == ["gpt-4o-mini"]


# --------------------------------------------------------------------------- errors


async def test_unknown_model_lists_the_configured_groups(upstreams, make_router):
    a, b, mini, big = await _groups(upstreams)
    router = make_router(_two_groups(a, b, mini, big))

    with pytest.raises(UnknownModelError) as info:
        await router.aresponses(model="gpt-5-turbo", input="x")

    message = str(info.value)
    assert "gpt-5-turbo" in message
    for group in ("gpt-4o", "gpt-4o-mini", "gpt-4o-big"):
        assert group in message
    assert info.value.reason == "unknown_model"
    assert info.value.model_group == "gpt-5-turbo"
    assert isinstance(info.value, NoDeploymentAvailableError)
    assert a.hits + b.hits + mini.hits + big.hits == 0


async def test_every_deployment_down_fails_fast_with_the_full_trail(upstreams, make_router):
    a, b = await upstreams("a", "b")
    await a.down()
    await b.down()
    router = make_router([openai_dep(a), openai_dep(b)], routing_strategy=InOrder(),
                         num_retries=3, rng=random.Random(123))  # small backoff draws

    started = time.monotonic()
    with pytest.raises(ConnectionError) as info:
        await router.aresponses(model="gpt-4o", input="x")
    elapsed = time.monotonic() - started

    assert elapsed < 3.0
    trail = info.value.trail
    assert len(trail.attempts) == 4
    assert {x.deployment_id for x in trail.attempts} == {"a", "b"}
    assert all(x.error == "ConnectionError" for x in trail.attempts)
    assert info.value.deployment_id in {"a", "b"}
    assert "a" in str(trail) and "b" in str(trail)


async def test_every_deployment_failing_bounds_upstream_hits(upstreams, make_router):
    a, b = await upstreams("a", "b")
    a.faults.fail(503)
    b.faults.fail(503)
    router = make_router([openai_dep(a), openai_dep(b)], routing_strategy=InOrder(),
                         num_retries=3, allowed_fails=100,
                         rng=random.Random(123))  # small backoff draws

    started = time.monotonic()
    with pytest.raises(ServiceUnavailableError) as info:
        await router.aresponses(model="gpt-4o", input="x")

    assert time.monotonic() - started < 3.0
    trail = info.value.trail
    assert a.hits + b.hits == len(trail.attempts) == 4
    assert trail.attempts[0].deployment_id != trail.attempts[1].deployment_id
    assert all(x.status == 503 for x in trail.attempts)
    assert info.value.model_group == "gpt-4o"


async def test_cooled_group_fails_without_touching_the_upstreams(upstreams, make_router):
    a, b = await upstreams("a", "b")
    a.faults.fail(429)
    b.faults.fail(429)
    router = make_router([openai_dep(a), openai_dep(b)], num_retries=1, cooldown_time=5)
    with pytest.raises(RateLimitError):
        await router.aresponses(model="gpt-4o", input="one")
    hits = a.hits + b.hits

    started = time.monotonic()
    with pytest.raises(NoDeploymentAvailableError) as info:
        await router.aresponses(model="gpt-4o", input="two")

    assert time.monotonic() - started < 0.5
    assert info.value.reason == "all_cooled_down"
    assert set(info.value.details) == {"a", "b"}
    assert a.hits + b.hits == hits == 2


async def test_invalid_arguments_are_rejected_before_sending(upstreams, make_router):
    (up,) = await upstreams("east")
    router = make_router([openai_dep(up)])

    with pytest.raises(InvalidRequestError):
        await router.aresponses(model="gpt-4o", input="x", timeout=-1)
    with pytest.raises(InvalidRequestError):
        await router.aresponses(model="gpt-4o", input="x", num_retries="2")
    with pytest.raises(InvalidRequestError):
        await router.aget_responses("../../etc/passwd")
    assert up.hits == 0


SECRET = "sk-test-DISTINCTIVE123"


async def test_no_secret_in_errors_router_or_deployments(upstreams, make_router):
    (wrong_key,) = await upstreams("wrongkey", api_key="another-key")
    flaky, down = await upstreams("flaky", "down", api_key=SECRET)
    flaky.faults.fail(503)
    await down.down()
    router = make_router(
        [
            openai_dep(wrong_key, "auth", api_key=SECRET, organization="org-1"),
            azure_dep(flaky, "flaky", api_key=SECRET, api_version="2025-03-01-preview"),
            openai_dep(down, "down", api_key=SECRET,
                       extra_headers={"x-api-key": SECRET}),
        ],
        num_retries=0,
    )
    errors: list[BaseException] = []
    for model, kind in (("auth", AuthenticationError), ("flaky", ServiceUnavailableError),
                        ("down", ConnectionError), ("nope", UnknownModelError)):
        with pytest.raises(kind) as info:
            await router.aresponses(model=model, input="x")
        errors.append(info.value)
    with pytest.raises(RouterError) as info:
        await router.aresponses(model="flaky", input="x", timeout=0.01)
    errors.append(info.value)

    texts = [repr(router), str(router), repr(router.deployments()), str(router.cooldowns())]
    for d in router.deployments():
        texts += [repr(d), str(d), repr(d.config), str(d.config), repr(d.endpoint),
                  repr(d.config.litellm_params)]
    texts.append(repr(router.services.config))
    for err in errors:
        texts += [str(err), repr(err), str(err.trail), repr(err.trail), err.message,
                  repr(getattr(err, "body", None))]
        cause = err.__cause__
        while cause is not None:
            texts += [str(cause), repr(cause)]
            cause = cause.__cause__
    joined = "\n".join(texts)
    assert SECRET not in joined
    assert "DISTINCTIVE123" not in joined
    assert errors[1].deployment_id == "flaky"
    assert errors[0].deployment_id == "wrongkey"


def test_no_secret_in_config_errors():
    bad = [{"model_name": "gpt-4o",
            "litellm_params": {"model": "azure/x", "api_key": SECRET, "timeout": -5}}]
    with pytest.raises(ConfigError) as info:
        Router(bad)
    assert SECRET not in str(info.value) and SECRET not in repr(info.value)
    assert "api_base" in str(info.value)


# --------------------------------------------------------------------------- config


async def test_router_from_litellm_config_file(upstreams, make_router, tmp_path, monkeypatch):
    east, west, mini = await upstreams("east", "west", "mini", api_key=SECRET)
    monkeypatch.setenv("TEST_UPSTREAM_KEY", SECRET)
    path = tmp_path / "config.yaml"
    path.write_text(f"""\
model_list:
  - model_name: gpt-4o
    litellm_params:
      model: azure/gpt-4o-east
      api_base: {east.url}
      api_key: os.environ/TEST_UPSTREAM_KEY
      api_version: "2025-03-01-preview"
      rpm: 600
      temperature: 0.2
    model_info:
      id: east
      base_model: azure/gpt-4o
  - model_name: gpt-4o
    litellm_params:
      model: openai/gpt-4o
      api_base: {west.url}/v1
      api_key: os.environ/TEST_UPSTREAM_KEY
    model_info:
      id: west
  - model_name: gpt-4o-mini
    litellm_params:
      model: gpt-4o-mini
      api_base: {mini.url}/v1
      api_key: os.environ/TEST_UPSTREAM_KEY
    model_info:
      id: mini
router_settings:
  routing_strategy: simple-shuffle
  num_retries: 1
  timeout: 10
  allowed_fails: 0
  cooldown_time: 0.5
  fallbacks:
    - gpt-4o: [gpt-4o-mini]
  model_group_alias:
    gpt-4: gpt-4o
litellm_settings:
  drop_params: true
general_settings:
  master_key: os.environ/NOT_SET_ANYWHERE
""")
    with pytest.warns(ConfigWarning):
        router = make_router(path=path)

    assert sorted(router.model_names) == ["gpt-4o", "gpt-4o-mini"]
    served = {(await router.aresponses(model="gpt-4o", input="hi")).routing.deployment_id
              for _ in range(12)}
    assert served == {"east", "west"}
    assert east.requests[0].path == "/openai/responses"
    assert east.requests[0].headers["api-key"] == SECRET
    assert east.requests[0].json["model"] == "gpt-4o-east"
    assert "temperature" not in east.requests[0].json  # a LiteLLM completion kwarg, ignored
    assert west.requests[0].headers["authorization"] == f"Bearer {SECRET}"

    aliased = await router.aresponses(model="gpt-4", input="alias")
    assert aliased.routing.model_group == "gpt-4o"

    east.faults.fail(503)
    west.faults.fail(503)
    fell = await router.aresponses(model="gpt-4o", input="fallback")
    assert fell.routing.deployment_id == "mini"
    assert fell.routing.fallbacks == ["gpt-4o-mini"]
    assert SECRET not in repr(router)


def test_from_config_missing_environment_variable(tmp_path, monkeypatch):
    monkeypatch.delenv("TEST_UNSET_KEY", raising=False)
    path = tmp_path / "config.yaml"
    path.write_text("""\
model_list:
  - model_name: gpt-4o
    litellm_params:
      model: openai/gpt-4o
      api_key: os.environ/TEST_UNSET_KEY
""")
    with pytest.raises(ConfigError, match="TEST_UNSET_KEY"):
        Router.from_config(path)


async def test_router_from_dict(upstreams, make_router):
    a, b = await upstreams("a", "b")
    doc = {
        "model_list": [
            {"model_name": "gpt-4o", "params": {"model": "openai/gpt-4o",
                                                "api_base": f"{a.url}/v1", "api_key": "k1"},
             "model_info": {"id": "a"}},
            {"model_name": "gpt-4o-mini", "litellm_params": {
                "model": "azure/mini-deploy", "api_base": b.url, "api_key": "k1"},
             "model_info": {"id": "b"}},
        ],
        "router_settings": {"num_retries": 0, "fallbacks": [{"gpt-4o": "gpt-4o-mini"}]},
    }
    router = make_router(config=doc, routing_strategy=InOrder())

    ok = await router.aresponses(model="gpt-4o", input="x")
    a.faults.fail(500)
    fell = await router.aresponses(model="gpt-4o", input="y")

    assert ok.routing.deployment_id == "a"
    assert fell.routing.deployment_id == "b"
    assert fell.model == "mini-deploy"
    assert create_paths(b) == ["/openai/v1/responses"]


def test_from_dict_reports_every_problem():
    doc = {
        "model_list": [{"model_name": "gpt-4o", "litellm_params": {"model": "openai/gpt-4o"}}],
        "router_settings": {"num_retires": 2, "fallbacks": [{"gpt-4o": ["nope"]}]},
    }
    with pytest.raises(ConfigError) as info:
        Router.from_dict(doc)
    assert len(info.value.problems) >= 1
    assert "num_retires" in str(info.value)
