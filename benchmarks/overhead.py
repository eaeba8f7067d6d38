"""What does the router add per request? The Router against bare clients.

The same Responses API create, plain and ``stream=True``, against one fake
upstream in its own process, at concurrency 1 and 32, through:

  (i)   the router's default sender (``providers.aiohttp_sender.AiohttpSender``)
        used directly, as the router uses it: the physical limit of this
        design (the router's own transport, nothing else)
  (ii)  ``Router`` with one deployment, default settings
  (iii) a bare ``aiohttp.ClientSession``
  (iv)  ``Router`` with 3 deployments (same upstream, distinct ids) and
        ``optional_pre_call_checks=["responses_api_deployment_check"]``
  (v)   an ``httpx.AsyncClient`` over ``httpx_aiohttp``'s transport
        (``providers.http.default_client()``): what plain httpx code costs
  (vi)  (ii) with two no-op callbacks, one sync and one async, on every hook
  (vii) (ii) with Prometheus metrics on a private registry

Plain calls read and JSON-decode the whole answer; bare streams read the SSE
lines to the end, router streams are iterated to the last event (the router
also decodes each event's JSON). Reported per row: requests/s, p50/p99,
client CPU µs per request, and the router's added p50 and CPU over (i).

Targets: at c=1 the router adds <= 150 µs p50 per plain request over (i);
at c=32 the router reaches >= 50 % of bare aiohttp's requests/s (both
judged round by round, the two measured side by side in each round, and
the median of the rounds taken: the table's figures are each a median on
its own, so a row may mix rounds); metrics on
add <= 20 µs of CPU per plain request over (ii), measured in process against
a mock deployment (no network: the figure is the router's own work, free of
the socket noise that the c=1 rows of (vi)/(vii) against (ii) also show).

    .venv/bin/python benchmarks/overhead.py [--quick] [--json PATH] [--profile [plain|stream]]
        [--only vi,vii]

``--only`` runs the listed variants besides the references (i), (ii), (iii).

``--profile [plain|stream]`` adds a cProfile of the router's c=1 path, grouped by
package, with the top functions inside router/, providers/ and checks/.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import json
import operator
import pstats
import statistics
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp

from router.observe import CallbackLimits
from router.router import Router

if not __package__:  # run as a script: make the ``benchmarks`` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (
    HEADERS,
    INPUT,
    MODEL,
    Call,
    Measurement,
    Sizes,
    Variant,
    compare,
    create_body,
    fmt,
    markdown_table,
    openai_deployment,
    paired,
    parse_args,
    print_header,
    run_in_loop,
    upstreams,
    verdict,
    write_json,
)

DEFAULT = Sizes(serial=500, parallel=1000, warmup=100, rounds=5)
QUICK = Sizes(serial=100, parallel=200, warmup=20, rounds=1)
CONCURRENCIES = (1, 32)
SSE_HEADERS = {**HEADERS, "accept": "text/event-stream"}
BARE_TRANSPORT = "(i) the router's sender (aiohttp), bare"
BARE_HTTPX = "(v) bare httpx.AsyncClient over httpx-aiohttp"
ROUTER = "(ii) Router, 1 deployment"
BARE_AIOHTTP = "(iii) bare aiohttp"
ROUTER_CHECK = "(iv) Router, 3 deployments + check"
ROUTER_CALLBACKS = "(vi) Router, 1 deployment + 2 callbacks"
ROUTER_METRICS = "(vii) Router, 1 deployment + metrics"
MAX_ADDED_P50_US = 150.0
MIN_RPS_SHARE = 0.5
MAX_METRICS_CPU_US = 20.0
REFERENCES = ("i", "ii", "iii")
MICRO_REQUESTS = 6000


# --------------------------------------------------------------------------- variants


def _check(status: int, body: bytes) -> None:
    if status != 200:
        raise RuntimeError(f"upstream answered {status}: {body[:200]!r}")


def bare_transport(url: str, stream: bool) -> Variant:
    """(i): the router's default sender (``AiohttpSender``), used directly as the router does."""
    body = create_body(stream=stream)

    @contextlib.asynccontextmanager
    async def open_() -> AsyncIterator[Call]:
        from providers.aiohttp_sender import AiohttpSender  # after router: import order matters

        sender = AiohttpSender()

        async def plain() -> None:
            answer = await sender.send("POST", url, content=body, headers=HEADERS)
            try:
                await answer.aread()
            finally:
                await answer.aclose()
            _check(answer.status_code, answer.content)
            json.loads(answer.content)

        async def streamed() -> None:
            answer = await sender.send("POST", url, content=body, headers=SSE_HEADERS)
            try:
                _check(answer.status_code, b"")
                async for _ in answer.aiter_text():
                    pass
            finally:
                await answer.aclose()

        try:
            yield streamed if stream else plain
        finally:
            await sender.aclose()

    return Variant(BARE_TRANSPORT, open_)


