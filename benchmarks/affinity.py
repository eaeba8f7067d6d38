"""Response affinity: follow-up turns routed to the owner, with memory and Redis state.

Three fake upstreams, each in its own process (a stored response exists only
on the upstream that made it), one deployment each, and
``optional_pre_call_checks=["responses_api_deployment_check"]``. At
concurrency 1 and 32 it times:

* a bare client that already knows each response's owner (the reference):
  the router's own sender (``providers.aiohttp_sender.AiohttpSender``, one
  per upstream as the router keeps them) used directly, as in
  ``benchmarks/overhead.py``. One round per path: differences of a few
  hundred µs at c=1 are within this machine's noise;
* the router with the memory store: creates, then follow-ups
  (``previous_response_id``) on those responses;
* a *fresh* memory router given those follow-ups' ids: no record, so the
  owner is discovered by asking the deployments (a restart without Redis);
* the router with Redis (``redis_url``, ``redis_key_prefix``): creates and
  follow-ups in the same router (served from its local copy,
  router/state/resilient.py), and *cold* follow-ups through a second router
  on the same Redis (what another replica pays: one Redis read).

Then, untimed: Redis commands per request on each path, counted with
``MONITOR`` filtered to this benchmark's key prefix (other clients of the same
Redis are ignored; ``INFO commandstats`` deltas are shown too, server-wide),
and the Redis memory of an ownership record (1,000 creates, ``MEMORY USAGE``).
Keys live under ``bench-affinity:`` and are deleted at the start and the end.

    REDIS_URL=redis://127.0.0.1:6379/0 .venv/bin/python benchmarks/affinity.py [--quick]
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from router.router import Router

# isort: split
from providers.aiohttp_sender import AiohttpSender  # after router: import order matters

if not __package__:  # run as a script: make the ``benchmarks`` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (
    HEADERS,
    INPUT,
    MODEL,
    Call,
    Measurement,
    Sizes,
    create_body,
    fmt,
    markdown_table,
    measure,
    openai_deployment,
    parse_args,
    print_header,
    run_in_loop,
    upstreams,
    verdict,
    write_json,
)

DEFAULT = Sizes(serial=400, parallel=1000, warmup=50, rounds=1)
QUICK = Sizes(serial=60, parallel=150, warmup=10, rounds=1)
CONCURRENCIES = (1, 32)
CHECK = "responses_api_deployment_check"
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
PREFIX = "bench-affinity:"
OWNERSHIP_KEYS = "own:"  # router/ownership.py's key prefix, under the store prefix
DEFAULT_STORE_PREFIX = "rr:"  # RouterSettings.redis_key_prefix's default
OPENAI_ID_LENGTH = len("resp_") + 48  # real OpenAI response ids
MAX_ROUND_TRIPS = 1.0
MAX_RECORD_BYTES = 100
MEMORY_RECORDS = 1000
QUICK_RECORDS = 200
COUNTED_REQUESTS = 200


# --------------------------------------------------------------------------- clients


def make_router(urls: Sequence[str], *, redis: bool) -> Router:
    """The router under test: one deployment per upstream, the affinity check on."""
    settings: dict[str, Any] = {"redis_url": REDIS_URL, "redis_key_prefix": PREFIX} if redis else {}
    return Router(
        model_list=[openai_deployment(url) for url in urls],
        optional_pre_call_checks=[CHECK], **settings,
    )


class Ids:
    """Response ids made by one phase, handed out once each to the next."""

    def __init__(self) -> None:
        self._queue: collections.deque[Any] = collections.deque()

    def put(self, item: Any) -> None:
        self._queue.append(item)

    def take(self) -> Any:
        return self._queue.popleft()

    def __len__(self) -> int:
        return len(self._queue)


def router_create(router: Router, out: Ids) -> Call:
    async def call() -> None:
        response = await router.aresponses(model=MODEL, input=INPUT)
        out.put(response.id)

    return call


def router_follow(router: Router, source: Ids, out: Ids) -> Call:
    async def call() -> None:
        response = await router.aresponses(
            model=MODEL, input=INPUT, previous_response_id=source.take()
        )
        out.put(response.id)

    return call


Senders = dict[str, AiohttpSender]  # by URL: one per upstream, as the router keeps them


async def _post(senders: Senders, url: str, body: bytes) -> str:
    answer = await senders[url].send("POST", url, content=body, headers=HEADERS)
    try:
        await answer.aread()
    finally:
        await answer.aclose()
    if answer.status_code != 200:
        raise RuntimeError(f"upstream answered {answer.status_code}: {answer.text[:200]}")
    response_id: str = json.loads(answer.content)["id"]
    return response_id


def bare_create(client: Senders, urls: Sequence[str], out: Ids) -> Call:
    """Round-robin over the upstreams; remembers (id, owner url)."""
    turn = 0
    body = create_body()

    async def call() -> None:
        nonlocal turn
        url = urls[turn % len(urls)]
        turn += 1
        out.put((await _post(client, url, body), url))

    return call


def bare_follow(client: Senders, source: Ids, out: Ids) -> Call:
    """Follow-up sent straight to the owner (the client knows it)."""
    async def call() -> None:
        previous, url = source.take()
        body = create_body(previous_response_id=previous)
        out.put((await _post(client, url, body), url))

    return call


# --------------------------------------------------------------------------- timed phases


@dataclass(frozen=True, slots=True)
class Row:
    path: str
    op: str
    m: Measurement


BARE = "bare client, owner known"
MEMORY = "Router, memory store"
MEMORY_FRESH = "fresh Router, memory (no record: discovery)"
REDIS = "Router, Redis (same router: local copy)"
REDIS_COLD = "second Router, same Redis (cold)"


@dataclass(slots=True)
class Bench:
    urls: list[str]
    pids: list[int]
    sizes: Sizes
    redis: bool
    records: int  # creates for the memory-per-record figure
    rows: list[Row]

    async def time(self, path: str, op: str, call: Call, concurrency: int) -> None:
        m = await measure(
            f"{path} / {op}", call, requests=self.sizes.requests(concurrency),
            concurrency=concurrency, warmup=self.sizes.warmup, upstream_pids=self.pids,
        )
        self.rows.append(Row(path, op, m))

    async def bare(self, concurrency: int) -> None:
        made, followed = Ids(), Ids()
        urls = [f"{url}/v1/responses" for url in self.urls]
        client = {url: AiohttpSender() for url in urls}
        try:
            await self.time(BARE, "create", bare_create(client, urls, made), concurrency)
            await self.time(BARE, "follow-up", bare_follow(client, made, followed), concurrency)
        finally:
            for sender in client.values():
                await sender.aclose()

    async def routed(self, concurrency: int, *, redis: bool) -> None:
        made, followed, again = Ids(), Ids(), Ids()
        warm, cold = (REDIS, REDIS_COLD) if redis else (MEMORY, MEMORY_FRESH)
        async with make_router(self.urls, redis=redis) as first:
            await self.time(warm, "create", router_create(first, made), concurrency)
            await self.time(warm, "follow-up", router_follow(first, made, followed), concurrency)
        async with make_router(self.urls, redis=redis) as second:
            await self.time(cold, "follow-up", router_follow(second, followed, again),
                            concurrency)

    async def run(self) -> None:
        for concurrency in CONCURRENCIES:
            await self.bare(concurrency)
            await self.routed(concurrency, redis=False)
            if self.redis:
                await clear_keys()
                await self.routed(concurrency, redis=True)


def _baseline(rows: list[Row], op: str, concurrency: int) -> Measurement:
    for row in rows:
        if row.path == BARE and row.op == op and row.m.concurrency == concurrency:
            return row.m
    raise KeyError((op, concurrency))


def timing_table(rows: list[Row]) -> str:
    cells = []
    for row in rows:
        m, base = row.m, _baseline(rows, row.op, row.m.concurrency)
        is_base = row.path == BARE
        cells.append([
            row.path, row.op, str(m.concurrency), fmt(m.rps), fmt(m.p50_us), fmt(m.p99_us),
            fmt(m.cpu_us), fmt(m.upstream_cpu_us),
            "-" if is_base else f"{m.p50_us - base.p50_us:+,.0f}",
            "-" if is_base else f"{m.cpu_us - base.cpu_us:+,.0f}",
        ])
    headers = ["path", "op", "conc.", "req/s", "p50 µs", "p99 µs", "CPU µs/req",
               "upstream CPU µs/req", "Δp50 vs bare µs", "ΔCPU vs bare µs"]
    return markdown_table(headers, cells)


# --------------------------------------------------------------------------- Redis helpers


def redis_client() -> aioredis.Redis:
    return aioredis.Redis.from_url(REDIS_URL, decode_responses=True)


async def redis_available() -> bool:
    try:
        async with redis_client() as client:
            return bool(await client.ping())
    except (RedisError, OSError):
        return False


async def clear_keys() -> int:
    """Delete every key under the benchmark's prefix; how many there were."""
    deleted = 0
    async with redis_client() as client:
        batch: list[str] = []
        async for key in client.scan_iter(match=f"{PREFIX}*", count=1000):
            batch.append(key)
            if len(batch) >= 500:
                deleted += await client.delete(*batch)
                batch = []
        if batch:
            deleted += await client.delete(*batch)
    return deleted


