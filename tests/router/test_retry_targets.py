"""Where a retry goes (router/retry_targets.py): elsewhere, unless elsewhere is clearly worse.

* the rule itself, on fixed costs;
* the attempt loop with it: which errors may go back to the deployment that
  failed, and a deployment that keeps failing is left;
* the scenario that made the rule (the sweep's seed-11 s34, on the
  discrete-event model): a fast deployment failing 3 % of its requests and
  a single-slot one slowed to a second; every retry "elsewhere" queued every
  client on the slow one and starved the fast one;
* on real upstreams, through the Router: a 500 from a fast deployment is
  retried there, not on one a hundred times slower; a 429 is not.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Any

import pytest

from benchmarks.sweep import Scenario, run_one, scenarios
from router.attempts import Dispatcher
from router.clock import ManualClock
from router.config import DeploymentConfig
from router.cooldown import Cooldowns
from router.deployment import Deployment
from router.errors import (
    AuthenticationError,
    ConnectionError,
    MalformedResponseError,
    ObjectNotFoundError,
    RateLimitError,
    ServerError,
    ServiceUnavailableError,
    TimeoutError,
    UpstreamError,
)
from router.fallbacks import FallbackPlan
from router.load import LoadHandle, LoadTracker
from router.order import OrderTiers
from router.request import RouteRequest
from router.retry import RetryPolicy
from router.retry_targets import failure_weight, note_failure, retry_targets
from router.strategies.base import cost_reader
from router.table import DeploymentTable
from tests.conftest import openai_dep

# isort: split
from providers.mock import MockProvider


def _group(n: int) -> tuple[Deployment, ...]:
    configs = [
        DeploymentConfig.model_validate({
            "model_name": "g", "litellm_params": {"model": f"mock/g-{i}"},
            "model_info": {"id": f"g-{i}"},
        })
        for i in range(n)
    ]
    return DeploymentTable(configs, {"mock": MockProvider()}).group("g")


class Fixed:
    """A strategy with fixed costs per deployment: picks the cheapest candidate."""

    def __init__(self, costs: dict[str, float]) -> None:
        self.table = costs
        self.offered: list[list[str]] = []

    def costs(self, candidates: Sequence[Deployment]) -> list[float]:
        return [self.table[d.id] for d in candidates]

    def pick(self, candidates: Sequence[Deployment], request: RouteRequest) -> Deployment:
        self.offered.append([d.id for d in candidates])
        return min(candidates, key=lambda d: self.table[d.id])


def _ids(deployments: Sequence[Deployment]) -> list[str]:
    return [d.id for d in deployments]


# -- the rule -----------------------------------------------------------------------------


@pytest.mark.parametrize(("cost", "weight", "back"), [
    (1.0, 0.01, True),  # 2 < 3: clearly better even counting the failure
    (1.5, 0.01, False),  # 3 is not below 3
    (0.0, 2.0, False),  # a slow failure (2 s) outweighs a cost of 0 (a probe's)
    (0.0, 1.0, True),  # 2 x 1 s < 3
    (0.1, math.inf, False),  # never after a second or a non-transient failure
])
def test_a_failed_deployment_stays_only_while_clearly_better(
        cost: float, weight: float, back: bool) -> None:
    group = _group(3)
    costs = Fixed({"g-0": cost, "g-1": 3.0, "g-2": 5.0}).costs
    targets = retry_targets(group, {"g-0": weight}, costs)
    assert _ids(targets) == (["g-1", "g-2", "g-0"] if back else ["g-1", "g-2"])


@pytest.mark.parametrize(("error", "weight"), [
    (ServerError("boom", status=500), 0.5),
    (ConnectionError("refused", status=None), 0.5),
    (ServerError("boom", status=500, retry_after=1.0), math.inf),
    (ServiceUnavailableError("overloaded", status=503), math.inf),
    (TimeoutError("hung", status=None), math.inf),
    (MalformedResponseError("bad body", status=200), math.inf),
    (RateLimitError("slow down", status=429), math.inf),
    (AuthenticationError("bad key", status=401), math.inf),
    (ObjectNotFoundError("no such file", status=404), math.inf),
])
def test_only_a_transient_failure_leaves_a_way_back(error: UpstreamError, weight: float) -> None:
    assert failure_weight(error, 0.5) == weight


def test_a_second_failure_closes_the_way_back() -> None:
    failed: dict[str, float] = {}
    note_failure(failed, "g-0", 0.2)
    assert failed == {"g-0": 0.2}
    note_failure(failed, "g-0", 0.1)
    assert failed == {"g-0": math.inf}


def test_without_costs_a_retry_always_goes_elsewhere() -> None:
    group = _group(3)
    assert _ids(retry_targets(group, {"g-0": 0.0}, None)) == ["g-1", "g-2"]


def test_when_every_deployment_failed_all_stay() -> None:
    group = _group(2)
    costs = Fixed({"g-0": 1.0, "g-1": 1.0}).costs
    assert retry_targets(group, {"g-0": 0.0, "g-1": 0.0}, costs) is group
    assert retry_targets(group, {"g-0": 0.0, "g-1": 0.0}, None) is group


def test_only_usable_others_are_compared() -> None:
    """The cheap other is cooling down: the failed one is weighed against what can serve."""
    group = _group(3)
    costs = Fixed({"g-0": 1.0, "g-1": 0.1, "g-2": 10.0}).costs
    cooling = {"g-1"}
    def usable(ds: Sequence[Deployment]) -> list[Deployment]:
        return [d for d in ds if d.id not in cooling]
    assert _ids(retry_targets(group, {"g-0": 0.0}, costs)) == ["g-1", "g-2"]
    assert _ids(retry_targets(group, {"g-0": 0.0}, costs, usable)) == ["g-1", "g-2", "g-0"]
    cooling.add("g-2")  # nothing else can serve: the caller's cooldown rules decide
    assert _ids(retry_targets(group, {"g-0": 0.0}, costs, usable)) == ["g-1", "g-2"]


def test_a_strategy_without_costs_is_weighed_by_requests_in_flight() -> None:
    group = _group(2)
    load = LoadTracker(ManualClock())
    costs = cost_reader(object(), load)
    busy = [load.acquire("g-1")]
    assert _ids(retry_targets(group, {"g-0": 0.0}, costs)) == ["g-1"]  # 2 x 1 is not below 2
    busy.append(load.acquire("g-1"))
    assert _ids(retry_targets(group, {"g-0": 0.0}, costs)) == ["g-1", "g-0"]  # 2 x 1 < 3
    for handle in busy:
        handle.release(ok=True)


# -- in the attempt loop ------------------------------------------------------------------


class Script:
    """The attempt call: per deployment, errors to raise in turn (then success)."""

    def __init__(self, outcomes: dict[str, list[UpstreamError]]) -> None:
        self.outcomes = outcomes
        self.calls: list[str] = []

    async def __call__(self, deployment: Deployment, timeout: float | None,
                       handle: LoadHandle) -> str:
        self.calls.append(deployment.id)
        queue = self.outcomes.get(deployment.id)
        if queue:
            raise queue.pop(0)
        handle.release(ok=True)
        return deployment.id


def _dispatcher(
    strategy: Fixed, n: int = 2, retries: int = 3, *, cooldowns: bool = True,
    per_error: dict[str, int] | None = None, orders: Sequence[int] | None = None,
) -> Dispatcher:
    clock = ManualClock(1000.0)
    configs = [
        DeploymentConfig.model_validate({
            "model_name": "g",
            "litellm_params": {"model": f"mock/g-{i}",
                               **({"order": orders[i]} if orders else {})},
            "model_info": {"id": f"g-{i}"},
        })
        for i in range(n)
    ]
    table = DeploymentTable(configs, {"mock": MockProvider()})
    return Dispatcher(
        table=table, strategy=strategy, checks=(),
        cooldowns=Cooldowns(clock, allowed_fails=3, cooldown_time=5.0, disabled=not cooldowns),
        load=LoadTracker(clock), retry=RetryPolicy(retries, per_error=per_error or {}),
        fallbacks=FallbackPlan(), clock=clock, rng=random.Random(0),
        order=OrderTiers(table.group("g")) if orders else None,
    )


def _5xx() -> ServerError:
    return ServerError("boom", status=500)


@pytest.mark.parametrize("cooldowns", [True, False], ids=["cooldowns", "no cooldowns"])
@pytest.mark.parametrize(("error", "served_by"), [
    # fast and transient: back to the deployment that is still much cheaper
    pytest.param(_5xx, "g-0", id="server error"),
    pytest.param(lambda: ConnectionError("refused", status=None), "g-0", id="connection"),
    # the others: elsewhere, however much cheaper the one that failed
    pytest.param(lambda: TimeoutError("hung", status=None), "g-1", id="timeout"),
    pytest.param(lambda: ServiceUnavailableError("overloaded", status=503), "g-1",
                 id="503"),
    pytest.param(lambda: ServerError("later", status=500, retry_after=2.0), "g-1",
                 id="500 with Retry-After"),
    pytest.param(lambda: RateLimitError("slow down", status=429), "g-1", id="rate limit"),
    pytest.param(lambda: AuthenticationError("bad key", status=401), "g-1",
                 id="authentication"),
])
async def test_only_a_fast_transient_failure_goes_back(
        error: Any, served_by: str, cooldowns: bool) -> None:
    """With cooldowns off too, so a cooldown cannot hide what the rule itself allows."""
    strategy = Fixed({"g-0": 0.01, "g-1": 1.0})
    script = Script({"g-0": [error()]})
    dispatcher = _dispatcher(strategy, cooldowns=cooldowns)
    served = await dispatcher.run(RouteRequest(model="g", params={}), script)
    assert script.calls == ["g-0", served_by]
    assert served.deployment.id == served_by
    offered = ["g-1", "g-0"] if served_by == "g-0" else ["g-1"]
    assert strategy.offered == [["g-0", "g-1"], offered]


async def test_a_later_transient_failure_does_not_readmit_an_earlier_one() -> None:
    """g-0's error never goes back; g-1's 500 lets g-1 (not g-0) come back once."""
    strategy = Fixed({"g-0": 0.01, "g-1": 0.02, "g-2": 1.0})
    script = Script({"g-0": [ObjectNotFoundError("no such file", status=404)],
                     "g-1": [_5xx(), _5xx()]})
    dispatcher = _dispatcher(strategy, 3, cooldowns=False)
    served = await dispatcher.run(RouteRequest(model="g", params={}), script)
    assert script.calls == ["g-0", "g-1", "g-1", "g-2"]
    assert served.deployment.id == "g-2"


async def test_the_last_try_is_judged_by_the_fewest_retries_any_error_allows() -> None:
    """A 500 allows 3 retries but a timeout 1: going back could end the request on a
    timeout with g-1 untried, so the one retry goes elsewhere."""
    strategy = Fixed({"g-0": 0.01, "g-1": 1.0})
    script = Script({"g-0": [_5xx(), TimeoutError("hung", status=None)]})
    dispatcher = _dispatcher(strategy, per_error={"InternalServerErrorRetries": 3,
                                                  "TimeoutErrorRetries": 1})
    served = await dispatcher.run(RouteRequest(model="g", params={}), script)
    assert script.calls == ["g-0", "g-1"]
    assert served.deployment.id == "g-1"


async def test_with_every_other_deployment_cooling_the_error_is_retried_where_it_happened(
        ) -> None:
    """The error table's "same: when no other is left": g-1 cools after a 429, then a
    request's 500 from g-0 is retried on g-0 after the backoff (it was raised untried)."""
    strategy = Fixed({"g-0": 2.0, "g-1": 1.0})
    dispatcher = _dispatcher(strategy, retries=3)
    first = Script({"g-1": [RateLimitError("slow down", status=429)]})
    await dispatcher.run(RouteRequest(model="g", params={}), first)
    assert first.calls == ["g-1", "g-0"]  # g-1 now cools down
    second = Script({"g-0": [_5xx()]})
    served = await dispatcher.run(RouteRequest(model="g", params={}), second)
    assert second.calls == ["g-0", "g-0"]
    assert served.deployment.id == "g-0"


