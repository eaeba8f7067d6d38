"""The router on a real Sentinel set (a primary, a replica, one sentinel), and a failover.

"Acknowledged" here: the ownership record's ``SET`` and its ``WAIT 1`` returned
(the primary and the replica hold it), which is what the router waits for in
Sentinel mode. The primary is killed (SIGKILL) while callers keep starting and
continuing conversations; the sentinel promotes the replica. No request fails
meanwhile (memory serves while Redis is away), every acknowledged record is on
the new primary, and once the breaker's interval has passed new records
reach the new primary; a router started after the failover finds the new
primary through the sentinel and shares cooldowns with the first.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import redis

from router.state.redis import RedisStore
from tests.conftest import openai_dep, wait_until

if TYPE_CHECKING:
    from tests.redis_fixtures import PrivateSentinel

pytest_plugins = ("tests.redis_fixtures",)

CALLERS = 4


def _store(router: Any) -> RedisStore:
    shared = router.services.store.shared
    assert isinstance(shared, RedisStore) and shared.target.kind == "sentinel"
    return shared


def _note_acknowledged(store: RedisStore, into: dict[str, str]) -> None:
    """Remember each key whose write returned (SET and WAIT) on ``store``."""
    write = store.set_many

    async def set_and_note(items: Sequence[tuple[str, str]], ttl: float, *,
                           durable: bool = False) -> None:
        await write(items, ttl, durable=durable)
        into.update((store.prefix + key, value) for key, value in items)

    store.set_many = set_and_note  # type: ignore[method-assign]


async def test_a_failover_mid_run_loses_no_acknowledged_record(
    upstreams: Any, make_router: Any, redis_sentinel: PrivateSentinel, caplog: Any, capsys: Any
) -> None:
    caplog.set_level(logging.WARNING)
    ups = await upstreams("a", "b", "c")
    router = make_router(
        [openai_dep(u) for u in ups], rng=random.Random(3),
        optional_pre_call_checks=["responses_api_deployment_check"], routing_strategy="least-busy",
        sentinel_nodes=redis_sentinel.sentinel_nodes, service_name="mymaster",
        redis_key_prefix=f"rr-sentinel-{uuid.uuid4().hex[:8]}:")
    store = _store(router)
    acknowledged: dict[str, str] = {}
    _note_acknowledged(store, acknowledged)
    errors: list[str] = []
    served: list[Any] = []
    stop = asyncio.Event()

    async def caller(k: int) -> None:
        last: Any = None
        while not stop.is_set():
            try:
                if last is None or len(served) % 3 == 0:
                    last = await router.aresponses(model="gpt-4o", input=f"caller {k}")
                else:
                    follow = await router.aresponses(model="gpt-4o", input="next",
                                                     previous_response_id=last.id)
                    assert follow.routing.deployment_id == last.routing.deployment_id
                    last = follow
                served.append(last)
            except Exception as exc:
                errors.append(repr(exc))

    callers = [asyncio.create_task(caller(k)) for k in range(CALLERS)]
    await asyncio.sleep(1.0)
    before, served_before = len(acknowledged), len(served)
    new_primary = await asyncio.to_thread(redis_sentinel.kill_primary)
    during = len(served)
    await asyncio.sleep(1.0)
    stop.set()
    await asyncio.gather(*callers)

    with capsys.disabled():
        print(f"\n[sentinel failover] served {len(served)} "
              f"({len(served) - served_before} after the kill began), errors {len(errors)}, "
              f"records acknowledged {len(acknowledged)}")
    assert errors == []
    assert before > 0 and len(served) > during  # it kept serving through the failover
    with redis.Redis(port=new_primary, decode_responses=True) as admin:
        kept = dict(zip(acknowledged, admin.mget(list(acknowledged)), strict=True))
    assert kept == acknowledged  # every acknowledged record survived the failover

    # after the breaker's interval, records reach the new primary again
    for _ in range(200):
        made = await router.aresponses(model="gpt-4o", input="after")
        if not router.services.store.degraded:
            break
        await asyncio.sleep(0.05)
    made = await router.aresponses(model="gpt-4o", input="after")
    with redis.Redis(port=new_primary, decode_responses=True) as admin:
        assert admin.get(f"{store.prefix}own:{made.id}") == made.routing.deployment_id

    # a router started after the failover finds the new primary through the sentinel,
    # and cooldowns travel between the two on its pub/sub
    other = make_router(
        [openai_dep(u) for u in ups], optional_pre_call_checks=["responses_api_deployment_check"],
        sentinel_nodes=redis_sentinel.sentinel_nodes, service_name="mymaster",
        redis_key_prefix=store.prefix)
    assert await other.__aenter__() is other
    follow = await other.aresponses(model="gpt-4o", input="next", previous_response_id=made.id)
    assert follow.routing.deployment_id == made.routing.deployment_id
    ups[0].faults.fail(429, retry_after=30, times=1)
    for _ in range(100):  # simple-shuffle: until a request meets the 429 (another serves it)
        await other.aresponses(model="gpt-4o", input="until a 429")
        if other.cooldowns():
            break
    assert [c.deployment_id for c in other.cooldowns()] == ["a"]
    assert await wait_until(lambda: [c.deployment_id for c in router.cooldowns()] == ["a"])