def bare_httpx(url: str, stream: bool) -> Variant:
    """(v): an ``httpx.AsyncClient`` over ``httpx_aiohttp``'s transport."""
    body = create_body(stream=stream)

    @contextlib.asynccontextmanager
    async def open_() -> AsyncIterator[Call]:
        from providers.http import default_client  # after router: import order matters

        async with default_client() as client:
            async def plain() -> None:
                answer = await client.post(url, content=body, headers=HEADERS)
                _check(answer.status_code, answer.content)
                json.loads(answer.content)

            async def streamed() -> None:
                async with client.stream("POST", url, content=body, headers=SSE_HEADERS) as r:
                    _check(r.status_code, b"")
                    async for _ in r.aiter_lines():
                        pass

            yield streamed if stream else plain

    return Variant(BARE_HTTPX, open_)


def bare_aiohttp(url: str, stream: bool) -> Variant:
    """(iii): aiohttp alone."""
    body = create_body(stream=stream)

    @contextlib.asynccontextmanager
    async def open_() -> AsyncIterator[Call]:
        async with aiohttp.ClientSession() as session:
            async def plain() -> None:
                async with session.post(url, data=body, headers=HEADERS) as answer:
                    data = await answer.read()
                    _check(answer.status, data)
                    json.loads(data)

            async def streamed() -> None:
                async with session.post(url, data=body, headers=SSE_HEADERS) as answer:
                    _check(answer.status, b"")
                    async for _ in answer.content:
                        pass

            yield streamed if stream else plain

    return Variant(BARE_AIOHTTP, open_)


def router_call(router: Router, stream: bool) -> Call:
    """One create through ``router``; a stream is consumed to its last event."""
    async def plain() -> None:
        await router.aresponses(model=MODEL, input=INPUT)

    async def streamed() -> None:
        events = await router.aresponses(model=MODEL, input=INPUT, stream=True)
        async for _ in events:
            pass

    return streamed if stream else plain


def router_variant(name: str, make: Callable[[], Router], stream: bool) -> Variant:
    """(ii) / (iv): a Router built by ``make()``."""
    @contextlib.asynccontextmanager
    async def open_() -> AsyncIterator[Call]:
        async with make() as router:
            yield router_call(router, stream)

    return Variant(name, open_)


def plain_router(upstream_url: str) -> Router:
    return Router(model_list=[openai_deployment(upstream_url)])


def checked_router(upstream_url: str) -> Router:
    deployments = [openai_deployment(upstream_url, deployment_id=f"d{i}") for i in range(3)]
    return Router(
        model_list=deployments, optional_pre_call_checks=["responses_api_deployment_check"]
    )


class SyncNoOp:
    """A sync callback on every hook that does nothing: the cost of being called."""

    def on_success(self, event: object) -> None: ...
    def on_failure(self, event: object) -> None: ...
    def on_retry(self, event: object) -> None: ...
    def on_fallback(self, event: object) -> None: ...
    def on_cooldown(self, event: object) -> None: ...


