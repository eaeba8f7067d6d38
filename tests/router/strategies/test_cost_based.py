"""Cheapest by model_info prices (router/strategies/cost_based.py)."""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Sequence

import pytest

from router.clock import ManualClock
from router.deployment import Deployment
from router.load import LoadTracker
from router.request import RouteRequest
from router.strategies.cost_based import CostBased, price
from router.strategies.sampling import EXACT_LIMIT
from tests.router.strategies.simulation import make_group

REQUEST = RouteRequest(model="g", params={})


def _priced(*prices: tuple[float | None, float | None]) -> tuple[Deployment, ...]:
    info = [
        {k: v for k, v in (("input_cost_per_token", i), ("output_cost_per_token", o))
         if v is not None}
        for i, o in prices
    ]
    return make_group(*({} for _ in prices), info=info)


def _picks(strategy: CostBased, group: Sequence[Deployment], n: int = 500) -> Counter[str]:
    return Counter(strategy.pick(group, REQUEST).id for _ in range(n))


def test_price_is_input_plus_output_per_token() -> None:
    d_both, d_in, d_none = _priced((1e-6, 3e-6), (2e-6, None), (None, None))
    assert price(d_both) == pytest.approx(4e-6)
    assert price(d_in) == pytest.approx(2e-6)
    assert price(d_none) == math.inf


def test_the_cheapest_wins() -> None:
    group = _priced((3e-6, 1e-5), (1e-6, 2e-6), (2e-6, 2e-6))
    assert set(_picks(CostBased(LoadTracker(ManualClock()), random.Random(0)), group)) == {"d1"}


def test_unpriced_deployments_rank_after_priced_ones() -> None:
    group = _priced((None, None), (5e-5, 5e-5), (None, None))
    strategy = CostBased(LoadTracker(ManualClock()), random.Random(0))
    assert set(_picks(strategy, group)) == {"d1"}
    assert set(_picks(strategy, [group[0], group[2]])) == {"d0", "d2"}


def test_ties_go_to_fewer_in_flight_then_random() -> None:
    group = _priced((1e-6, 1e-6), (1e-6, 1e-6), (1e-6, 1e-6), (1e-7, None))
    load = LoadTracker(ManualClock())
    strategy = CostBased(load, random.Random(1))
    assert set(_picks(strategy, group)) == {"d3"}
    tied = group[:3]
    held = [load.acquire("d0"), load.acquire("d0"), load.acquire("d1")]
    assert set(_picks(strategy, tied)) == {"d2"}
    held.append(load.acquire("d2"))
    picks = _picks(strategy, tied, 2000)
    assert picks["d0"] == 0
    assert picks["d1"] == pytest.approx(1000, abs=120)
    assert len(held) == 4


def test_a_group_tuple_is_priced_once() -> None:
    group = _priced((2e-6, 1e-6), (1e-6, 1e-6))
    strategy = CostBased(LoadTracker(ManualClock()), random.Random(0))
    calls = Counter[str]()
    original = strategy._tier

    def counting(candidates: Sequence[Deployment]) -> tuple[Deployment, ...]:
        calls["tier"] += 1
        return original(candidates)

    strategy._tier = counting  # type: ignore[method-assign]
    for _ in range(5):
        assert strategy.pick(group, REQUEST).id == "d1"
        assert strategy.pick(list(group), REQUEST).id == "d1"
    assert calls["tier"] == 1 + 5  # the tuple once, each list every time


def test_a_large_cheapest_tier_is_sampled_by_in_flight() -> None:
    group = _priced(*([(1e-6, 1e-6)] * (3 * EXACT_LIMIT)), (1e-5, 1e-5))
    load = LoadTracker(ManualClock())
    held = [load.acquire(d.id) for d in group[: 3 * EXACT_LIMIT : 2]]
    picks = _picks(CostBased(load, random.Random(2)), group, 3000)
    assert picks[group[-1].id] == 0  # never the expensive one
    busy = sum(picks[d.id] for d in group[: 3 * EXACT_LIMIT : 2])
    assert busy / 3000 == pytest.approx(0.5 * 23 / 47, abs=0.04)
    assert len(held) == 24


def test_a_narrowed_list_keeps_the_cheapest_still_in_it() -> None:
    group = _priced(*([(1e-5, 1e-5)] * 30), (1e-6, 1e-6), (2e-6, 2e-6), (1e-6, 1e-6))
    strategy = CostBased(LoadTracker(ManualClock()), random.Random(3))
    strategy.pick(group, REQUEST)  # seen whole
    without_one = [d for d in group if d is not group[30]]
    assert set(_picks(strategy, without_one)) == {group[32].id}
    without_tier = [d for d in group if d not in (group[30], group[32])]
    assert set(_picks(strategy, without_tier)) == {group[31].id}  # priced afresh


def test_a_narrowed_large_tier_never_yields_a_removed_member() -> None:
    group = _priced(*([(1e-6, 1e-6)] * (3 * EXACT_LIMIT)), (1e-5, 1e-5))
    strategy = CostBased(LoadTracker(ManualClock()), random.Random(4))
    strategy.pick(group, REQUEST)
    gone = {d.id for d in group[:6]}
    picks = _picks(strategy, [d for d in group if d.id not in gone], 2000)
    assert not gone & set(picks)
    assert group[-1].id not in picks
    assert len(picks) == 3 * EXACT_LIMIT - 6
