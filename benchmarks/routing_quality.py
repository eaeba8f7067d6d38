"""Routing quality: which strategy keeps latency low when deployments differ?

Four fake upstreams, each in its own process (so the router's CPU does not
distort their service times), one deployment each:

* ``fast``: 20 ms per answer;
* ``slow``: 80 ms (4x slower);
* ``degrading``: 20 ms until half of the requests have started, then 200 ms
  (the remote fault plan's ``slow``);
* ``flaky``: 20 ms, and 5 % of answers are 500s (seeded, so runs repeat).

Two workloads: *capacity-limited* (each upstream serves 4 requests at once and
queues the rest, as real deployments do) and *unlimited* capacity. The same
closed-loop load goes through each strategy: a fixed number of creates
(1,500; ``--quick``: 300) at concurrency 24, more than any one upstream (or all
four: 16 slots) can serve at once. Router settings: ``num_retries=2`` (so the
5 % failures are retried elsewhere), ``timeout=30`` s, default cooldowns
(``allowed_fails=3``, ``cooldown_time=5``), ``store=False`` on every create
(the upstreams keep nothing between runs). Each strategy gets a fresh router;
the upstreams are reset (faults re-armed, the same seed) before each run.

Reported per strategy and workload: p50 / p95 / p99 latency, requests/s, the
error rate after retries, router attempts per request, each deployment's share
of the served requests (from each response's ``.routing.deployment_id``) and
the share of the requests started after the slow-down that ``degrading``
still served.

Targets (for ``peak-ewma``): on the capacity-limited workload it has the lowest
p99 of all strategies and at most half the p99 of ``simple-shuffle``, and
serves at most 5 % of the requests started after the slow-down on
``degrading`` (moves >= 95 % of traffic off it); on the unlimited workload its
p99 is within 1.2x of the best.

    .venv/bin/python benchmarks/routing_quality.py [--quick] [--rounds N] [--json PATH] [--png PATH]
        [--strategies simple-shuffle,peak-ewma,...] [--requests N] [--set NAME=VALUE]

``--sweep`` instead runs ``benchmarks/sweep.py``: the two workloads and
``--scenarios`` (default 40) more drawn with ``--sweep-seed`` from wide
ranges (``--range NAME=VALUE`` changes one), every strategy on the
discrete-event model with a simulated clock, ``--rounds`` seeds each
(medians), reported per strategy against issue 16's targets, and with
``least-busy`` in the run, :mod:`benchmarks.sweep_bound`'s answer to whether
any schedule could meet them all.

``--strategies`` defaults to all six; a name this router does not register
yet is reported as "not available". ``module:factory`` adds a strategy of
your own (``factory(StrategyContext) -> Strategy``). ``--png`` draws a chart
when matplotlib is installed (``pip install -e '.[charts]'``) and says it was
skipped otherwise. ``--set allowed_fails=1000`` (any Router setting, the value
as JSON) changes the router for every run: with the default cooldowns the
flaky deployment spends much of the run cooling down.

``--rounds`` (default 3; ``--quick``: 1) runs every strategy that many times,
taking turns, and reports the median of each figure, with each round's p99
beside it: a p99 here is the 15th slowest of 1,500 requests, and which
deployment a strategy happens to favour when ``degrading`` slows decides it,
so single runs swing by 2-3x. Targets are judged on the medians; the
unlimited one also says in how many single rounds it held. A full run of 3
rounds takes about six minutes on two cores.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import dataclasses
import importlib
import json
import math
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from router.errors import RouterError
from router.router import Router
from router.strategies.base import Strategy, StrategyContext, strategy_registry
from router.testing import UpstreamProcess

if not __package__:  # run as a script: make the ``benchmarks`` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import sweep, sweep_bound
from benchmarks.common import (
    INPUT,
    MODEL,
    environment,
    fmt,
    markdown_table,
    openai_deployment,
    percentile,
    running,
    write_json,
)

__all__ = ["ALL_STRATEGIES", "Plan", "Result", "main", "run_all"]

ALL_STRATEGIES = (
    "simple-shuffle", "least-busy", "latency-based-routing", "usage-based-routing",
    "cost-based-routing", "peak-ewma",
)
TARGET_STRATEGY, BASELINE = "peak-ewma", "simple-shuffle"
LIMITED, UNLIMITED = "capacity-limited", "unlimited"
FAST, SLOW, DEGRADING, FLAKY = "fast", "slow", "degrading", "flaky"
LATENCY = {FAST: 0.020, SLOW: 0.080, DEGRADING: 0.020, FLAKY: 0.020}
SLOWED_LATENCY = 0.200  # degrading's service time after the slow-down
FLAKY_RATE, FLAKY_SEED = 0.05, 11
CAPACITY = 4
MAX_P99_VS_BASELINE = 0.5
MAX_SLOWED_SHARE = 0.05
MAX_P99_VS_BEST_UNLIMITED = 1.2

StrategyFactory = Callable[[StrategyContext], Strategy]


@dataclass(frozen=True, slots=True)
class Plan:
    """The load sent through each strategy, and the router's settings."""

    requests: int = 1500
    concurrency: int = 24
    num_retries: int = 2
    timeout: float = 30.0
    extra: dict[str, Any] = field(default_factory=dict)  # more Router settings (--set)

    def router_settings(self) -> dict[str, Any]:
        return {"num_retries": self.num_retries, "timeout": self.timeout, **self.extra}


