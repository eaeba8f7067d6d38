"""benchmarks/sweep_processes.py in miniature: scaling keeps a drawn scenario within what
two cores can serve, and one small scenario runs on upstream processes; shapes only."""

from __future__ import annotations

from benchmarks.sweep import Ranges, Scenario, Spec, scenarios
from benchmarks.sweep_processes import run_scenario, scaled


def test_scaling_keeps_every_drawn_scenario_under_the_rate() -> None:
    for scenario in scenarios(1, 40, Ranges())[2:]:
        run = scaled(scenario, 400.0, 12.0)
        c = scenario.concurrency
        rate = min(sum(min(s.capacity, c) / (s.service * run.scale) for s in scenario.specs),
                   c / min(s.service * run.scale for s in scenario.specs))
        assert run.scale >= 1 and rate <= 400.0 * 1.0001
        assert 100 <= run.requests <= max(100, scenario.requests)


async def test_a_small_scenario_runs_every_strategy_given() -> None:
    scenario = Scenario("tiny", (Spec(0.01, 4), Spec(0.03, 4, fail_rate=0.1),
                                 Spec(0.01, 4, slow_factor=4.0, slow_after=60)), 8, 300, 0.2)
    run = scaled(scenario, 400.0, 0.5)
    row = await run_scenario(run, ["peak-ewma", "least-busy"], seed=7, seconds=1.0)
    assert sorted(row) == ["least-busy", "peak-ewma"]
    for outcome in row.values():
        assert 0.009 <= outcome.p50 <= outcome.p99  # in the scenario's own seconds
        assert outcome.starved == []  # a 1 s run is too short to starve anyone
