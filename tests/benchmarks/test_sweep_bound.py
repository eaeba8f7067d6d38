"""The fluid bound on a scenario's median under a tail cap (benchmarks/sweep_bound.py)."""

from __future__ import annotations

import math

import pytest

from benchmarks import sweep_bound
from benchmarks.sweep import UNLIMITED, Outcome, Scenario, Spec

#: Seed 5's s18: one fast deployment and two slow ones, 36 clients.
LOPSIDED = Scenario("s18", (Spec(0.291, 13), Spec(0.295, 1), Spec(0.007, 10)), 36, 1000, 0.1)


def test_under_a_tight_cap_everyone_shares_the_one_fast_deployment() -> None:
    # Only the 7 ms deployment is under 31 ms: 36 clients on 10 slots wait 36 / (10 / 7 ms).
    assert sweep_bound.median_floor(LOPSIDED, 0.031) == pytest.approx(36 * 0.007 / 10)


def test_a_looser_cap_lowers_the_median_by_queueing_the_slow_deployments() -> None:
    # Up to 300 ms the slow two hold 0.3 x (13 / 0.291 + 1 / 0.295) clients; the rest wait
    # on the fast one.
    slow_rate = 13 / 0.291 + 1 / 0.295
    expected = (36 - 0.3 * slow_rate) / (10 / 0.007)
    assert sweep_bound.median_floor(LOPSIDED, 0.3) == pytest.approx(expected)


def test_the_median_never_falls_below_the_fastest_service_time() -> None:
    assert sweep_bound.median_floor(LOPSIDED, 10.0) == pytest.approx(0.007)
    idle = Scenario("idle", (Spec(0.02, 8), Spec(0.05, 8)), 4, 100, 0.1)
    assert sweep_bound.median_floor(idle, 0.03) == pytest.approx(0.02)


def test_an_unlimited_deployment_takes_everyone_at_its_service_time() -> None:
    case = Scenario("u", (Spec(0.04, UNLIMITED), Spec(0.01, 2)), 50, 100, 0.1)
    assert sweep_bound.median_floor(case, 0.05) == pytest.approx(0.04)
    # Under 40 ms only the 2-slot one is usable and every client queues there.
    assert sweep_bound.median_floor(case, 0.039) == pytest.approx(50 * 0.01 / 2)


def test_no_usable_deployment_and_no_reachable_median_are_infinite() -> None:
    assert sweep_bound.median_floor(LOPSIDED, 0.005) == math.inf
    assert sweep_bound.tail_needed(LOPSIDED, 0.006) == math.inf


def test_tail_needed_inverts_the_floor() -> None:
    # A median of 10.2 ms needs the slow two to hold 36 - 10.2 ms x 10 / 7 ms clients.
    slow_rate = 13 / 0.291 + 1 / 0.295
    cap = sweep_bound.tail_needed(LOPSIDED, 0.0102)
    assert cap == pytest.approx((36 - 0.0102 * 10 / 0.007) / slow_rate, rel=1e-6)
    assert sweep_bound.median_floor(LOPSIDED, cap) <= 0.0102
    assert sweep_bound.median_floor(LOPSIDED, cap * 0.99) > 0.0102


def test_feasibility_counts_the_scenarios_whose_tail_must_grow() -> None:
    easy = Scenario("easy", (Spec(0.01, 4), Spec(0.01, 4)), 8, 100, 0.1)
    results = {
        "s18": {"peak-ewma": Outcome(0.0234, 0.0307), "least-busy": Outcome(0.0085, 0.3825)},
        "easy": {"peak-ewma": Outcome(0.011, 0.013), "least-busy": Outcome(0.011, 0.014)},
    }
    found = sweep_bound.feasibility(results, [LOPSIDED, easy])
    assert found.over == ["s18"] and found.allowed == 0
    assert found.needed["easy"] == 1.0
    assert found.needed["s18"] == pytest.approx(
        sweep_bound.tail_needed(LOPSIDED, 1.2 * 0.0085) / 0.0307)
    assert found.geomean == pytest.approx(math.sqrt(found.needed["s18"]))
    assert not found.reachable
    assert "not reachable" in sweep_bound.report(found) and "s18" in sweep_bound.report(found)
