"""A ``Retry-After`` is a promise the router keeps, counted on a real upstream.

The scenario of issue 17: the only deployment of a group answers 429 with a
``Retry-After``; several callers, each allowed retries. Without the promise
every caller retried it once per interval (5 callers x 3 retries). With it,
after the first 429 at most one request per interval reaches the upstream
(the probe) until it answers, and the other callers get a ``RateLimitError``
carrying the wait at once. With Redis, two routers (two instance ids, as two
processes have) keep the promise together: the cooldown travels over the
shared cooldowns and the probe is claimed atomically.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from router.attempts import RETRY_AFTER_PENDING
from router.errors import RateLimitError
from router.router import Router
from tests.conftest import openai_dep

pytest_plugins = ("tests.redis_fixtures",)

INTERVAL = 0.5
CALLERS = 5


async def _caller(router: Router, i: int) -> BaseException | None:
    try:
        await router.aresponses(model="gpt-4o", input=f"caller {i}", num_retries=3,
                                timeout=10.0)
    except RateLimitError as exc:
        return exc
    return None


async def test_callers_of_a_rate_limited_only_deployment_probe_once_per_interval(
    upstreams: Any, make_router: Any
) -> None:
    (up,) = await upstreams("only")
    up.faults.fail(429, retry_after=INTERVAL)
    router = make_router([openai_dep(up)], retry_budget=False)
    started = time.monotonic()
    outcomes = await asyncio.gather(*(_caller(router, i) for i in range(CALLERS)))
    elapsed = time.monotonic() - started
    assert all(isinstance(o, RateLimitError) for o in outcomes)
    pending = [o for o in outcomes if isinstance(o, RateLimitError)
               and o.code == RETRY_AFTER_PENDING]
    assert pending and all(o.retry_after is not None for o in pending)
    # the first wave (in flight before any 429 came back), then one probe per interval
    assert up.hits <= CALLERS + int(elapsed / INTERVAL) + 1, (up.hits, elapsed)
    assert up.hits < CALLERS * 4  # what every caller retrying on its own sent


async def test_the_first_success_ends_the_probation(upstreams: Any, make_router: Any) -> None:
    (up,) = await upstreams("only")
    up.faults.fail(429, retry_after=INTERVAL, times=1)
    router = make_router([openai_dep(up)], retry_budget=False)
    response = await router.aresponses(model="gpt-4o", input="x", num_retries=2)
    assert response.routing.retries == 1  # the probe, after the interval, answered
    served = await asyncio.gather(*(router.aresponses(model="gpt-4o", input=f"after {i}")
                                    for i in range(CALLERS)))
    assert len(served) == CALLERS and up.hits == 2 + CALLERS


async def test_two_routers_sharing_redis_keep_the_promise_together(
    upstreams: Any, make_router: Any, redis_space: Any
) -> None:
    (up,) = await upstreams("only")
    up.faults.fail(429, retry_after=1.0)
    settings = {"redis_url": redis_space.url, "redis_key_prefix": redis_space.prefix,
                "retry_budget": False}
    first = make_router([openai_dep(up)], **settings)
    second = make_router([openai_dep(up)], **settings)
    async with first, second:
        with pytest.raises(RateLimitError):
            await first.aresponses(model="gpt-4o", input="opens the gate", num_retries=0)
        opened = up.hits
        await asyncio.sleep(0.3)  # the cooldown reaches the other router over pub/sub
        with pytest.raises(RateLimitError) as info:
            await second.aresponses(model="gpt-4o", input="must wait", num_retries=0)
        assert info.value.code == RETRY_AFTER_PENDING and up.hits == opened
        await asyncio.sleep(1.0)  # the interval is over: both on probation
        results = await asyncio.gather(
            *(r.aresponses(model="gpt-4o", input=f"probe {i}", num_retries=0)
              for i, r in enumerate([first, second] * 3)),
            return_exceptions=True)
        assert all(isinstance(r, RateLimitError) for r in results)
        assert up.hits == opened + 1  # one probe for both routers