async def _commandstats(client: aioredis.Redis) -> dict[str, int]:
    info = await client.info("commandstats")
    return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in info.items()}


class CommandLog:
    """``MONITOR`` in the background, keeping the commands that touch our prefix."""

    def __init__(self) -> None:
        self.commands: list[str] = []
        self._client = redis_client()
        self._task: asyncio.Task[None] | None = None
        self._marks = 0
        self._waiting: dict[str, asyncio.Event] = {}

    async def __aenter__(self) -> CommandLog:
        ready = asyncio.Event()
        self._task = asyncio.create_task(self._listen(ready))
        await ready.wait()
        await self.mark()  # MONITOR is live once its first mark comes back
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, RedisError):
                await self._task
        await self._client.aclose()

    async def _listen(self, ready: asyncio.Event) -> None:
        async with self._client.monitor() as monitor:
            ready.set()
            async for info in monitor.listen():
                command: str = info["command"]
                if PREFIX not in command:
                    continue
                self.commands.append(command)
                seen = self._waiting.get(command.rsplit(" ", 1)[-1])
                if seen is not None:
                    seen.set()

    async def mark(self) -> None:
        """Send a marker command and wait until MONITOR has shown it (a barrier)."""
        self._marks += 1
        marker = f"{PREFIX}__mark__:{self._marks}"
        seen = self._waiting[marker] = asyncio.Event()
        await self._client.exists(marker)
        async with asyncio.timeout(10):
            await seen.wait()
        del self._waiting[marker]

    def since(self, start: int) -> collections.Counter[str]:
        """Commands (by name) after index ``start``, markers excluded."""
        names = [c.split(" ", 1)[0].upper() for c in self.commands[start:]
                 if "__mark__" not in c]
        return collections.Counter(names)


