"""The routing sweep's quick form (benchmarks/sweep.py) on the simulated clock."""

from __future__ import annotations

import random

import pytest

from benchmarks import sweep
from benchmarks.routing_quality import main

QUICK = sweep.Ranges(requests=(150, 300), duration=2.0)


def test_scenarios_are_seeded_and_drawn_from_the_ranges() -> None:
    first = sweep.scenarios(7, 12, QUICK)
    assert [c.describe() for c in first] == [c.describe() for c in sweep.scenarios(7, 12, QUICK)]
    assert [c.name for c in first[:2]] == ["capacity-limited", "unlimited"]
    for case in first[2:]:
        assert 2 <= len(case.specs) <= 8
        assert all(0.005 <= s.service <= 0.5 * 1.1 for s in case.specs)
        assert all(1 <= s.capacity <= 16 or s.capacity == sweep.UNLIMITED for s in case.specs)
        assert all(0.0 <= s.fail_rate <= 0.2 for s in case.specs)
        assert 150 <= case.requests <= 300
    narrow = sweep.Ranges(deployments=(3, 3))
    assert {len(sweep.draw(random.Random(i), narrow, "x").specs) for i in range(20)} == {3}


def test_starvation_is_a_healthy_deployment_without_picks_for_ten_seconds() -> None:
    case = sweep.Scenario("x", (sweep.Spec(0.01, 1), sweep.Spec(0.01, 1, slow_after=5)), 1, 10,
                          0.0)
    picks = [(0.0, "d0"), (11.0, "d0"), (12.0, "d0")]
    assert sweep.starved(case, ["d0", "d1"], picks, 0.0, 12.0) == ["d0"]  # d1 slowed: excused
    assert sweep.starved(case, ["d0", "d1"], [(0.0, "d0"), (9.0, "d0")], 0.0, 12.0) == []


def test_quick_sweep_reports_every_strategy_and_peak_ewma_starves_nothing() -> None:
    cases = sweep.scenarios(3, 4, QUICK, named_requests=300)
    strategies = sweep.sweep_strategies()
    results = sweep.run_sweep(cases, strategies)
    assert list(results) == [c.name for c in cases]
    summary = sweep.summarise(results)
    assert set(summary) == set(strategies)
    assert sum(s["best"] for s in summary.values()) >= len(cases)  # ties count for each
    for s in summary.values():
        assert s["best"] <= s["near"] <= len(cases) and s["p99_geomean"] >= 1.0
    assert summary["peak-ewma"]["starved"] == []
    found = {t["target"]: t for t in sweep.targets(results)}
    assert len(found) == 4 and all(isinstance(t["met"], bool) for t in found.values())


def test_routing_quality_runs_the_sweep(capsys: pytest.CaptureFixture[str]) -> None:
    main(["--sweep", "--quick", "--scenarios", "1", "--range", "requests=[100,150]",
          "--strategies", "least-busy,peak-ewma"])
    out = capsys.readouterr().out
    assert "## Sweep: seed 1, 3 scenarios" in out and "| peak-ewma |" in out
    assert "for a schedule that knows every deployment in advance" in out


def test_a_deployment_still_answering_its_queue_is_not_starved() -> None:
    case = sweep.Scenario("x", (sweep.Spec(0.01, 1), sweep.Spec(0.3, 1)), 2, 10, 0.0)
    sent = [(0.0, "d0"), (0.0, "d1"), (0.0, "d1"), (6.0, "d0"), (12.0, "d0")]
    assert sweep.starved(case, ["d0", "d1"], sent, 0.0, 12.0) == ["d1"]
    answered = sorted([*sent, (5.0, "d1"), (9.0, "d1")])  # slow cold answers, one slot
    assert sweep.starved(case, ["d0", "d1"], answered, 0.0, 12.0) == []


def test_the_sweep_counts_answers_when_it_looks_for_starvation() -> None:
    # One slot with cold first answers of 4 s: the first burst keeps it busy for
    # longer than STARVED_AFTER while it answers every few seconds.
    cold = sweep.Spec(0.3, 1, warmup=4.0, warmup_requests=3)
    case = sweep.Scenario("cold", (sweep.Spec(0.01, 8), cold), 8, 4000, 0.0)
    outcome = sweep.run_one(case, "peak-ewma", 1)
    assert outcome.starved == []


def test_the_drain_after_the_last_send_is_not_starvation() -> None:
    """Seed 11's s34 on model seed 2: the last requests queue on the single-slot 1 s
    deployment and drain for 10 s after the last send, when nothing is left to send
    to the fast one (before the window ended at the clock's end, and flagged it)."""
    (case,) = [c for c in sweep.scenarios(11, 40) if c.name == "s34"]
    outcome = sweep.run_one(case, "least-busy", 2)
    assert outcome.starved == []
    specs = (sweep.Spec(0.01, 4), sweep.Spec(0.01, 4))  # a real gap still counts
    gap = sweep.Scenario("gap", specs, 2, 10, 0.0)
    sent = [(0.0, "d0"), (0.0, "d1"), (5.0, "d0"), (11.0, "d0"), (12.0, "d0")]
    assert sweep.starved(gap, ["d0", "d1"], sent, 0.0, 12.0) == ["d1"]
