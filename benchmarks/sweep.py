"""A sweep of routing workloads: is a strategy good everywhere, or only where it was tuned?

Two workloads cannot tell a strategy that routes well from one tuned to
them, so this draws many scenarios, seeded, from wide :class:`Ranges`: 2 to
8 deployments; service times from 5 to 500 ms (a third of the scenarios
near-equal, within 10 % of each other); 1 to 16 parallel slots each, or
unlimited; a closed-loop concurrency from half to twice the group's total
capacity; slow-downs (2-8x, some recovering later), failure rates up to 20 %,
slow first answers (connection setup) and noisy latencies. The two workloads
of ``routing_quality.py`` (capacity-limited and unlimited) are kept as named
scenarios.

Every strategy runs every scenario on the discrete-event model
(:mod:`router.testing.simulation`: the strategies and the load tracker see
the figures a real router would, on a simulated clock, so a sweep is
repeatable and takes seconds). The model has no cooldowns and retries a
failed request at once elsewhere. Figures are the medians over ``rounds``
(each round another model seed).

Reported per strategy (:func:`summarise`): in how many scenarios it has the
best p99, is within 1.2x of the best, is the worst; the geometric means of
its p99 and p50 over the best; and the scenarios where it starved a healthy
deployment (one never slowed that was sent nothing and answered nothing
for ``STARVED_AFTER`` seconds; scenarios are sized to last about
``Ranges.duration``, 20 simulated seconds, but a slow group may end sooner).
:func:`targets` judges ``peak-ewma`` by issue 16's targets.

    .venv/bin/python benchmarks/routing_quality.py --sweep [--sweep-seed N]
        [--scenarios N] [--rounds N] [--json PATH]
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from router.strategies.base import strategy_registry
from router.testing.simulation import Simulation, Upstream, build_strategy

__all__ = [
    "Outcome", "Ranges", "Scenario", "Spec", "draw", "geomean", "named", "nearest_rank", "report",
    "run_sweep", "scenarios", "starved", "summarise", "sweep_strategies", "targets",
]

#: A healthy deployment that served nothing for this long was starved.
STARVED_AFTER = 10.0
#: "Near the best": within this factor of the best p99.
NEAR = 1.2
#: The unlimited capacity of the model (no deployment sees this many at once).
UNLIMITED = 10_000


@dataclass(frozen=True)
class Ranges:
    """Where :func:`draw` draws scenarios from (every range inclusive)."""

    deployments: tuple[int, int] = (2, 8)
    latency: tuple[float, float] = (0.005, 0.5)  # seconds, drawn log-uniform
    near_equal_share: float = 1 / 3  # of scenarios whose latencies are within 10 %
    capacity: tuple[int, int] = (1, 16)
    unlimited_share: float = 0.2  # of scenarios with unlimited capacity
    concurrency: tuple[float, float] = (0.5, 2.0)  # x the group's total capacity
    unlimited_concurrency: tuple[int, int] = (4, 48)
    slow_share: float = 0.5  # of scenarios where one deployment slows down
    slow_factor: tuple[float, float] = (2.0, 8.0)
    recover_share: float = 0.5  # of slow-downs that end later
    fail_share: float = 0.4  # of deployments that fail some requests
    fail_rate: tuple[float, float] = (0.0, 0.2)
    warmup_share: float = 0.5  # of scenarios with slow first answers
    warmup: tuple[float, float] = (1.0, 10.0)  # x the deployment's service time
    jitter: tuple[float, float] = (0.05, 0.6)  # +- share of each service time
    duration: float = 20.0  # simulated seconds a scenario's requests are sized for
    requests: tuple[int, int] = (300, 12000)


@dataclass(frozen=True)
class Spec:
    """One deployment of a scenario (see :class:`router.testing.simulation.Upstream`)."""

    service: float
    capacity: int
    fail_rate: float = 0.0
    slow_factor: float = 1.0
    slow_after: int | None = None
    recover_after: int | None = None
    warmup: float = 0.0
    warmup_requests: int = 0

    def upstream(self) -> Upstream:
        return Upstream(
            self.service, self.capacity, slow_after=self.slow_after,
            slow_factor=self.slow_factor, recover_after=self.recover_after,
            fail_rate=self.fail_rate, warmup=self.warmup, warmup_requests=self.warmup_requests,
        )


@dataclass(frozen=True)
class Scenario:
    name: str
    specs: tuple[Spec, ...]
    concurrency: int
    requests: int
    jitter: float

    def describe(self) -> str:
        parts = []
        for s in self.specs:
            cap = "inf" if s.capacity >= UNLIMITED else str(s.capacity)
            extra = f" x{s.slow_factor:.1f}" if s.slow_after is not None else ""
            extra += f" fail {s.fail_rate:.0%}" if s.fail_rate else ""
            parts.append(f"{s.service * 1000:.0f}ms/{cap}{extra}")
        return f"{self.name}: c={self.concurrency} n={self.requests} [{', '.join(parts)}]"


def _log_uniform(rng: random.Random, low: float, high: float) -> float:
    return math.exp(rng.uniform(math.log(low), math.log(high)))


def _requests(specs: Sequence[Spec], concurrency: int, ranges: Ranges) -> int:
    """Enough requests for about ``ranges.duration`` simulated seconds."""
    rate = sum(min(s.capacity, concurrency) / s.service for s in specs)
    rate = min(rate, concurrency / min(s.service for s in specs))
    low, high = ranges.requests
    return int(min(high, max(low, rate * ranges.duration)))


def draw(rng: random.Random, ranges: Ranges, name: str) -> Scenario:
    """One scenario drawn from ``ranges``."""
    n = rng.randint(*ranges.deployments)
    if rng.random() < ranges.near_equal_share:
        base = _log_uniform(rng, *ranges.latency)
        latencies = [base * rng.uniform(1.0, 1.1) for _ in range(n)]
    else:
        latencies = [_log_uniform(rng, *ranges.latency) for _ in range(n)]
    unlimited = rng.random() < ranges.unlimited_share
    capacities = [UNLIMITED if unlimited else rng.randint(*ranges.capacity) for _ in range(n)]
    if unlimited:
        concurrency = rng.randint(*ranges.unlimited_concurrency)
    else:
        concurrency = max(1, round(sum(capacities) * rng.uniform(*ranges.concurrency)))
    warm = rng.random() < ranges.warmup_share
    specs = [
        Spec(
            latency, capacity,
            fail_rate=rng.uniform(*ranges.fail_rate) if rng.random() < ranges.fail_share else 0.0,
            warmup=latency * rng.uniform(*ranges.warmup) if warm else 0.0,
            warmup_requests=rng.randint(1, 3) if warm else 0,
        )
        for latency, capacity in zip(latencies, capacities, strict=True)
    ]
    requests = _requests(specs, concurrency, ranges)
    if rng.random() < ranges.slow_share:
        i = rng.randrange(n)
        after = int(requests * rng.uniform(0.2, 0.6))
        recover = None
        if rng.random() < ranges.recover_share:
            recover = int(requests * rng.uniform(0.7, 0.9))
        specs[i] = replace(specs[i], slow_factor=rng.uniform(*ranges.slow_factor),
                           slow_after=after, recover_after=recover)
    return Scenario(name, tuple(specs), concurrency, requests, rng.uniform(*ranges.jitter))


def named(requests: int = 1500) -> list[Scenario]:
    """``routing_quality.py``'s two workloads: fast, slow, degrading, flaky; 4 slots or none."""
    def workload(name: str, capacity: int) -> Scenario:
        specs = (
            Spec(0.020, capacity), Spec(0.080, capacity),
            Spec(0.020, capacity, slow_factor=10.0, slow_after=requests // 2),
            Spec(0.020, capacity, fail_rate=0.05),
        )
        return Scenario(name, specs, 24, requests, 0.2)
    return [workload("capacity-limited", 4), workload("unlimited", UNLIMITED)]


def scenarios(seed: int, count: int, ranges: Ranges | None = None,
              named_requests: int = 1500) -> list[Scenario]:
    """The named scenarios, then ``count`` drawn with ``seed``."""
    rng = random.Random(seed)
    ranges = ranges or Ranges()
    return named(named_requests) + [draw(rng, ranges, f"s{i:02d}") for i in range(count)]


@dataclass
class Outcome:
    """One strategy on one scenario: p50, p99 (seconds), starved deployments."""

    p50: float
    p99: float
    starved: list[str] = field(default_factory=list)


def nearest_rank(ordered: Sequence[float], q: float) -> float:
    """The ``q`` percentile of sorted ``ordered`` (infinite when it is empty)."""
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else math.inf


def _never_slowed(spec: Spec) -> bool:
    return spec.slow_after is None


def starved(scenario: Scenario, group: Sequence[str], picks: Sequence[tuple[float, str]],
            start: float, end: float,
            healthy: Callable[[Spec], bool] = _never_slowed) -> list[str]:
    """Healthy deployments (by default: never slowed) that went ``STARVED_AFTER`` s
    without an event in ``picks``: ``(instant, deployment id)`` in time order, each a
    request sent there or an answer from there."""
    limit = STARVED_AFTER
    last = dict.fromkeys(group, start)
    worst = dict.fromkeys(group, 0.0)
    for t, d in picks:
        worst[d] = max(worst[d], t - last[d])
        last[d] = t
    for d in group:
        worst[d] = max(worst[d], end - last[d])
    return [d for d, spec in zip(group, scenario.specs, strict=True)
            if healthy(spec) and worst[d] >= limit]


def run_one(scenario: Scenario, strategy: str, seed: int) -> Outcome:
    """``strategy`` on ``scenario`` with model seed ``seed``."""
    upstreams = [s.upstream() for s in scenario.specs]
    sim = Simulation(
        lambda load, clock: build_strategy(strategy, load, clock, seed), upstreams,
        concurrency=scenario.concurrency, seed=seed, jitter=scenario.jitter,
    )
    result = sim.run(scenario.requests)
    ordered = sorted(result.latencies)
    group = [d.id for d in sim.group]
    # Sends and answers both count: a deployment still answering a queue of slow first
    # requests (a cold start on one slot) is serving, not starved. The window ends at
    # the last send: while the last requests drain from a slow queue nothing is left
    # to send anywhere, so no deployment can be starved of it.
    end = result.picks[-1][0]
    served = sorted([*result.picks, *((t, d) for t, d, _ in result.answers if t <= end)])
    left_out = starved(scenario, group, served, result.start, end)
    return Outcome(nearest_rank(ordered, 0.5), nearest_rank(ordered, 0.99), left_out)


def sweep_strategies() -> list[str]:
    """Every registered strategy once (``usage-based-routing-v2`` is an alias)."""
    return [n for n in strategy_registry().names() if n != "usage-based-routing-v2"]


def run_sweep(
    cases: Sequence[Scenario], strategies: Sequence[str], rounds: int = 1,
    progress: Callable[[str], None] | None = None,
) -> dict[str, dict[str, Outcome]]:
    """``{scenario: {strategy: median outcome over rounds}}``."""
    results: dict[str, dict[str, Outcome]] = {}
    for case in cases:
        row: dict[str, Outcome] = {}
        for name in strategies:
            runs = [run_one(case, name, seed) for seed in range(1, rounds + 1)]
            row[name] = Outcome(
                statistics.median(r.p50 for r in runs), statistics.median(r.p99 for r in runs),
                sorted({d for r in runs for d in r.starved}),
            )
        results[case.name] = row
        if progress:
            progress(case.describe())
    return results


def geomean(values: Iterable[float]) -> float:
    """The geometric mean (NaN for none)."""
    logs = [math.log(v) for v in values]
    return math.exp(sum(logs) / len(logs)) if logs else math.nan


def summarise(results: dict[str, dict[str, Outcome]]) -> dict[str, dict[str, Any]]:
    """Per strategy: best / near / worst counts, geometric means over the best, starvation."""
    strategies = list(next(iter(results.values())))
    summary: dict[str, dict[str, Any]] = {
        s: {"best": 0, "near": 0, "worst": 0, "p99_ratios": [], "p50_ratios": [], "starved": []}
        for s in strategies
    }
    for scenario, row in results.items():
        best99 = min(o.p99 for o in row.values())
        best50 = min(o.p50 for o in row.values())
        worst99 = max(o.p99 for o in row.values())
        for name, o in row.items():
            entry = summary[name]
            entry["best"] += o.p99 <= best99 * (1 + 1e-9)
            entry["near"] += o.p99 <= best99 * NEAR
            entry["worst"] += o.p99 >= worst99 * (1 - 1e-9)
            entry["p99_ratios"].append(o.p99 / best99)
            entry["p50_ratios"].append(o.p50 / best50)
            if o.starved:
                entry["starved"].append(f"{scenario}:{','.join(o.starved)}")
    for entry in summary.values():
        entry["p99_geomean"] = geomean(entry.pop("p99_ratios"))
        entry["p50_geomean"] = geomean(entry.pop("p50_ratios"))
        entry["scenarios"] = len(results)
    return summary


def targets(results: dict[str, dict[str, Outcome]], mine: str = "peak-ewma",
            baseline: str = "least-busy") -> list[dict[str, Any]]:
    """Issue 16's targets for ``mine``: each ``{"target", "met", "value"}``."""
    summary = summarise(results)[mine]
    worse = [
        name for name, row in results.items()
        if row[mine].p50 > NEAR * row[baseline].p50 or row[mine].p99 > NEAR * row[baseline].p99
    ]
    n = summary["scenarios"]
    return [
        {"target": f"within {NEAR}x of the best p99 in >= 90% of scenarios",
         "met": summary["near"] >= 0.9 * n, "value": f"{summary['near']}/{n}"},
        {"target": f"never over {NEAR}x {baseline}'s p50 or p99",
         "met": not worse, "value": ", ".join(worse) or "none"},
        {"target": "geometric mean of p99 over the best <= 1.1",
         "met": summary["p99_geomean"] <= 1.1, "value": f"{summary['p99_geomean']:.3f}"},
        {"target": "no healthy deployment starved",
         "met": not summary["starved"], "value": ", ".join(summary["starved"]) or "none"},
    ]


def report(results: dict[str, dict[str, Outcome]]) -> str:
    """A markdown table of :func:`summarise`, then :func:`targets`."""
    lines = [
        "| strategy | best p99 | within 1.2x | worst | p99 / best (geo) | p50 / best (geo) "
        "| starved in |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for name, s in summarise(results).items():
        lines.append(
            f"| {name} | {s['best']} | {s['near']} | {s['worst']} | {s['p99_geomean']:.2f} "
            f"| {s['p50_geomean']:.2f} | {len(s['starved'])} |")
    lines.append("")
    if "peak-ewma" in next(iter(results.values())) and "least-busy" in next(
            iter(results.values())):
        for t in targets(results):
            lines.append(f"* {'PASS' if t['met'] else 'FAIL'} {t['target']}: {t['value']}")
    return "\n".join(lines)
