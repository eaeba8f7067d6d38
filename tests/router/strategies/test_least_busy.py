"""Fewest requests in flight (router/strategies/least_busy.py)."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from router.clock import ManualClock
from router.load import LoadTracker, SharedFigures
from router.request import RouteRequest
from router.strategies.least_busy import LeastBusy
from router.strategies.sampling import EXACT_LIMIT
from tests.router.strategies.simulation import make_group

REQUEST = RouteRequest(model="g", params={})


def _busy(load: LoadTracker, counts: dict[str, int]) -> None:
    for dep, n in counts.items():
        for _ in range(n):
            load.acquire(dep)


def test_picks_the_fewest_in_flight() -> None:
    group = make_group({}, {}, {})
    load = LoadTracker(ManualClock())
    _busy(load, {"d0": 2, "d1": 1, "d2": 3})
    strategy = LeastBusy(load, random.Random(0))
    assert {strategy.pick(group, REQUEST).id for _ in range(50)} == {"d1"}


def test_ties_are_broken_at_random() -> None:
    group = make_group({}, {}, {})
    load = LoadTracker(ManualClock())
    _busy(load, {"d0": 1, "d1": 1, "d2": 4})
    strategy = LeastBusy(load, random.Random(1))
    picks = Counter(strategy.pick(group, REQUEST).id for _ in range(2000))
    assert picks["d2"] == 0
    assert picks["d0"] == pytest.approx(1000, abs=120)


def test_shared_in_flight_counts_while_fresh() -> None:
    group = make_group({}, {})
    clock = ManualClock()
    load = LoadTracker(clock)
    _busy(load, {"d1": 1})
    load.merge_shared({"d0": SharedFigures(in_flight=4, requests=4, tokens=0)})
    strategy = LeastBusy(load, random.Random(0))
    assert strategy.pick(group, REQUEST).id == "d1"
    clock.advance(5)
    assert strategy.pick(group, REQUEST).id == "d0"


def test_large_groups_compare_two_random_candidates() -> None:
    group = make_group(*({} for _ in range(4 * EXACT_LIMIT)))
    load = LoadTracker(ManualClock())
    # Half the group has 5 in flight, half is idle.
    _busy(load, {d.id: 5 for d in group[::2]})
    strategy = LeastBusy(load, random.Random(2))
    picks = Counter(strategy.pick(group, REQUEST).id for _ in range(4000))
    busy_share = sum(picks[d.id] for d in group[::2]) / 4000
    # A busy one wins only when paired with another busy one: (1/2) x (31/63).
    assert busy_share == pytest.approx(0.5 * 31 / 63, abs=0.03)
    # The busiest single deployment never wins a comparison.
    _busy(load, {group[1].id: 10})
    assert all(strategy.pick(group, REQUEST) is not group[1] for _ in range(2000))
