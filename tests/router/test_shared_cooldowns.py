"""Cooldowns shared between router processes through Redis (router/shared_cooldowns.py).

Unit tests run on fakeredis (a shared ``FakeServer`` stands for one Redis, each
"router" has its own client). The end-to-end tests run two or three routers'
worth of ``Cooldowns`` + ``SharedCooldowns`` in this process against a real
Redis, each with its own connection pool, as separate processes would.
Waits are bounded polls, never fixed sleeps.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from typing import TYPE_CHECKING, Any

import fakeredis
import pytest
import redis.asyncio as aioredis

from router.clock import Clock, ManualClock, SystemClock
from router.cooldown import CooldownEntry, Cooldowns
from router.errors import RateLimitError, ServerError
from router.shared_cooldowns import SharedCooldowns
from router.state.redis import RedisStore
from tests.conftest import wait_until

if TYPE_CHECKING:
    from tests.redis_fixtures import PrivateRedis, RedisSpace

pytest_plugins = ("tests.redis_fixtures",)

IDS = ("d1", "d2", "d3")
WALL = 1_800_000_000.0
Make = Callable[..., tuple[Cooldowns, SharedCooldowns]]


class FakeSource:
    """A ``RedisSource`` on fakeredis: one client of its own on a shared server."""

    def __init__(self, server: fakeredis.FakeServer, prefix: str = "t:") -> None:
        self.prefix = prefix
        self._client = fakeredis.FakeAsyncRedis(server=server, decode_responses=True)

    def client(self) -> aioredis.Redis:
        return self._client


def _429(seconds: float) -> RateLimitError:
    return RateLimitError("slow down", status=429, retry_after=seconds)


@pytest.fixture
def server() -> fakeredis.FakeServer:
    return fakeredis.FakeServer()


@pytest.fixture
async def redis_store() -> AsyncIterator[Callable[[str, str], RedisStore]]:
    """Real-Redis stores (own connection pools), closed after the sharing that uses them."""
    stores: list[RedisStore] = []

    def build(url: str, prefix: str) -> RedisStore:
        store = RedisStore(url, prefix=prefix)
        stores.append(store)
        return store

    yield build
    for store in stores:
        await store.aclose()


@pytest.fixture
async def make(redis_store: Any) -> AsyncIterator[Make]:
    """Build a router's worth of cooldowns + sharing; all are closed at teardown."""
    made: list[SharedCooldowns] = []

    def build(source: Any, clock: Clock | None = None, *, ids: Iterable[str] = IDS,
              retry_interval: float = 0.05, **options: Any) -> tuple[Cooldowns, SharedCooldowns]:
        clock = clock or SystemClock()
        cooldowns = Cooldowns(clock, allowed_fails=0, cooldown_time=5.0, **options)
        shared = SharedCooldowns(source, cooldowns, clock, ids, retry_interval=retry_interval)
        made.append(shared)
        return cooldowns, shared

    yield build
    for shared in made:
        await shared.aclose()


# -- fakeredis: the mechanics -------------------------------------------------------------------


async def test_a_cooldown_recorded_on_a_reaches_b(server: fakeredis.FakeServer, make: Make) -> None:
    a_cd, a = make(FakeSource(server))
    b_cd, b = make(FakeSource(server))
    assert await a.start() and await b.start()

    entry = a_cd.record_failure("d1", _429(3.0))

    assert entry is not None
    assert await wait_until(lambda: b_cd.get("d1") is not None)
    seen = b_cd.get("d1")
    assert seen is not None
    assert (seen.until_wall, seen.reason, seen.status, seen.times) == (
        entry.until_wall, "RateLimitError", 429, 1)
    assert seen.origin == a.instance_id
    assert b_cd.get("d2") is None


