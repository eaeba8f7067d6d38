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
from collections.abc import Sequence
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
    waits for its record's write 0.25 s at most (the write goes on in the
    background until the breaker's 0.5 s deadline opens it), later ones skip Redis.
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

    async def set_many(self, items: Sequence[tuple[str, str]], ttl: float, *,
                       durable: bool = False) -> None:
        await self.get(items[0][0])

    async def delete_many(self, keys: Sequence[str]) -> None:
        await self.get(keys[0])

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


# --------------------------------------------------------------------------- a 10 s freeze

FREEZE = 10.0  # seconds Redis stays SIGSTOPped (the figure)
CALLERS = 8
#: The issue's target is p99 <= 150 ms; the assertion allows twice that, because
#: the machine that runs the suite is shared and busy (the measured figures print).
P99_BOUND = 0.300
#: No request waits for more than one Redis timeout (the breaker's deadline, 0.5 s);
#: the bound adds a generous 0.5 s for the loopback calls of a busy machine.
MAX_BOUND = 1.0


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def test_a_10s_freeze_costs_requests_almost_nothing(upstreams, make_router,
                                                           private_redis, capsys):
    """SIGSTOP a private redis-server for 10 s while 8 callers run conversations
    (pinned follow-ups, least-busy reading shared load, shared cooldowns), some of
    them continuing responses that another router recorded only in Redis (found
    by discovery while Redis is frozen). Zero errors, every follow-up on its owner,
    p99 and the longest request bounded (see P99_BOUND, MAX_BOUND)."""
    ups = await upstreams("a", "b", "c")
    # The system clock: the breaker's interval must pass for real during the freeze.
    router, other = (make_router(
        [openai_dep(u) for u in ups], rng=random.Random(seed),
        optional_pre_call_checks=["responses_api_deployment_check"],
        redis_url=private_redis.url, redis_key_prefix=PREFIX, routing_strategy="least-busy",
        cooldown_time=30) for seed in (4, 5))
    elsewhere = await _start(40, other)  # recorded in Redis by "another process"
    await other.aclose()
    assert private_redis.proc is not None

    frozen_at: list[float] = []
    thawed_at: list[float] = []
    samples: list[tuple[float, float, str]] = []  # (start, seconds, "ok" or error)
    stop = asyncio.Event()

    async def timed(call: Any) -> Any:
        started = time.monotonic()
        try:
            result = await call
        except Exception as exc:
            samples.append((started, time.monotonic() - started, type(exc).__name__))
            return None
        samples.append((started, time.monotonic() - started, "ok"))
        return result

    async def caller(k: int) -> None:
        turn = 0
        last: Any = None
        while not stop.is_set():
            turn += 1
            if turn % 4 == 1:
                last = await timed(router.aresponses(model="gpt-4o", input=f"caller {k}"))
                continue
            if turn % 4 == 3:  # someone else's conversation: its owner is only in Redis
                first = elsewhere[(k * 7 + turn) % len(elsewhere)]
            elif last is not None:
                first = last
            else:
                continue
            follow = await timed(router.aresponses(
                model="gpt-4o", input="next", previous_response_id=first.id))
            if follow is not None:
                assert follow.routing.deployment_id == first.routing.deployment_id
                if first is last:
                    last = follow

    callers = [asyncio.create_task(caller(k)) for k in range(CALLERS)]
    try:
        await asyncio.sleep(1.0)
        frozen_at.append(time.monotonic())
        os.kill(private_redis.proc.pid, signal.SIGSTOP)
        await asyncio.sleep(FREEZE)
    finally:
        os.kill(private_redis.proc.pid, signal.SIGCONT)
        thawed_at.append(time.monotonic())
    await asyncio.sleep(1.0)
    stop.set()
    await asyncio.gather(*callers)

    during = [s for s in samples if frozen_at[0] <= s[0] < thawed_at[0]]
    seconds = [s[1] for s in during]
    errors = [s[2] for s in samples if s[2] != "ok"]
    p50, p99 = _quantile(seconds, 0.5), _quantile(seconds, 0.99)
    with capsys.disabled():
        print(f"\n[redis freeze {FREEZE:g}s, {CALLERS} callers] requests during the freeze: "
              f"{len(during)}, errors (whole run): {len(errors)}, p50 {p50 * 1000:.1f} ms, "
              f"p99 {p99 * 1000:.1f} ms, max {max(seconds) * 1000:.1f} ms, "
              f"over 150 ms: {sum(s > 0.150 for s in seconds)}")
    assert errors == []
    assert len(during) >= 100
    assert p99 <= P99_BOUND
    assert max(seconds) <= MAX_BOUND
