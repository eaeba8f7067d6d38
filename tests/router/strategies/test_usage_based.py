"""Fewest tokens this minute under rpm/tpm (router/strategies/usage_based.py)."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence

import pytest

from router.clock import ManualClock
from router.deployment import Deployment
from router.load import LoadTracker, SharedFigures
from router.request import RouteRequest
from router.strategies.base import StrategyContext, strategy_registry
from router.strategies.sampling import EXACT_LIMIT
from router.strategies.usage_based import UsageBased
from tests.router.strategies.simulation import make_group

REQUEST = RouteRequest(model="g", params={})


def _use(load: LoadTracker, dep: str, requests: int, tokens: int = 0) -> None:
    for i in range(requests):
        load.acquire(dep).release(total_tokens=tokens if i == 0 else 0)


def _picks(strategy: UsageBased, group: Sequence[Deployment], n: int = 500) -> Counter[str]:
    return Counter(strategy.pick(group, REQUEST).id for _ in range(n))


def test_fewest_tokens_this_minute_wins() -> None:
    group = make_group({}, {}, {})
    load = LoadTracker(ManualClock())
    _use(load, "d0", 1, 500)
    _use(load, "d1", 1, 100)
    _use(load, "d2", 1, 300)
    assert set(_picks(UsageBased(load, random.Random(0)), group)) == {"d1"}


def test_ties_in_tokens_go_to_fewer_requests_then_random() -> None:
    group = make_group({}, {}, {})
    load = LoadTracker(ManualClock())
    _use(load, "d0", 3)
    _use(load, "d1", 1)
    _use(load, "d2", 1)
    picks = _picks(UsageBased(load, random.Random(1)), group, 2000)
    assert picks["d0"] == 0
    assert picks["d1"] == pytest.approx(1000, abs=120)


def test_a_deployment_at_its_rpm_is_skipped() -> None:
    group = make_group({"rpm": 2}, {"rpm": 100})
    load = LoadTracker(ManualClock())
    _use(load, "d0", 2)  # at its limit, though it used no tokens
    _use(load, "d1", 5, 1000)
    assert set(_picks(UsageBased(load, random.Random(0)), group)) == {"d1"}


def test_a_deployment_at_its_tpm_is_skipped() -> None:
    group = make_group({"tpm": 1000}, {"tpm": 100_000})
    load = LoadTracker(ManualClock())
    _use(load, "d0", 1, 1000)
    _use(load, "d1", 1, 5000)
    assert set(_picks(UsageBased(load, random.Random(0)), group)) == {"d1"}


def test_when_all_are_over_the_least_over_is_returned() -> None:
    group = make_group({"rpm": 2}, {"tpm": 1000}, {"rpm": 0})
    load = LoadTracker(ManualClock())
    _use(load, "d0", 4)  # 2x its rpm
    _use(load, "d1", 1, 1500)  # 1.5x its tpm
    strategy = UsageBased(load, random.Random(0))
    assert set(_picks(strategy, group)) == {"d1"}
    assert strategy.key(group[2])[0] == float("inf")  # rpm 0: nothing allowed


def test_a_new_minute_frees_the_limits() -> None:
    group = make_group({"rpm": 1}, {"rpm": 100})
    clock = ManualClock(wall_start=1_800_000_000.0)
    load = LoadTracker(clock)
    _use(load, "d0", 1)
    _use(load, "d1", 3, 900)
    strategy = UsageBased(load, random.Random(0))
    assert strategy.pick(group, REQUEST).id == "d1"
    clock.advance(60)
    assert strategy.pick(group, REQUEST).id in {"d0", "d1"}
    _use(load, "d1", 1, 10)
    assert strategy.pick(group, REQUEST).id == "d0"


def test_shared_usage_counts_while_fresh() -> None:
    group = make_group({"rpm": 10}, {"rpm": 10})
    clock = ManualClock()
    load = LoadTracker(clock)
    _use(load, "d1", 1, 100)
    load.merge_shared({"d0": SharedFigures(in_flight=0, requests=10, tokens=0)})
    strategy = UsageBased(load, random.Random(0))
    assert strategy.pick(group, REQUEST).id == "d1"
    clock.advance(2)
    assert strategy.pick(group, REQUEST).id == "d0"


def test_both_names_build_it() -> None:
    context = StrategyContext(random.Random(0), ManualClock(), LoadTracker(ManualClock()))
    for name in ("usage-based-routing", "usage-based-routing-v2"):
        assert isinstance(strategy_registry().create(name, context, where="t"), UsageBased)


def test_large_groups_find_one_under_its_limits() -> None:
    group = make_group(*({"rpm": 1} for _ in range(4 * EXACT_LIMIT)))
    load = LoadTracker(ManualClock())
    for d in group[:-8]:
        _use(load, d.id, 1)  # all but the last 8 are at their rpm
    picks = _picks(UsageBased(load, random.Random(4)), group, 2000)
    under = sum(picks[d.id] for d in group[-8:])
    # Up to 4 pairs are drawn until one is under: P(all 8 draws over) ~ (56/64)^8.
    assert under / 2000 == pytest.approx(1 - (56 / 64) ** 8, abs=0.04)
