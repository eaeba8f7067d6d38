"""What no schedule can beat: the lowest median a sweep scenario allows under a tail cap.

Issue 16 asks ``peak-ewma`` for a p99 near the best *and* a p50 never over
1.2x ``least-busy``'s. This module asks whether any schedule at all, one that
knows every deployment's service time and slots in advance, could meet both,
in the *fluid model* of a closed-loop scenario: ``N`` clients, deployment
``i`` holding ``n_i`` of them with latency ``L_i = t_i x max(1, n_i / s_i)``
and answering ``n_i / L_i`` times a second. The model leaves out jitter,
failures, slow-downs and cold starts, each of which only makes a schedule
worse, so its answers are lower bounds.

:func:`median_floor` is the lowest median over answers of any allocation
that keeps every deployment's latency at most ``cap``. If ``F`` are the
deployments whose answers are at most the median ``m`` and the rest wait up
to ``cap``, then (with ``mu_i = s_i / t_i``, a deployment's most answers a
second): ``m >= t_i`` for ``i`` in ``F``; ``F`` holds at most ``m x mu_F``
clients, so the rest hold ``R >= N - m x mu_F`` and answer at least
``R / cap`` times a second, which must not exceed ``F``'s ``mu_F`` (a median
needs half the answers), and must fit, ``R <= cap x mu_rest``. The floor is
the smallest such ``m`` over every ``F``; it is reached by keeping ``F``
just saturated and queueing everyone else up to the cap, i.e. by making some
answers deliberately slower than they need be.

What the model does not bound: a p99 ignores 1% of the answers, so a schedule
could also *park* clients in a deep queue on a deployment too small to give
1% of the answers, which lowers both percentiles per answer while those
clients wait seconds. The floor assumes no schedule does that.

:func:`tail_needed` inverts the floor: the least cap at which a median is
reachable. :func:`feasibility` applies it to a sweep's results: for each
scenario, the p99 a schedule must accept (over the best measured) to bring
its p50 within 1.2x ``least-busy``'s, and whether issue 16's p99 targets
(within 1.2x of the best in 90% of scenarios, geometric mean at most 1.1)
survive that.

    .venv/bin/python benchmarks/routing_quality.py --sweep  # printed after the targets
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from benchmarks.sweep import NEAR, UNLIMITED, Outcome, Scenario, Spec, geomean

__all__ = ["Feasibility", "feasibility", "median_floor", "report", "tail_needed"]

#: Issue 16's other p99 targets: the share of scenarios within NEAR of the best,
#: and the geometric mean of p99 over the best.
NEAR_SHARE = 0.9
MAX_GEOMEAN = 1.1


def _rate(spec: Spec) -> float:
    """The most answers a second ``spec`` gives (infinite when its slots are)."""
    return math.inf if spec.capacity >= UNLIMITED else spec.capacity / spec.service


def median_floor(scenario: Scenario, cap: float) -> float:
    """The lowest median latency over answers that any allocation of the scenario's
    clients reaches with every deployment's latency at most ``cap`` (seconds; infinite
    when none does)."""
    specs = scenario.specs
    clients = scenario.concurrency
    usable = [s for s in specs if s.service <= cap]
    floor = math.inf
    for size in range(1, len(usable) + 1):
        for fast in itertools.combinations(range(len(usable)), size):
            slowest = max(usable[i].service for i in fast)
            fast_rate = sum(_rate(usable[i]) for i in fast)
            if math.isinf(fast_rate):
                floor = min(floor, slowest)
                continue
            rest_rate = sum(_rate(s) for i, s in enumerate(usable) if i not in fast)
            fits = (clients - cap * rest_rate) / fast_rate  # -inf when the rest is unlimited
            half = clients / fast_rate - cap
            floor = min(floor, max(slowest, fits, half))
    return floor


def tail_needed(scenario: Scenario, median: float, *, steps: int = 50) -> float:
    """The least cap (seconds) at which :func:`median_floor` is at most ``median``
    (by bisection; infinite when no cap is enough)."""
    # every client queued on the slowest deployment alone: any median fits under it
    high = (1 + scenario.concurrency) * max(s.service for s in scenario.specs)
    if median_floor(scenario, high) > median:
        return math.inf
    low = 0.0
    for _ in range(steps):
        mid = (low + high) / 2
        if median_floor(scenario, mid) <= median:
            high = mid
        else:
            low = mid
    return high


@dataclass(frozen=True)
class Feasibility:
    """Per scenario, the p99 over the best that p50 <= 1.2x the baseline's forces
    (at least 1), and whether issue 16's p99 targets survive it."""

    needed: dict[str, float]
    over: list[str]
    allowed: int
    geomean: float

    @property
    def reachable(self) -> bool:
        return len(self.over) <= self.allowed and self.geomean <= MAX_GEOMEAN


def feasibility(results: Mapping[str, Mapping[str, Outcome]], cases: Sequence[Scenario],
                baseline: str = "least-busy") -> Feasibility:
    """Issue 16's targets for a clairvoyant schedule, from a sweep's ``results`` (the
    best p99 is the best measured, so the ratios are if anything too low)."""
    by_name = {case.name: case for case in cases}
    needed: dict[str, float] = {}
    for name, row in results.items():
        best = min(o.p99 for o in row.values())
        cap = tail_needed(by_name[name], NEAR * row[baseline].p50)
        needed[name] = max(1.0, cap / best)
    over = [name for name, ratio in needed.items() if ratio > NEAR]
    allowed = len(needed) - math.ceil(NEAR_SHARE * len(needed))
    return Feasibility(needed, over, allowed, geomean(needed.values()))


def report(found: Feasibility) -> str:
    """A few lines for the sweep's report."""
    worst = ", ".join(f"{name} {found.needed[name]:.2f}x" for name in found.over) or "none"
    return "\n".join([
        f"* p50 within {NEAR}x least-busy's in every scenario, for a schedule that knows "
        "every deployment in advance (fluid model, no parked clients): its p99 must exceed "
        f"{NEAR}x the best in {len(found.over)} scenarios ({worst}; {found.allowed} allowed), "
        f"geometric mean of p99 over the best at least {found.geomean:.3f} "
        f"(<= {MAX_GEOMEAN} allowed): "
        + ("reachable, by queueing some deployments up to the cap" if found.reachable
           else "not reachable together with the p99 targets"),
    ])
