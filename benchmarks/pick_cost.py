"""What does one ``strategy.pick`` cost? Every registered strategy, 10 to 10,000 deployments.

Each group is built by the real :class:`router.table.DeploymentTable` (mock
provider; ``rpm``, ``tpm``, ``weight`` and ``model_info`` prices set and
varied) and the :class:`router.load.LoadTracker` is filled with realistic
figures first: 0-3 requests in flight per deployment, a few finished
requests with varied latencies and token counts, a tenth of the
deployments never measured. Then ``pick`` is timed on:

* the group's own tuple, as the deployment table hands it out and the
  attempt loop passes it on when no check removed anyone (strategies cache
  per-tuple structures);
* a fresh list of the group less :data:`REMOVED` deployments spread over it
  (what the attempt loop passes after a check or a cooldown removed
  someone; a new list per pick, so nothing is cached by its identity).

No I/O and no event loop: this is pure CPU in this process. The load
tracker's clock is a :class:`router.clock.ManualClock` (a Python method, a
little slower than the router's ``time.monotonic``). Each figure is the
best of ``--repeat`` timings of a loop of picks (the minimum is the least
disturbed by other processes on a shared machine).

Target: at most 20 µs per pick at 1,000 deployments for every strategy, on
the tuple and on the fresh list alike (both count for the verdict), growing
no faster than O(log n) (LiteLLM's pick is ~51 ms at 1,000).

    .venv/bin/python benchmarks/pick_cost.py [--quick] [--json PATH] [--repeat N]
"""

from __future__ import annotations

import argparse
import random
import sys
import timeit
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from providers.mock import MockProvider
from router.clock import ManualClock
from router.config import DeploymentConfig
from router.deployment import Deployment
from router.load import LoadHandle, LoadTracker
from router.request import RouteRequest
from router.strategies.base import StrategyContext, strategy_registry
from router.table import DeploymentTable

if not __package__:  # run as a script: make the ``benchmarks`` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import environment, fmt, markdown_table, verdict, write_json

SIZES = (10, 100, 1_000, 10_000)
QUICK_SIZES = (10, 100, 1_000)
TARGET_SIZE = 1_000
TARGET_US = 20.0
#: Strategy arguments used (LiteLLM's lowest_latency_buffer exercises the buffer path).
ARGS = {"lowest_latency_buffer": 0.2}
#: Deployments a check or cooldown removed from the group in the "list" case.
REMOVED = 5


def build_group(n: int, rng: random.Random) -> tuple[Deployment, ...]:
    """``n`` deployments of group ``g`` with varied limits, weights and prices."""
    configs = [
        DeploymentConfig.model_validate({
            "model_name": "g",
            "litellm_params": {
                "model": f"mock/m{i}", "rpm": rng.choice([600, 1200, 6000]),
                "tpm": rng.choice([100_000, 1_000_000]), "weight": rng.choice([1, 2, 3]),
            },
            "model_info": {
                "id": f"d{i}",
                "input_cost_per_token": rng.choice([1e-6, 2e-6, 2.5e-6]),
                "output_cost_per_token": rng.choice([4e-6, 8e-6, 1e-5]),
            },
        })
        for i in range(n)
    ]
    return DeploymentTable(configs, {"mock": MockProvider()}).group("g")


def fill_load(
    group: Sequence[Deployment], clock: ManualClock, rng: random.Random
) -> tuple[LoadTracker, list[LoadHandle]]:
    """A tracker with measured latencies, usage and requests in flight."""
    load = LoadTracker(clock)
    for d in group:
        if rng.random() < 0.1:
            continue  # never measured
        for _ in range(rng.randint(1, 3)):
            handle = load.acquire(d.id)
            clock.advance(rng.uniform(0.2, 2.0) / 1000)  # keep the run inside one minute
            handle.release(ok=True, output_tokens=rng.randint(20, 400), total_tokens=600)
    held = [load.acquire(d.id) for d in group for _ in range(rng.randint(0, 3))]
    return load, held


