"""Prompt-cache affinity: the cache-hit share it buys and what it costs in latency.

Upstream processes (``router.testing.UpstreamProcess``) keep a prompt cache per
``prompt_cache_key``: a hit answers in the base service time and reports its
input as cached tokens, a miss pays a prefill on top (``--miss``); a key stays
cached ``--ttl`` seconds after its last use on that deployment (real caches
keep a prefix minutes, at real request rates; the run is scaled down). Requests
draw their key from a seeded Zipf distribution over ``keys`` keys (a few hot
users, many rare ones) and run at a fixed concurrency. For each scenario and
strategy (``simple-shuffle``, ``least-busy``, ``peak-ewma``), with
``prompt_cache_affinity`` on and off, in alternating order: the cache-hit share
(from the upstreams' own counts), p50, p99 and requests/s. Scenarios sweep the
number of deployments, keys and the concurrency (``--scenarios``).

    .venv/bin/python benchmarks/cache_affinity.py [--quick] [--requests N] [--seed S]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import (
    environment,
    fmt,
    markdown_table,
    openai_deployment,
    percentile,
    running,
    write_json,
)
from router.router import Router
from router.testing import UpstreamProcess

STRATEGIES = ("simple-shuffle", "least-busy", "peak-ewma")
LATENCY = 0.01


@dataclass(frozen=True, slots=True)
class Scenario:
    deployments: int
    keys: int
    concurrency: int

    @property
    def name(self) -> str:
        return f"{self.deployments} deployments, {self.keys} keys, c={self.concurrency}"


SCENARIOS = (Scenario(2, 5, 8), Scenario(3, 20, 16), Scenario(4, 100, 32),
             Scenario(4, 1000, 16), Scenario(6, 50, 48))


def _keys(count: int, requests: int, seed: int) -> list[str]:
    """``requests`` keys drawn from a Zipf(1.1) law over ``count`` keys, seeded."""
    rng = random.Random(f"keys-{seed}")  # not the router's stream: draws must not correlate
    weights = [1 / (rank + 1) ** 1.1 for rank in range(count)]
    return [f"user-{i}" for i in rng.choices(range(count), weights=weights, k=requests)]


async def _run(router: Router, keys: Sequence[str], concurrency: int) -> tuple[list[float], float]:
    queue = list(reversed(keys))
    latencies: list[float] = []

    async def worker() -> None:
        while queue:
            key = queue.pop()
            t0 = time.perf_counter()
            await router.aresponses(model="g", input="hello", prompt_cache_key=key)
            latencies.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return sorted(latencies), time.perf_counter() - t0


def _counts(procs: Sequence[UpstreamProcess]) -> tuple[int, int]:
    stats = [p.stats() for p in procs]
    return sum(int(s["cache_hits"]) for s in stats), sum(int(s["cache_misses"]) for s in stats)


async def _scenario(
    scenario: Scenario, args: argparse.Namespace, seed: int
) -> list[dict[str, Any]]:
    procs = [UpstreamProcess(f"c{i}", latency=LATENCY, record_requests=False,
                             prompt_cache=(args.ttl, args.miss))
             for i in range(scenario.deployments)]
    out: list[dict[str, Any]] = []
    async with running(procs):
        deps = [openai_deployment(p.url, model_name="g", deployment_id=p.name) for p in procs]
        keys = _keys(scenario.keys, args.requests, seed)
        for strategy in STRATEGIES:
            runs = [(True, False), (False, True)][len(out) % 2]
            for affinity in runs:
                for p in procs:  # each run starts with cold caches
                    p.reset()
                async with Router(deps, routing_strategy=strategy,
                                  prompt_cache_affinity=affinity,
                                  rng=random.Random(f"router-{seed}")) as router:
                    latencies, wall = await _run(router, keys, scenario.concurrency)
                hits, misses = _counts(procs)
                out.append({"scenario": scenario.name, "strategy": strategy,
                            "affinity": affinity, "hit_share": hits / max(1, hits + misses),
                            "p50_ms": percentile(latencies, 0.5) * 1e3,
                            "p99_ms": percentile(latencies, 0.99) * 1e3,
                            "rps": len(latencies) / wall})
    return out


def _table(rows: list[dict[str, Any]]) -> str:
    by = {(r["scenario"], r["strategy"], r["affinity"]): r for r in rows}
    lines = []
    for (scenario, strategy, affinity), r in by.items():
        if not affinity:
            continue
        off = by[(scenario, strategy, False)]
        lines.append([scenario, strategy, f"{off['hit_share']:.0%} -> {r['hit_share']:.0%}",
                      f"{fmt(off['p50_ms'], 1)} -> {fmt(r['p50_ms'], 1)}",
                      f"{fmt(off['p99_ms'], 1)} -> {fmt(r['p99_ms'], 1)}",
                      f"{r['p99_ms'] / off['p99_ms']:.2f}x"])
    return markdown_table(["scenario", "strategy", "cache hits off -> on", "p50 ms off -> on",
                           "p99 ms off -> on", "p99 on / off"], lines)


def _summary(rows: list[dict[str, Any]]) -> str:
    ons = [r for r in rows if r["affinity"]]
    offs = {(r["scenario"], r["strategy"]): r for r in rows if not r["affinity"]}
    gain = [r["hit_share"] - offs[(r["scenario"], r["strategy"])]["hit_share"] for r in ons]
    p99 = [r["p99_ms"] / offs[(r["scenario"], r["strategy"])]["p99_ms"] for r in ons]
    return (f"cache-hit share gained: median {statistics.median(gain):+.0%} "
            f"(min {min(gain):+.0%}, max {max(gain):+.0%}); p99 on/off: median "
            f"{statistics.median(p99):.2f}x (min {min(p99):.2f}x, max {max(p99):.2f}x) over "
            f"{len(ons)} scenario x strategy pairs")


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--miss", type=float, default=0.03, help="prefill seconds of a miss")
    parser.add_argument("--ttl", type=float, default=1.0,
                        help="seconds a key stays cached on a deployment after its last use")
    parser.add_argument("--scenarios", type=int, default=len(SCENARIOS))
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    if args.quick:
        args.requests, args.scenarios = 120, 2
    print("## Prompt-cache affinity: cache hits and latency, affinity off -> on\n")
    env = environment()
    print(f"Python {env['python']}, {env['cpus']} CPUs, load average {env['loadavg_1m']}; "
          f"{args.requests} requests per run, Zipf(1.1) keys, seed "
          f"{args.seed}; {LATENCY * 1e3:.0f} ms per answer, +{args.miss * 1e3:.0f} ms on a "
          f"cache miss; a key stays cached {args.ttl:g} s after its last use\n")
    rows: list[dict[str, Any]] = []
    for i, scenario in enumerate(SCENARIOS[:args.scenarios]):
        rows += await _scenario(scenario, args, args.seed + i)
    print(_table(rows))
    print("\n" + _summary(rows))
    write_json(args.json, {"rows": rows})


if __name__ == "__main__":
    asyncio.run(main())