async def test_a_group_ranked_by_order_moves_to_the_next_order() -> None:
    strategy = Fixed({"g-0": 0.01, "g-1": 1.0})
    script = Script({"g-0": [_5xx()]})
    served = await _dispatcher(strategy, orders=[1, 2]).run(
        RouteRequest(model="g", params={}), script)
    assert script.calls == ["g-0", "g-1"]
    assert served.deployment.id == "g-1"


def test_a_costs_attribute_that_is_not_a_method_is_not_a_cost_model() -> None:
    class Priced:
        costs = {"g-0": 1.0}  # a table of prices, say

    load = LoadTracker(ManualClock())
    handle = load.acquire("g-1")
    assert list(cost_reader(Priced(), load)(_group(2))) == [1.0, 2.0]  # in flight + 1
    handle.release(ok=True)


async def test_a_deployment_that_keeps_failing_is_left_after_one_more_try() -> None:
    """A fast deployment that is down: one more fast failure, then elsewhere, however
    much cheaper it looks (a failure leaves its latency figure as it was)."""
    strategy = Fixed({"g-0": 0.001, "g-1": 1.0})
    script = Script({"g-0": [_5xx() for _ in range(5)]})
    served = await _dispatcher(strategy).run(RouteRequest(model="g", params={}), script)
    assert script.calls == ["g-0", "g-0", "g-1"]
    assert served.deployment.id == "g-1"


