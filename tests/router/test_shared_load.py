"""Shared load counters in Redis and the admission step (router/shared_load.py).

Unit tests run on fakeredis; the cross-process properties (one rpm limit
under concurrency, each other's in-flight counts, a crashed holder's count
decaying) run on the real Redis with two ``SharedLoad`` instances on separate
clients, as two router processes would be.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import fakeredis
import pytest

from checks.limits import DeploymentLimits
from router.clock import ManualClock
from router.config import DeploymentConfig
from router.deployment import Deployment
from router.load import LoadHandle, LoadTracker, MinuteUsage, SharedFigures
from router.request import RouteRequest
from router.shared_load import (
    HOLD_GRACE,
    MINUTE_TTL,
    Admission,
    Refusal,
    Reservation,
    SharedLoad,
)
from router.state.redis import RedisStore
from router.table import DeploymentTable

# isort: split
from providers.mock import MockProvider

if TYPE_CHECKING:
    from tests.redis_fixtures import RedisSpace

pytest_plugins = ("tests.redis_fixtures",)

WALL = 1_800_000_000.0  # a minute boundary


class FakeSource:
    """What SharedLoad needs from a RedisStore: a prefix and the loop's client."""

    def __init__(self, server: fakeredis.FakeServer, prefix: str = "t:") -> None:
        self.redis = fakeredis.FakeAsyncRedis(server=server, decode_responses=True)
        self._prefix = prefix

    @property
    def prefix(self) -> str:
        return self._prefix

    def client(self) -> Any:
        return self.redis


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(wall_start=WALL)


@pytest.fixture
def server() -> fakeredis.FakeServer:
    return fakeredis.FakeServer()


@pytest.fixture
def source(server: fakeredis.FakeServer) -> FakeSource:
    return FakeSource(server)


def shared(source: Any, clock: ManualClock, name: str = "p1", **options: Any) -> SharedLoad:
    return SharedLoad(source, clock, instance_id=name, **options)


def request(stream: bool = False, timeout: float | None = None) -> RouteRequest:
    deadline = None if timeout is None else 1000.0 + timeout
    return RouteRequest(model="g", params={"input": "hi"}, stream=stream, deadline=deadline)


def deployment(dep_id: str = "d1") -> Deployment:
    config = DeploymentConfig.model_validate({
        "model_name": "g", "litellm_params": {"model": "mock/m"}, "model_info": {"id": dep_id}})
    return DeploymentTable([config], {"mock": MockProvider()}).group("g")[0]


# -- counters (fakeredis) -----------------------------------------------------------------


async def test_reservations_and_releases_are_seen_by_every_instance(
    source: FakeSource, clock: ManualClock
) -> None:
    one, two = shared(source, clock, "p1"), shared(source, clock, "p2")
    first = await one.reserve("d1", None)
    second = await two.reserve("d1", None)
    assert isinstance(first, Reservation) and isinstance(second, Reservation)
    assert first.member != second.member
    figures = await two.read_group(["d1", "d2"])
    assert figures == {"d1": SharedFigures(2, 2, 0), "d2": SharedFigures(0, 0, 0)}
    await one.release(first, tokens=120)
    await two.release(second, tokens=30)
    assert await one.read_group(["d1"]) == {"d1": SharedFigures(0, 2, 150)}


async def test_over_rpm_a_reservation_is_refused_and_rolled_back(
    source: FakeSource, clock: ManualClock
) -> None:
    load = shared(source, clock)
    limits = DeploymentLimits(rpm=2)
    outcomes = [await load.reserve("d1", limits) for _ in range(3)]
    assert [type(o) for o in outcomes] == [Reservation, Reservation, Refusal]
    refusal = outcomes[2]
    assert isinstance(refusal, Refusal) and refusal.kind == "rate"
    assert refusal.reason == "rpm limit 2 reached (2 requests this minute) across every router"
    assert await load.read_group(["d1"]) == {"d1": SharedFigures(2, 2, 0)}
    clock.advance(60)  # the next minute has room again; the two still hold their slots
    assert isinstance(await load.reserve("d1", limits), Reservation)
    assert await load.read_group(["d1"]) == {"d1": SharedFigures(3, 1, 0)}


