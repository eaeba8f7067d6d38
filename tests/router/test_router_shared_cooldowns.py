"""Two Routers on one Redis share cooldowns (router/router.py + router/shared_cooldowns.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.conftest import InOrder, openai_dep, wait_until

if TYPE_CHECKING:
    from tests.redis_fixtures import RedisSpace

pytest_plugins = ("tests.redis_fixtures",)


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
    assert await wait_until(lambda: [c.deployment_id for c in two.cooldowns()] == ["a"])

    served = await two.aresponses(model="gpt-4o", input="y")
    assert served.routing.deployment_id == "b"
    assert a.hits == 1  # the second router never tried the cooled deployment
    (entry,) = two.cooldowns()
    assert entry.reason == "RateLimitError" and entry.origin is not None
