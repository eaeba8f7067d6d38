"""A bounded load test: does the router stay correct when upstreams misbehave?

2,000 Responses API creates at concurrency 100 through one ``Router`` over
three fake upstreams, each in its own process:

* ``healthy``: answers every request (10 ms service time);
* ``flaky``: answers 30 % of requests with a 500 (seeded, so runs repeat);
* ``dying``: healthy until half of the requests have started, then its
  process is terminated (``UpstreamProcess.stop()``): a real dead socket,
  so later connections are refused and kept-alive ones break.

Router settings: ``num_retries=3`` (three deployments: a request needs at most
two retries to reach the healthy one; one spare), ``timeout=30`` s, default
cooldowns (``allowed_fails=3``, ``cooldown_time=5``), ``simple-shuffle``.

Reported: success rate (target: 100 % while one upstream is healthy),
p50 / p99 latency, retry amplification counted two ways (upstream hits per
request: the upstreams' own counters, the dying one's read just before it is
stopped, so a lower bound; router attempts per request: every attempt in each
request's ``.routing.trail`` or error ``.trail``, connection attempts to the
dead socket included), the router process's peak memory (``ru_maxrss`` of
``resource.getrusage``, before and after the run; with ``--tracemalloc`` also
the Python heap peak during the run, which slows the run down), and the
router's in-flight count once every request has ended (must be 0).

    .venv/bin/python benchmarks/load.py [--quick] [--json PATH] [--tracemalloc]

``--quick``: 300 requests at concurrency 30. :func:`run_load` is what
``tests/benchmarks/test_load_quick.py`` runs in-process.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import resource
import sys
import time
import tracemalloc
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from router.errors import RouterError
from router.router import Router
from router.testing import UpstreamProcess
from router.types import AttemptTrail

if not __package__:  # run as a script: make the ``benchmarks`` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (
    INPUT,
    MODEL,
    environment,
    fmt,
    markdown_table,
    openai_deployment,
    percentile,
    running,
    verdict,
    write_json,
)

__all__ = [
    "DEFAULT", "DYING", "FLAKY", "HEALTHY", "QUICK", "LoadPlan", "LoadReport", "main", "run_load"]

HEALTHY, FLAKY, DYING = "healthy", "flaky", "dying"
MAX_HITS_PER_REQUEST = 2.0


@dataclass(frozen=True, slots=True)
class LoadPlan:
    """How much load, and how the upstreams and the router are set up."""

    requests: int
    concurrency: int
    latency: float = 0.010  # service time of every upstream, seconds
    fail_rate: float = 0.30  # share of the flaky upstream's answers that are 500s
    seed: int = 7  # the flaky upstream's random source
    num_retries: int = 3
    timeout: float = 30.0  # the whole call, seconds

    def router_settings(self) -> dict[str, Any]:
        return {"num_retries": self.num_retries, "timeout": self.timeout}


DEFAULT = LoadPlan(requests=2000, concurrency=100)
QUICK = LoadPlan(requests=300, concurrency=30)


@dataclass(frozen=True, slots=True)
class Outcome:
    """One request: how long it took, who served it (``None``: it failed), its trail."""

    latency: float
    deployment: str | None
    attempts: tuple[str, ...]  # deployment id of every attempt, in order
    error: str | None = None


@dataclass(frozen=True, slots=True)
class LoadReport:
    """The figures of one load run."""

    plan: LoadPlan
    seconds: float
    succeeded: int
    failed: int
    p50_ms: float
    p99_ms: float
    upstream_hits: dict[str, int]  # the dying one's read just before it was stopped
    attempts_by_deployment: dict[str, int]
    served_by_deployment: dict[str, int]
    errors: dict[str, int]  # error class -> requests that ended with it
    in_flight_at_end: int
    maxrss_start_kib: int
    maxrss_end_kib: int
    tracemalloc_peak_kib: int | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def requests(self) -> int:
        return self.succeeded + self.failed

    @property
    def success_rate(self) -> float:
        return self.succeeded / self.requests if self.requests else 0.0

    @property
    def hits_per_request(self) -> float:
        return sum(self.upstream_hits.values()) / max(1, self.requests)

    @property
    def attempts_per_request(self) -> float:
        return sum(self.attempts_by_deployment.values()) / max(1, self.requests)


# --------------------------------------------------------------------------- upstreams


def _fleet(plan: LoadPlan) -> dict[str, UpstreamProcess]:
    return {
        name: UpstreamProcess(name, latency=plan.latency, record_requests=False)
        for name in (HEALTHY, FLAKY, DYING)
    }


def _model_list(fleet: dict[str, UpstreamProcess]) -> list[dict[str, Any]]:
    return [openai_deployment(p.url, deployment_id=name) for name, p in fleet.items()]


async def _kill(proc: UpstreamProcess) -> int:
    """Stop ``proc`` for good; its hit count just before (a lower bound of its hits)."""
    stats = await asyncio.to_thread(proc.stats)
    await asyncio.to_thread(proc.stop)
    return int(stats["hits"])


# --------------------------------------------------------------------------- driving


def _attempts(trail: AttemptTrail | None) -> tuple[str, ...]:
    return tuple(a.deployment_id for a in trail.attempts) if trail is not None else ()


async def _one(router: Router) -> Outcome:
    t0 = time.perf_counter()
    try:
        response = await router.aresponses(model=MODEL, input=INPUT)
    except RouterError as exc:
        return Outcome(time.perf_counter() - t0, None, _attempts(exc.trail), type(exc).__name__)
    routing = response.routing
    return Outcome(time.perf_counter() - t0, routing.deployment_id, _attempts(routing.trail))


async def _drive(
    router: Router, plan: LoadPlan, dying: UpstreamProcess
) -> tuple[list[Outcome], int]:
    """All requests; the dying upstream is killed once half of them have started."""
    outcomes: list[Outcome] = []
    started = 0
    killer: asyncio.Task[int] | None = None

    async def worker() -> None:
        nonlocal started, killer
        while started < plan.requests:
            started += 1
            if started > plan.requests // 2 and killer is None:
                killer = asyncio.create_task(_kill(dying))
            outcomes.append(await _one(router))

    await asyncio.gather(*(worker() for _ in range(plan.concurrency)))
    dying_hits = await killer if killer is not None else 0
    return outcomes, dying_hits


def _maxrss_kib() -> int:
    """Peak resident set size of this process so far (KiB on Linux)."""
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def _percentile_ms(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of sorted seconds, in milliseconds."""
    return percentile(ordered, q) * 1e3


