"""What the router saw: callbacks, cost, Prometheus metrics and live state.

Starts three fake Responses API upstreams on 127.0.0.1 (real HTTP and SSE,
see router/testing/upstream.py): "azure-east" (20 ms), "azure-west" (40 ms,
failing 15 % of requests with a 500) and "openai-north" (30 ms, no prices
configured, so its cost is unknown rather than 0). A Router with
``num_retries=2`` (and a short ``cooldown_time`` of 0.2 s, so that the failing
deployment is tried again within the run) sends 300 requests at them, one in
five streamed, from five end users, and

1. a callback (a plain class with ``on_success`` / ``on_failure``) builds a
   per-deployment table: requests served, failed attempts, p50 latency,
   tokens and cost (from ``model_info`` prices);
2. ``router.inspect()`` shows each deployment's live state;
3. the Prometheus text exposition of the same run is printed (needs the
   ``metrics`` extra: ``pip install 'responses-router[metrics]'``).

Run: python examples/observability.py
"""

from __future__ import annotations

import asyncio
import statistics
from collections import defaultdict
from typing import Any

from router import FailureEvent, SuccessEvent
from router.router import Router
from router.testing import Upstream

PRICES = {  # per token, USD: $2.50 / $10 per million
    "input_cost_per_token": 2.5e-6,
    "output_cost_per_token": 1e-5,
}
REQUESTS = 300
CONCURRENCY = 16


class PerDeployment:
    """A callback: per-deployment figures, from each request's end event."""

    def __init__(self) -> None:
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, int] = defaultdict(int)
        self.tokens: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        self.cost: dict[str, float] = {}
        self.failed_requests = 0
        self.users: set[str] = set()

    def on_success(self, event: SuccessEvent) -> None:
        self.latencies[event.deployment_id].append(event.latency)
        self._count_attempts(event.trail.attempts)
        if event.usage is not None:
            self.tokens[event.deployment_id][0] += event.usage.input_tokens
            self.tokens[event.deployment_id][1] += event.usage.output_tokens
        if event.cost is not None:
            self.cost[event.deployment_id] = self.cost.get(event.deployment_id, 0.0) + event.cost
        if event.end_user.user:
            self.users.add(event.end_user.user)

    def on_failure(self, event: FailureEvent) -> None:
        self.failed_requests += 1
        self._count_attempts(event.trail.attempts)

    def _count_attempts(self, attempts: list[Any]) -> None:
        for attempt in attempts:
            if attempt.error is not None:
                self.errors[attempt.deployment_id] += 1

    def rows(self, ids: list[str]) -> list[tuple[object, ...]]:
        rows: list[tuple[object, ...]] = []
        for d in ids:
            latencies = self.latencies.get(d, [])
            p50 = f"{statistics.median(latencies) * 1000:.1f} ms" if latencies else "-"
            cost = self.cost.get(d)
            inp, out = self.tokens[d]
            rows.append((d, len(latencies), self.errors.get(d, 0), p50, inp, out,
                         "unknown (no prices)" if cost is None else f"${cost:.6f}"))
        return rows


def model_list(east: Upstream, west: Upstream, north: Upstream) -> list[dict[str, Any]]:
    return [
        {"model_name": "gpt-4o", "model_info": {"id": "azure-east", **PRICES},
         "litellm_params": {"model": "azure/gpt-4o", "api_base": east.url, "api_key": "east-key"}},
        {"model_name": "gpt-4o", "model_info": {"id": "azure-west", **PRICES},
         "litellm_params": {"model": "azure/gpt-4o", "api_base": west.url, "api_key": "west-key"}},
        {"model_name": "gpt-4o", "model_info": {"id": "openai-north"},
         "litellm_params": {"model": "openai/gpt-4o", "api_base": f"{north.url}/v1",
                            "api_key": "north-key"}},
    ]


def table(title: str, header: tuple[str, ...], rows: list[tuple[object, ...]]) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    line = "+".join("-" * (w + 2) for w in widths)
    print(f"\n{title}\n+{line}+")
    print("| " + " | ".join(str(h).ljust(w) for h, w in zip(header, widths, strict=True)) + " |")
    print(f"+{line}+")
    for row in rows:
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
    print(f"+{line}+")


def make_metrics() -> Any:
    """Prometheus metrics on a private registry, or ``None`` without prometheus-client."""
    try:
        from router import PrometheusMetrics

        return PrometheusMetrics(latency_buckets=(0.025, 0.05, 0.1, 0.25),
                                 ttft_buckets=(0.025, 0.05, 0.1))
    except ImportError:
        return None


async def one_request(router: Router, i: int, gate: asyncio.Semaphore) -> None:
    async with gate:
        try:
            params: dict[str, Any] = {"user": f"user-{i % 5 + 1}",
                                      "metadata": {"feature": "observability-demo"}}
            text = " ".join(["word"] * (5 + i % 40))  # inputs of different sizes
            if i % 5 == 0:
                async with await router.aresponses(model="gpt-4o", input=text, stream=True,
                                                   **params) as stream:
                    async for _ in stream:
                        pass
            else:
                await router.aresponses(model="gpt-4o", input=text, **params)
        except Exception:
            pass  # counted by the callback's on_failure


async def main() -> None:
    stats = PerDeployment()
    metrics = make_metrics()
    async with (
        Upstream("east", latency=0.02) as east,
        Upstream("west", latency=0.04) as west,
        Upstream("north", latency=0.03) as north,
    ):
        west.faults.fail(500, rate=0.15, seed=7)
        async with Router(model_list=model_list(east, west, north), num_retries=2,
                          cooldown_time=0.2, callbacks=[stats], metrics=metrics,
                          timeout=10) as router:
            gate = asyncio.Semaphore(CONCURRENCY)
            await asyncio.gather(*(one_request(router, i, gate) for i in range(REQUESTS)))
            await router.drain_callbacks()
            ids = [d.id for d in router.deployments()]
            table(f"{REQUESTS} requests ({REQUESTS // 5} streamed) from {len(stats.users)} users; "
                  f"{stats.failed_requests} failed after retries",
                  ("deployment", "served", "failed attempts", "p50 latency", "input tokens",
                   "output tokens", "cost"), stats.rows(ids))
            table("Live state (router.inspect())",
                  ("deployment", "healthy", "cooling until / why", "in flight",
                   "latency EWMA", "requests this minute"),
                  [(s.deployment_id, s.healthy,
                    "-" if s.healthy else f"+{s.cooldown_remaining:.1f}s / {s.cooldown_reason}",
                    s.in_flight, "-" if s.latency is None else f"{s.latency * 1000:.1f} ms",
                    s.requests) for s in router.inspect()])
            if metrics is None:
                print("\n(prometheus-client is not installed: no Prometheus exposition)")
                return
            from prometheus_client import generate_latest

            print("\nPrometheus text exposition of the same run:\n")
            print(generate_latest(metrics.registry).decode())


if __name__ == "__main__":
    asyncio.run(main())
