"""What does the router add per request? The Router against bare clients.

The same Responses API create, plain and ``stream=True``, against one fake
upstream in its own process, at concurrency 1 and 32, through:

  (i)   ``httpx.Request`` objects handed to ``providers.http.default_transport()``,
        as the router sends them: the physical limit of this design (the
        router's own transport, nothing else)
  (ii)  ``Router`` with one deployment, default settings
  (iii) a bare ``aiohttp.ClientSession``
  (iv)  ``Router`` with 3 deployments (same upstream, distinct ids) and
        ``optional_pre_call_checks=["responses_api_deployment_check"]``
  (v)   an ``httpx.AsyncClient`` over the same transport
        (``providers.http.default_client()``): what plain httpx code costs

Plain calls read and JSON-decode the whole answer; bare streams read the SSE
lines to the end, router streams are iterated to the last event (the router
also decodes each event's JSON). Reported per row: requests/s, p50/p99,
client CPU µs per request, and the router's added p50 and CPU over (i).

Targets: at c=1 the router adds <= 150 µs p50 per plain request over (i);
at c=32 the router reaches >= 50 % of bare aiohttp's requests/s.

    .venv/bin/python benchmarks/overhead.py [--quick] [--json PATH] [--profile [plain|stream]]

``--profile [plain|stream]`` adds a cProfile of the router's c=1 path, grouped by
package, with the top functions inside router/, providers/ and checks/.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import json
import pstats
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp
import httpx

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
    parse_args,
    print_header,
    run_in_loop,
    upstreams,
    verdict,
    write_json,
)

DEFAULT = Sizes(serial=500, parallel=1000, warmup=100, rounds=3)
QUICK = Sizes(serial=100, parallel=200, warmup=20, rounds=1)
CONCURRENCIES = (1, 32)
SSE_HEADERS = {**HEADERS, "accept": "text/event-stream"}
BARE_TRANSPORT = "(i) bare httpx.Request -> aiohttp transport"
BARE_HTTPX = "(v) bare httpx.AsyncClient, same transport"
ROUTER = "(ii) Router, 1 deployment"
BARE_AIOHTTP = "(iii) bare aiohttp"
ROUTER_CHECK = "(iv) Router, 3 deployments + check"
MAX_ADDED_P50_US = 150.0
MIN_RPS_SHARE = 0.5


# --------------------------------------------------------------------------- variants


def _check(status: int, body: bytes) -> None:
    if status != 200:
        raise RuntimeError(f"upstream answered {status}: {body[:200]!r}")


def bare_transport(url: str, stream: bool) -> Variant:
    """(i): the router's transport, handed ``httpx.Request`` objects as the router does."""
    body = create_body(stream=stream)

    @contextlib.asynccontextmanager
    async def open_() -> AsyncIterator[Call]:
        from providers.http import default_transport  # after router: import order matters

        transport = default_transport()
        target = httpx.URL(url)

        async def send(headers: dict[str, str]) -> httpx.Response:
            request = httpx.Request("POST", target, content=body, headers=headers)
            return await transport.handle_async_request(request)

        async def plain() -> None:
            answer = await send(HEADERS)
            try:
                await answer.aread()
            finally:
                await answer.aclose()
            _check(answer.status_code, answer.content)
            json.loads(answer.content)

        async def streamed() -> None:
            answer = await send(SSE_HEADERS)
            try:
                _check(answer.status_code, b"")
                async for _ in answer.aiter_lines():
                    pass
            finally:
                await answer.aclose()

        try:
            yield streamed if stream else plain
        finally:
            await transport.aclose()

    return Variant(BARE_TRANSPORT, open_)


def bare_httpx(url: str, stream: bool) -> Variant:
    """(v): an ``httpx.AsyncClient`` over the same transport."""
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


def variants(upstream_url: str, stream: bool) -> list[Variant]:
    url = f"{upstream_url}/v1/responses"
    return [
        bare_transport(url, stream),
        router_variant(ROUTER, lambda: plain_router(upstream_url), stream),
        bare_aiohttp(url, stream),
        router_variant(ROUTER_CHECK, lambda: checked_router(upstream_url), stream),
        bare_httpx(url, stream),
    ]


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
        added = (_find(rows, mode, ROUTER, 1).p50_us - _find(rows, mode, BARE_TRANSPORT, 1).p50_us)
        share = _find(rows, mode, ROUTER, 32).rps / _find(rows, mode, BARE_AIOHTTP, 32).rps
        found.append({
            "target": f"c=1 router adds <= {MAX_ADDED_P50_US:.0f} µs p50 over (i)",
            "mode": mode, "value": f"{added:+.0f} µs", "ok": added <= MAX_ADDED_P50_US,
            "binding": mode == "plain",
        })
        found.append({
            "target": f"c=32 router req/s >= {MIN_RPS_SHARE:.0%} of bare aiohttp",
            "mode": mode, "value": f"{share:.0%}", "ok": share >= MIN_RPS_SHARE,
            "binding": True,
        })
    return found


def print_targets(found: list[dict[str, Any]]) -> None:
    print("\n### Targets\n")
    for t in found:
        note = "" if t["binding"] else " (informational: the target is for plain requests)"
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


# --------------------------------------------------------------------------- main


def _extra_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", nargs="?", const="plain", choices=("plain", "stream"),
                        help="also profile the router's c=1 path, plain (default) or stream")


def main() -> None:
    args, sizes = parse_args(__doc__, DEFAULT, QUICK, extra=_extra_args)
    rows: list[Row] = []
    profile: list[tuple[pstats.Stats, pstats.Stats]] = []
    with upstreams(1) as (upstream,):
        pids = [upstream.pid] if upstream.pid else []

        async def run() -> None:
            for mode in ("plain", "stream"):
                for concurrency in CONCURRENCIES:
                    found = await compare(
                        variants(upstream.url, mode == "stream"), concurrency=concurrency,
                        requests=sizes.requests(concurrency), warmup=sizes.warmup,
                        rounds=sizes.rounds, upstream_pids=pids,
                    )
                    rows.extend(Row(mode, m) for m in found)
            if args.profile:
                stream = args.profile == "stream"
                profile.append(await profile_both(upstream.url, sizes.serial, stream))

        run_in_loop(run)
    print_header("Router overhead against bare clients, one upstream process", sizes)
    print(table(rows))
    found = targets(rows)
    print_targets(found)
    if profile:
        print_profile(*profile[0], sizes.serial, args.profile)
    write_json(args.json, {
        "benchmark": "overhead",
        "results": [{"mode": r.mode, **asdict(r.m)} for r in rows],
        "targets": found,
    })


if __name__ == "__main__":
    main()
