"""Owners and per-key limits: one behavioural suite over memory and Redis state."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest

from router.clock import ManualClock
from router.proxy.state import MemoryState, RedisState, ServerState, StateUnavailable

if TYPE_CHECKING:
    from tests.redis_fixtures import PrivateRedis, RedisSpace

pytest_plugins = ("tests.redis_fixtures",)


@pytest.fixture(params=["memory", "redis"])
async def state(request: pytest.FixtureRequest,
                clock: ManualClock) -> AsyncIterator[ServerState]:
    if request.param == "memory":
        made: ServerState = MemoryState(clock.wall, ttl=60)
    else:
        space: RedisSpace = request.getfixturevalue("redis_space")
        made = RedisState(space.url, prefix=space.prefix, ttl=60, clock=clock)
    yield made
    await made.aclose()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(wall_start=1_800_000_000.0)  # the start of a minute


async def test_owners(state: ServerState) -> None:
    assert await state.owner("resp_1") is None
    await state.set_owner("resp_1", "team-a")
    assert await state.owner("resp_1") == "team-a"
    await state.forget("resp_1")
    assert await state.owner("resp_1") is None


async def test_rpm_limit_per_minute(state: ServerState, clock: ManualClock) -> None:
    verdicts = [await state.admit("a", 2, None) for _ in range(3)]
    assert [v.allowed for v in verdicts] == [True, True, False]
    assert verdicts[2].retry_after == pytest.approx(60) and "2 requests" in verdicts[2].reason
    assert (await state.admit("b", 2, None)).allowed  # another key has its own count
    clock.advance(60)
    assert (await state.admit("a", 2, None)).allowed


async def test_tpm_limit_counts_reported_tokens(state: ServerState, clock: ManualClock) -> None:
    assert (await state.admit("a", None, 100)).allowed
    await state.add_tokens("a", 100)
    refused = await state.admit("a", None, 100)
    assert not refused.allowed and "100 tokens" in refused.reason
    clock.advance(60)
    assert (await state.admit("a", None, 100)).allowed


async def test_parallel_slots(state: ServerState) -> None:
    assert await state.enter("a", "t1", 2) and await state.enter("a", "t2", 2)
    assert not await state.enter("a", "t3", 2)
    assert await state.enter("b", "t4", 2)  # another key has its own slots
    await state.leave("a", "t1")
    assert await state.enter("a", "t5", 2)


async def test_no_limits_is_always_allowed(state: ServerState) -> None:
    assert all([(await state.admit("a", None, None)).allowed for _ in range(5)])


async def test_redis_down_limits_open_owners_closed() -> None:
    from tests.redis_fixtures import free_port

    clock = ManualClock()
    state = RedisState(f"redis://127.0.0.1:{free_port()}/0", prefix="x:", ttl=60,
                       clock=clock, timeout=0.2)
    try:
        assert (await state.admit("a", 1, 1)).allowed
        assert await state.enter("a", "t", 1)
        assert state.failures == 2
        with pytest.raises(StateUnavailable):
            await state.owner("resp_1")
        assert not await state.ping()
    finally:
        await state.aclose()


async def test_breaker_skips_redis_after_a_failure_then_retries(
        private_redis: PrivateRedis) -> None:
    clock = ManualClock()
    state = RedisState(private_redis.url, prefix="x:", ttl=60, clock=clock, timeout=0.2)
    try:
        await state.set_owner("resp_1", "a")
        private_redis.stop()
        with pytest.raises(StateUnavailable):
            await state.owner("resp_1")  # fails: the breaker opens
        private_redis.start()
        with pytest.raises(StateUnavailable, match="skipped"):
            await state.owner("resp_1")  # no call while open, though Redis is back
        assert await state.ping()
        clock.advance(5)
        assert await state.owner("resp_1") is None  # a fresh server: asked again
    finally:
        await state.aclose()