# --------------------------------------------------------------------------- round trips


@dataclass(frozen=True, slots=True)
class Trips:
    phase: str
    requests: int
    commands: dict[str, int]
    server_get_set: int  # INFO commandstats delta of get + set (server-wide)

    def per_request(self, name: str | None = None) -> float:
        count = sum(self.commands.values()) if name is None else self.commands.get(name, 0)
        return count / self.requests


async def _counted(
    log: CommandLog, stats: aioredis.Redis, phase: str, requests: int,
    work: Callable[[], Awaitable[None]],
) -> Trips:
    start, before = len(log.commands), await _commandstats(stats)
    await work()
    await log.mark()
    after = await _commandstats(stats)
    delta = sum(after.get(k, 0) - before.get(k, 0) for k in ("get", "set"))
    return Trips(phase, requests, dict(log.since(start)), delta)


async def _repeat(call: Call, times: int) -> None:
    for _ in range(times):
        await call()


async def count_round_trips(urls: Sequence[str], requests: int) -> list[Trips]:
    """Redis commands per request for create, warm follow-up and cold follow-up (c=1)."""
    made, followed, again = Ids(), Ids(), Ids()
    found: list[Trips] = []
    async with CommandLog() as log, redis_client() as stats:
        async with make_router(urls, redis=True) as first:
            await router_create(first, Ids())()  # connections up before counting
            found.append(await _counted(log, stats, "create", requests,
                                        lambda: _repeat(router_create(first, made), requests)))
            found.append(await _counted(
                log, stats, "follow-up, same router", requests,
                lambda: _repeat(router_follow(first, made, followed), requests)))
        async with make_router(urls, redis=True) as second:
            await router_create(second, Ids())()
            found.append(await _counted(
                log, stats, "follow-up, second router (cold)", requests,
                lambda: _repeat(router_follow(second, followed, again), requests)))
    return found


def trips_table(found: list[Trips]) -> str:
    rows = [[
        t.phase, str(t.requests), f"{t.per_request('GET'):.2f}", f"{t.per_request('SET'):.2f}",
        f"{t.per_request() - t.per_request('GET') - t.per_request('SET'):.2f}",
        f"{t.per_request():.2f}", f"{t.server_get_set / t.requests:.2f}",
        verdict(t.per_request() <= MAX_ROUND_TRIPS),
    ] for t in found]
    headers = ["path (c=1)", "requests", "GET/req", "SET/req", "other/req", "total/req",
               "server-wide get+set/req", f"<= {MAX_ROUND_TRIPS:.0f} round trip"]
    return markdown_table(headers, rows)


# --------------------------------------------------------------------------- memory


@dataclass(frozen=True, slots=True)
class RecordSize:
    records: int
    key_bytes: float
    value_bytes: float
    memory_usage: float  # MEMORY USAGE, average
    used_memory_delta: float  # INFO used_memory delta / records (server-wide, approx.)
    id_bytes: float

    @property
    def key_value(self) -> float:
        return self.key_bytes + self.value_bytes

    def projected(self, prefix: str, id_length: int) -> float:
        """Key+value bytes with another store prefix and response id length."""
        return len(prefix) + len(OWNERSHIP_KEYS) + id_length + self.value_bytes


