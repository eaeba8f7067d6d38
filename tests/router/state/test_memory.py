"""The in-memory state store (router/state/memory.py)."""

from __future__ import annotations

import pytest

from router.state.memory import MemoryStore


class Timer:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def timer() -> Timer:
    return Timer()


async def test_get_set_delete(timer: Timer) -> None:
    store = MemoryStore(timer=timer)
    assert await store.get("k") is None
    await store.set("k", "v", ttl=60)
    assert await store.get("k") == "v"
    await store.set("k", "w", ttl=60)
    assert await store.get("k") == "w"
    await store.delete("k")
    assert await store.get("k") is None
    await store.delete("k")  # a missing key is not an error
    await store.delete("never-set")


async def test_set_many_writes_each_with_the_ttl(timer: Timer) -> None:
    store = MemoryStore(timer=timer)
    await store.set_many([("a", "1"), ("b", "2")], ttl=10)
    assert [await store.get(k) for k in ("a", "b")] == ["1", "2"]
    await store.delete_many(["a"])
    assert [await store.get(k) for k in ("a", "b")] == [None, "2"]
    timer.now = 10.1
    assert [await store.get(k) for k in ("a", "b")] == [None, None]


async def test_ttl_expiry(timer: Timer) -> None:
    store = MemoryStore(timer=timer)
    await store.set("short", "1", ttl=10)
    await store.set("long", "2", ttl=100)
    timer.now = 9.9
    assert await store.get("short") == "1"
    timer.now = 10.1
    assert await store.get("short") is None
    assert await store.get("long") == "2"
    timer.now = 100.1
    assert await store.get("long") is None
    assert len(store) == 0


async def test_setting_again_renews_the_ttl(timer: Timer) -> None:
    store = MemoryStore(timer=timer)
    await store.set("k", "v", ttl=10)
    timer.now = 8
    await store.set("k", "v", ttl=10)
    timer.now = 15
    assert await store.get("k") == "v"
    timer.now = 18.5
    assert await store.get("k") is None


async def test_max_entries_bounds_the_store(timer: Timer) -> None:
    store = MemoryStore(max_entries=2, timer=timer)
    await store.set("a", "1", ttl=60)
    await store.set("b", "2", ttl=60)
    assert await store.get("a") == "1"  # a is now the most recently used
    await store.set("c", "3", ttl=60)
    assert len(store) == 2
    assert await store.get("b") is None
    assert await store.get("a") == "1"
    assert await store.get("c") == "3"


async def test_aclose_clears(timer: Timer) -> None:
    store = MemoryStore(timer=timer)
    await store.set("k", "v", ttl=60)
    await store.aclose()
    assert len(store) == 0
    assert await store.get("k") is None


async def test_two_stores_are_independent(timer: Timer) -> None:
    one, two = MemoryStore(timer=timer), MemoryStore(timer=timer)
    await one.set("k", "v", ttl=60)
    assert await two.get("k") is None