DEFAULT, QUICK = Plan(), Plan(requests=300)


@dataclass(frozen=True, slots=True)
class Choice:
    """A strategy to run: a registered name, or ``module:factory`` with its factory."""

    name: str
    factory: StrategyFactory | None = None

    @property
    def available(self) -> bool:
        return self.factory is not None or self.name in strategy_registry().names()

    def router(self, model_list: list[dict[str, Any]], plan: Plan) -> Router:
        extra = {self.name: self.factory} if self.factory is not None else None
        return Router(model_list=model_list, routing_strategy=self.name, strategies=extra,
                      **plan.router_settings())


@dataclass(frozen=True, slots=True)
class Outcome:
    """One request: when it started, how long it took, who served it (``None``: failed)."""

    started: float
    latency: float
    deployment: str | None
    attempts: int


@dataclass(frozen=True, slots=True)
class Result:
    """The figures of one strategy on one workload (zeros when not available)."""

    workload: str
    strategy: str
    available: bool
    requests: int = 0
    errors: int = 0
    seconds: float = 0.0
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    p99_ms: float = 0.0
    attempts_per_request: float = 0.0
    share: dict[str, float] = field(default_factory=dict)  # of served requests
    slowed_share_after: float | None = None  # degrading's share after the slow-down
    upstream_hits: dict[str, int] = field(default_factory=dict)
    p99_rounds: tuple[float, ...] = ()  # each round's p99 when this is a median of rounds

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


# --------------------------------------------------------------------------- upstreams


class Fleet:
    """The four upstream processes of one workload (``capacity=None``: unlimited)."""

    def __init__(self, capacity: int | None) -> None:
        self.procs = {
            name: UpstreamProcess(name, latency=latency, capacity=capacity,
                                  record_requests=False)
            for name, latency in LATENCY.items()
        }

    def model_list(self) -> list[dict[str, Any]]:
        return [openai_deployment(p.url, deployment_id=n) for n, p in self.procs.items()]

    async def prepare(self) -> None:
        """Hit counters to 0, faults cleared, the flaky upstream's failures re-armed."""
        await asyncio.gather(*(asyncio.to_thread(p.reset) for p in self.procs.values()))
        await asyncio.to_thread(
            self.procs[FLAKY].faults.fail, 500, rate=FLAKY_RATE, seed=FLAKY_SEED
        )

    async def slow_down(self) -> float:
        """Make ``degrading`` slow; the ``perf_counter`` time once it is."""
        extra = SLOWED_LATENCY - LATENCY[DEGRADING]
        await asyncio.to_thread(self.procs[DEGRADING].faults.slow, extra)
        return time.perf_counter()

    async def hits(self) -> dict[str, int]:
        stats = await asyncio.gather(*(asyncio.to_thread(p.stats) for p in self.procs.values()))
        return {s["name"]: int(s["hits"]) for s in stats}


