"""Owners and per-key limits: one behavioural suite over memory and Redis state."""

from __future__ import annotations

import asyncio
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
        made: ServerState = MemoryState(clock.wall, _no_owner, ttl=60)
    else:
        space: RedisSpace = request.getfixturevalue("redis_space")
        made = RedisState(space.url, prefix=space.prefix, ttl=60, clock=clock)
    yield made
    await made.aclose()


async def _no_owner(response_id: str) -> str | None:
    return None


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(wall_start=1_800_000_000.0)  # the start of a minute


async def test_a_conversation_is_its_first_claimers(state: ServerState) -> None:
    assert await state.claim_conversation("conv_1", "team-a") == "team-a"
    assert await state.claim_conversation("conv_1", "team-b") == "team-a"
    assert await state.response_owner("conv_1") is None  # never a response's owner


async def test_using_a_conversation_renews_its_claim(clock: ManualClock) -> None:
    state = MemoryState(clock.wall, _no_owner, ttl=60)
    assert await state.claim_conversation("conv_1", "team-a") == "team-a"
    for _ in range(3):  # used every 50 s: never claimable, though 150 s pass
        clock.advance(50)
        assert await state.claim_conversation("conv_1", "team-a") == "team-a"
    clock.advance(50)
    assert await state.claim_conversation("conv_1", "team-b") == "team-a"
    clock.advance(61)  # unused for longer than the TTL: claimable again
    assert await state.claim_conversation("conv_1", "team-b") == "team-b"


async def test_using_a_conversation_renews_its_claim_in_redis(
        redis_space: RedisSpace, clock: ManualClock) -> None:
    state = RedisState(redis_space.url, prefix=redis_space.prefix, ttl=60, clock=clock)
    try:
        assert await state.claim_conversation("conv_1", "team-a") == "team-a"
        redis_space.client.expire(f"{redis_space.prefix}proxy:conv:conv_1", 5)  # as if old
        assert await state.claim_conversation("conv_1", "team-b") == "team-a"
        assert redis_space.pttl("proxy:conv:conv_1") > 55_000  # renewed by that use
    finally:
        await state.aclose()


async def test_of_keys_claiming_a_new_conversation_at_once_one_wins(
        state: ServerState) -> None:
    owners = await asyncio.gather(*(state.claim_conversation("conv_race", f"key-{i}")
                                    for i in range(20)))
    assert len(set(owners)) == 1 and owners[0].startswith("key-")
    assert await state.claim_conversation("conv_race", "late") == owners[0]


async def test_naming_a_response_as_a_conversation_claims_nothing(
        redis_space: RedisSpace, clock: ManualClock) -> None:
    """A key that names another key's response id as its ``conversation`` records the
    conversation's owner under its own key: the response's owner is untouched."""
    state = RedisState(redis_space.url, prefix=redis_space.prefix, ttl=60, clock=clock)
    redis_space.client.set(f"{redis_space.prefix}owner:resp_1", "team-a")  # the Router's
    try:
        await state.claim_conversation("resp_1", "team-b")
        assert await state.response_owner("resp_1") == "team-a"
        await state.claim_conversation("resp_2", "team-b")  # a response nobody owns
        assert await state.response_owner("resp_2") is None
    finally:
        await state.aclose()


async def test_an_earlier_servers_conversation_owner_still_holds(
        redis_space: RedisSpace, clock: ManualClock) -> None:
    state = RedisState(redis_space.url, prefix=redis_space.prefix, ttl=60, clock=clock)
    redis_space.client.set(f"{redis_space.prefix}proxy:owner:conv_1", "team-a")
    try:
        assert await state.claim_conversation("conv_1", "team-b") == "team-a"
        assert redis_space.get("proxy:conv:conv_1") == "team-a"  # moved to its new key
        await state.forget("conv_1")  # the earlier server's record gone: the claim stays
        assert await state.claim_conversation("conv_1", "team-b") == "team-a"
    finally:
        await state.aclose()


async def test_response_owner_in_memory_is_the_routers(clock: ManualClock) -> None:
    recorded = {"resp_1": "team-a"}

    async def router_owner(response_id: str) -> str | None:  # Router.aresponse_owner
        return recorded.get(response_id)

    state = MemoryState(clock.wall, router_owner, ttl=60)
    assert await state.response_owner("resp_1") == "team-a"
    assert await state.response_owner("resp_2") is None


