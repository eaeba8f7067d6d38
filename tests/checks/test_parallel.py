"""``max_parallel_requests``: full deployments are skipped, then waited for (checks/parallel.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Sequence
from typing import Any

import pytest

from checks.limits import limits_by_id
from checks.parallel import MaxParallelCheck
from router.clock import ManualClock
from router.config import DeploymentConfig, RouterConfig, RouterSettings
from router.deployment import Deployment
from router.errors import TimeoutError
from router.load import LoadHandle, LoadTracker, SharedFigures
from router.request import RouteRequest
from router.table import DeploymentTable

# isort: split
from providers.mock import MockProvider


def table(*params: dict[str, Any]) -> DeploymentTable:
    configs = [DeploymentConfig.model_validate({
        "model_name": "g", "litellm_params": {"model": f"mock/m{i}", **p},
        "model_info": {"id": f"g-{i}"},
    }) for i, p in enumerate(params)]
    return DeploymentTable(configs, {"mock": MockProvider()})


def make_check(t: DeploymentTable, load: LoadTracker, clock: ManualClock,
               default: int | None = None, **options: Any) -> MaxParallelCheck:
    config = RouterConfig(model_list=tuple(d.config for d in t.all()),
                          settings=RouterSettings(default_max_parallel_requests=default))
    return MaxParallelCheck(load, clock, limits_by_id(t.all(), config), **options)


def ids(deployments: Sequence[Deployment]) -> list[str]:
    return [d.id for d in deployments]


def hold(load: LoadTracker, deployment_id: str, n: int) -> list[LoadHandle]:
    return [load.acquire(deployment_id) for _ in range(n)]


class TimeOnlyLoad(LoadTracker):
    """A tracker whose waits never see a release: they only move the manual clock."""

    def __init__(self, clock: ManualClock) -> None:
        super().__init__(clock)
        self.manual = clock
        self.waits: list[float | None] = []

    async def wait_for_release(self, deployment_ids: Collection[str],
                               timeout: float | None) -> bool:
        self.waits.append(timeout)
        self.manual.advance(timeout or 0.0)
        return False


class CoolingSome:
    """Cooldowns where the listed deployments are cooling down."""

    def __init__(self, *cooling: str) -> None:
        self.cooling = set(cooling)

    def available(self, deployments: Sequence[Deployment]) -> Sequence[Deployment]:
        return [d for d in deployments if d.id not in self.cooling]


def request(timeout: float | None = None, now: float = 1000.0) -> RouteRequest:
    deadline = None if timeout is None else now + timeout
    return RouteRequest(model="g", params={"input": "hi"}, deadline=deadline)


async def test_full_deployments_are_skipped() -> None:
    clock = ManualClock()
    load = LoadTracker(clock)
    t = table({"max_parallel_requests": 2}, {"max_parallel_requests": 1}, {})
    check = make_check(t, load, clock)
    group = list(t.group("g"))
    hold(load, "g-0", 1)
    assert ids(await check.filter(group, request())) == ["g-0", "g-1", "g-2"]
    hold(load, "g-0", 1)
    hold(load, "g-1", 1)
    assert ids(await check.filter(group, request())) == ["g-2"]  # no limit: never full


async def test_default_max_parallel_requests_applies_to_deployments_without_one() -> None:
    clock = ManualClock()
    load = LoadTracker(clock)
    t = table({"max_parallel_requests": 3}, {})
    check = make_check(t, load, clock, default=1)
    hold(load, "g-0", 1)
    hold(load, "g-1", 1)
    assert ids(await check.filter(list(t.group("g")), request())) == ["g-0"]


async def test_shared_in_flight_counts_from_other_routers_count() -> None:
    clock = ManualClock()
    load = LoadTracker(clock)
    t = table({"max_parallel_requests": 2}, {"max_parallel_requests": 2})
    check = make_check(t, load, clock)
    load.merge_shared({"g-0": SharedFigures(in_flight=2, requests=2, tokens=0)})
    assert ids(await check.filter(list(t.group("g")), request())) == ["g-1"]


async def test_when_all_are_full_the_request_waits_for_a_released_slot() -> None:
    clock = ManualClock()
    load = LoadTracker(clock)
    t = table({"max_parallel_requests": 1}, {"max_parallel_requests": 1})
    check = make_check(t, load, clock, recheck_interval=30.0)
    (h0,) = hold(load, "g-0", 1)
    hold(load, "g-1", 1)
    waiting = asyncio.create_task(check.filter(list(t.group("g")), request(timeout=60)))
    for _ in range(5):
        await asyncio.sleep(0)
    assert not waiting.done()
    h0.release()
    assert ids(await asyncio.wait_for(waiting, 5)) == ["g-0"]


async def test_when_the_deadline_passes_while_waiting_the_error_says_so() -> None:
    clock = ManualClock()
    load = TimeOnlyLoad(clock)
    t = table({"max_parallel_requests": 1}, {"max_parallel_requests": 2})
    check = make_check(t, load, clock, recheck_interval=1.0)
    hold(load, "g-0", 1)
    hold(load, "g-1", 2)
    with pytest.raises(TimeoutError) as caught:
        await check.filter(list(t.group("g")), request(timeout=2.5))
    assert load.waits == [1.0, 1.0, 0.5]  # re-checks, the last one cut to the deadline
    message = caught.value.message
    assert "timeout passed after waiting 2.5s for a free slot" in message
    assert "g-0 (1/1), g-1 (2/2)" in message
    assert caught.value.model_group == "g"


async def test_an_expired_request_fails_without_waiting() -> None:
    clock = ManualClock()
    load = TimeOnlyLoad(clock)
    t = table({"max_parallel_requests": 1})
    check = make_check(t, load, clock)
    hold(load, "g-0", 1)
    with pytest.raises(TimeoutError):
        await check.filter(list(t.group("g")), request(timeout=0))
    assert load.waits == []


async def test_a_wait_that_sees_no_release_refreshes_the_shared_figures() -> None:
    clock = ManualClock()
    load = TimeOnlyLoad(clock)
    t = table({"max_parallel_requests": 1})
    refreshed: list[list[str]] = []

    async def refresh(deployment_ids: Sequence[str]) -> None:
        refreshed.append(list(deployment_ids))
        load.merge_shared({"g-0": SharedFigures(in_flight=0, requests=0, tokens=0)})
        handle.release()  # another router's request ended meanwhile

    check = make_check(t, load, clock, refresh=refresh)
    handle = load.acquire("g-0")
    assert ids(await check.filter(list(t.group("g")), request())) == ["g-0"]
    assert refreshed == [["g-0"]]


async def test_a_free_deployment_that_cools_down_is_not_taken_over_a_full_healthy_one() -> None:
    clock = ManualClock()
    load = LoadTracker(clock)
    t = table({"max_parallel_requests": 1}, {"max_parallel_requests": 1})
    check = make_check(t, load, clock, cooldowns=CoolingSome("g-1"), recheck_interval=30.0)
    (h0,) = hold(load, "g-0", 1)
    waiting = asyncio.create_task(check.filter(list(t.group("g")), request()))
    for _ in range(5):
        await asyncio.sleep(0)
    assert not waiting.done()  # g-1 is free but cooling: wait for g-0
    h0.release()
    assert ids(await asyncio.wait_for(waiting, 5)) == ["g-0", "g-1"]


async def test_when_every_deployment_cools_down_the_free_ones_pass() -> None:
    clock = ManualClock()
    load = LoadTracker(clock)
    t = table({"max_parallel_requests": 1}, {"max_parallel_requests": 1})
    check = make_check(t, load, clock, cooldowns=CoolingSome("g-0", "g-1"))
    hold(load, "g-0", 1)
    # the attempt loop decides what an all-cooled group does (or a pin overrides it)
    assert ids(await check.filter(list(t.group("g")), request())) == ["g-1"]


async def test_without_limits_the_candidates_pass_untouched() -> None:
    clock = ManualClock()
    t = table({}, {})
    check = make_check(t, LoadTracker(clock), clock)
    group = list(t.group("g"))
    assert await check.filter(group, request()) is group
