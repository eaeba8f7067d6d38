"""ResilientStore: memory when the shared store fails, one warning, a breaker, recovery."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import fakeredis
import pytest
import redis
from fakeredis import aioredis as fake_aioredis

from router.clock import ManualClock
from router.state.memory import MemoryStore
from router.state.redis import RedisStore
from router.state.resilient import ResilientStore


class FlakyStore:
    """A shared store that counts calls and raises ``redis.ConnectionError`` while ``down``."""

    def __init__(self) -> None:
        self.data: dict[str, str] = {}
        self.down = False
        self.calls = 0

    def _enter(self) -> None:
        self.calls += 1
        if self.down:
            raise redis.ConnectionError("Error 111 connecting to 127.0.0.1:6379.")

    async def get(self, key: str) -> str | None:
        self._enter()
        return self.data.get(key)

    async def set(self, key: str, value: str, ttl: float) -> None:
        self._enter()
        self.data[key] = value

    async def set_many(self, items: Sequence[tuple[str, str]], ttl: float, *,
                       durable: bool = False) -> None:
        self._enter()
        self.data.update(items)

    async def delete_many(self, keys: Sequence[str]) -> None:
        self._enter()
        for key in keys:
            self.data.pop(key, None)

    async def delete(self, key: str) -> None:
        self._enter()
        self.data.pop(key, None)

    async def aclose(self) -> None:
        self._enter()


def failures(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r for r in caplog.records
        if r.name == "router.state" and r.levelno == logging.WARNING and "failed" in r.message
    ]


def recoveries(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "router.state" and "again" in r.message]


async def test_healthy_writes_through_and_reads_local_first() -> None:
    shared = FlakyStore()
    store = ResilientStore(shared, ManualClock())
    await store.set("k", "v", 60)
    assert shared.data == {"k": "v"}
    calls = shared.calls
    assert await store.get("k") == "v"
    assert shared.calls == calls  # served from memory, no round trip
    shared.data["other"] = "from-another-process"
    assert await store.get("other") == "from-another-process"
    await store.delete("k")
    assert "k" not in shared.data
    assert await store.get("k") is None
    assert not store.degraded


async def test_set_many_is_one_shared_call_and_falls_back_to_memory() -> None:
    shared = FlakyStore()
    clock = ManualClock()
    store = ResilientStore(shared, clock, retry_interval=5.0)
    await store.set_many([("a", "1"), ("b", "2")], 60)
    assert shared.data == {"a": "1", "b": "2"} and shared.calls == 1
    shared.down = True
    await store.set_many([("c", "3"), ("d", "4")], 60)  # fails: kept locally
    assert store.degraded and "c" not in shared.data
    assert [await store.get(k) for k in "abcd"] == ["1", "2", "3", "4"]


async def test_failing_shared_store_serves_from_memory_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="router.state")
    shared = FlakyStore()
    shared.down = True
    clock = ManualClock()
    store = ResilientStore(shared, clock, retry_interval=5.0)

    for i in range(50):
        await store.set(f"k{i}", f"v{i}", 60)
        assert await store.get(f"k{i}") == f"v{i}"  # written while down: readable
        assert await store.get(f"missing{i}") is None
        clock.advance(0.05)  # 2.5 s in all: still inside the retry interval
    await store.delete("k0")
    assert await store.get("k0") is None

    assert store.degraded
    assert shared.calls == 1  # the first failure opened the breaker; the rest skipped
    assert len(failures(caplog)) == 1
    assert "ConnectionError" in failures(caplog)[0].message


async def test_breaker_retries_after_the_interval_and_closes_on_success(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="router.state")
    shared = FlakyStore()
    shared.down = True
    clock = ManualClock()
    store = ResilientStore(shared, clock, retry_interval=5.0)

    await store.set("during", "1", 60)
    assert shared.calls == 1
    clock.advance(4.9)
    await store.get("nothing")
    assert shared.calls == 1  # still open

    clock.advance(0.2)  # past the interval: one probe, still failing, breaker re-opens
    await store.get("nothing")
    assert shared.calls == 2
    await store.get("nothing")
    assert shared.calls == 2
    assert len(failures(caplog)) == 1  # still one warning for the whole outage

    shared.down = False
    clock.advance(5.1)
    await store.set("after", "2", 60)
    assert shared.calls == 3
    assert shared.data == {"after": "2"}
    assert not store.degraded
    assert len(recoveries(caplog)) == 1
    assert await store.get("during") == "1"  # the record made while down is still served
    await store.get("x")
    await store.get("y")
    assert shared.calls == 5  # closed: every local miss asks the shared store again

    # A second outage warns again (once).
    shared.down = True
    for _ in range(10):
        await store.set("z", "1", 60)
    assert len(failures(caplog)) == 2


async def test_timeouts_and_os_errors_also_trip() -> None:
    class Slow(FlakyStore):
        async def get(self, key: str) -> str | None:
            self.calls += 1
            raise TimeoutError("socket timed out")

    class Refused(FlakyStore):
        async def get(self, key: str) -> str | None:
            self.calls += 1
            raise ConnectionRefusedError(111, "refused")

    for shared in (Slow(), Refused()):
        store = ResilientStore(shared, ManualClock())
        assert await store.get("k") is None
        assert await store.get("k") is None
        assert store.degraded
        assert shared.calls == 1


async def test_with_a_real_redis_client_on_a_disconnected_fakeredis(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="router.state")
    server = fakeredis.FakeServer()
    clock = ManualClock()
    shared = RedisStore(  # the store's breaker (shared by every user of this Redis) decides
        "redis://fake.invalid/0", prefix="p:", clock=clock, retry_interval=2.0,
        connection_class=fake_aioredis.FakeAsyncRedisConnection, server=server,
    )
    local = MemoryStore()
    store = ResilientStore(shared, clock, local=local)
    peek = fakeredis.FakeStrictRedis(server=server, decode_responses=True)

    await store.set("a", "1", 60)
    assert peek.get("p:a") == "1"
    server.connected = False
    await store.set("b", "2", 60)
    assert await store.get("b") == "2"
    assert store.degraded
    server.connected = True
    clock.advance(2.5)
    await store.set("c", "3", 60)
    assert peek.get("p:c") == "3"
    assert peek.get("p:b") is None  # made while down: memory only (documented)
    assert not store.degraded
    assert len(failures(caplog)) == 1
    await shared.aclose()


class FrozenStore(FlakyStore):
    """Writes hang until ``thaw`` (a stopped Redis keeps the connection open)."""

    def __init__(self) -> None:
        super().__init__()
        self.thaw = asyncio.Event()

    async def set(self, key: str, value: str, ttl: float) -> None:
        self._enter()
        await self.thaw.wait()
        self.data[key] = value


async def test_a_hanging_write_holds_the_caller_for_write_hold_only() -> None:
    """The record is usable locally at once; the Redis write goes on in the background."""
    shared = FrozenStore()
    store = ResilientStore(shared, ManualClock(), write_hold=0.01)
    await asyncio.wait_for(store.set("k", "v", 60), timeout=5.0)  # returns after the hold
    assert await store.get("k") == "v"
    assert store.backlog == 1 and shared.data == {}  # sent again, in the background
    assert not store.degraded  # a slow write is not a failure
    shared.thaw.set()
    await store.flush()
    assert shared.data == {"k": "v"} and store.backlog == 0


async def test_a_durable_write_waits_past_the_hold_and_even_past_a_full_backlog() -> None:
    """Ownership records with an owner: whoever reads them reads Redis, so the caller waits
    for Redis (the breaker's deadline still bounds it)."""
    class SlowBatch(FrozenStore):
        async def set_many(self, items: Sequence[tuple[str, str]], ttl: float, *,
                           durable: bool = False) -> None:
            self._enter()
            await self.thaw.wait()
            self.data.update(items)

    shared = SlowBatch()
    store = ResilientStore(shared, ManualClock(), write_hold=0.001, max_backlog=1)
    await store.set("filler", "v", 60)  # fills the backlog
    writing = asyncio.ensure_future(store.set_many([("own:r", "d"), ("owner:r", "a")], 60,
                                                   durable=True))
    await asyncio.sleep(0.05)  # far past the hold
    assert not writing.done() and await store.get("owner:r") == "a"  # local copy at once
    shared.thaw.set()
    await writing
    assert shared.data["owner:r"] == "a" and shared.data["own:r"] == "d"
    await store.delete_many(["own:r", "owner:r"])
    assert "owner:r" not in shared.data and await store.get("own:r") is None
    await store.flush()


async def test_the_background_backlog_is_bounded() -> None:
    shared = FrozenStore()
    store = ResilientStore(shared, ManualClock(), write_hold=0.001, max_backlog=3)
    for i in range(10):
        await store.set(f"k{i}", "v", 60)
    await asyncio.sleep(0)  # let the last background write start
    assert store.backlog == 3  # the rest stayed local after their inline try
    assert shared.calls == 3 + 3
    assert [await store.get(f"k{i}") for i in range(10)] == ["v"] * 10
    shared.thaw.set()
    await store.flush()
    assert sorted(shared.data) == ["k0", "k1", "k2"]