async def _used_memory(client: aioredis.Redis) -> int:
    return int((await client.info("memory"))["used_memory"])


async def record_size(urls: Sequence[str], records: int) -> RecordSize:
    """Create ``records`` responses through a Redis router; measure their keys."""
    await clear_keys()
    async with redis_client() as client:
        before = await _used_memory(client)
        made = Ids()
        async with make_router(urls, redis=True) as router:
            await measure("records", router_create(router, made), requests=records,
                          concurrency=32)
        after = await _used_memory(client)
        keys = [k async for k in client.scan_iter(match=f"{PREFIX}{OWNERSHIP_KEYS}*", count=1000)]
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.memory_usage(key, samples=0)
            pipe.get(key)
        answers = await pipe.execute()
    usage, values = answers[0::2], answers[1::2]
    n = max(1, len(keys))
    return RecordSize(
        records=len(keys), key_bytes=sum(len(k.encode()) for k in keys) / n,
        value_bytes=sum(len(v.encode()) for v in values if v) / n,
        memory_usage=sum(u or 0 for u in usage) / n,
        used_memory_delta=(after - before) / max(1, records),
        id_bytes=sum(len(k) - len(PREFIX) - len(OWNERSHIP_KEYS) for k in keys) / n,
    )


def size_report(size: RecordSize) -> list[str]:
    real = size.projected(DEFAULT_STORE_PREFIX, OPENAI_ID_LENGTH)
    lines = [
        f"- records: {size.records}; key {size.key_bytes:.0f} B (prefix {PREFIX!r} + "
        f"{OWNERSHIP_KEYS!r} + a {size.id_bytes:.0f}-char id) + value {size.value_bytes:.0f} B "
        f"(deployment id) = **{size.key_value:.0f} B** key+value",
        f"- `MEMORY USAGE` average: {size.memory_usage:.0f} B per key "
        f"({size.memory_usage - size.key_value:.0f} B of Redis overhead; the TTL's entry in "
        "the expires dict is not included)",
        f"- `INFO memory` used_memory delta: {size.used_memory_delta:.0f} B per record "
        "(server-wide, approximate: includes dict and expires entries)",
        f"- with the default prefix {DEFAULT_STORE_PREFIX!r} and a real {OPENAI_ID_LENGTH}-char "
        f"OpenAI id: {real:.0f} B key+value",
        f"- {verdict(size.key_value < MAX_RECORD_BYTES)}: key+value < {MAX_RECORD_BYTES} B "
        f"(measured {size.key_value:.0f} B; real-id projection {real:.0f} B: "
        f"{verdict(real < MAX_RECORD_BYTES)})",
    ]
    return lines


# --------------------------------------------------------------------------- main


async def run_all(bench: Bench, trips: list[Trips], sizes: list[RecordSize]) -> None:
    if bench.redis:
        await clear_keys()
    try:
        await bench.run()
        if bench.redis:
            await clear_keys()
            counted = min(COUNTED_REQUESTS, bench.sizes.serial)
            trips.extend(await count_round_trips(bench.urls, counted))
            sizes.append(await record_size(bench.urls, bench.records))
    finally:
        if bench.redis:
            await clear_keys()


def main() -> None:
    args, sizes = parse_args(__doc__, DEFAULT, QUICK)
    trips: list[Trips] = []
    records: list[RecordSize] = []
    with upstreams(3, prefix="owner") as procs:
        bench = Bench(
            urls=[p.url for p in procs], pids=[p.pid for p in procs if p.pid],
            sizes=sizes, redis=asyncio.run(redis_available()),
            records=QUICK_RECORDS if args.quick else MEMORY_RECORDS, rows=[],
        )

        async def run() -> None:
            await run_all(bench, trips, records)

        run_in_loop(run)
    print_header("Response affinity: 3 upstream processes, responses_api_deployment_check",
                 sizes)
    if not bench.redis:
        print(f"Redis at {REDIS_URL} did not answer: Redis rows skipped.\n")
    print(timing_table(bench.rows))
    if trips:
        print("\n### Redis commands per request (MONITOR, filtered to this benchmark's keys)\n")
        print(trips_table(trips))
    if records:
        print(f"\n### Redis memory per ownership record ({bench.records} creates)\n")
        print("\n".join(size_report(records[0])))
    write_json(args.json, {
        "benchmark": "affinity", "redis_url_prefix": PREFIX,
        "results": [{"path": r.path, "op": r.op, **asdict(r.m)} for r in bench.rows],
        "round_trips": [asdict(t) for t in trips],
        "record_size": [asdict(s) for s in records],
    })


if __name__ == "__main__":
    main()
