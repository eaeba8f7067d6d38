"""Two Routers on one Redis share cooldowns (router/router.py + router/shared_cooldowns.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from tests.conftest import InOrder, openai_dep

if TYPE_CHECKING:
    from tests.redis_fixtures import RedisSpace

pytest_plugins = ("tests.redis_fixtures",)


async def eventually(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.005)
    return True


async def test_a_429_on_one_router_cools_the_deployment_on_the_other(
    upstreams, make_router, redis_space: RedisSpace
) -> None:
    a, b = await upstreams("a", "b")
    a.faults.fail(429, retry_after=30, times=1)
    redis = {"redis_url": redis_space.url, "redis_key_prefix": redis_space.prefix}
    deps = [openai_dep(a), openai_dep(b)]
    one = make_router(deps, routing_strategy=InOrder(), num_retries=1, **redis)
    two = make_router(deps, routing_strategy=InOrder(), num_retries=1, **redis)
    await one.__aenter__()
    await two.__aenter__()

    first = await one.aresponses(model="gpt-4o", input="x")
    assert first.routing.deployment_id == "b"
    assert await eventually(lambda: [c.deployment_id for c in two.cooldowns()] == ["a"])

    served = await two.aresponses(model="gpt-4o", input="y")
    assert served.routing.deployment_id == "b"
    assert a.hits == 1  # the second router never tried the cooled deployment
    (entry,) = two.cooldowns()
    assert entry.reason == "RateLimitError" and entry.origin is not None