# --------------------------------------------------------------------------- driving


async def _one(router: Router) -> Outcome:
    t0 = time.perf_counter()
    try:
        response = await router.aresponses(model=MODEL, input=INPUT, store=False)
    except RouterError as exc:
        tried = len(exc.trail.attempts) if exc.trail is not None else 1
        return Outcome(t0, time.perf_counter() - t0, None, tried)
    routing = response.routing
    return Outcome(t0, time.perf_counter() - t0, routing.deployment_id, len(routing.attempts))


async def _drive(router: Router, plan: Plan, fleet: Fleet) -> tuple[list[Outcome], float]:
    """Every request, closed loop; ``degrading`` slows once half of them have started.

    Returns the outcomes and the time the slow-down took effect.
    """
    outcomes: list[Outcome] = []
    started = 0
    switch: asyncio.Task[float] | None = None

    async def worker() -> None:
        nonlocal started, switch
        while started < plan.requests:
            started += 1
            if started > plan.requests // 2 and switch is None:
                switch = asyncio.create_task(fleet.slow_down())
            outcomes.append(await _one(router))

    await asyncio.gather(*(worker() for _ in range(plan.concurrency)))
    switched_at = await switch if switch is not None else math.inf
    return outcomes, switched_at


async def run_strategy(fleet: Fleet, workload: str, choice: Choice, plan: Plan) -> Result:
    """One strategy on one workload, through a fresh router."""
    if not choice.available:
        return Result(workload, choice.name, available=False)
    await fleet.prepare()
    t0 = time.perf_counter()
    async with choice.router(fleet.model_list(), plan) as router:
        outcomes, switched_at = await _drive(router, plan, fleet)
    seconds = time.perf_counter() - t0
    return summarise(workload, choice.name, outcomes, switched_at, seconds, await fleet.hits())