async def test_the_key_holds_the_entry_for_its_remaining_time(
    server: fakeredis.FakeServer, make: Make
) -> None:
    source = FakeSource(server, prefix="p:")
    a_cd, a = make(source)
    await a.start()
    a_cd.record_failure("d2", _429(3.0))
    client = source.client()
    assert a.key("d2") == "p:cd:d2"
    assert await _has_key(client, "p:cd:d2")
    ttl = await client.pttl("p:cd:d2")
    assert 2_000 < ttl <= 3_000
    data = json.loads(await client.get("p:cd:d2"))
    assert data["deployment_id"] == "d2" and data["origin"] == a.instance_id


async def _has_key(client: aioredis.Redis, key: str) -> bool:
    for _ in range(1000):
        if await client.exists(key):
            return True
        await asyncio.sleep(0.005)
    return False


async def test_own_publications_do_not_come_back(server: fakeredis.FakeServer, make: Make) -> None:
    a_seen: list[CooldownEntry] = []
    b_seen: list[CooldownEntry] = []
    a_cd, a = make(FakeSource(server), on_cooldown=a_seen.append)
    _, b = make(FakeSource(server), on_cooldown=b_seen.append)
    await a.start()
    await b.start()

    a_cd.record_failure("d1", _429(3.0))
    assert await wait_until(lambda: len(b_seen) == 1)
    a_cd.record_failure("d2", _429(3.0))  # a later message A must also not echo back
    assert await wait_until(lambda: len(b_seen) == 2)

    assert [e.origin for e in a_seen] == [None, None]
    assert [e.origin for e in b_seen] == [a.instance_id, a.instance_id]
    own = a_cd.get("d1")
    assert own is not None and own.origin is None


async def test_a_router_started_later_loads_cooldowns_in_force(
    server: fakeredis.FakeServer, make: Make
) -> None:
    a_cd, a = make(FakeSource(server))
    await a.start()
    a_cd.record_failure("d1", _429(30.0))
    a_cd.record_failure("d3", _429(30.0))
    assert await _has_key(FakeSource(server).client(), "t:cd:d3")

    c_cd, c = make(FakeSource(server))
    assert await c.start()

    assert {e.deployment_id for e in c_cd.active()} == {"d1", "d3"}
    assert c.loads == 1


async def test_times_are_converted_to_the_local_clock(
    server: fakeredis.FakeServer, make: Make
) -> None:
    # two processes: different monotonic clocks, the same wall clock
    a_clock = ManualClock(start=1000.0, wall_start=WALL)
    b_clock = ManualClock(start=50.0, wall_start=WALL)
    a_cd, a = make(FakeSource(server), a_clock)
    b_cd, b = make(FakeSource(server), b_clock)
    await a.start()
    await b.start()
    a_clock.advance(2.0)
    b_clock.advance(2.0)

    a_cd.record_failure("d1", _429(10.0))

    assert await wait_until(lambda: b_cd.get("d1") is not None)
    seen = b_cd.get("d1")
    assert seen is not None
    assert seen.until == pytest.approx(62.0)
    assert seen.started == pytest.approx(52.0)
    assert seen.until_wall == pytest.approx(WALL + 12.0)
    b_clock.advance(10.01)
    assert b_cd.get("d1") is None


async def test_extensions_travel_and_shorter_entries_do_not_shorten(
    server: fakeredis.FakeServer, make: Make
) -> None:
    a_cd, a = make(FakeSource(server))
    b_cd, b = make(FakeSource(server))
    await a.start()
    await b.start()
    b_own = b_cd.record_failure("d2", _429(60.0))
    a_cd.record_failure("d1", _429(5.0))
    assert await wait_until(lambda: b_cd.get("d1") is not None)

    a_cd.record_failure("d1", _429(40.0))  # an extension
    a_cd.record_failure("d2", _429(5.0))  # shorter than what B has
    await asyncio.sleep(0)  # let that batch go out before the marker
    a_cd.record_failure("d3", _429(5.0))  # a marker: published after both

    assert await wait_until(lambda: b_cd.get("d3") is not None)
    extended = b_cd.get("d1")
    assert extended is not None and extended.until_wall == pytest.approx(
        a_cd.get("d1").until_wall)  # type: ignore[union-attr]
    assert b_cd.get("d2") == b_own


