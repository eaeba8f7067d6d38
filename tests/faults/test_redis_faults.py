"""Redis dies, or freezes, while requests flow (a private ``redis-server`` per test).

While it is gone: every request still succeeds (ownership records in this
process's memory, cooldowns local), follow-ups of responses recorded before
the outage still go to their owner, and the outage is logged once per
component, not once per request. When it is back (and the breaker's
``retry_interval`` has passed on the router's clock): records reach Redis again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import signal
import time
from typing import TYPE_CHECKING, Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from router.clock import ManualClock
from router.state.resilient import ResilientStore
from tests.conftest import openai_dep
from tests.faults.conftest import wait_until

if TYPE_CHECKING:
    from tests.redis_fixtures import PrivateRedis

pytest_plugins = ("tests.redis_fixtures",)

PREFIX = "rr-faults:"


def _router(make_router: Any, ups: Any, redis: PrivateRedis, clock: ManualClock,
            strategy: str = "simple-shuffle") -> Any:
    return make_router(
        [openai_dep(u) for u in ups], rng=random.Random(4), clock=clock,
        optional_pre_call_checks=["responses_api_deployment_check"],
        redis_url=redis.url, redis_key_prefix=PREFIX, routing_strategy=strategy,
        cooldown_time=30,
    )


def _owner_in_redis(redis: PrivateRedis, response_id: str) -> str | None:
    with redis.client() as client:
        value = client.get(f"{PREFIX}own:{response_id}")
    return None if value is None else str(value)


async def _start(n: int, router: Any) -> list[Any]:
    return list(await asyncio.gather(
        *(router.aresponses(model="gpt-4o", input=f"start {i}") for i in range(n))))


async def _follow(router: Any, first: Any) -> Any:
    follow = await router.aresponses(model="gpt-4o", input="next",
                                     previous_response_id=first.id)
    assert follow.routing.deployment_id == first.routing.deployment_id
    assert follow.output_text == f"[{first.routing.deployment_id}] turn 2: next"
    return follow


def _warnings(caplog: Any, logger: str, words: str) -> int:
    return sum(r.name == logger and r.levelno == logging.WARNING and words in r.getMessage()
               for r in caplog.records)


@pytest.mark.parametrize("strategy", ["simple-shuffle", "least-busy"])
async def test_redis_killed_mid_run(upstreams, make_router, private_redis, caplog, strategy):
    """``least-busy`` also shares in-flight counters through Redis (router/shared_load.py)."""
    caplog.set_level(logging.WARNING)
    ups = await upstreams("a", "b", "c")
    clock = ManualClock()
    router = _router(make_router, ups, private_redis, clock, strategy)
    await router.__aenter__()

    before = await _start(6, router)
    assert all(_owner_in_redis(private_redis, r.id) == r.routing.deployment_id for r in before)

    # requests keep flowing while Redis is killed under them
    stop = asyncio.Event()
    served: list[Any] = []

    async def flow(k: int) -> None:
        while not stop.is_set():
            served.append(await router.aresponses(model="gpt-4o", input=f"flow {k}"))

    flows = [asyncio.create_task(flow(k)) for k in range(4)]
    assert await wait_until(lambda: len(served) >= 8)
    await asyncio.to_thread(private_redis.stop)
    mark = len(served)
    assert await wait_until(lambda: len(served) >= mark + 20)
    stop.set()
    await asyncio.gather(*flows)  # no request failed

    during = await _start(4, router)
    for first in before + during:  # pinned follow-ups, from this process's memory
        await _follow(router, first)
    # Shared in-flight figures read before the outage count for `shared_ttl` (1 s) on
    # the router's clock; this one only moves when told, so move it past them (but
    # not past the breaker's 5 s).
    clock.advance(1.5)
    hits = ups[0].hits
    ups[0].faults.fail(429)  # cooldowns still work, locally: `a` is tried once, then skipped
    for i in range(12):
        await router.aresponses(model="gpt-4o", input=f"limited {i}")
    assert [c.deployment_id for c in router.cooldowns()] == ["a"]
    assert ups[0].hits == hits + 1
    ups[0].faults.clear()
    # One warning for the Redis (its breaker is shared by ownership, shared load and
    # cooldown writes), at most one from the cooldowns' subscriber, none per request,
    # and no flapping while Redis is down.
    loggers = ("router.state", "router.shared_load", "router.shared_cooldowns")
    outages = {logger: _warnings(caplog, logger, "failed") for logger in loggers}
    assert all(_warnings(caplog, logger, "again") == 0 for logger in loggers)
    assert outages["router.state"] == 1
    assert outages["router.shared_load"] == 0
    assert outages["router.shared_cooldowns"] <= 1  # its subscriber may not have noticed yet

    # back: after the breaker's interval, the first request's record reaches Redis
    await asyncio.to_thread(private_redis.start)
    clock.advance(6.0)
    after = [await router.aresponses(model="gpt-4o", input="after")]
    assert _owner_in_redis(private_redis, after[-1].id) == after[-1].routing.deployment_id
    assert _warnings(caplog, "router.state", "answers again") >= 1
    assert not router.services.store.degraded
    await _follow(router, after[-1])


async def test_redis_restarted_between_requests_loses_no_write(upstreams, make_router,
                                                              private_redis, caplog):
    """A quick restart (or failover) between two bursts of requests."""
    caplog.set_level(logging.WARNING)
    ups = await upstreams("a", "b")
    router = _router(make_router, ups, private_redis, ManualClock())
    await _start(8, router)  # a few pooled connections

    await asyncio.to_thread(private_redis.stop)
    await asyncio.to_thread(private_redis.start)
    after = await _start(8, router)

    assert [_owner_in_redis(private_redis, r.id) for r in after] == [
        r.routing.deployment_id for r in after]
    assert _warnings(caplog, "router.state", "failed") == 0


async def test_redis_frozen_costs_one_socket_timeout_then_memory(upstreams, make_router,
                                                                 private_redis, caplog):
    """SIGSTOP: Redis accepts connections but never answers. The first request
    waits out the store's socket timeout (0.5 s), later ones skip Redis.
    Bound: 20 requests and 3 follow-ups in under 3 s (one timeout plus loopback calls)."""
    caplog.set_level(logging.WARNING)
    ups = await upstreams("a", "b")
    router = _router(make_router, ups, private_redis, ManualClock())
    before = await _start(3, router)
    assert private_redis.proc is not None

    os.kill(private_redis.proc.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        for i in range(20):
            await router.aresponses(model="gpt-4o", input=f"frozen {i}")
        for first in before:
            await _follow(router, first)
        assert time.monotonic() - started < 3.0
        assert _warnings(caplog, "router.state", "failed") == 1
    finally:
        os.kill(private_redis.proc.pid, signal.SIGCONT)


class _Redis:
    """A shared store whose operations follow a plan: ``"slow"`` waits for ``gate``
    and succeeds (it began before the outage), ``"down"`` fails at once."""

    def __init__(self, *plan: str) -> None:
        self.plan = list(plan)
        self.gate = asyncio.Event()

    async def get(self, key: str) -> str | None:
        if self.plan.pop(0) == "down":
            raise RedisConnectionError("Connection refused")
        await self.gate.wait()
        return None

    async def set(self, key: str, value: str, ttl: float) -> None:
        await self.get(key)

    async def delete(self, key: str) -> None:
        await self.get(key)

    async def aclose(self) -> None:
        return None


async def test_a_late_success_from_before_the_outage_keeps_the_breaker_open(caplog):
    caplog.set_level(logging.WARNING)
    shared = _Redis("slow", "down", "down")
    store = ResilientStore(shared, ManualClock())

    before = asyncio.create_task(store.get("k1"))  # in flight when Redis dies
    await asyncio.sleep(0)
    assert await store.get("k2") is None  # fails: the breaker opens, one warning
    shared.gate.set()
    await before  # the answer to a request sent before the outage

    assert store.degraded
    assert await store.get("k3") is None  # skipped while the breaker is open
    assert _warnings(caplog, "router.state", "failed") == 1
