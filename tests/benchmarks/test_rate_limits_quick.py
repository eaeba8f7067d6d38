"""benchmarks/rate_limits.py in miniature: one drawn scenario, headers on and off, against
rate-limited upstream processes; shapes and counts only, never a timing assertion."""

from __future__ import annotations

import argparse

from benchmarks.rate_limits import STRATEGIES, Scenario, _scenario, arrivals, draw, summary


def test_scenarios_and_arrivals_are_seeded_and_in_range() -> None:
    drawn = [draw(seed) for seed in range(40)]
    assert drawn == [draw(seed) for seed in range(40)]
    for s in drawn:
        assert 2 <= len(s.latencies) == len(s.limits) <= 5
        assert all(0.005 <= lat <= 0.1 for lat in s.latencies)
        assert all(3 <= lim <= 60 for lim in s.limits)
        assert 0.5 <= s.load <= 0.9 and s.strategy in STRATEGIES
    assert {s.strategy for s in drawn} == set(STRATEGIES)
    times = arrivals(20.0, 5.0, 1)
    assert times == arrivals(20.0, 5.0, 1) and times == sorted(times)
    assert 50 < len(times) < 150 and times[-1] < 5.0


async def test_both_runs_count_the_upstreams_429s() -> None:
    args = argparse.Namespace(window=1.0, seconds=1.5)
    scenario = Scenario((0.005, 0.005), (2, 30), 0.8, "simple-shuffle")
    rows = await _scenario(scenario, args, 3, 0)
    assert sorted(r["headers"] for r in rows) == [False, True]
    off = next(r for r in rows if not r["headers"])
    assert off["upstream_429s"] > 0  # an even shuffle overruns the small bucket
    for row in rows:
        assert row["requests"] > 20 and row["p99_ms"] >= row["p50_ms"] > 0
    line, _ = summary(rows)
    assert line.startswith("429s: ") and "saved" in line
