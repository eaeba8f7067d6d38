"""Every Redis user of the router on a real 3-master Redis Cluster (started by the test module).

Two routers share one cluster as two processes would: ownership records
written by one route the other's follow-ups (no discovery), the shared load
reservations hold one rpm limit across both (each deployment's keys in one
slot: its MULTI runs on one node), and a cooldown one router starts reaches the
other through classic pub/sub on a node of the cluster.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import TYPE_CHECKING, Any

from router.errors import RouterError
from tests.conftest import InOrder, openai_dep, wait_until

if TYPE_CHECKING:
    from tests.redis_fixtures import PrivateCluster

pytest_plugins = ("tests.redis_fixtures",)


def _discoveries(ups: Any) -> int:
    """The owner-discovery reads (``GET /responses/{id}``) the upstreams have answered."""
    return sum(r.method == "GET" for u in ups for r in u.requests)


def _settings(cluster: PrivateCluster) -> dict[str, Any]:
    return {"redis_startup_nodes": cluster.startup_nodes,
            "redis_key_prefix": f"rr-cluster-{uuid.uuid4().hex[:8]}:"}


async def test_ownership_records_route_the_other_routers_follow_ups(
    upstreams: Any, make_router: Any, redis_cluster: PrivateCluster
) -> None:
    ups = await upstreams("a", "b", "c")
    redis = _settings(redis_cluster)
    deps = [openai_dep(u) for u in ups]
    one, two = (make_router(deps, optional_pre_call_checks=["responses_api_deployment_check"],
                            routing_strategy="least-busy", **redis) for _ in range(2))
    for router in (one, two):  # learn the slot map and open connections to every node
        await router.aresponses(model="gpt-4o", input="warm")
        await asyncio.gather(*(router.aresponses(model="gpt-4o", input=f"warm {i}")
                               for i in range(3)))
    # Waves of 5: a cold router's burst opens a connection per node per concurrent
    # request, which on a busy 2-core machine can outlast the breaker's deadline. A
    # wave during which either breaker tripped (Redis slower than 500 ms once: the
    # router falls back to discovery, by design) is redone once Redis answers again.
    breakers = [r._parts.services.store.shared.breaker for r in (one, two)]
    firsts: list[Any] = []
    follows: list[Any] = []
    redone = 0
    while len(firsts) < 30 and redone < 5:
        epochs = [b.epoch for b in breakers]
        gets = _discoveries(ups)
        made = await asyncio.gather(*(one.aresponses(model="gpt-4o", input=f"hi {i}")
                                      for i in range(5)))
        next_ = await asyncio.gather(*(two.aresponses(
            model="gpt-4o", input="next", previous_response_id=f.id) for f in made))
        assert [f.routing.deployment_id for f in next_] == [
            f.routing.deployment_id for f in made]  # always on the owner
        if [b.epoch for b in breakers] != epochs:
            redone += 1
            await wait_until(lambda: all(b.allows() for b in breakers), timeout=15)
            for router in (one, two):  # one call each closes its breaker again
                await router.aresponses(model="gpt-4o", input="again")
            continue
        assert _discoveries(ups) == gets  # no discovery: the records routed them
        firsts += made
        follows += next_
    assert len(firsts) == 30, f"Redis timed out in {redone} waves"
    assert [f.routing.deployment_id for f in follows] == [
        f.routing.deployment_id for f in firsts]
    with redis_cluster.cluster() as admin:
        owners = [admin.get(f"{redis['redis_key_prefix']}own:{f.id}") for f in firsts]
        nodes = {admin.get_node_from_key(f"{redis['redis_key_prefix']}own:{f.id}").port
                 for f in firsts}
    assert owners == [f.routing.deployment_id for f in firsts]
    assert len(nodes) > 1  # the records spread over the masters


async def test_two_routers_hold_one_rpm_limit_on_a_cluster(
    upstreams: Any, make_router: Any, redis_cluster: PrivateCluster
) -> None:
    (up,) = await upstreams("a")
    redis = _settings(redis_cluster)
    deps = [openai_dep(up, rpm=9)]
    one, two = (make_router(deps, routing_strategy="usage-based-routing-v2", num_retries=0,
                            **redis) for _ in range(2))
    left = 60 - time.time() % 60  # rpm counts per wall-clock minute: stay inside one
    if left < 5:
        await asyncio.sleep(left + 0.1)
    for router in (one, two):  # warm (see above): 2 of the minute's 9 requests
        await router.aresponses(model="gpt-4o", input="warm")
    outcomes = await asyncio.gather(
        *((one if i % 2 else two).aresponses(model="gpt-4o", input=f"{i}") for i in range(16)),
        return_exceptions=True)
    served = [o for o in outcomes if not isinstance(o, BaseException)]
    refused = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(served) == 7 and up.hits == 9
    assert all(isinstance(o, RouterError) for o in refused)
    prefix = redis["redis_key_prefix"]
    with redis_cluster.cluster() as admin:
        slots = {admin.keyslot(k) for k in admin.scan_iter(match=f"{prefix}load:*",
                                                             target_nodes="all")}
    assert len(slots) == 1  # one deployment: all its counters in one slot


async def test_a_cooldown_reaches_the_other_router_through_the_cluster(
    upstreams: Any, make_router: Any, redis_cluster: PrivateCluster
) -> None:
    a, b = await upstreams("a", "b")
    a.faults.fail(429, retry_after=30, times=1)
    redis = _settings(redis_cluster)
    deps = [openai_dep(a), openai_dep(b)]
    one, two = (make_router(deps, routing_strategy=InOrder(), num_retries=1, **redis)
                for _ in range(2))
    await one.__aenter__()
    await two.__aenter__()

    first = await one.aresponses(model="gpt-4o", input="x")
    assert first.routing.deployment_id == "b"
    assert await wait_until(lambda: [c.deployment_id for c in two.cooldowns()] == ["a"])
    served = await two.aresponses(model="gpt-4o", input="y")
    assert served.routing.deployment_id == "b" and a.hits == 1