@pytest.mark.parametrize(("retries", "calls"), [
    (1, ["g-0", "g-1"]),  # the only retry is the last try: elsewhere
    (2, ["g-0", "g-0", "g-1"]),
])
async def test_the_last_try_goes_elsewhere(retries: int, calls: list[str]) -> None:
    """No request fails on a deployment that is down while another could serve it."""
    strategy = Fixed({"g-0": 0.01, "g-1": 1.0})
    script = Script({"g-0": [_5xx(), _5xx()]})
    dispatcher = _dispatcher(strategy, retries=retries)
    served = await dispatcher.run(RouteRequest(model="g", params={}), script)
    assert script.calls == calls
    assert served.deployment.id == "g-1"


async def test_near_equal_deployments_still_retry_elsewhere() -> None:
    strategy = Fixed({"g-0": 0.9, "g-1": 1.0, "g-2": 1.1})
    script = Script({"g-0": [_5xx()], "g-1": [_5xx()]})
    served = await _dispatcher(strategy, 3).run(RouteRequest(model="g", params={}), script)
    assert script.calls == ["g-0", "g-1", "g-2"]
    assert served.deployment.id == "g-2"


# -- the scenario that made the rule ------------------------------------------------------


def _s34() -> Scenario:
    (scenario,) = [s for s in scenarios(11, 40) if s.name == "s34"]
    return scenario


