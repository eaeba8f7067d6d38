"""RedisStore: on fakeredis (through its real client path), then briefly on the real Redis."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import fakeredis
import pytest
import redis
from fakeredis import aioredis as fake_aioredis

from router.clock import ManualClock
from router.config import build_config
from router.errors import ConfigError
from router.state.redis import RedisStore, RedisTarget, hash_tag

if TYPE_CHECKING:
    from tests.redis_fixtures import PrivateRedis, RedisSpace

pytest_plugins = ("tests.redis_fixtures",)


@pytest.fixture
def server() -> fakeredis.FakeServer:
    return fakeredis.FakeServer()


@pytest.fixture
def peek(server: fakeredis.FakeServer) -> redis.Redis:
    """A sync client on the same fake server, to look behind the store's back."""
    return fakeredis.FakeStrictRedis(server=server, decode_responses=True)


@pytest.fixture
async def store(server: fakeredis.FakeServer) -> AsyncIterator[RedisStore]:
    made = RedisStore(
        "redis://fake.invalid:6379/0", prefix="pfx:",
        connection_class=fake_aioredis.FakeAsyncRedisConnection, server=server,
    )
    yield made
    await made.aclose()


async def test_get_set_delete(store: RedisStore, peek: redis.Redis) -> None:
    assert await store.get("own:missing") is None
    await store.set("own:r1", "dep-a", 60)
    assert await store.get("own:r1") == "dep-a"
    assert peek.get("pfx:own:r1") == "dep-a"
    await store.set("own:r1", "dep-b", 60)
    assert await store.get("own:r1") == "dep-b"
    await store.delete("own:r1")
    assert await store.get("own:r1") is None
    assert peek.exists("pfx:own:r1") == 0
    await store.delete("own:r1")  # missing key: no error


async def test_set_many_writes_every_key_with_the_ttl(store: RedisStore,
                                                     peek: redis.Redis) -> None:
    await store.set_many([("own:r1", "dep-a"), ("owner:r1", "team-a")], 60)
    assert await store.get("own:r1") == "dep-a" and await store.get("owner:r1") == "team-a"
    assert all(55_000 < peek.pttl(f"pfx:{k}") <= 60_000 for k in ("own:r1", "owner:r1"))
    await store.set_many([("one", "1")], 60)  # a single item: a plain SET
    assert peek.get("pfx:one") == "1"
    await store.delete_many(["own:r1", "owner:r1", "never-set"])
    assert sorted(peek.keys("*")) == ["pfx:one"]


async def test_every_key_is_prefixed(store: RedisStore, peek: redis.Redis) -> None:
    assert store.prefix == "pfx:"
    await store.set("a", "1", 60)
    await store.set("b", "2", 60)
    assert sorted(peek.keys("*")) == ["pfx:a", "pfx:b"]
    peek.set("a", "unprefixed")  # a key outside the prefix is not seen
    peek.delete("pfx:a")
    assert await store.get("a") is None


async def test_ttl_is_set_in_milliseconds(store: RedisStore, peek: redis.Redis) -> None:
    await store.set("k", "v", 30 * 24 * 3600)
    assert 30 * 24 * 3600 * 1000 - 5000 < peek.pttl("pfx:k") <= 30 * 24 * 3600 * 1000
    await store.set("fraction", "v", 2.5)
    assert 2000 < peek.pttl("pfx:fraction") <= 2500
    await store.set("tiny", "v", 0.0001)  # rounds up to 1 ms, never "no expiry"
    assert peek.pttl("pfx:tiny") in (-2, 0, 1)


async def test_keys_expire(store: RedisStore) -> None:
    await store.set("k", "v", 0.05)
    assert await store.get("k") == "v"
    await asyncio.sleep(0.12)
    assert await store.get("k") is None


async def test_two_prefixes_do_not_see_each_other(server: fakeredis.FakeServer) -> None:
    options = {"connection_class": fake_aioredis.FakeAsyncRedisConnection, "server": server}
    one = RedisStore("redis://fake.invalid/0", prefix="one:", **options)
    two = RedisStore("redis://fake.invalid/0", prefix="two:", **options)
    await one.set("k", "1", 60)
    assert await two.get("k") is None
    await two.set("k", "2", 60)
    assert (await one.get("k"), await two.get("k")) == ("1", "2")
    await one.aclose()
    await two.aclose()


async def test_failures_surface_as_redis_errors(
    store: RedisStore, server: fakeredis.FakeServer
) -> None:
    """ResilientStore relies on failures being RedisError (or OSError / TimeoutError)."""
    server.connected = False
    with pytest.raises(redis.RedisError):
        await store.get("k")
    with pytest.raises(redis.RedisError):
        await store.set("k", "v", 60)


async def test_one_client_per_event_loop(store: RedisStore) -> None:
    assert store.client() is store.client()
    other: list[object] = []

    def in_another_loop() -> None:
        async def grab() -> None:
            other.append(store.client())
            await store.aclose()

        asyncio.run(grab())

    await asyncio.to_thread(in_another_loop)
    assert other[0] is not store.client()


