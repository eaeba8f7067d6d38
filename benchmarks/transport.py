"""Which HTTP transport should the router use? Bare clients against one fake upstream.

Sends the same plain (non-streaming) ``POST /v1/responses`` to one fake
upstream running in its own process, at concurrency 1 and 32, through:

  (a) httpx.AsyncClient()                              httpx's own pool (httpcore)
  (b) httpx.AsyncClient(transport=AiohttpTransport())  httpx API over aiohttp
  (c) providers.http.default_client()                  (b) with the pool limits raised
  (d) aiohttp.ClientSession()                          bare aiohttp
  (e) httpx.Request sent to AiohttpTransport directly  httpx types, no AsyncClient
  (f) providers.aiohttp_sender.AiohttpSender           the router's default sender

Each call reads and JSON-decodes the whole answer. Reported: requests/s,
p50/p99 latency, this process's CPU time per request, and the upstream's.
This is the evidence behind the router's default sender (f): aiohttp's
connection pool, handed the prepared URL, headers and body, with no httpx
request or response objects per request. (e) shows what httpx's
``AsyncClient`` layer (auth, redirects, cookies, event hooks, per-request
config merging) costs on top of the aiohttp transport, and (e) against (f)
what the httpx request and response objects cost.

    .venv/bin/python benchmarks/transport.py [--quick] [--json PATH]
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

if not __package__:  # run as a script: make the ``benchmarks`` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (
    HEADERS,
    Call,
    Measurement,
    Sizes,
    Variant,
    compare,
    create_body,
    fmt,
    markdown_table,
    parse_args,
    print_header,
    run_in_loop,
    upstreams,
    write_json,
)

DEFAULT = Sizes(serial=800, parallel=1500, warmup=100, rounds=3)
QUICK = Sizes(serial=150, parallel=300, warmup=30, rounds=1)
CONCURRENCIES = (1, 32)


def _check(status: int, body: bytes) -> None:
    if status != 200:
        raise RuntimeError(f"upstream answered {status}: {body[:200]!r}")
    json.loads(body)


def httpx_variant(name: str, make: Any, url: str) -> Variant:
    """A variant posting through an httpx client built by ``make()``."""
    body = create_body()

    @contextlib.asynccontextmanager
    async def open_() -> AsyncIterator[Call]:
        async with make() as client:
            async def call() -> None:
                answer = await client.post(url, content=body, headers=HEADERS)
                _check(answer.status_code, answer.content)

            yield call

    return Variant(name, open_)


def aiohttp_variant(url: str) -> Variant:
    """A variant posting through a bare ``aiohttp.ClientSession``."""
    body = create_body()

    @contextlib.asynccontextmanager
    async def open_() -> AsyncIterator[Call]:
        async with aiohttp.ClientSession() as session:
            async def call() -> None:
                async with session.post(url, data=body, headers=HEADERS) as answer:
                    _check(answer.status, await answer.read())

            yield call

    return Variant(name="(d) aiohttp.ClientSession()", open=open_)


def direct_transport_variant(url: str) -> Variant:
    """(e): build an ``httpx.Request`` and hand it to the aiohttp transport directly."""
    body = create_body()

    @contextlib.asynccontextmanager
    async def open_() -> AsyncIterator[Call]:
        async with AiohttpTransport() as transport:
            async def call() -> None:
                request = httpx.Request("POST", url, content=body, headers=HEADERS)
                answer = await transport.handle_async_request(request)
                try:
                    _check(answer.status_code, await answer.aread())
                finally:
                    await answer.aclose()

            yield call

    return Variant("(e) httpx.Request -> AiohttpTransport", open_)


def sender_variant(url: str) -> Variant:
    """(f): the router's default sender, ``providers.aiohttp_sender.AiohttpSender``."""
    body = create_body()

    @contextlib.asynccontextmanager
    async def open_() -> AsyncIterator[Call]:
        from providers.aiohttp_sender import AiohttpSender  # late: see variants()

        sender = AiohttpSender()
        try:
            async def call() -> None:
                answer = await sender.send("POST", url, content=body, headers=HEADERS)
                try:
                    _check(answer.status_code, await answer.aread())
                finally:
                    await answer.aclose()

            yield call
        finally:
            await sender.aclose()

    return Variant("(f) providers.aiohttp_sender.AiohttpSender (the router's default)", open_)


def variants(url: str) -> list[Variant]:
    # Imported late: ``import providers`` before ``router`` hits an import cycle.
    from providers.http import default_client

    return [
        httpx_variant("(a) httpx.AsyncClient()", httpx.AsyncClient, url),
        httpx_variant(
            "(b) httpx + AiohttpTransport()",
            lambda: httpx.AsyncClient(transport=AiohttpTransport()), url,
        ),
        httpx_variant("(c) providers.http.default_client()", default_client, url),
        aiohttp_variant(url),
        direct_transport_variant(url),
        sender_variant(url),
    ]


def table(results: list[Measurement]) -> str:
    rows = [
        [m.name, str(m.concurrency), fmt(m.rps), fmt(m.p50_us), fmt(m.p99_us), fmt(m.cpu_us),
         fmt(m.upstream_cpu_us)]
        for m in results
    ]
    headers = ["client", "conc.", "req/s", "p50 µs", "p99 µs", "CPU µs/req",
               "upstream CPU µs/req"]
    return markdown_table(headers, rows)


def main() -> None:
    args, sizes = parse_args(__doc__, DEFAULT, QUICK)
    results: list[Measurement] = []
    with upstreams(1) as (upstream,):
        url = f"{upstream.url}/v1/responses"
        pids = [upstream.pid] if upstream.pid else []

        async def run() -> None:
            for concurrency in CONCURRENCIES:
                results.extend(await compare(
                    variants(url), concurrency=concurrency,
                    requests=sizes.requests(concurrency), warmup=sizes.warmup,
                    rounds=sizes.rounds, upstream_pids=pids,
                ))

        run_in_loop(run)
    print_header("Transport: plain create against one upstream process", sizes)
    print(table(results))
    write_json(args.json, {"benchmark": "transport", "results": results})


if __name__ == "__main__":
    main()
