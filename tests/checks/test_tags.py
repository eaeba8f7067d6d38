"""Tag filtering with LiteLLM's semantics (checks/tags.py)."""

from __future__ import annotations

import random
from typing import Any

import pytest

from checks.tags import TagFilter, request_tags
from router.attempts import Dispatcher
from router.clock import ManualClock
from router.config import DeploymentConfig
from router.cooldown import Cooldowns
from router.deployment import Deployment
from router.errors import NoDeploymentAvailableError
from router.fallbacks import FallbackPlan
from router.load import LoadTracker
from router.request import RouteRequest
from router.retry import RetryPolicy
from router.strategies.simple_shuffle import SimpleShuffle
from router.table import DeploymentTable

# isort: split
from providers.mock import MockProvider


def group(*tags: tuple[str, ...]) -> list[Deployment]:
    """One deployment per tag tuple, ids ``g-0``, ``g-1``..."""
    configs = [DeploymentConfig.model_validate({
        "model_name": "g", "litellm_params": {"model": f"mock/m{i}", "tags": list(t)},
        "model_info": {"id": f"g-{i}"},
    }) for i, t in enumerate(tags)]
    return list(DeploymentTable(configs, {"mock": MockProvider()}).group("g"))


def request(tags: Any = None, **metadata: str) -> RouteRequest:
    meta: dict[str, Any] = dict(metadata)
    if tags is not None:
        meta["tags"] = tags
    params: dict[str, Any] = {"input": "hi"}
    if meta:
        params["metadata"] = meta
    return RouteRequest(model="g", params=params)


async def kept(deployments: list[Deployment], req: RouteRequest) -> list[str]:
    return [d.id for d in await TagFilter().filter(deployments, req)]


FREE_PAID_DEFAULT = (("free",), ("paid", "batch"), ("default",), ())


@pytest.mark.parametrize(("tags", "expected"), [
    (["free"], ["g-0"]),
    (["paid"], ["g-1"]),
    (["free", "batch"], ["g-0", "g-1"]),      # any shared tag selects a deployment
    ("free, batch", ["g-0", "g-1"]),          # the native comma-separated form
    (["enterprise"], ["g-2"]),                # no match: the default deployments
    (None, ["g-2"]),                          # untagged: the default deployments
    ([], ["g-2"]),
    (" , ", ["g-2"]),
])
async def test_litellm_tag_rules(tags: Any, expected: list[str]) -> None:
    assert await kept(group(*FREE_PAID_DEFAULT), request(tags)) == expected


async def test_without_default_deployments_untagged_requests_go_anywhere() -> None:
    deployments = group(("free",), ())
    assert await kept(deployments, request()) == ["g-0", "g-1"]


async def test_without_default_deployments_an_unmatched_tag_goes_nowhere() -> None:
    assert await kept(group(("free",), ()), request(["paid"])) == []


def test_a_list_of_tags_is_forwarded_upstream_as_a_string() -> None:
    req = request(["free", " batch ", "free"], user="u1")
    original = req.params["metadata"]
    assert request_tags(req.params) == ("free", "batch")
    assert req.params["metadata"] == {"user": "u1", "tags": "free,batch"}
    assert original["tags"] == ["free", " batch ", "free"]  # the caller's dict is not changed
    assert request_tags(req.params) == ("free", "batch")


@pytest.mark.parametrize("metadata", [None, "tags=free", {"tags": 3}, {"other": "x"}])
def test_metadata_without_usable_tags_means_untagged(metadata: Any) -> None:
    params = {"input": "hi", "metadata": metadata}
    assert request_tags(params) == ()
    assert params["metadata"] == metadata


async def test_when_tags_leave_nothing_the_router_error_names_the_check() -> None:
    clock = ManualClock()
    deployments = group(("free",), ("paid",))
    table = DeploymentTable([d.config for d in deployments], {"mock": MockProvider()})
    dispatcher = Dispatcher(
        table=table, strategy=SimpleShuffle(random.Random(0)), checks=[TagFilter()],
        cooldowns=Cooldowns(clock, allowed_fails=3, cooldown_time=5.0),
        load=LoadTracker(clock), retry=RetryPolicy(0), fallbacks=FallbackPlan(),
        clock=clock, rng=random.Random(0),
    )

    async def never(*args: Any) -> None:
        raise AssertionError("nothing may be sent")

    with pytest.raises(NoDeploymentAvailableError) as caught:
        await dispatcher.run(request(["enterprise"]), never)
    assert caught.value.reason == "checks_rejected"
    assert "tag_filtering removed g-0, g-1" in caught.value.message