def test_repr_never_shows_the_url() -> None:
    store = RedisStore("redis://:hunter2-secret@127.0.0.1:6379/0", prefix="x:")
    assert "hunter2" not in repr(store)
    assert "x:" in repr(store)


async def test_on_the_real_redis(redis_space: RedisSpace) -> None:
    store = RedisStore(redis_space.url, prefix=redis_space.prefix)
    try:
        await store.set("own:r1", "dep-a", 60)
        assert await store.get("own:r1") == "dep-a"
        assert redis_space.keys() == [redis_space.prefix + "own:r1"]
        assert 55_000 < redis_space.pttl("own:r1") <= 60_000
        await store.delete("own:r1")
        assert redis_space.keys() == []
        await store.set_many([("own:r2", "dep-a"), ("owner:r2", "team-a")], 60)
        assert sorted(redis_space.keys()) == [redis_space.prefix + k
                                              for k in ("own:r2", "owner:r2")]
        assert 55_000 < redis_space.pttl("owner:r2") <= 60_000
    finally:
        await store.aclose()


# --------------------------------------------------------------------------- where Redis is

MOCK = {"model_name": "m", "litellm_params": {"model": "mock/m"}}


def _target(**settings: object) -> RedisTarget | None:
    config, _ = build_config([MOCK], settings)
    return config.settings.redis_target()


def test_litellm_cluster_and_sentinel_settings_load() -> None:
    cluster = _target(redis_startup_nodes=[{"host": "10.0.0.1", "port": "7001"},
                                           ["10.0.0.2", 7002], "10.0.0.3:7003"],
                      redis_password="s3cret")
    assert cluster is not None and cluster.kind == "cluster"
    assert cluster.startup_nodes == (("10.0.0.1", 7001), ("10.0.0.2", 7002), ("10.0.0.3", 7003))
    sentinel = _target(sentinel_nodes=[["localhost", 26379]], service_name="mymaster",
                       sentinel_password="also-secret", redis_db=2)
    assert sentinel is not None and sentinel.kind == "sentinel"
    assert (sentinel.sentinel_nodes, sentinel.service_name, sentinel.db) == (
        (("localhost", 26379),), "mymaster", 2)
    assert "secret" not in repr(cluster) + repr(sentinel)
    assert "secret" not in repr(RedisStore(sentinel, clock=ManualClock()))
    server = _target(redis_url="redis://:pw@localhost:6379/0")
    assert server is not None and server.kind == "server"
    assert _target() is None


@pytest.mark.parametrize(("settings", "words"), [
    ({"redis_startup_nodes": [{"host": "a"}]}, "redis_startup_nodes[0] is not a host and port"),
    ({"redis_startup_nodes": ["a:99999"]}, "redis_startup_nodes[0]"),
    ({"redis_startup_nodes": []}, "non-empty list"),
    ({"sentinel_nodes": [["h", 26379]]}, "sentinel_nodes need service_name"),
    ({"sentinel_nodes": [["h", 26379]], "service_name": "m",
      "redis_startup_nodes": [["h", 7000]]}, "exclude each other"),
])
def test_bad_topologies_are_config_errors_naming_the_setting(
    settings: dict[str, object], words: str
) -> None:
    with pytest.raises(ConfigError) as info:
        build_config([MOCK], settings)
    assert words in str(info.value)


def test_hash_tag_is_exactly_the_name() -> None:
    assert hash_tag("dep-1") == "{dep-1}"
    assert hash_tag("a}b{c") == "{a)b(c}"  # braces in an id cannot cut the tag short


async def test_without_confirming_replicas_writes_stop_waiting_for_a_while(
    private_redis: PrivateRedis, caplog: pytest.LogCaptureFixture
) -> None:
    """``wait_replicas=1`` on a server with no replica: the first write waits out
    WAIT's timeout and warns; the next ones, for ``retry_interval``, do not wait."""
    clock = ManualClock()
    store = RedisStore(private_redis.url, prefix="w:", clock=clock, wait_replicas=1,
                       retry_interval=5.0)
    with caplog.at_level(logging.WARNING, logger="router.state"):
        for i in range(5):
            await store.set(f"k{i}", "v", 60)
        clock.advance(5.0)
        await store.set("again", "v", 60)  # the interval passed: it waits (and fails) again
        clock.advance(5.0)
        await store.set_many([("m1", "v"), ("m2", "v")], 60)  # one WAIT for both
    await store.aclose()
    with private_redis.client() as admin:
        waits = admin.info("commandstats")["cmdstat_wait"]["calls"]
        assert admin.mget([f"w:k{i}" for i in range(5)] + ["w:again", "w:m1", "w:m2"]
                          ) == ["v"] * 8
    assert waits == 3
    assert [r.getMessage() for r in caplog.records] == [
        "Redis: 0 of 1 replicas confirmed a write; writes are acknowledged by the "
        "primary alone, retrying every 5s"]