class AsyncNoOp:
    """The same, async: one background task per event."""

    async def on_success(self, event: object) -> None: ...
    async def on_failure(self, event: object) -> None: ...
    async def on_retry(self, event: object) -> None: ...
    async def on_fallback(self, event: object) -> None: ...
    async def on_cooldown(self, event: object) -> None: ...


def observed_router(model_list: list[dict[str, Any]], *, callbacks: bool = False,
                    metrics: bool = False) -> Router:
    """(vi) / (vii): a Router with no-op callbacks or with Prometheus metrics."""
    extra: dict[str, Any] = {}
    if callbacks:
        extra["callbacks"] = [SyncNoOp(), AsyncNoOp()]
        extra["callback_limits"] = CallbackLimits(max_pending=10_000)
    if metrics:
        from router.metrics import PrometheusMetrics  # the optional extra

        extra["metrics"] = PrometheusMetrics()
    return Router(model_list=model_list, **extra)


def variants(upstream_url: str, stream: bool, only: frozenset[str] | None = None) -> list[Variant]:
    url = f"{upstream_url}/v1/responses"
    one = [openai_deployment(upstream_url)]
    numbered = [
        ("i", bare_transport(url, stream)),
        ("ii", router_variant(ROUTER, lambda: plain_router(upstream_url), stream)),
        ("iii", bare_aiohttp(url, stream)),
        ("iv", router_variant(ROUTER_CHECK, lambda: checked_router(upstream_url), stream)),
        ("v", bare_httpx(url, stream)),
        ("vi", router_variant(ROUTER_CALLBACKS,
                              lambda: observed_router(one, callbacks=True), stream)),
        ("vii", router_variant(ROUTER_METRICS, lambda: observed_router(one, metrics=True), stream)),
    ]
    return [v for n, v in numbered if only is None or n in only or n in REFERENCES]


# --------------------------------------------------------------------------- report


@dataclass(frozen=True, slots=True)
class Row:
    mode: str  # "plain" or "stream"
    m: Measurement


def _find(rows: list[Row], mode: str, name: str, concurrency: int) -> Measurement:
    for row in rows:
        if (row.mode, row.m.name, row.m.concurrency) == (mode, name, concurrency):
            return row.m
    raise KeyError((mode, name, concurrency))


def table(rows: list[Row]) -> str:
    cells = []
    for row in rows:
        m = row.m
        base = _find(rows, row.mode, BARE_TRANSPORT, m.concurrency)
        aio = _find(rows, row.mode, BARE_AIOHTTP, m.concurrency)
        is_base = m.name == BARE_TRANSPORT
        cells.append([
            row.mode, m.name, str(m.concurrency), fmt(m.rps), fmt(m.p50_us), fmt(m.p99_us),
            fmt(m.cpu_us), fmt(m.upstream_cpu_us),
            "-" if is_base else f"{m.p50_us - base.p50_us:+,.0f}",
            "-" if is_base else f"{m.cpu_us - base.cpu_us:+,.0f}",
            f"{m.rps / aio.rps:.0%}",
        ])
    headers = ["mode", "client", "conc.", "req/s", "p50 µs", "p99 µs", "CPU µs/req",
               "upstream CPU µs/req", "Δp50 vs (i) µs", "ΔCPU vs (i) µs", "req/s vs (iii)"]
    return markdown_table(headers, cells)