def _percentile_ms(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of sorted seconds, in milliseconds."""
    return percentile(ordered, q) * 1e3


def _slowed_share(outcomes: Sequence[Outcome], switched_at: float) -> float | None:
    after = [o.deployment for o in outcomes if o.started >= switched_at and o.deployment]
    return after.count(DEGRADING) / len(after) if after else None


def summarise(
    workload: str, strategy: str, outcomes: Sequence[Outcome], switched_at: float,
    seconds: float, hits: dict[str, int],
) -> Result:
    """The figures of one run from its outcomes."""
    latencies = sorted(o.latency for o in outcomes)
    served = collections.Counter(o.deployment for o in outcomes if o.deployment is not None)
    total = sum(served.values())
    return Result(
        workload=workload, strategy=strategy, available=True, requests=len(outcomes),
        errors=len(outcomes) - total, seconds=seconds,
        p50_ms=_percentile_ms(latencies, 0.50), p95_ms=_percentile_ms(latencies, 0.95),
        p99_ms=_percentile_ms(latencies, 0.99),
        attempts_per_request=sum(o.attempts for o in outcomes) / max(1, len(outcomes)),
        share={name: served[name] / max(1, total) for name in LATENCY},
        slowed_share_after=_slowed_share(outcomes, switched_at), upstream_hits=hits,
    )


async def run_all(choices: Sequence[Choice], plan: Plan, rounds: int = 1) -> list[Result]:
    """Every strategy on the capacity-limited workload, then on the unlimited one.

    With ``rounds`` > 1 the strategies take turns, round after round, and
    each figure is the median of the rounds (:func:`median_of_rounds`).
    """
    results: list[Result] = []
    for workload, capacity in ((LIMITED, CAPACITY), (UNLIMITED, None)):
        fleet = Fleet(capacity)
        runs: dict[str, list[Result]] = {c.name: [] for c in choices}
        async with running(list(fleet.procs.values())):
            for _ in range(rounds):
                for choice in choices:
                    result = await run_strategy(fleet, workload, choice, plan)
                    _progress(result)
                    runs[choice.name].append(result)
        results.extend(median_of_rounds(r) if rounds > 1 else r[0] for r in runs.values())
    return results


def median_of_rounds(rounds: Sequence[Result]) -> Result:
    """One strategy's rounds on one workload as one result: each figure the median.

    Traffic shares are the mean of the rounds instead, so they add up to 100 %.

    Single runs of this benchmark swing (a p99 is the 15th slowest of 1,500
    requests, and which deployment a strategy happens to favour before the
    slow-down decides it), so the report shows every round's p99 too.
    """
    first = rounds[0]
    if not first.available:
        return first

    def med(values: Sequence[float]) -> float:
        return statistics.median(values)

    afters = [r.slowed_share_after for r in rounds if r.slowed_share_after is not None]
    return dataclasses.replace(
        first, requests=sum(r.requests for r in rounds), errors=sum(r.errors for r in rounds),
        seconds=sum(r.seconds for r in rounds),
        p50_ms=med([r.p50_ms for r in rounds]), p95_ms=med([r.p95_ms for r in rounds]),
        p99_ms=med([r.p99_ms for r in rounds]),
        attempts_per_request=med([r.attempts_per_request for r in rounds]),
        share={n: statistics.fmean([r.share.get(n, 0.0) for r in rounds]) for n in LATENCY},
        slowed_share_after=med(afters) if afters else None,
        upstream_hits={n: sum(r.upstream_hits.get(n, 0) for r in rounds) for n in LATENCY},
        p99_rounds=tuple(r.p99_ms for r in rounds),
    )


def _progress(result: Result) -> None:
    what = (f"{result.seconds:.1f} s, p99 {result.p99_ms:.0f} ms" if result.available
            else "not available")
    print(f"  {result.workload} / {result.strategy}: {what}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- targets


def _by_strategy(results: Sequence[Result], workload: str) -> dict[str, Result]:
    return {r.strategy: r for r in results if r.workload == workload and r.available}


def _check(name: str, ok: bool | None, value: str) -> dict[str, Any]:
    """One target; ``ok=None``: it cannot be judged (a strategy is not available)."""
    return {"target": name, "value": value, "ok": ok}


def _lowest_p99(runs: dict[str, Result]) -> dict[str, Any]:
    name = f"{LIMITED}: {TARGET_STRATEGY} has the lowest p99 of all strategies"
    mine = runs.get(TARGET_STRATEGY)
    if mine is None:
        return _check(name, None, f"{TARGET_STRATEGY} not available")
    best = min(runs.values(), key=lambda r: r.p99_ms)
    ok = mine.p99_ms <= best.p99_ms
    return _check(name, ok, f"{mine.p99_ms:.0f} ms; lowest: {best.strategy} {best.p99_ms:.0f} ms")


def _half_of_baseline(runs: dict[str, Result]) -> dict[str, Any]:
    name = (f"{LIMITED}: {TARGET_STRATEGY} p99 <= {MAX_P99_VS_BASELINE:g}x "
            f"{BASELINE}'s")
    mine, base = runs.get(TARGET_STRATEGY), runs.get(BASELINE)
    if mine is None or base is None or not base.p99_ms:
        return _check(name, None, "a strategy is not available")
    ratio = mine.p99_ms / base.p99_ms
    return _check(name, ratio <= MAX_P99_VS_BASELINE,
                  f"{mine.p99_ms:.0f} / {base.p99_ms:.0f} ms = {ratio:.2f}x")


def _moves_off_slowed(runs: dict[str, Result]) -> dict[str, Any]:
    name = (f"{LIMITED}: {TARGET_STRATEGY} serves <= {MAX_SLOWED_SHARE:.0%} of the requests "
            f"after the slow-down on {DEGRADING!r}")
    mine = runs.get(TARGET_STRATEGY)
    if mine is None or mine.slowed_share_after is None:
        return _check(name, None, f"{TARGET_STRATEGY} not available")
    share = mine.slowed_share_after
    return _check(name, share <= MAX_SLOWED_SHARE, f"{share:.1%}")


def _near_best_unlimited(runs: dict[str, Result]) -> dict[str, Any]:
    name = (f"{UNLIMITED}: {TARGET_STRATEGY} p99 within {MAX_P99_VS_BEST_UNLIMITED:g}x "
            "of the best")
    mine = runs.get(TARGET_STRATEGY)
    if mine is None:
        return _check(name, None, f"{TARGET_STRATEGY} not available")
    best = min(runs.values(), key=lambda r: r.p99_ms)
    ratio = mine.p99_ms / best.p99_ms if best.p99_ms else math.inf
    return _check(name, ratio <= MAX_P99_VS_BEST_UNLIMITED,
                  f"{mine.p99_ms:.0f} ms; best: {best.strategy} {best.p99_ms:.0f} ms "
                  f"({ratio:.2f}x){_rounds_within(runs, mine)}")


def _rounds_within(runs: dict[str, Result], mine: Result) -> str:
    """In how many single rounds ``mine`` was within the bound of that round's best."""
    count = len(mine.p99_rounds)  # ``runs`` holds only available strategies
    if count < 2 or any(len(r.p99_rounds) != count for r in runs.values()):
        return ""
    bound = MAX_P99_VS_BEST_UNLIMITED
    within = sum(
        mine.p99_rounds[i] <= bound * min(r.p99_rounds[i] for r in runs.values())
        for i in range(count)
    )
    return f"; within it in {within} of {count} single rounds"


def targets(results: Sequence[Result]) -> list[dict[str, Any]]:
    """The PASS/FAIL/SKIP checks."""
    limited, unlimited = _by_strategy(results, LIMITED), _by_strategy(results, UNLIMITED)
    return [_lowest_p99(limited), _half_of_baseline(limited), _moves_off_slowed(limited),
            _near_best_unlimited(unlimited)]


# --------------------------------------------------------------------------- output


def _row(r: Result) -> list[str]:
    if not r.available:
        return [f"{r.strategy} (not available)", *(["-"] * (12 if r.p99_rounds else 11))]
    after = "-" if r.slowed_share_after is None else f"{r.slowed_share_after:.1%}"
    row = [
        r.strategy, fmt(r.p50_ms), fmt(r.p95_ms), fmt(r.p99_ms), fmt(r.rps),
        f"{r.error_rate:.2%}", f"{r.attempts_per_request:.3f}",
        *(f"{r.share.get(name, 0.0):.1%}" for name in LATENCY), after,
    ]
    if r.p99_rounds:
        row.insert(4, " / ".join(fmt(p) for p in r.p99_rounds))
    return row


def table(results: Sequence[Result], workload: str) -> str:
    runs = [r for r in results if r.workload == workload]
    headers = ["strategy", "p50 ms", "p95 ms", "p99 ms", "req/s", "errors",
               "attempts/req", *(f"{n} share" for n in LATENCY),
               f"{DEGRADING} after slow-down"]
    if any(r.p99_rounds for r in runs):
        headers.insert(4, "p99 ms each round")
    return markdown_table(headers, [_row(r) for r in runs])


def _describe(plan: Plan) -> str:
    """The router settings of every run, in words."""
    settings = ", ".join(f"{k}={v!r}" if isinstance(v, str) else f"{k}={v:g}"
                         if isinstance(v, float) else f"{k}={v}"
                         for k, v in plan.router_settings().items())
    cooldowns = ("" if {"allowed_fails", "cooldown_time", "disable_cooldowns"} & set(plan.extra)
                 else ", default cooldowns")
    return settings + cooldowns


def print_report(
    results: Sequence[Result], found: list[dict[str, Any]], plan: Plan, rounds: int = 1
) -> None:
    env = environment()
    print("## Routing quality: four upstream processes, each strategy under the same load\n")
    each = f"; {rounds} interleaved rounds, median per figure" if rounds > 1 else ""
    print(f"Python {env['python']}, {env['cpus']} CPUs; {fmt(plan.requests)} requests at "
          f"concurrency {plan.concurrency} per strategy and workload{each}; upstreams: fast 20 ms, "
          f"slow 80 ms, degrading 20 -> {SLOWED_LATENCY * 1e3:.0f} ms from half-way, flaky "
          f"20 ms with {FLAKY_RATE:.0%} 500s; router: {_describe(plan)}; 1-min load average "
          f"at the end: {env['loadavg_1m']}\n")
    for workload, note in ((LIMITED, f"each upstream serves {CAPACITY} at once, queues the "
                            "rest"), (UNLIMITED, "no queueing at the upstreams")):
        print(f"### {workload} ({note})\n")
        print(table(results, workload))
        print()
    print("### Targets\n")
    for t in found:
        word = "SKIP" if t["ok"] is None else ("PASS" if t["ok"] else "FAIL")
        print(f"- {word}: {t['target']}: {t['value']}")


def draw_chart(results: Sequence[Result], path: str) -> bool:
    """Latency percentiles and traffic shares per strategy to ``path`` (PNG).

    Returns ``False`` (and draws nothing) when matplotlib is not installed.
    """
    try:  # optional: imported by name so the script (and mypy) work without it
        matplotlib = importlib.import_module("matplotlib")
        matplotlib.use("Agg")
        plt = importlib.import_module("matplotlib.pyplot")
    except ImportError:
        return False
    fig, axes = plt.subplots(2, 2, figsize=(13, 8), constrained_layout=True)
    for col, workload in enumerate((LIMITED, UNLIMITED)):
        runs = [r for r in results if r.workload == workload and r.available]
        _latency_bars(axes[0][col], runs, workload)
        _share_bars(axes[1][col], runs, workload)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _latency_bars(ax: Any, runs: Sequence[Result], workload: str) -> None:
    width = 0.27
    for i, (label, attr) in enumerate((("p50", "p50_ms"), ("p95", "p95_ms"), ("p99", "p99_ms"))):
        xs = [x + (i - 1) * width for x in range(len(runs))]
        ax.bar(xs, [getattr(r, attr) for r in runs], width, label=label)
    ax.set_xticks(range(len(runs)), [r.strategy for r in runs], rotation=20, ha="right")
    ax.set_ylabel("latency, ms")
    ax.set_title(f"{workload}: latency")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))


