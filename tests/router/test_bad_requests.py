"""A bad request harms no one else: refused before any upstream call, nothing cooled down.

Each case runs through a real Router against two loopback upstreams that
require the deployments' key, with ``allowed_fails=0`` so that a single
failure blamed on a deployment would cool it down at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from router.errors import ConfigError, InvalidRequestError
from router.errors import TimeoutError as UpstreamTimeout
from router.router import Router
from router.testing import Upstream
from tests.conftest import StartUpstreams, openai_dep

Make = Callable[..., Router]

BAD_CALLS: list[tuple[dict[str, Any], str]] = [
    ({"extra_headers": {"Authorization": "Bearer wrong"}}, "extra_headers"),
    ({"extra_headers": {"api-key": "wrong"}}, "extra_headers"),
    ({"extra_headers": "x"}, "extra_headers"),
    ({"extra_headers": {"api-key": 5}}, "extra_headers"),
    ({"extra_headers": {"x-trace": "a\r\nx-injected: 1"}}, "extra_headers"),
    ({"extra_body": {"stream": True}}, "extra_body"),
    ({"extra_body": {"model": "gpt-other"}}, "extra_body"),
    ({"stream_timeout": -1}, "stream_timeout"),
    ({"input": object()}, "input"),
    ({"input": [{"role": "user", "content": object()}]}, "input"),
    ({"temperature": float("nan")}, "temperature"),
    ({"mock_response": 123}, "mock_response"),
    ({"extra_query": "x"}, "extra_query"),
    ({"extra_query": {"api-version": "1999-01-01"}}, "extra_query"),
    ({"num_retries": "3"}, "num_retries"),
    ({"fallbacks": ["no-such-group"]}, "fallbacks"),
    ({"disable_fallbacks": "false"}, "disable_fallbacks"),
]


@pytest.fixture
async def pair(upstreams: StartUpstreams, make_router: Make) -> tuple[Router, Upstream, Upstream]:
    east, west = await upstreams("east", "west")
    router = make_router([openai_dep(east), openai_dep(west), openai_dep(east, "backup",
                          id="backup")], allowed_fails=0, cooldown_time=60, num_retries=2)
    return router, east, west


def _sent(*ups: Upstream) -> int:
    return sum(len(up.requests) for up in ups)


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(("params", "named"), BAD_CALLS, ids=[n for _, n in BAD_CALLS])
async def test_a_bad_call_is_refused_before_any_upstream_call(
    pair: tuple[Router, Upstream, Upstream], params: dict[str, Any], named: str, stream: bool,
) -> None:
    router, east, west = pair
    call = {"model": "gpt-4o", "input": "hi", "stream": stream, **params}
    with pytest.raises(InvalidRequestError) as info:
        await router.aresponses(**call)
    assert info.value.message.startswith(f"{named}:")
    assert _sent(east, west) == 0
    assert router.cooldowns() == []
    served = await router.aresponses(model="gpt-4o", input="next caller")
    assert served.id


@pytest.mark.parametrize("stream", ["false", "yes", 1])
async def test_stream_must_be_a_bool(pair: tuple[Router, Upstream, Upstream], stream: Any) -> None:
    router, east, west = pair
    with pytest.raises(InvalidRequestError, match=r"^stream: expected True or False"):
        await router.aresponses(model="gpt-4o", input="hi", stream=stream)
    assert _sent(east, west) == 0


async def test_hostile_callers_do_not_cost_others_anything(
    pair: tuple[Router, Upstream, Upstream],
) -> None:
    """Bad calls interleaved with good ones: every good one is served, nothing cools down."""
    router, east, west = pair

    async def bad(i: int) -> BaseException | None:
        params, _ = BAD_CALLS[i % len(BAD_CALLS)]
        try:
            await router.aresponses(**{"model": "gpt-4o", "input": "x", "stream": i % 2 == 0,
                                       **params})
        except InvalidRequestError as exc:
            return exc
        return None

    async def good(i: int) -> str:
        return (await router.aresponses(model="gpt-4o", input=f"good {i}")).id

    results = await asyncio.gather(*(bad(i) for i in range(3 * len(BAD_CALLS))),
                                   *(good(i) for i in range(20)))
    bad_results, good_ids = results[:3 * len(BAD_CALLS)], results[3 * len(BAD_CALLS):]
    assert all(isinstance(r, InvalidRequestError) for r in bad_results)
    assert len(set(good_ids)) == 20
    assert router.cooldowns() == []
    assert _sent(east, west) == 20


async def test_a_known_fallback_group_and_an_alias_are_accepted(
    upstreams: StartUpstreams, make_router: Make,
) -> None:
    (up,) = await upstreams("only")
    router = make_router([openai_dep(up), openai_dep(up, "backup", id="b")],
                         model_group_alias={"old": "backup"})
    served = await router.aresponses(model="gpt-4o", input="hi", fallbacks=["backup", "old"])
    assert served.id


@pytest.mark.parametrize(("settings", "named"), [
    ({"timeout": 1e309}, "router_settings.timeout"),
    ({"stream_timeout": float("inf")}, "router_settings.stream_timeout"),
    ({"num_retries": "3"}, "router_settings.num_retries"),
    ({"allowed_fails": True}, "router_settings.allowed_fails"),
    ({"cooldown_time": float("nan")}, "router_settings.cooldown_time"),
])
def test_bad_construction_is_a_config_error(settings: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigError) as info:
        Router([{"model_name": "m", "litellm_params": {"model": "mock/echo"}}], **settings)
    assert [p.split(":")[0] for p in info.value.problems] == [named]


async def test_a_huge_but_finite_timeout_still_serves(
    upstreams: StartUpstreams, make_router: Make,
) -> None:
    (up,) = await upstreams("only")
    router = make_router([openai_dep(up)], timeout=1e300)
    assert (await router.aresponses(model="gpt-4o", input="hi", timeout=1e300)).id
    stream = await router.aresponses(model="gpt-4o", input="hi", stream=True,
                                     stream_timeout=1e300)
    assert [e async for e in stream]


async def test_a_bad_query_on_a_by_id_call_is_refused_before_sending(
    pair: tuple[Router, Upstream, Upstream],
) -> None:
    router, east, west = pair
    made = await router.aresponses(model="gpt-4o", input="hi")
    before = _sent(east, west)
    with pytest.raises(InvalidRequestError, match=r"^query: 'include' must be a string"):
        await router.aget_responses(made.id, include=object())
    with pytest.raises(InvalidRequestError, match=r"^query: 'api-version' is refused"):
        await router.alist_input_items(made.id, **{"api-version": "1999-01-01"})
    assert _sent(east, west) == before
    assert router.cooldowns() == []


# A failure the request itself caused: the caller's own deadline or stall limit,
# shorter than the router's and the deployment's. The attempt loop tells it from
# the deployment's (router/attempts.py ``_callers_limit``).
@pytest.mark.parametrize("limit", ["timeout", "stream_timeout"])
async def test_a_callers_own_short_limit_cools_nothing_down(
    upstreams: StartUpstreams, make_router: Make, limit: str,
) -> None:
    east, west = await upstreams("east", "west")
    router = make_router([openai_dep(east), openai_dep(west)], allowed_fails=0,
                         cooldown_time=60, num_retries=0)
    east.faults.slow(0.3)
    west.faults.slow(0.3)
    with pytest.raises(UpstreamTimeout):
        await router.aresponses(model="gpt-4o", input="hi", stream=limit == "stream_timeout",
                                **{limit: 0.05})
    assert router.cooldowns() == []


async def test_the_routers_own_timeout_still_cools_a_slow_deployment(
    upstreams: StartUpstreams, make_router: Make,
) -> None:
    east, west = await upstreams("east", "west")
    router = make_router([openai_dep(east, timeout=0.05), openai_dep(west, timeout=0.05)],
                         allowed_fails=0, cooldown_time=60, num_retries=0)
    east.faults.slow(0.3)
    west.faults.slow(0.3)
    with pytest.raises(UpstreamTimeout):
        await router.aresponses(model="gpt-4o", input="hi", timeout=5.0)
    assert len(router.cooldowns()) == 1  # the deployment's own limit fired: its fault