def narrowed(group: Sequence[Deployment]) -> list[Deployment]:
    """The group less :data:`REMOVED` members spread over it (none below 2x that size)."""
    if len(group) < 2 * REMOVED:
        return list(group)
    step = len(group) // REMOVED
    return [d for i, d in enumerate(group) if i % step != step // 2]


def time_pick(strategy: Any, candidates: Sequence[Deployment], repeat: int) -> float:
    """Best µs per pick over ``repeat`` timed loops (a fresh copy per pick for a list)."""
    request = RouteRequest(model="g", params={})
    pick = strategy.pick
    pick(candidates, request)  # warm any cache
    if type(candidates) is list:
        base = candidates
        timer = timeit.Timer(lambda: pick(base.copy(), request))
        copy = timeit.Timer(lambda: base.copy())
    else:
        timer = timeit.Timer(lambda: pick(candidates, request))
        copy = None
    number, _ = timer.autorange()
    number = max(number, 200)
    best = min(timer.repeat(repeat=repeat, number=number))
    if copy is not None:  # the copy stands for the check's work, not the pick's
        best -= min(copy.repeat(repeat=repeat, number=number))
    return max(best, 0.0) / number * 1e6


def measure(sizes: Sequence[int], repeat: int) -> dict[str, dict[str, float]]:
    """``{strategy: {"<n>": µs, "<n> list": µs}}`` for every registered strategy."""
    names = strategy_registry().names()
    results: dict[str, dict[str, float]] = {name: {} for name in names}
    for n in sizes:
        rng = random.Random(n)
        group = build_group(n, rng)
        clock = ManualClock()
        load, _held = fill_load(group, clock, rng)
        as_list = narrowed(group)
        for name in names:
            context = StrategyContext(random.Random(0), clock, load, ARGS)
            strategy = strategy_registry().create(name, context, where="pick_cost")
            results[name][str(n)] = time_pick(strategy, group, repeat)  # sees the whole first
            results[name][f"{n} list"] = time_pick(strategy, as_list, repeat)
    return results


def report(results: dict[str, dict[str, float]], sizes: Sequence[int]) -> list[list[str]]:
    headers = [*(f"{n:,}" for n in sizes), f"{TARGET_SIZE:,} list (-{REMOVED})"]
    rows = []
    for name, figures in results.items():
        at_target = figures.get(str(TARGET_SIZE), 0.0)
        at_list = figures.get(f"{TARGET_SIZE} list", 0.0)
        cells = [fmt(figures[str(n)], 2) for n in sizes] + [fmt(at_list, 2)]
        rows.append([name, *cells, verdict(max(at_target, at_list) <= TARGET_US)])
    print(markdown_table(
        ["strategy (µs per pick)", *headers, f"<= {TARGET_US:g} µs @ {TARGET_SIZE:,}"], rows
    ))
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="up to 1,000 deployments, 3 repeats")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--repeat", type=int, help="timed loops per figure (best is kept)")
    args = parser.parse_args(argv)
    sizes = QUICK_SIZES if args.quick else SIZES
    repeat = args.repeat or (3 if args.quick else 7)
    env = environment()
    print("## Pick cost per strategy\n")
    print(f"Python {env['python']}, {env['cpus']} CPUs; best of {repeat} loops per figure; "
          f"1-min load average: {env['loadavg_1m']}\n")
    results = measure(sizes, repeat)
    rows = report(results, sizes)
    ok = all(row[-1] == "PASS" for row in rows)
    print(f"\nEvery strategy within {TARGET_US:g} µs at {TARGET_SIZE:,} deployments: {verdict(ok)}")
    write_json(args.json, {
        "benchmark": "pick_cost", "sizes": list(sizes), "repeat": repeat,
        "target_us": TARGET_US, "target_size": TARGET_SIZE, "us_per_pick": results,
        "target_met": ok,
    })


if __name__ == "__main__":
    main()