def _share_bars(ax: Any, runs: Sequence[Result], workload: str) -> None:
    bottom = [0.0] * len(runs)
    for name in LATENCY:
        shares = [r.share.get(name, 0.0) * 100 for r in runs]
        ax.bar(range(len(runs)), shares, bottom=bottom, label=name)
        bottom = [b + s for b, s in zip(bottom, shares, strict=True)]
    ax.set_xticks(range(len(runs)), [r.strategy for r in runs], rotation=20, ha="right")
    ax.set_ylabel("% of served requests")
    ax.set_title(f"{workload}: traffic share")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))


# --------------------------------------------------------------------------- main


def choices(spec: str) -> list[Choice]:
    """``--strategies``: registered names, or ``module:factory`` for a strategy of your own."""
    found = []
    for name in (s.strip() for s in spec.split(",") if s.strip()):
        if ":" in name:
            module, _, attr = name.partition(":")
            found.append(Choice(name, getattr(importlib.import_module(module), attr)))
        else:
            found.append(Choice(name))
    return found


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="300 requests per run (smoke)")
    parser.add_argument("--requests", type=int, help="requests per strategy and workload")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds per strategy and workload; figures are medians (default 3)")
    parser.add_argument("--strategies", default=",".join(ALL_STRATEGIES),
                        help="comma-separated names (default: all six)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--png", metavar="PATH", help="also draw a chart (needs matplotlib)")
    parser.add_argument("--sweep", action="store_true",
                        help="run benchmarks/sweep.py's seeded scenarios on the simulated clock")
    parser.add_argument("--sweep-seed", type=int, default=1, help="the sweep's seed (default 1)")
    parser.add_argument("--scenarios", type=int, default=40,
                        help="drawn scenarios besides the two named ones (default 40)")
    parser.add_argument("--range", metavar="NAME=VALUE", action="append", default=[],
                        help="a sweep range, e.g. deployments=[2,4] (see sweep.Ranges)")
    parser.add_argument("--set", metavar="NAME=VALUE", action="append", default=[],
                        help="a Router setting for every run, e.g. allowed_fails=100 "
                             "(VALUE is JSON, else a string; repeatable)")
    return parser.parse_args(argv)