async def run_load(plan: LoadPlan = QUICK, *, trace_memory: bool = False) -> LoadReport:
    """Run the load test once and report its figures (see the module docstring)."""
    fleet = _fleet(plan)
    async with running(list(fleet.values())):
        await asyncio.to_thread(
            fleet[FLAKY].faults.fail, 500, rate=plan.fail_rate, seed=plan.seed
        )
        rss0 = _maxrss_kib()
        if trace_memory:
            tracemalloc.start()
        t0 = time.perf_counter()
        async with Router(model_list=_model_list(fleet), **plan.router_settings()) as router:
            outcomes, dying_hits = await _drive(router, plan, fleet[DYING])
            in_flight = router.services.load.total_in_flight()
        seconds = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1] // 1024 if trace_memory else None
        if trace_memory:
            tracemalloc.stop()
        hits = {n: int((await asyncio.to_thread(fleet[n].stats))["hits"]) for n in (HEALTHY, FLAKY)}
    return _report(plan, outcomes, seconds, {**hits, DYING: dying_hits}, in_flight,
                   (rss0, _maxrss_kib()), peak)


def _report(
    plan: LoadPlan, outcomes: Sequence[Outcome], seconds: float, hits: dict[str, int],
    in_flight: int, rss: tuple[int, int], peak: int | None,
) -> LoadReport:
    latencies = sorted(o.latency for o in outcomes)
    attempts = collections.Counter(d for o in outcomes for d in o.attempts)
    served = collections.Counter(o.deployment for o in outcomes if o.deployment is not None)
    errors = collections.Counter(o.error for o in outcomes if o.error is not None)
    failed = sum(1 for o in outcomes if o.deployment is None)
    return LoadReport(
        plan=plan, seconds=seconds, succeeded=len(outcomes) - failed, failed=failed,
        p50_ms=_percentile_ms(latencies, 0.50), p99_ms=_percentile_ms(latencies, 0.99),
        upstream_hits=hits, attempts_by_deployment=dict(attempts),
        served_by_deployment=dict(served), errors=dict(errors), in_flight_at_end=in_flight,
        maxrss_start_kib=rss[0], maxrss_end_kib=rss[1], tracemalloc_peak_kib=peak,
        settings=plan.router_settings(),
    )


