"""The strategy registry and interface (router/strategies/base.py)."""

from __future__ import annotations

import random
from collections.abc import Sequence

from router.clock import ManualClock
from router.deployment import Deployment
from router.load import LoadTracker
from router.request import RouteRequest
from router.strategies import (
    CostBased,
    LatencyBased,
    LeastBusy,
    PeakEwma,
    SimpleShuffle,
    UsageBased,
)
from router.strategies.base import (
    BUILTIN_STRATEGIES,
    LITELLM_STRATEGIES,
    Strategy,
    StrategyContext,
    strategy_registry,
)
from tests.router.strategies.simulation import make_group


def _context(**args: object) -> StrategyContext:
    clock = ManualClock()
    return StrategyContext(random.Random(0), clock, LoadTracker(clock), dict(args))


def test_every_builtin_name_builds_its_class() -> None:
    expected = {
        "simple-shuffle": SimpleShuffle, "least-busy": LeastBusy,
        "latency-based-routing": LatencyBased, "usage-based-routing": UsageBased,
        "usage-based-routing-v2": UsageBased, "cost-based-routing": CostBased,
        "peak-ewma": PeakEwma,
    }
    assert set(expected) == set(BUILTIN_STRATEGIES)
    registry = strategy_registry()
    assert registry.names() == sorted(expected)
    for name, cls in expected.items():
        built = registry.create(name, _context(), where="routing_strategy")
        assert type(built) is cls
        assert isinstance(built, Strategy)
        assert not registry.is_planned(name)


def test_only_provider_budget_routing_is_still_planned() -> None:
    assert frozenset({"provider-budget-routing"}) == LITELLM_STRATEGIES
    assert strategy_registry().is_planned("provider-budget-routing")


class FirstCandidate:
    """A user's own strategy: any object with ``pick``."""

    def pick(self, candidates: Sequence[Deployment], request: RouteRequest) -> Deployment:
        return candidates[0]


def test_a_registered_user_strategy_resolves_by_name() -> None:
    registry = strategy_registry()
    registry.register("first", lambda context: FirstCandidate())
    strategy = registry.create("first", _context(), where="routing_strategy")
    assert isinstance(strategy, Strategy)
    group = make_group({}, {})
    assert strategy.pick(group, RouteRequest(model="g", params={})) is group[0]