def _settings(pairs: Sequence[str]) -> dict[str, Any]:
    """``--set`` pairs as Router keyword settings."""
    found: dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or not name:
            raise SystemExit(f"--set {pair!r}: expected NAME=VALUE")
        try:
            found[name] = json.loads(raw)
        except ValueError:
            found[name] = raw
    return found


def run_sweep_cli(args: argparse.Namespace) -> None:
    """``--sweep``: every strategy on the seeded scenarios (simulated clock)."""
    pairs = _settings(args.range)
    ranges = sweep.Ranges(**{k: tuple(v) if isinstance(v, list) else v for k, v in pairs.items()})
    rounds = 1 if args.quick else max(1, args.rounds)
    cases = sweep.scenarios(args.sweep_seed, args.scenarios, ranges)
    names = [c.name for c in choices(args.strategies) if ":" not in c.name]
    results = sweep.run_sweep(cases, names, rounds, progress=lambda line: print(line))
    print(f"\n## Sweep: seed {args.sweep_seed}, {len(cases)} scenarios, median of {rounds} "
          f"round(s), discrete-event model\n")
    print(sweep.report(results))
    bound = None
    if "least-busy" in names:
        bound = sweep_bound.feasibility(results, cases)
        print(sweep_bound.report(bound))
    write_json(args.json, {
        "benchmark": "routing_quality_sweep", "seed": args.sweep_seed, "rounds": rounds,
        "ranges": asdict(ranges), "scenarios": [c.describe() for c in cases],
        "results": {k: {n: asdict(o) for n, o in row.items()} for k, row in results.items()},
        "summary": sweep.summarise(results), "targets": sweep.targets(results),
        "bound": None if bound is None else asdict(bound),
    })


def main(argv: Sequence[str] | None = None) -> list[Result]:
    """Run every strategy on both workloads, print the tables and the targets."""
    args = _parse(argv)
    if args.sweep:
        run_sweep_cli(args)
        return []
    plan = dataclasses.replace(QUICK if args.quick else DEFAULT, extra=_settings(args.set))
    if args.requests:
        plan = dataclasses.replace(plan, requests=args.requests)
    rounds = 1 if args.quick else max(1, args.rounds)
    results = asyncio.run(run_all(choices(args.strategies), plan, rounds))
    found = targets(results)
    print_report(results, found, plan, rounds)
    if args.png:
        drawn = draw_chart(results, args.png)
        print(f"\nwrote {args.png}" if drawn else
              "\nchart skipped: matplotlib is not installed (pip install -e '.[charts]')")
    write_json(args.json, {
        "benchmark": "routing_quality", "plan": asdict(plan), "rounds": rounds,
        "results": [{**asdict(r), "error_rate": r.error_rate, "rps": r.rps} for r in results],
        "targets": found,
    })
    return results


if __name__ == "__main__":
    main()