def targets(rows: list[Row]) -> list[dict[str, Any]]:
    """The PASS/FAIL checks, one dict per target and mode."""
    found: list[dict[str, Any]] = []
    for mode in ("plain", "stream"):
        added, each_added = paired(_find(rows, mode, ROUTER, 1),
                                   _find(rows, mode, BARE_TRANSPORT, 1), "p50_us", operator.sub)
        share, each_share = paired(_find(rows, mode, ROUTER, 32),
                                   _find(rows, mode, BARE_AIOHTTP, 32), "rps", operator.truediv)
        found.append({
            "target": f"c=1 router adds <= {MAX_ADDED_P50_US:.0f} µs p50 over (i)",
            "mode": mode, "ok": added <= MAX_ADDED_P50_US, "binding": mode == "plain",
            "value": f"{added:+.0f} µs (median of rounds: "
                     f"{', '.join(f'{v:+.0f}' for v in each_added)})",
        })
        found.append({
            "target": f"c=32 router req/s >= {MIN_RPS_SHARE:.0%} of bare aiohttp",
            "mode": mode, "ok": share >= MIN_RPS_SHARE, "binding": True,
            "value": f"{share:.0%} (median of rounds: "
                     f"{', '.join(f'{v:.0%}' for v in each_share)})",
        })
    return found


def _maybe(rows: list[Row], mode: str, name: str, concurrency: int) -> Measurement | None:
    try:
        return _find(rows, mode, name, concurrency)
    except KeyError:
        return None


def observation_table(rows: list[Row]) -> str | None:
    """(vi) and (vii) against (ii): what callbacks and metrics add, end to end."""
    cells = []
    for row in rows:
        m = row.m
        if m.name not in (ROUTER_CALLBACKS, ROUTER_METRICS):
            continue
        base = _find(rows, row.mode, ROUTER, m.concurrency)
        cells.append([row.mode, m.name, str(m.concurrency), f"{m.p50_us - base.p50_us:+,.0f}",
                      f"{m.cpu_us - base.cpu_us:+,.1f}", f"{m.rps / base.rps:.0%}"])
    if not cells:
        return None
    return markdown_table(["mode", "client", "conc.", "Δp50 vs (ii) µs", "ΔCPU vs (ii) µs",
                           "req/s vs (ii)"], cells)


def observation_targets(rows: list[Row], micro: list[tuple[str, float]]) -> list[dict[str, Any]]:
    """Metrics' added CPU: binding in process (micro), informational end to end."""
    found: list[dict[str, Any]] = []
    figures = dict(micro)
    if MICRO_METRICS in figures:
        added = figures[MICRO_METRICS] - figures[MICRO_PLAIN]
        found.append({
            "target": f"metrics add <= {MAX_METRICS_CPU_US:.0f} µs CPU per request over (ii), "
                      "in process (mock deployment)",
            "mode": "plain", "value": f"{added:+.1f} µs", "ok": added <= MAX_METRICS_CPU_US,
            "binding": True,
        })
    metrics, base = _maybe(rows, "plain", ROUTER_METRICS, 1), _maybe(rows, "plain", ROUTER, 1)
    if metrics is not None and base is not None:
        added = metrics.cpu_us - base.cpu_us
        found.append({
            "target": f"metrics add <= {MAX_METRICS_CPU_US:.0f} µs CPU per request over (ii), "
                      "c=1 over the network",
            "mode": "plain", "value": f"{added:+.1f} µs", "ok": added <= MAX_METRICS_CPU_US,
            "binding": False,
        })
    return found


def print_targets(found: list[dict[str, Any]]) -> None:
    print("\n### Targets\n")
    for t in found:
        note = "" if t["binding"] else (
            " (informational: the target is for plain requests)" if t["mode"] != "plain"
            else " (informational: socket noise of this size is common on a shared machine)")
        print(f"- {verdict(t['ok'])}: {t['target']} [{t['mode']}]: {t['value']}{note}")


# --------------------------------------------------------------------------- profile


_GROUPS = ("router/", "providers/", "checks/", "cachetools", "httpx_aiohttp", "httpx", "httpcore",
           "aiohttp", "asyncio", "json", "yarl", "multidict")