# --------------------------------------------------------------------------- output


def targets(report: LoadReport) -> list[dict[str, Any]]:
    """The PASS/FAIL checks of one run."""
    return [
        {"target": "success rate 100 % while one upstream is healthy",
         "value": f"{report.success_rate:.2%}", "ok": report.failed == 0},
        {"target": "every request accounted for",
         "value": f"{report.requests} of {report.plan.requests}",
         "ok": report.requests == report.plan.requests},
        {"target": "router in-flight count back to 0",
         "value": str(report.in_flight_at_end), "ok": report.in_flight_at_end == 0},
        {"target": f"router attempts per request < {MAX_HITS_PER_REQUEST:g}",
         "value": f"{report.attempts_per_request:.3f}",
         "ok": report.attempts_per_request < MAX_HITS_PER_REQUEST},
    ]


def _per_deployment(report: LoadReport) -> str:
    rows = []
    for name in (HEALTHY, FLAKY, DYING):
        hits = report.upstream_hits.get(name, 0)
        label = f"{name} (hits: read before it stopped, a lower bound)" if name == DYING else name
        rows.append([
            label, fmt(hits),
            fmt(report.attempts_by_deployment.get(name, 0)),
            fmt(report.served_by_deployment.get(name, 0)),
        ])
    return markdown_table(["upstream", "upstream hits", "router attempts", "served"], rows)


def _summary(report: LoadReport) -> str:
    rss_delta = report.maxrss_end_kib - report.maxrss_start_kib
    rows = [
        ["requests / concurrency", f"{fmt(report.requests)} / {report.plan.concurrency}"],
        ["wall time", f"{report.seconds:.2f} s ({report.requests / report.seconds:,.0f} req/s)"],
        ["succeeded", f"{fmt(report.succeeded)} ({report.success_rate:.2%})"],
        ["failed", f"{fmt(report.failed)} {report.errors or ''}".strip()],
        ["p50 / p99 latency", f"{report.p50_ms:.1f} ms / {report.p99_ms:.1f} ms"],
        ["upstream hits per request", f">= {report.hits_per_request:.3f}"],
        ["router attempts per request", f"{report.attempts_per_request:.3f}"],
        ["peak RSS (ru_maxrss) start -> end",
         f"{fmt(report.maxrss_start_kib)} -> {fmt(report.maxrss_end_kib)} KiB "
         f"({rss_delta:+,} KiB)"],
        ["tracemalloc peak during the run", "not measured (--tracemalloc)"
         if report.tracemalloc_peak_kib is None else f"{fmt(report.tracemalloc_peak_kib)} KiB"],
        ["router in-flight at the end", str(report.in_flight_at_end)],
    ]
    return markdown_table(["figure", "value"], rows)


def print_report(report: LoadReport, found: list[dict[str, Any]]) -> None:
    env = environment()
    plan = report.plan
    print("## Load test: one healthy, one 30 % failing, one dying upstream\n")
    print(f"Python {env['python']}, {env['cpus']} CPUs; upstream service time "
          f"{plan.latency * 1e3:.0f} ms, flaky fails {plan.fail_rate:.0%} (seed {plan.seed}); "
          f"router: simple-shuffle, num_retries={plan.num_retries}, timeout={plan.timeout:g} s, "
          f"default cooldowns; 1-min load average: {env['loadavg_1m']}\n")
    print(_summary(report))
    print()
    print(_per_deployment(report))
    print("\n### Targets\n")
    for t in found:
        print(f"- {verdict(t['ok'])}: {t['target']}: {t['value']}")


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="300 requests at concurrency 30")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--tracemalloc", action="store_true",
                        help="also measure the Python heap peak (slows the run)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> LoadReport:
    """Run the load test from the command line; the report is also returned."""
    args = _parse(argv)
    plan = QUICK if args.quick else DEFAULT
    report = asyncio.run(run_load(plan, trace_memory=args.tracemalloc))
    found = targets(report)
    print_report(report, found)
    write_json(args.json, {
        "benchmark": "load", **asdict(report),
        "derived": {"success_rate": report.success_rate,
                    "hits_per_request": report.hits_per_request,
                    "attempts_per_request": report.attempts_per_request},
        "targets": found,
    })
    return report


if __name__ == "__main__":
    main()
