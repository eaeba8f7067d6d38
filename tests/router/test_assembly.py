"""The composition root (router/assembly.py): what a strategy declares decides
what the router shares and enforces, a strategy object behaves exactly as the
same strategy named in config, and pinning is a core step the check name
switches on."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pytest

from router.deployment import Deployment
from router.errors import ConfigError
from router.request import RouteRequest
from router.router import Router
from router.strategies.base import Needs, Strategy, needs_of
from router.strategies.least_busy import LeastBusy
from router.strategies.peak_ewma import PeakEwma
from router.strategies.usage_based import UsageBased

if TYPE_CHECKING:
    from tests.redis_fixtures import RedisSpace

pytest_plugins = ("tests.redis_fixtures",)


def _deps(**params: Any) -> list[dict[str, Any]]:
    return [{"model_name": "g", "litellm_params": {"model": f"mock/m{i}", **params},
             "model_info": {"id": f"d{i}"}} for i in range(2)]


def _check_names(router: Router) -> list[str]:
    return [c.name for c in router._parts.dispatcher._checks]


@pytest.mark.parametrize(("name", "make"), [
    ("least-busy", LeastBusy), ("usage-based-routing", UsageBased),
])
async def test_a_strategy_object_shares_figures_as_its_name_does(
    redis_space: RedisSpace, name: str, make: type[Strategy],
) -> None:
    redis = {"redis_url": redis_space.url, "redis_key_prefix": redis_space.prefix}
    async with Router(_deps(), routing_strategy=name, **redis) as named, \
            Router(_deps(), routing_strategy=make(), **redis) as given:
        assert named._parts.shared_load is not None
        assert given._parts.shared_load is not None


async def test_a_strategy_that_declares_nothing_shares_nothing(redis_space: RedisSpace) -> None:
    redis = {"redis_url": redis_space.url, "redis_key_prefix": redis_space.prefix}
    async with Router(_deps(), routing_strategy=PeakEwma(), **redis) as router:
        assert needs_of(router._parts.strategy) == Needs.NONE
        assert router._parts.shared_load is None


def test_usage_based_as_an_object_makes_rpm_a_hard_limit_as_its_name_does() -> None:
    named = Router(_deps(rpm=5), routing_strategy="usage-based-routing")
    given = Router(_deps(rpm=5), routing_strategy=UsageBased())
    plain = Router(_deps(rpm=5), routing_strategy=LeastBusy())
    assert "enforce_model_rate_limits" in _check_names(named)
    assert _check_names(given) == _check_names(named)
    assert "enforce_model_rate_limits" not in _check_names(plain)  # rpm is only a weight


async def test_a_strategy_object_reads_the_routers_own_load_figures() -> None:
    strategy = LeastBusy(rng=random.Random(0))
    async with Router(_deps(), routing_strategy=strategy) as router:
        assert strategy.load is router.services.load
        stream = await router.aresponses(model="g", input="hi", stream=True)
        busy = stream.routing.deployment_id if stream.routing else ""
        assert strategy.load.in_flight(busy) == 1
        picked = await router.aresponses(model="g", input="again")
        assert picked.routing is not None and picked.routing.deployment_id != busy
        await stream.aclose()


def test_a_strategy_object_serves_one_router_only() -> None:
    strategy = PeakEwma()
    Router(_deps(), routing_strategy=strategy)
    with pytest.raises(ConfigError, match="already reads another router's load figures"):
        Router(_deps(), routing_strategy=strategy)


def test_an_unbound_strategy_says_so() -> None:
    candidates = Router(_deps()).deployments()
    for strategy in (LeastBusy(), PeakEwma(), UsageBased()):
        with pytest.raises(ConfigError, match="not bound"):
            strategy.pick(candidates, RouteRequest(model="g", params={}))


class Recorder:
    """A pre-call check that records what it was offered and keeps everything."""

    name = "recorder"

    def __init__(self) -> None:
        self.offered: list[list[str]] = []

    async def filter(self, candidates: list[Deployment], request: RouteRequest
                     ) -> list[Deployment]:
        self.offered.append([d.id for d in candidates])
        return candidates


class First:
    def pick(self, candidates: Sequence[Deployment], request: RouteRequest) -> Deployment:
        return candidates[-1]


async def test_the_pin_check_name_switches_core_pinning_on_before_the_checks() -> None:
    recorder = Recorder()
    async with Router(_deps(), routing_strategy=First(), optional_pre_call_checks=[
            recorder, "responses_api_deployment_check"]) as router:
        assert _check_names(router) == ["recorder"]  # the name is not run as a check
        first = await router.aresponses(model="g", input="one")
        assert first.routing is not None and first.routing.deployment_id == "d1"
        recorder.offered.clear()
        follow = await router.aresponses(model="g", input="two", previous_response_id=first.id)
        assert follow.routing is not None and follow.routing.deployment_id == "d1"
        assert recorder.offered == [["d1"]]  # narrowed by the pin before the check ran


async def test_without_the_name_there_is_no_pinning() -> None:
    async with Router(_deps()) as router:
        assert router._parts.dispatcher._pinning is None


async def test_the_peak_is_kept_and_inspected_only_under_peak_ewma() -> None:
    async with Router(_deps(), routing_strategy="peak-ewma") as peaky, \
            Router(_deps()) as plain:
        for router in (peaky, plain):
            served = await router.aresponses(model="g", input="hi")
            assert served.routing is not None
            state = next(s for s in router.inspect() if s.deployment_id
                         == served.routing.deployment_id)
            assert state.latency is not None
            assert (state.peak_latency is not None) is (router is peaky)
        assert not plain.services.load._listeners  # nobody else pays for the peak
