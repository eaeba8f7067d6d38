"""Prompt-cache affinity: the unit (a strategy's pick, the remembered deployment, the cost
check) and end to end against upstreams that keep a prompt cache."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from typing import Any

from router.cache_affinity import CacheAffinity
from router.clock import ManualClock
from router.load import LoadTracker
from router.request import build_request
from router.router import Router
from tests.conftest import openai_dep


class Fixed:
    """A strategy that always picks the first candidate; costs as given."""

    def __init__(self, costs: dict[str, float] | None = None) -> None:
        self._given = costs

    def pick(self, candidates: Sequence[Any], request: Any) -> Any:
        return candidates[0]


class Costed(Fixed):
    def costs(self, candidates: Sequence[Any]) -> list[float]:
        assert self._given is not None
        return [self._given[d.id] for d in candidates]


def deployments(*ids: str) -> list[Any]:
    router = Router([{"model_name": "g", "model_info": {"id": i},
                      "litellm_params": {"model": "mock/x"}} for i in ids])
    return list(router.deployments("g"))


def request(**params: Any) -> Any:
    return build_request("g", {"input": "x", **params}, stream=False, default_timeout=None)


def test_the_served_deployment_is_preferred_while_it_is_not_clearly_worse() -> None:
    a, b = deployments("a", "b")
    load = LoadTracker(ManualClock())
    costs = {"a": 1.0, "b": 1.0}
    affinity = CacheAffinity(Costed(costs), load, slack=2.0)  # type: ignore[arg-type]
    affinity.served(request(prompt_cache_key="k"), b)
    assert affinity.choose([a, b], request(prompt_cache_key="k"), a) is b
    assert affinity.choose([a, b], request(prompt_cache_key="other"), a) is a
    assert affinity.choose([a, b], request(), a) is a
    costs["b"] = 2.5  # more than twice the pick's cost: clearly worse
    assert affinity.choose([a, b], request(prompt_cache_key="k"), a) is a
    costs["b"] = 1.9
    assert affinity.choose([a], request(prompt_cache_key="k"), a) is a  # b cannot serve now


def test_without_a_strategy_cost_requests_in_flight_decide() -> None:
    a, b = deployments("a", "b")
    load = LoadTracker(ManualClock())
    affinity = CacheAffinity(Fixed(), load)  # type: ignore[arg-type]
    affinity.served(request(prompt_cache_key="k"), b)
    slots = [load.acquire("b") for _ in range(2)]
    assert affinity.choose([a, b], request(prompt_cache_key="k"), a) is a  # 3 > 2 x 1
    slots[0].release(ok=True)
    assert affinity.choose([a, b], request(prompt_cache_key="k"), a) is b  # 2 <= 2 x 1


def test_long_instructions_are_a_key_only_when_asked() -> None:
    a, b = deployments("a", "b")
    load = LoadTracker(ManualClock())
    text = "You are a careful assistant. " * 50
    off = CacheAffinity(Fixed(), load)  # type: ignore[arg-type]
    on = CacheAffinity(Fixed(), load, instructions=1024)  # type: ignore[arg-type]
    for affinity in (off, on):
        affinity.served(request(instructions=text), b)
    assert off.choose([a, b], request(instructions=text), a) is a
    assert on.choose([a, b], request(instructions=text), a) is b
    assert on.choose([a, b], request(instructions="short"), a) is a


async def test_keys_stay_on_their_deployment_and_the_upstream_caches_hit(
    upstreams: Any, make_router: Any
) -> None:
    ups = await upstreams("a", "b", "c", prompt_cache=(60.0, 0.0))
    router = make_router([openai_dep(u, id=u.name) for u in ups], rng=random.Random(5))
    served: dict[str, Counter[str]] = {}
    for i in range(60):
        key = f"user-{i % 5}"
        response = await router.aresponses(model="gpt-4o", input="hi", prompt_cache_key=key)
        served.setdefault(key, Counter())[response.routing.deployment_id] += 1
    assert all(len(by) == 1 for by in served.values())  # each key on one deployment
    assert sum(u.cache_hits for u in ups) == 55  # every request after each key's first


async def test_without_affinity_keys_spread_and_miss(upstreams: Any, make_router: Any) -> None:
    ups = await upstreams("a", "b", "c", prompt_cache=(60.0, 0.0))
    router = make_router([openai_dep(u, id=u.name) for u in ups], rng=random.Random(5),
                         prompt_cache_affinity=False)
    for i in range(60):
        await router.aresponses(model="gpt-4o", input="hi", prompt_cache_key=f"user-{i % 5}")
    assert sum(u.cache_misses for u in ups) > 5


async def test_a_key_moves_when_its_deployment_cools_down(
    upstreams: Any, make_router: Any
) -> None:
    ups = await upstreams("a", "b", prompt_cache=(60.0, 0.0))
    router = make_router([openai_dep(u, id=u.name) for u in ups], rng=random.Random(1),
                         num_retries=1, allowed_fails=0)
    first = await router.aresponses(model="gpt-4o", input="hi", prompt_cache_key="k")
    home = next(u for u in ups if u.name == first.routing.deployment_id)
    home.faults.fail(500, times=1)
    moved = await router.aresponses(model="gpt-4o", input="hi", prompt_cache_key="k")
    assert moved.routing.deployment_id != home.name
    again = await router.aresponses(model="gpt-4o", input="hi", prompt_cache_key="k")
    assert again.routing.deployment_id == moved.routing.deployment_id  # remembered anew