def test_the_scenario_is_the_one_described() -> None:
    specs = _s34().specs
    assert [(round(s.service, 3), s.capacity, s.fail_rate > 0) for s in specs] == [
        (0.009, 15, True), (0.291, 1, False)]


@pytest.mark.parametrize("strategy", ["peak-ewma", "least-busy", "cost-based-routing"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_rarely_failing_fast_deployment_is_not_starved_by_retries(
        strategy: str, seed: int) -> None:
    """Seed 11's s34: 9 ms x 15 slots failing 3 %, and 291 ms x 1 slot slowed 3.4x.

    Under "always elsewhere" every retry queued on the slow one, all 15 clients
    ended up there, the fast one served nothing for seconds, and the p99 was
    14.7 s under every strategy.
    """
    outcome = run_one(_s34(), strategy, seed)
    assert outcome.starved == []
    assert outcome.p99 < 1.0  # simulated seconds: the slow one's queue stays short


# -- on real upstreams --------------------------------------------------------------------


async def test_a_500_from_the_fast_deployment_is_retried_there(
        upstreams: Any, make_router: Any) -> None:
    fast, slow = await upstreams("fast", "slow")
    slow.faults.slow(0.25)
    router = make_router([openai_dep(fast), openai_dep(slow)], routing_strategy="peak-ewma",
                         num_retries=2)
    for _ in range(8):  # both measured: peak-ewma tries an unmeasured deployment first
        await router.aresponses(model="gpt-4o", input="warm")
    assert slow.requests and fast.requests
    fast.faults.fail(500, times=1)
    response = await router.aresponses(model="gpt-4o", input="x")
    attempts = [(a.deployment_id, a.error) for a in response.routing.trail.attempts]
    assert attempts == [("fast", "ServerError"), ("fast", None)]

    fast.faults.fail(429, times=1)  # a rate limit never goes back at once
    response = await router.aresponses(model="gpt-4o", input="x")
    attempts = [(a.deployment_id, a.error) for a in response.routing.trail.attempts]
    assert attempts == [("fast", "RateLimitError"), ("slow", None)]