async def test_response_owner_in_redis_is_the_routers_record_or_an_earlier_servers(
        redis_space: RedisSpace, clock: ManualClock) -> None:
    state = RedisState(redis_space.url, prefix=redis_space.prefix, ttl=60, clock=clock)
    put = redis_space.client.set
    put(f"{redis_space.prefix}owner:resp_1", "team-a")  # the Router's (router.ownership)
    put(f"{redis_space.prefix}proxy:owner:resp_2", "team-b")  # an earlier server's
    put(f"{redis_space.prefix}owner:resp_3", "team-a")
    put(f"{redis_space.prefix}proxy:owner:resp_3", "team-b")
    try:
        assert [await state.response_owner(f"resp_{i}") for i in range(1, 5)] == [
            "team-a", "team-b", "team-a", None]
    finally:
        await state.aclose()


async def test_the_owner_a_router_records_is_the_one_redis_state_reads(
        redis_space: RedisSpace, clock: ManualClock) -> None:
    """The key layout the two share: the Router writes, the server's state reads."""
    from router import Router
    from router.testing import Upstream

    async with Upstream("state-owner") as up, Router(model_list=[{
            "model_name": "m", "litellm_params": {
                "model": "openai/gpt-4o", "api_base": f"{up.url}/v1", "api_key": "k"}}],
            redis_url=redis_space.url, redis_key_prefix=redis_space.prefix) as router:
        made = await router.aresponses(model="m", input="hi", response_owner="team-a")
        other = await router.aresponses(model="m", input="hi")
    state = RedisState(redis_space.url, prefix=redis_space.prefix, ttl=60, clock=clock)
    try:
        assert await state.response_owner(str(made.id)) == "team-a"
        assert await state.response_owner(str(other.id)) is None
    finally:
        await state.aclose()


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
            await state.claim_conversation("conv_1", "a")
        with pytest.raises(StateUnavailable):
            await state.response_owner("resp_1")
        assert not await state.ping()
    finally:
        await state.aclose()


async def test_breaker_skips_redis_after_a_failure_then_retries(
        private_redis: PrivateRedis) -> None:
    clock = ManualClock()
    state = RedisState(private_redis.url, prefix="x:", ttl=60, clock=clock, timeout=0.2)
    try:
        await state.claim_conversation("conv_1", "a")
        private_redis.stop()
        with pytest.raises(StateUnavailable):
            await state.claim_conversation("conv_1", "b")  # fails: the breaker opens
        private_redis.start()
        with pytest.raises(StateUnavailable, match="skipped"):
            await state.response_owner("resp_1")  # no call while open, though Redis is back
        assert await state.ping()
        clock.advance(5)
        assert await state.claim_conversation("conv_1", "b") == "b"  # a fresh server: asked
    finally:
        await state.aclose()


async def test_an_owner_redis_lost_is_still_known_to_the_worker_that_wrote_it(
        redis_space: RedisSpace, clock: ManualClock) -> None:
    """The Router keeps a local copy of what it wrote: if Redis lost the owner (a failed
    write, the breaker open at the time), the worker that made the response still knows
    its owner; other workers do not (to them it is nobody's: closed)."""
    from typing import Any, cast

    from router import Router
    from router.proxy.app import ServerContext, _response_owner
    from router.testing import Upstream

    state = RedisState(redis_space.url, prefix=redis_space.prefix, ttl=60, clock=clock)
    async with Upstream("lost-owner") as up, Router(model_list=[{
            "model_name": "m", "litellm_params": {
                "model": "openai/gpt-4o", "api_base": f"{up.url}/v1", "api_key": "k"}}],
            redis_url=redis_space.url, redis_key_prefix=redis_space.prefix) as router:
        made = await router.aresponses(model="m", input="hi", response_owner="team-a")
        redis_space.client.delete(f"{redis_space.prefix}owner:{made.id}")  # lost in Redis
        none = cast(Any, None)
        ctx = ServerContext(router, none, state, none, none, none, redis_configured=True)
        assert await state.response_owner(str(made.id)) is None  # another worker's view
        assert await _response_owner(ctx, str(made.id)) == "team-a"
    await state.aclose()