def _group(filename: str) -> str:
    for group in _GROUPS:
        if f"/{group}" in filename or filename.startswith(group):
            return group.rstrip("/")
    return "builtins" if filename == "~" else "other"


def _self_time_by_group(stats: pstats.Stats) -> dict[str, float]:
    raw: dict[tuple[str, int, str], tuple[Any, ...]] = stats.stats  # type: ignore[attr-defined]
    by_group: dict[str, float] = {}
    for (filename, _, _), (_, _, self_time, _, _) in raw.items():
        group = _group(filename)
        by_group[group] = by_group.get(group, 0.0) + self_time
    return by_group


def print_profile(
    bare: pstats.Stats, routed: pstats.Stats, requests: int, mode: str = "plain"
) -> None:
    """Self time per package for (i) and (ii), then the router's own top functions."""
    base, mine = _self_time_by_group(bare), _self_time_by_group(routed)
    groups = sorted(set(base) | set(mine), key=lambda g: -mine.get(g, 0.0))
    per = 1e6 / requests
    rows = [[g, fmt(base.get(g, 0.0) * per, 1), fmt(mine.get(g, 0.0) * per, 1),
             f"{(mine.get(g, 0.0) - base.get(g, 0.0)) * per:+,.1f}"] for g in groups]
    rows.append(["total", fmt(sum(base.values()) * per, 1), fmt(sum(mine.values()) * per, 1),
                 f"{(sum(mine.values()) - sum(base.values())) * per:+,.1f}"])
    print(f"\n### cProfile, c=1, {mode}, {requests} requests: CPU self time per request "
          "by package (inflated by the profiler)\n")
    print(markdown_table(["package", "(i) bare µs", "(ii) Router µs", "Δ µs"], rows))
    print("\nRouter: top project functions by cumulative time:\n")
    routed.sort_stats("cumulative").print_stats(r"/(router|providers|checks)/", 25)
    print("Router: top project functions by self time:\n")
    routed.sort_stats("tottime").print_stats(r"/(router|providers|checks)/", 20)


async def profile_call(variant: Variant, requests: int) -> pstats.Stats:
    """cProfile (CPU clock) around ``requests`` sequential calls, after a warm-up."""
    profiler = cProfile.Profile(time.process_time)
    async with variant.open() as call:
        for _ in range(100):
            await call()
        profiler.enable()
        for _ in range(requests):
            await call()
        profiler.disable()
    return pstats.Stats(profiler)


async def profile_both(
    upstream_url: str, requests: int, stream: bool
) -> tuple[pstats.Stats, pstats.Stats]:
    """Profiles of (i) and (ii) on the c=1 path (plain or streamed)."""
    bare = await profile_call(bare_transport(f"{upstream_url}/v1/responses", stream), requests)
    routed = await profile_call(
        router_variant(ROUTER, lambda: plain_router(upstream_url), stream), requests
    )
    return bare, routed


# --------------------------------------------------------------------------- in process

MICRO_PLAIN = "(ii) Router, mock deployment"
MICRO_CALLBACKS = "(vi) + 2 callbacks"
MICRO_METRICS = "(vii) + metrics"
MICRO_BATCH = 50


async def _batch(router: Router, requests: int) -> float:
    """CPU µs per plain request over ``requests`` calls; each call yields to the loop
    once after it, as a real request does on its socket, so callbacks run in step."""
    cpu0 = time.process_time()
    for _ in range(requests):
        await router.aresponses(model=MODEL, input=INPUT)
        await asyncio.sleep(0)
    return (time.process_time() - cpu0) / requests * 1e6