async def test_foreign_and_unreadable_entries_are_ignored(
    server: fakeredis.FakeServer, make: Make
) -> None:
    other_cd, other = make(FakeSource(server), ids=("x1",))  # another config, same Redis
    a_cd, a = make(FakeSource(server))
    b_cd, b = make(FakeSource(server))
    for shared in (other, a, b):
        await shared.start()
    raw = FakeSource(server).client()
    for junk in ("not json", "{}", json.dumps({"deployment_id": "d1", "until_wall": "soon"}),
                 json.dumps([1, 2])):
        await raw.publish("t:cooldowns", junk)

    other_cd.record_failure("x1", _429(30.0))
    await asyncio.sleep(0)
    a_cd.record_failure("d2", _429(30.0))  # a marker: published after the junk and x1

    assert await wait_until(lambda: b_cd.get("d2") is not None)
    assert [e.deployment_id for e in b_cd.active()] == ["d2"]
    a_cd.record_failure("d3", _429(30.0))  # and B's subscriber is still alive
    assert await wait_until(lambda: b_cd.get("d3") is not None)


async def test_redis_down_keeps_cooldowns_local_warns_once_and_recovers(
    server: fakeredis.FakeServer, make: Make, caplog: pytest.LogCaptureFixture
) -> None:
    server.connected = False
    caplog.set_level(logging.WARNING, logger="router.shared_cooldowns")
    a_cd, a = make(FakeSource(server))
    b_cd, b = make(FakeSource(server))

    assert await a.start() is False
    await b.start()
    entry = a_cd.record_failure("d1", _429(30.0))
    a_cd.record_failure("d2", _429(30.0))
    assert entry is not None and a_cd.get("d1") == entry  # local cooldowns work
    assert a.degraded and b.degraded
    failures = [r for r in caplog.records if "Redis failed" in r.getMessage()]
    assert len(failures) == 2  # one per router, not one per operation

    server.connected = True
    # A re-sends its own cooldowns once it is back; B loads or hears them
    assert await wait_until(lambda: b_cd.get("d1") is not None and b_cd.get("d2") is not None)
    assert await wait_until(lambda: not a.degraded and not b.degraded)
    assert any("answers again" in r.getMessage() for r in caplog.records)


async def test_a_lost_subscription_reloads_what_it_missed(
    server: fakeredis.FakeServer, make: Make
) -> None:
    b_cd, b = make(FakeSource(server), retry_interval=0.2)
    await b.start()
    assert b.loads == 1
    server.connected = False
    assert await wait_until(lambda: b.degraded)

    # published while B was not listening: only the key remains
    server.connected = True
    payload = json.dumps({"v": 1, "deployment_id": "d3", "until_wall": WALL * 2,
                          "started_wall": WALL, "reason": "ServerError", "status": 500,
                          "times": 2, "origin": "elsewhere"})
    await FakeSource(server).client().set("t:cd:d3", payload, px=60_000)

    assert await wait_until(lambda: b_cd.get("d3") is not None)
    assert b.loads == 2
    seen = b_cd.get("d3")
    assert seen is not None and (seen.reason, seen.times, seen.origin) == (
        "ServerError", 2, "elsewhere")


class SwallowingSource(FakeSource):
    """A source whose subscription loses a cancellation, as redis-py can when a
    cancel lands just as its own read timeout fires."""

    def client(self) -> Any:
        inner = super().client()

        class PubSub:
            def __init__(self) -> None:
                self._inner = inner.pubsub()

            async def subscribe(self, *channels: str) -> None:
                await self._inner.subscribe(*channels)

            async def get_message(self, timeout: float | None = None) -> Any:
                try:
                    return await self._inner.get_message(timeout=0.05)
                except asyncio.CancelledError:
                    return None

            async def aclose(self) -> None:
                await self._inner.aclose()

        class Client:
            def pubsub(self) -> PubSub:
                return PubSub()

            def __getattr__(self, name: str) -> Any:
                return getattr(inner, name)

        return Client()


