"""``enforce_model_rate_limits`` and the per-deployment limits it shares (checks/limits.py)."""

from __future__ import annotations

from typing import Any

import pytest

from checks import check_registry
from checks.limits import DeploymentLimits, RateLimitCheck, limits_by_id, rate_limits_enforced
from router.clock import ManualClock
from router.config import DeploymentConfig, RouterConfig, RouterSettings
from router.deployment import Deployment
from router.load import LoadTracker, MinuteUsage, SharedFigures
from router.request import RouteRequest
from router.table import DeploymentTable
from tests.checks.parts import services_for

# isort: split
from providers.mock import MockProvider


def table(*params: dict[str, Any], group: str = "g") -> DeploymentTable:
    """Mock deployments ``{group}-0``, ``{group}-1``... with ``params`` each."""
    configs = [DeploymentConfig.model_validate({
        "model_name": group, "litellm_params": {"model": f"mock/m{i}", **p},
        "model_info": {"id": f"{group}-{i}"},
    }) for i, p in enumerate(params)]
    return DeploymentTable(configs, {"mock": MockProvider()})


def config(t: DeploymentTable, **settings: Any) -> RouterConfig:
    return RouterConfig(model_list=tuple(d.config for d in t.all()),
                        settings=RouterSettings(**settings))


def ids(deployments: list[Deployment]) -> list[str]:
    return [d.id for d in deployments]


REQUEST = RouteRequest(model="g", params={"input": "hi"})


def use(load: LoadTracker, deployment_id: str, requests: int, tokens: int = 0) -> None:
    """Count ``requests`` finished requests and ``tokens`` tokens this minute."""
    for i in range(requests):
        load.acquire(deployment_id).release(total_tokens=tokens if i == 0 else None)


def test_rate_refusal_names_the_limit_reached() -> None:
    limits = DeploymentLimits(rpm=10, tpm=1000)
    assert limits.rate_refusal(MinuteUsage(9, 999)) is None
    assert limits.rate_refusal(MinuteUsage(10, 0)) == (
        "rpm limit 10 reached (10 requests this minute)")
    assert limits.rate_refusal(MinuteUsage(0, 1000)) == (
        "tpm limit 1000 reached (1000 tokens this minute)")
    assert DeploymentLimits(max_parallel=1).rate_refusal(MinuteUsage(10**6, 10**9)) is None


def test_rate_limits_are_enforced_as_in_litellm() -> None:
    t = table({"rpm": 5})
    assert not rate_limits_enforced(config(t))  # simple-shuffle: rpm is a weight only
    assert rate_limits_enforced(config(t, enable_pre_call_checks=True))
    assert rate_limits_enforced(config(t, routing_strategy="usage-based-routing-v2"))
    assert rate_limits_enforced(config(t, optional_pre_call_checks=["enforce_model_rate_limits"]))


def test_limits_by_id_lists_only_deployments_with_limits() -> None:
    t = table({"rpm": 5, "tpm": 50}, {}, {"max_parallel_requests": 2})
    assert limits_by_id(t.all(), config(t)) == {"g-2": DeploymentLimits(max_parallel=2)}
    assert limits_by_id(t.all(), config(t, enable_pre_call_checks=True)) == {
        "g-0": DeploymentLimits(rpm=5, tpm=50), "g-2": DeploymentLimits(max_parallel=2)}
    with_default = limits_by_id(t.all(), config(t, default_max_parallel_requests=7), rates=True)
    assert with_default == {
        "g-0": DeploymentLimits(rpm=5, tpm=50, max_parallel=7),
        "g-1": DeploymentLimits(max_parallel=7),
        "g-2": DeploymentLimits(max_parallel=2),
    }


async def test_deployments_at_their_rpm_or_tpm_this_minute_are_dropped() -> None:
    clock = ManualClock(wall_start=1_800_000_000.0)  # a minute boundary
    load = LoadTracker(clock)
    t = table({"rpm": 2}, {"tpm": 100}, {})
    check = RateLimitCheck(load, limits_by_id(t.all(), config(t), rates=True))
    group = list(t.group("g"))
    assert ids(await check.filter(group, REQUEST)) == ["g-0", "g-1", "g-2"]

    use(load, "g-0", 1)
    use(load, "g-1", 1, tokens=99)
    assert ids(await check.filter(group, REQUEST)) == ["g-0", "g-1", "g-2"]
    use(load, "g-0", 1)
    use(load, "g-1", 1, tokens=1)
    assert ids(await check.filter(group, REQUEST)) == ["g-2"]

    clock.advance(60)  # a new minute: the limits are available again
    assert ids(await check.filter(group, REQUEST)) == ["g-0", "g-1", "g-2"]


async def test_shared_figures_from_other_routers_count() -> None:
    clock = ManualClock()
    load = LoadTracker(clock)
    t = table({"rpm": 3})
    check = RateLimitCheck(load, limits_by_id(t.all(), config(t), rates=True))
    load.merge_shared({"g-0": SharedFigures(in_flight=0, requests=3, tokens=0)})
    assert await check.filter(list(t.group("g")), REQUEST) == []


async def test_without_limits_the_candidates_pass_untouched() -> None:
    t = table({}, {"max_parallel_requests": 1})
    check = RateLimitCheck(LoadTracker(ManualClock()), limits_by_id(t.all(), config(t)))
    group = list(t.group("g"))
    assert await check.filter(group, REQUEST) is group


def test_the_registry_builds_it_by_its_litellm_name() -> None:
    t = table({"rpm": 1})

    services = services_for(RouterConfig(model_list=tuple(d.config for d in t.all())), t)
    check = check_registry().create("enforce_model_rate_limits", services,
                                    where="optional_pre_call_checks[0]")
    assert isinstance(check, RateLimitCheck)
    assert check.name == "enforce_model_rate_limits"


@pytest.mark.parametrize("name", ["context_window_check", "tag_filtering",
                                  "max_parallel_requests", "enforce_model_rate_limits"])
def test_every_new_check_name_is_registered(name: str) -> None:
    registry = check_registry()
    assert name in registry.names()
    assert not registry.is_planned(name)