async def test_at_tpm_a_reservation_is_refused(source: FakeSource, clock: ManualClock) -> None:
    load = shared(source, clock)
    first = await load.reserve("d1", DeploymentLimits(tpm=100))
    assert isinstance(first, Reservation)
    await load.release(first, tokens=100)
    refusal = await load.reserve("d1", DeploymentLimits(tpm=100))
    assert isinstance(refusal, Refusal)
    assert refusal.reason.startswith("tpm limit 100 reached (100 tokens this minute)")
    assert await load.read_group(["d1"]) == {"d1": SharedFigures(0, 1, 100)}


async def test_a_hold_stops_counting_when_it_ends(source: FakeSource, clock: ManualClock) -> None:
    load = shared(source, clock, max_hold=60.0)
    await load.reserve("d1", None, hold=10.0)   # a call with 10 s left
    await load.reserve("d1", None)              # a stream: max_hold
    assert (await load.read_group(["d1"]))["d1"].in_flight == 2
    clock.advance(10.0 + HOLD_GRACE - 0.01)
    assert (await load.read_group(["d1"]))["d1"].in_flight == 2
    clock.advance(0.02)
    assert (await load.read_group(["d1"]))["d1"].in_flight == 1
    clock.advance(60.0)
    assert (await load.read_group(["d1"]))["d1"].in_flight == 0