async def micro(requests: int, only: frozenset[str] | None) -> list[tuple[str, float]]:
    """(ii), (vi), (vii) against a mock deployment: the router's own CPU, no socket.

    The routers run side by side in short alternating batches (``MICRO_BATCH``
    requests each) and each figure is the median over batches, so a machine
    that speeds up or slows down during the run moves every variant alike.
    """
    mock = [{"model_name": MODEL, "litellm_params": {"model": "mock/x"},
             "model_info": {"id": "mock"}}]
    makers: list[tuple[str, Callable[[], Router]]] = [(MICRO_PLAIN, lambda: observed_router(mock))]
    if only is None or "vi" in only:
        makers.append((MICRO_CALLBACKS, lambda: observed_router(mock, callbacks=True)))
    if only is None or "vii" in only:
        makers.append((MICRO_METRICS, lambda: observed_router(mock, metrics=True)))
    runs: dict[str, list[float]] = {name: [] for name, _ in makers}
    async with contextlib.AsyncExitStack() as stack:
        routers = [(name, await stack.enter_async_context(make())) for name, make in makers]
        for _, router in routers:
            await _batch(router, 200)  # warm-up
        gc.collect()
        for batch in range(max(1, requests // MICRO_BATCH)):
            shift = batch % len(routers)
            for name, router in [*routers[shift:], *routers[:shift]]:
                runs[name].append(await _batch(router, MICRO_BATCH))
    return [(name, statistics.median(runs[name])) for name, _ in makers]


def micro_table(figures: list[tuple[str, float]]) -> str:
    base = figures[0][1]
    return markdown_table(["client", "CPU µs/req", "Δ vs (ii) µs"], [
        [name, fmt(cpu, 1), "-" if i == 0 else f"{cpu - base:+,.1f}"]
        for i, (name, cpu) in enumerate(figures)])


# --------------------------------------------------------------------------- main


def _extra_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", nargs="?", const="plain", choices=("plain", "stream"),
                        help="also profile the router's c=1 path, plain (default) or stream")
    parser.add_argument("--only", metavar="LIST",
                        help="variants to run besides (i), (ii), (iii), e.g. 'vi,vii'")


def main() -> None:
    args, sizes = parse_args(__doc__, DEFAULT, QUICK, extra=_extra_args)
    only = frozenset(args.only.split(",")) if args.only else None
    rows: list[Row] = []
    micro_figures: list[tuple[str, float]] = []
    profile: list[tuple[pstats.Stats, pstats.Stats]] = []
    with upstreams(1) as (upstream,):
        pids = [upstream.pid] if upstream.pid else []

        async def run() -> None:
            for mode in ("plain", "stream"):
                for concurrency in CONCURRENCIES:
                    found = await compare(
                        variants(upstream.url, mode == "stream", only), concurrency=concurrency,
                        requests=sizes.requests(concurrency), warmup=sizes.warmup,
                        rounds=sizes.rounds, upstream_pids=pids,
                    )
                    rows.extend(Row(mode, m) for m in found)
            if only is None or only & {"vi", "vii"}:
                requests = max(500, int(MICRO_REQUESTS * args.scale))
                micro_figures.extend(await micro(requests, only))
            if args.profile:
                stream = args.profile == "stream"
                profile.append(await profile_both(upstream.url, sizes.serial, stream))

        run_in_loop(run)
    print_header("Router overhead against bare clients, one upstream process", sizes)
    print(table(rows))
    observed = observation_table(rows)
    if observed:
        print("\n### What callbacks and metrics add, end to end\n")
        print(observed)
    if micro_figures:
        print("\n### What callbacks and metrics add, in process (mock deployment, median of "
              f"alternating batches of {MICRO_BATCH} requests)\n")
        print(micro_table(micro_figures))
    found = targets(rows) + observation_targets(rows, micro_figures)
    print_targets(found)
    if profile:
        print_profile(*profile[0], sizes.serial, args.profile)
    write_json(args.json, {
        "benchmark": "overhead",
        "results": [{"mode": r.mode, **asdict(r.m)} for r in rows],
        "in_process": [{"name": n, "cpu_us": c} for n, c in micro_figures],
        "targets": found,
    })


if __name__ == "__main__":
    main()
