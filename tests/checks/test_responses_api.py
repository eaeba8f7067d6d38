"""``responses_api_deployment_check`` on its own: which candidates survive, and the pin."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any

import pytest

from checks import PreCallCheck, check_registry
from checks.responses_api import ResponsesApiDeploymentCheck
from router import Router
from router.errors import ResponseNotFoundError
from router.pinning import Pinning
from router.request import RouteRequest
from router.testing import Upstream

GROUP = "gpt-4o"


def deployment(
    dep_id: str, api_base: str, *, key: str = "k", group: str = GROUP, **model_info: Any
) -> dict[str, Any]:
    return {
        "model_name": group,
        "model_info": {"id": dep_id, **model_info},
        "litellm_params": {"model": "openai/gpt-4o", "api_base": api_base, "api_key": key},
    }


def build_router(model_list: Iterable[dict[str, Any]]) -> Router:
    return Router(model_list=list(model_list),
                  optional_pre_call_checks=["responses_api_deployment_check"])


def the_check(router: Router) -> ResponsesApiDeploymentCheck:
    return ResponsesApiDeploymentCheck.from_context(router.services)


def follow_up(previous: str | None, model: str = GROUP) -> RouteRequest:
    params: dict[str, Any] = {"input": "next"}
    if previous is not None:
        params["previous_response_id"] = previous
    return RouteRequest(model=model, params=params)


def ids(deployments: Iterable[Any]) -> list[str]:
    return [d.id for d in deployments]


@pytest.fixture
async def offline() -> AsyncIterator[Router]:
    """Deployments nobody listens on: the tests below never reach the network."""
    router = build_router([
        deployment("a", "http://127.0.0.1:9/v1"),
        deployment("a-twin", "http://127.0.0.1:9/v1"),  # same base and key: one state domain
        deployment("a-other-key", "http://127.0.0.1:9/v1", key="k2"),
        deployment("b", "http://127.0.0.1:10/v1", state_domain="shared"),
        deployment("c", "http://127.0.0.1:11/v1", state_domain="shared"),
        deployment("m", "http://127.0.0.1:9/v1", group="gpt-4o-mini"),
    ])
    yield router
    await router.aclose()


async def pinned_to(router: Router, request: RouteRequest, group: str = GROUP) -> str | None:
    """The owner the core pinning step (router/pinning.py) pins ``request`` to."""
    pin = await Pinning(router.services.ownership, router.services.table).resolve(group, request)
    return None if pin is None else pin.owner


async def record(router: Router, response_id: str, owner: str) -> None:
    found = router.services.table.get(owner)
    assert found is not None
    await router.services.ownership.record(response_id, found)


async def test_without_previous_response_id_candidates_pass_untouched(offline: Router) -> None:
    check = the_check(offline)
    candidates = list(offline.deployments(GROUP))
    request = follow_up(None)
    assert await check.filter(candidates, request) == candidates
    assert await pinned_to(offline, request) is None
    assert await check.filter([], follow_up("resp_x")) == []


async def test_recorded_owner_and_its_state_domain_are_kept_and_pinned(offline: Router) -> None:
    check = the_check(offline)
    await record(offline, "resp_on_a", "a")
    request = follow_up("resp_on_a")
    kept = await check.filter(list(offline.deployments(GROUP)), request)
    # a-twin shares api_base and key; a-other-key is another account on the same base.
    assert ids(kept) == ["a", "a-twin"]
    assert await pinned_to(offline, request) == "a"


async def test_declared_state_domain_is_honoured(offline: Router) -> None:
    check = the_check(offline)
    await record(offline, "resp_on_c", "c")
    request = follow_up("resp_on_c")
    kept = await check.filter(list(offline.deployments(GROUP)), request)
    assert ids(kept) == ["b", "c"]
    assert await pinned_to(offline, request) == "c"


async def test_owner_outside_the_candidates_leaves_only_its_domain(offline: Router) -> None:
    check = the_check(offline)
    await record(offline, "resp_on_b", "b")
    request = follow_up("resp_on_b", model="gpt-4o-mini")
    assert await check.filter(list(offline.deployments("gpt-4o-mini")), request) == []
    assert await pinned_to(offline, request, "gpt-4o-mini") == "b"  # owned outside the group


async def test_unknown_id_is_discovered_once_then_remembered() -> None:
    async with Upstream("a") as a, Upstream("b") as b:
        router = build_router([deployment(u.name, f"{u.url}/v1") for u in (a, b)])
        try:
            made = await router.aresponses(model=GROUP, input="hello", store=True)
            owner = made.routing.deployment_id
            await router.services.ownership.forget(made.id)  # as after a restart

            check = the_check(router)
            request = follow_up(made.id)
            kept = await check.filter(list(router.deployments(GROUP)), request)
            assert ids(kept) == [owner]
            assert await pinned_to(router, request) == owner
            assert await router.services.ownership.owner(made.id) == kept[0]

            def asked() -> list[str]:
                return [u.name for u in (a, b) for r in u.requests if r.method == "GET"]

            assert asked().count(owner) == 1
            again = follow_up(made.id)
            assert ids(await check.filter(list(router.deployments(GROUP)), again)) == [owner]
            assert asked().count(owner) == 1  # remembered
            assert len(asked()) == len(set(asked()))  # nobody asked twice
        finally:
            await router.aclose()


async def test_id_no_deployment_holds_raises_response_not_found() -> None:
    async with Upstream("a") as a, Upstream("b") as b:
        router = build_router([deployment(u.name, f"{u.url}/v1") for u in (a, b)])
        try:
            check = the_check(router)
            request = follow_up("resp_nobody_made_this")
            with pytest.raises(ResponseNotFoundError) as caught:
                await check.filter(list(router.deployments(GROUP)), request)
            err = caught.value
            assert err.response_id == "resp_nobody_made_this"
            assert err.model_group == GROUP
            assert "resp_nobody_made_this" in str(err) and GROUP in str(err)
            with pytest.raises(ResponseNotFoundError):
                await pinned_to(router, request)
            assert all(r.method == "GET" for u in (a, b) for r in u.requests)
            assert await router.services.ownership.owner("resp_nobody_made_this") is None
        finally:
            await router.aclose()


def test_registry_is_fresh_per_call_and_resolves_the_name(offline: Router) -> None:
    one, two = check_registry(), check_registry()
    assert "responses_api_deployment_check" in one.names()
    one.register("custom", lambda ctx: the_check(offline))
    assert "custom" in one.names()
    assert "custom" not in two.names()
    made = two.create("responses_api_deployment_check", offline.services,
                      where="test")
    assert isinstance(made, ResponsesApiDeploymentCheck)
    assert isinstance(made, PreCallCheck)
    assert made.name == "responses_api_deployment_check"