async def test_aclose_ends_a_subscriber_that_lost_its_cancellation(
    server: fakeredis.FakeServer,
) -> None:
    clock = SystemClock()
    cooldowns = Cooldowns(clock, allowed_fails=0, cooldown_time=5.0)
    shared = SharedCooldowns(SwallowingSource(server), cooldowns, clock, IDS)
    assert await shared.start()
    subscriber = shared._loops[id(asyncio.get_running_loop())].subscriber
    assert subscriber is not None

    await asyncio.wait_for(shared.aclose(), timeout=5.0)

    assert subscriber.done()


async def test_recorded_outside_a_loop_stays_local(server: fakeredis.FakeServer) -> None:
    clock = ManualClock()
    cooldowns = Cooldowns(clock, allowed_fails=0, cooldown_time=5.0)
    shared = SharedCooldowns(FakeSource(server), cooldowns, clock, IDS)

    def record() -> CooldownEntry | None:
        return cooldowns.record_failure("d1", ServerError("x", status=500))

    entry = await asyncio.to_thread(record)  # a thread with no running loop
    assert entry is not None and cooldowns.get("d1") == entry
    await shared.aclose()


async def test_repr_names_no_url(server: fakeredis.FakeServer, make: Make) -> None:
    _, shared = make(FakeSource(server))
    assert "redis" not in repr(shared).lower()
    assert shared.instance_id in repr(shared)


# -- a real Redis ------------------------------------------------------------------------------

Stores = Callable[[str, str], RedisStore]


async def test_real_redis_two_routers_and_a_late_one(
    redis_space: RedisSpace, redis_store: Stores, make: Make
) -> None:
    a_cd, a = make(redis_store(redis_space.url, redis_space.prefix))
    b_cd, b = make(redis_store(redis_space.url, redis_space.prefix))
    assert await a.start() and await b.start()

    a_cd.record_failure("d1", _429(20.0))
    assert await wait_until(lambda: b_cd.get("d1") is not None)
    assert await wait_until(lambda: redis_space.pttl("cd:d1") > 0)
    assert 10_000 < redis_space.pttl("cd:d1") <= 20_000

    c_cd, c = make(redis_store(redis_space.url, redis_space.prefix))
    assert await c.start()
    seen = c_cd.get("d1")
    assert seen is not None and seen.origin == a.instance_id


async def test_real_redis_survives_a_killed_subscription(
    private_redis: PrivateRedis, redis_store: Stores, make: Make
) -> None:
    a_cd, a = make(redis_store(private_redis.url, "k:"))
    b_cd, b = make(redis_store(private_redis.url, "k:"))
    assert await a.start() and await b.start()

    with private_redis.client() as admin:
        killed = admin.client_kill_filter(_type="pubsub")
    assert killed == 2
    # the subscriptions come back and reload what is in force
    assert await wait_until(lambda: a.loads >= 2 and b.loads >= 2)

    a_cd.record_failure("d2", _429(20.0))
    assert await wait_until(lambda: b_cd.get("d2") is not None)


async def test_real_redis_restart_recovers(
    private_redis: PrivateRedis, redis_store: Stores, make: Make,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="router.shared_cooldowns")
    a_cd, a = make(redis_store(private_redis.url, "r:"), retry_interval=0.1)
    b_cd, b = make(redis_store(private_redis.url, "r:"), retry_interval=0.1)
    assert await a.start() and await b.start()

    await asyncio.to_thread(private_redis.stop)
    entry = a_cd.record_failure("d3", _429(30.0))
    assert entry is not None and a_cd.get("d3") == entry  # local cooldowns go on
    assert await wait_until(lambda: a.degraded, timeout=10.0)  # its write failed

    await asyncio.to_thread(private_redis.start)
    # recorded while Redis was down, A's cooldown reaches B once both are back
    assert await wait_until(lambda: b_cd.get("d3") is not None, timeout=10.0)
    assert await wait_until(lambda: not a.degraded and not b.degraded, timeout=10.0)
    warnings = [r.getMessage() for r in caplog.records]
    assert 1 <= sum("Redis failed" in w for w in warnings) <= 2  # once per router at most
