"""The routing sweep on real sockets: the simulated model's scenarios against upstream processes.

``sweep.py`` judges every strategy on the discrete-event model. This runs
the same drawn scenarios (same ``--sweep-seed``, same ranges) through a real
``Router`` against one ``router.testing.UpstreamProcess`` per deployment:
its service time (spread by the scenario's jitter), its parallel slots
(``capacity``; unlimited when the scenario says so), its failure rate (500s,
seeded) and its slow-down (the remote fault plan's ``slow``, switched on and
off at the same share of the run as in the scenario). Slow first answers are
not modelled: real connections are opened on first use anyway. Every
strategy gets a fresh router (``num_retries=2``, ``store=False`` on every
create, default cooldowns) over the same reset upstreams.

A real run cannot take as long as a simulated one, so each scenario is
scaled: service times are multiplied so that the group's throughput stays
under ``--max-rate`` requests/s (two cores run the router and every
upstream), and each run lasts ``--seconds`` (requests still out a second
later are cut off and count with what they had waited). Ratios
between strategies (what the sweep judges) do not depend on the scale.
A healthy deployment (never slowed, never failing: the router's cooldowns
rest a failing one on purpose, which the model has none of) is starved when
it went ``STARVED_AFTER`` (10 s, as in the model) without a request, so runs
shorter than that cannot show starvation.

Reported: ``sweep.py``'s table and issue 16's targets for ``peak-ewma`` on
these runs, then, per scenario, ``peak-ewma``'s and ``least-busy``'s p99
over the best in the processes and in the model, and whether both agree on
the best strategy.

    .venv/bin/python benchmarks/sweep_processes.py [--scenarios 8] [--sweep-seed 1]
        [--seconds 12] [--max-rate 400] [--strategies a,b]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import environment, markdown_table, openai_deployment, running
from benchmarks.sweep import (
    STARVED_AFTER,
    UNLIMITED,
    Outcome,
    Ranges,
    Scenario,
    Spec,
    nearest_rank,
    report,
    run_sweep,
    scenarios,
    starved,
    sweep_strategies,
)
from router.errors import RouterError
from router.router import Router
from router.testing import UpstreamProcess


@dataclass(frozen=True, slots=True)
class Scaled:
    """A scenario as run: service times x ``scale``; ``requests``: about how many a good
    strategy serves in the run."""

    scenario: Scenario
    scale: float
    requests: int


def scaled(scenario: Scenario, max_rate: float, seconds: float) -> Scaled:
    """``scenario`` slowed so its throughput stays under ``max_rate``, about ``seconds`` long."""
    c = scenario.concurrency
    rate = sum(min(s.capacity, c) / s.service for s in scenario.specs)
    rate = min(rate, c / min(s.service for s in scenario.specs))
    scale = max(1.0, rate / max_rate)
    requests = max(100, min(scenario.requests, int(rate / scale * seconds)))
    return Scaled(scenario, scale, requests)


def _procs(run: Scaled, seed: int) -> list[UpstreamProcess]:
    return [
        UpstreamProcess(
            f"d{i}", latency=spec.service * run.scale, record_requests=False,
            capacity=None if spec.capacity >= UNLIMITED else spec.capacity,
            jitter=min(run.scenario.jitter, 0.9), seed=seed + i,
        )
        for i, spec in enumerate(run.scenario.specs)
    ]


def _arm(procs: Sequence[UpstreamProcess], run: Scaled, seed: int) -> None:
    for i, (proc, spec) in enumerate(zip(procs, run.scenario.specs, strict=True)):
        proc.reset()
        if spec.fail_rate:
            proc.faults.fail(500, rate=spec.fail_rate, seed=seed + i)


async def _drive(router: Router, run: Scaled, procs: Sequence[UpstreamProcess], seconds: float
                 ) -> tuple[list[float], list[tuple[float, str]], float]:
    """Closed loop at the scenario's concurrency for ``seconds``: latencies, (instant,
    deployment) per answer, and the run's length.

    The slow-down starts (and ends) at the same share of the run as in the
    scenario. Requests still out a second after the end are cut off and count
    with the time they had waited (a lower bound: only a poor strategy has them).
    """
    switches = []
    for i, spec in enumerate(run.scenario.specs):
        if spec.slow_after is not None:
            added = spec.service * run.scale * (spec.slow_factor - 1)
            switches.append((seconds * spec.slow_after / run.scenario.requests, i, added))
            if spec.recover_after is not None:
                switches.append((seconds * spec.recover_after / run.scenario.requests, i, 0.0))
    latencies: list[float] = []
    served: list[tuple[float, str]] = []
    out: dict[int, float] = {}
    start = time.perf_counter()

    async def worker(n: int) -> None:
        while time.perf_counter() - start < seconds:
            out[n] = t0 = time.perf_counter()
            try:
                response = await router.aresponses(model="g", input="hi", store=False)
            except RouterError:
                continue
            finally:
                del out[n]
            now = time.perf_counter()
            latencies.append(now - t0)
            if response.routing is not None:
                served.append((now - start, response.routing.deployment_id))

    async def switcher() -> None:
        for at, i, delay in sorted(switches):
            await asyncio.sleep(max(0.0, start + at - time.perf_counter()))
            await asyncio.to_thread(procs[i].faults.slow, delay)

    tasks = [asyncio.ensure_future(worker(n)) for n in range(run.scenario.concurrency)]
    slow = asyncio.ensure_future(switcher())
    await asyncio.wait(tasks, timeout=seconds + 1.0)
    cut = time.perf_counter()
    latencies += [cut - t0 for t0 in out.values()]
    for task in (*tasks, slow):
        task.cancel()
    await asyncio.gather(*tasks, slow, return_exceptions=True)
    return sorted(latencies), served, cut - start


def _healthy(spec: Spec) -> bool:
    """Never slowed and never failing (the router's cooldowns rest a failing one)."""
    return spec.slow_after is None and not spec.fail_rate


async def run_scenario(run: Scaled, strategies: Sequence[str], seed: int, seconds: float
                       ) -> dict[str, Outcome]:
    """Every strategy on one scaled scenario; latencies in the scenario's own units."""
    procs = _procs(run, seed)
    row: dict[str, Outcome] = {}
    async with running(procs):
        deployments = [openai_deployment(p.url, model_name="g", deployment_id=p.name)
                       for p in procs]
        for name in strategies:
            _arm(procs, run, seed)
            async with Router(deployments, routing_strategy=name, num_retries=2) as router:
                latencies, served, length = await _drive(router, run, procs, seconds)
            group = [p.name for p in procs]
            row[name] = Outcome(nearest_rank(latencies, 0.5) / run.scale,
                                nearest_rank(latencies, 0.99) / run.scale,
                                starved(run.scenario, group, served, 0.0, length, _healthy))
    return row


def _best(row: dict[str, Outcome]) -> str:
    return min(row, key=lambda name: row[name].p99)


def comparison(real: dict[str, dict[str, Outcome]], model: dict[str, dict[str, Outcome]],
               runs: Sequence[Scaled]) -> str:
    """Per scenario: p99 over the best for peak-ewma and least-busy, processes vs model."""
    lines = []
    for run in runs:
        name = run.scenario.name
        r, m = real[name], model[name]
        best_r, best_m = min(o.p99 for o in r.values()), min(o.p99 for o in m.values())
        cells = [run.scenario.describe(), f"x{run.scale:.1f}, {run.requests}"]
        for strategy in ("peak-ewma", "least-busy"):
            if strategy in r:
                cells.append(f"{r[strategy].p99 / best_r:.2f} / {m[strategy].p99 / best_m:.2f}")
        cells.append(f"{_best(r)} / {_best(m)}")
        lines.append(cells)
    return markdown_table(["scenario", "scale, requests", "peak-ewma p99/best: processes / "
                           "model", "least-busy p99/best: processes / model",
                           "best: processes / model"], lines)


async def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--scenarios", type=int, default=8)
    parser.add_argument("--sweep-seed", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=12.0, help="of traffic per run")
    parser.add_argument("--max-rate", type=float, default=400.0,
                        help="requests/s a scenario is scaled down to")
    parser.add_argument("--strategies", default=None, help="comma-separated (default: all)")
    args = parser.parse_args(argv)
    strategies = args.strategies.split(",") if args.strategies else sweep_strategies()
    drawn = scenarios(args.sweep_seed, args.scenarios, Ranges())[2:]  # the drawn ones
    runs = [scaled(s, args.max_rate, args.seconds) for s in drawn]
    env = environment()
    print("## The routing sweep against upstream processes\n")
    print(f"Python {env['python']}, {env['cpus']} CPUs; {len(runs)} scenarios drawn with seed "
          f"{args.sweep_seed}; about {args.seconds:g} s of traffic per strategy, scaled under "
          f"{args.max_rate:g} requests/s"
          + ("" if args.seconds > STARVED_AFTER else
             f" (runs under {STARVED_AFTER:g} s cannot show starvation)") + "\n")
    real: dict[str, dict[str, Outcome]] = {}
    for i, run in enumerate(runs):
        real[run.scenario.name] = await run_scenario(run, strategies, 1000 * (i + 1),
                                                     args.seconds)
        print(f"  {run.scenario.describe()}", file=sys.stderr, flush=True)
    print(report(real))
    model = run_sweep([r.scenario for r in runs], strategies, rounds=3)
    print("\n" + comparison(real, model, runs))
    agree = sum(_best(real[r.scenario.name]) == _best(model[r.scenario.name]) for r in runs)
    print(f"\nThe best strategy agrees in {agree} of {len(runs)} scenarios "
          f"(load average at the end: {environment()['loadavg_1m']}).")


if __name__ == "__main__":
    asyncio.run(main())