async def test_every_key_expires(source: FakeSource, clock: ManualClock) -> None:
    load = shared(source, clock, max_hold=100.0)
    reservation = await load.reserve("d1", DeploymentLimits(rpm=5, tpm=5))
    assert isinstance(reservation, Reservation)
    await load.release(Reservation("d1"), tokens=7)
    keys = sorted(await source.redis.keys("*"))
    minute = int(WALL // 60)
    assert keys == [  # the deployment id is the hash tag: one Cluster slot per deployment
        "t:load:{d1}:inflight", f"t:load:{{d1}}:req:{minute}", f"t:load:{{d1}}:tok:{minute}"]
    ttls = {k: await source.redis.ttl(k) for k in keys}
    assert ttls["t:load:{d1}:inflight"] == 160
    assert ttls[f"t:load:{{d1}}:req:{minute}"] == ttls[f"t:load:{{d1}}:tok:{minute}"] == MINUTE_TTL


async def test_redis_failures_fall_back_with_one_warning_and_recover(
    server: fakeredis.FakeServer, source: FakeSource, clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    load = shared(source, clock, retry_interval=5.0)
    server.connected = False
    with caplog.at_level(logging.WARNING, logger="router.shared_load"):
        assert await load.reserve("d1", DeploymentLimits(rpm=1)) == Reservation("d1")
        assert await load.read_group(["d1"]) == {}
        await load.release(Reservation("d1", "x", 1), tokens=5)
        assert load.degraded
        server.connected = True
        assert await load.read_group(["d1"]) == {}  # still skipping Redis for 5 s
        clock.advance(5.0)
        assert await load.read_group(["d1"]) == {"d1": SharedFigures(0, 0, 0)}
    assert not load.degraded
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert "failed (ConnectionError)" in messages[0]
    assert "answers again" in messages[1]


async def test_holds_whose_release_redis_missed_are_dropped_when_it_answers(
    server: fakeredis.FakeServer, source: FakeSource, clock: ManualClock,
) -> None:
    """Releases skipped during an outage would leave the deployment busy for max_hold."""
    load = shared(source, clock, retry_interval=5.0)
    held = [await load.reserve("d1", None) for _ in range(3)]
    other = await load.reserve("d2", None)
    assert all(isinstance(r, Reservation) for r in [*held, other])
    server.connected = False
    for reservation in held:
        await load.release(reservation)  # Redis is down: missed, remembered
    await load.cancel(other)  # missed too
    server.connected = True
    clock.advance(5.0)
    assert (await load.read_group(["d1", "d2"]))["d1"].in_flight == 3  # still there...
    await load.aclose()  # ...until the background replay has run
    assert await load.read_group(["d1", "d2"]) == {
        "d1": SharedFigures(0, 3, 0), "d2": SharedFigures(0, 1, 0)}


# -- admission ------------------------------------------------------------------------------


async def test_without_redis_admission_decides_on_local_figures(clock: ManualClock) -> None:
    load = LoadTracker(clock)
    admission = Admission(load, clock, {"d1": DeploymentLimits(rpm=2, max_parallel=1)})
    d1, free = deployment("d1"), deployment("d2")
    assert await admission.admit(free, request()) == Reservation("d2")
    assert await admission.admit(d1, request()) == Reservation("d1")
    handle = load.acquire("d1")
    busy = await admission.admit(d1, request())
    assert isinstance(busy, Refusal) and busy.kind == "parallel"
    assert busy.reason == "max_parallel_requests 1 reached (1 in flight)"
    handle.release()
    load.acquire("d1").release()
    spent = await admission.admit(d1, request())
    assert isinstance(spent, Refusal) and spent.kind == "rate"
    await admission.refresh(["d1"])  # nothing to read without Redis
    plain = admission.acquire(Reservation("d2"))
    assert isinstance(plain, LoadHandle)  # nothing shared to give back
    plain.release(total_tokens=3)
    assert load.usage("d2") == MinuteUsage(1, 3)


async def test_with_redis_the_reservation_decides_rates_and_refresh_merges(
    source: FakeSource, clock: ManualClock
) -> None:
    local = LoadTracker(clock)
    counters = shared(source, clock)
    admission = Admission(local, clock, {"d1": DeploymentLimits(rpm=1)}, counters)
    other = shared(source, clock, "p2")
    await other.reserve("d1", None)  # another router holds a request on d1
    await admission.refresh(["d1"])
    assert local.in_flight("d1") == 1 and local.usage("d1").requests == 1
    refusal = await admission.admit(deployment("d1"), request())
    assert isinstance(refusal, Refusal) and refusal.reason.endswith("across every router")


async def test_a_full_deployment_is_refused_before_redis_is_asked(
    source: FakeSource, clock: ManualClock
) -> None:
    local = LoadTracker(clock)
    counters = shared(source, clock)
    admission = Admission(local, clock, {"d1": DeploymentLimits(max_parallel=1)}, counters)
    local.acquire("d1")
    refusal = await admission.admit(deployment("d1"), request(timeout=30))
    assert isinstance(refusal, Refusal) and refusal.kind == "parallel"
    assert await source.redis.keys("*") == []


class SlotTakenMeanwhile(SharedLoad):
    """Another request of this process takes the last slot during the round trip."""

    def __init__(self, source: Any, clock: ManualClock, local: LoadTracker) -> None:
        super().__init__(source, clock, instance_id="p1")
        self.local = local

    async def reserve(self, *args: Any, **kwargs: Any) -> Reservation | Refusal:
        outcome = await super().reserve(*args, **kwargs)
        self.local.acquire("d1")
        return outcome


async def test_a_slot_taken_during_the_reservation_cancels_it(
    source: FakeSource, clock: ManualClock
) -> None:
    local = LoadTracker(clock)
    counters = SlotTakenMeanwhile(source, clock, local)
    admission = Admission(local, clock, {"d1": DeploymentLimits(max_parallel=1)}, counters)
    refusal = await admission.admit(deployment("d1"), request(timeout=30))
    assert isinstance(refusal, Refusal) and refusal.kind == "parallel"
    await counters.aclose()  # waits for the background cancel
    assert await counters.read_group(["d1"]) == {"d1": SharedFigures(0, 0, 0)}


async def test_an_admitted_handle_gives_its_reservation_back_once(
    source: FakeSource, clock: ManualClock
) -> None:
    local = LoadTracker(clock)
    counters = shared(source, clock)
    admission = Admission(local, clock, {}, counters)
    reservation = await admission.admit(deployment("d1"), request(stream=True))
    assert isinstance(reservation, Reservation) and reservation.member is not None
    handle = admission.acquire(reservation)
    assert isinstance(handle, LoadHandle)  # the one handle type; it carries the reservation
    handle.first_token()
    handle.release(total_tokens=40)
    handle.release(total_tokens=40)
    await counters.aclose()
    assert local.in_flight("d1") == 0 and local.usage("d1").tokens == 40
    assert await counters.read_group(["d1"]) == {"d1": SharedFigures(0, 1, 40)}


def test_a_release_without_an_event_loop_is_dropped_cleanly(
    source: FakeSource, clock: ManualClock
) -> None:
    counters = shared(source, clock)
    operation = counters.release(Reservation("d1", "m", 1))
    counters.in_background(operation)
    assert inspect.getcoroutinestate(operation) == "CORO_CLOSED"  # never "never awaited"


# -- two processes on the real Redis ----------------------------------------------------------


@pytest.fixture
async def two_stores(redis_space: RedisSpace) -> AsyncIterator[tuple[RedisStore, RedisStore]]:
    # Shared-load semantics, not Redis outages: a generous deadline, so a busy
    # machine's stall of over 0.5 s does not send a call to local state.
    first = RedisStore(redis_space.url, prefix=redis_space.prefix, deadline=5.0)
    second = RedisStore(redis_space.url, prefix=redis_space.prefix, deadline=5.0)
    yield first, second
    await first.aclose()
    await second.aclose()


async def test_two_routers_enforce_one_rpm_limit_under_concurrency(
    two_stores: tuple[RedisStore, RedisStore], clock: ManualClock
) -> None:
    one, two = (shared(s, clock, f"p{i}") for i, s in enumerate(two_stores))
    limit = 10
    limits = DeploymentLimits(rpm=limit)
    attempts = [(one if i % 2 else two).reserve("d1", limits) for i in range(2 * limit)]
    outcomes = await asyncio.gather(*attempts)
    admitted = [o for o in outcomes if isinstance(o, Reservation)]
    assert len(admitted) == limit
    assert all(isinstance(o, Refusal) and o.kind == "rate" for o in outcomes
               if not isinstance(o, Reservation))
    assert await one.read_group(["d1"]) == {"d1": SharedFigures(limit, limit, 0)}


async def test_two_routers_see_each_others_in_flight_counts(
    two_stores: tuple[RedisStore, RedisStore], clock: ManualClock
) -> None:
    one, two = (shared(s, clock, f"p{i}") for i, s in enumerate(two_stores))
    a = await one.reserve("d1", None)
    await one.reserve("d1", None)
    await two.reserve("d2", None)
    expected = {"d1": SharedFigures(2, 2, 0), "d2": SharedFigures(1, 1, 0)}
    assert await one.read_group(["d1", "d2"]) == expected
    assert await two.read_group(["d1", "d2"]) == expected
    assert isinstance(a, Reservation)
    await one.release(a, tokens=9)
    assert await two.read_group(["d1"]) == {"d1": SharedFigures(1, 2, 9)}


async def test_a_crashed_routers_holds_decay_within_the_bound(
    two_stores: tuple[RedisStore, RedisStore], clock: ManualClock, redis_space: RedisSpace
) -> None:
    crashed = shared(two_stores[0], clock, "crashed", max_hold=30.0)
    survivor = shared(two_stores[1], clock, "survivor", max_hold=30.0)
    await crashed.reserve("d1", None, hold=8.0)   # a call with 8 s left: bound 8 + grace
    await crashed.reserve("d1", None)             # a stream: bound max_hold
    await two_stores[0].aclose()                  # the process dies without releasing
    assert (await survivor.read_group(["d1"]))["d1"].in_flight == 2
    clock.advance(8.0 + HOLD_GRACE + 0.01)
    assert (await survivor.read_group(["d1"]))["d1"].in_flight == 1
    clock.advance(30.0 - 8.0 - HOLD_GRACE)
    assert (await survivor.read_group(["d1"]))["d1"].in_flight == 0
    assert 0 < redis_space.pttl("load:{d1}:inflight") <= 90_000  # and the key itself expires
