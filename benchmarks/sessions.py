"""Conversations the router keeps: what a follow-up costs at 1, 10 and 50 turns.

A stateless deployment (the Anthropic fake, ``router.testing.anthropic``, in
its own process) keeps nothing, so the router stores each turn
(:mod:`router.conversations`) and a follow-up (``previous_response_id``)
reads the whole chain and replays it as input. For the memory store and for
Redis, at concurrency 1:

* a first turn (no history) and follow-ups at depth 1, 10 and 50 (each a fork
  of the same stored response, so every request has exactly that history):
  p50 / p99 latency and the router's CPU per request. The *added* p50 is the
  follow-up's over the same request sent with its whole history as ``input``
  (what a caller without ``previous_response_id`` sends; the provider gets the
  same body), measured in alternating rounds: what keeping the conversation
  costs, apart from what a longer conversation costs anyway. The keeper's own
  part is shown too: reading the chain and building the replayed input, timed
  in process (median of many);
* Redis commands per follow-up (counted on the router's client: one command
  is one round trip) and the stored bytes per turn (``STRLEN`` and
  ``MEMORY USAGE`` of the links).

Then conversation failover on two native upstream processes (Redis): a
follow-up at depth 10 served by its owner (``previous_response_id`` passed
through), and the same follow-up replayed on the other deployment by a router
whose config no longer has the owner; and plain creates with
``conversation_failover`` on and off (the cost of keeping one link per
response).

Targets (issue 14): at most one Redis round trip per follow-up at any depth;
added latency at 50 turns at most 2x that at 1 turn.

    REDIS_URL=redis://127.0.0.1:6379/0 .venv/bin/python benchmarks/sessions.py [--quick]
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import (
    Measurement,
    Sizes,
    environment,
    fmt,
    markdown_table,
    measure,
    openai_deployment,
    parse_args,
    print_header,
    running,
    upstreams,
    verdict,
    write_json,
)
from benchmarks.translation import FakeProcess
from router.conversations.links import history
from router.request import build_request
from router.router import Router

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
PREFIX = "bench-sessions:"
KEY = "k"
DEPTHS = (1, 10, 50)
DEFAULT = Sizes(serial=300, parallel=300, warmup=20, rounds=3)
QUICK = Sizes(serial=40, parallel=40, warmup=5, rounds=1)


def _claude(url: str) -> list[dict[str, Any]]:
    return [{"model_name": "m", "litellm_params": {
        "model": "anthropic/claude-sonnet-4-5", "api_base": url, "api_key": KEY}}]


async def _chain(router: Router, turns: int, model: str = "m") -> list[str]:
    ids: list[str] = []
    for i in range(turns):
        extra = {"previous_response_id": ids[-1]} if ids else {}
        response = await router.aresponses(model=model, input=f"turn {i}: a short line",
                                           **extra)
        ids.append(response.id)
    return ids


def _follow(
    router: Router, previous: str | None, model: str = "m", history: list[Any] | None = None
) -> Callable[[], Awaitable[None]]:
    extra = {"previous_response_id": previous} if previous else {}
    given: Any = "and one more" if history is None else [
        *history, {"role": "user", "content": "and one more"}]

    async def call() -> None:
        await router.aresponses(model=model, input=given, **extra)
    return call


async def _history(router: Router, previous: str) -> list[Any]:
    chain = await router._parts.keeper.store.chain(previous, 3600)
    return list(history(chain.links))


async def _keeper_us(router: Router, previous: str, rounds: int, cold: bool = False) -> float:
    """The keeper's own work for one follow-up: read the chain, build the replayed input.

    ``cold``: as a replica that holds none of the conversation (Redis only): this
    process's copy is emptied before each follow-up.
    """
    keeper = router._parts.keeper
    deployment = router.deployments("m")[0]
    times = []
    for _ in range(rounds):
        request = build_request("m", {"input": "x", "previous_response_id": previous},
                                stream=False, default_timeout=None)
        if cold:
            await keeper.store._local.aclose()  # type: ignore[attr-defined]
        t0 = time.perf_counter()
        await keeper.open(request)
        await keeper.adapt(request, deployment)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e6


async def _commands(router: Router, previous: str) -> list[str]:
    """The Redis commands (round trips) of one follow-up."""
    client = await router._parts.services.store.shared.ready()
    sent: list[str] = []
    original = client.execute_command

    async def counting(*args: Any, **options: Any) -> Any:
        sent.append(str(args[0]))
        return await original(*args, **options)

    client.execute_command = counting
    try:
        await _follow(router, previous)()
        await asyncio.sleep(0)
    finally:
        client.execute_command = original
    return sent


async def _link_bytes(ids: list[str]) -> tuple[float, float]:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        lengths = [await client.strlen(PREFIX + "cv:" + i) for i in ids]
        usage = [await client.memory_usage(PREFIX + "cv:" + i) or 0 for i in ids]
    finally:
        await client.aclose()
    return statistics.mean(lengths), statistics.mean(usage)


async def _clear() -> None:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        keys = [k async for k in client.scan_iter(match=PREFIX + "*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


async def _depths(store: str, url: str, sizes: Sizes, pid: int) -> dict[str, Any]:
    settings = {} if store == "memory" else {"redis_url": REDIS_URL, "redis_key_prefix": PREFIX}
    out: dict[str, Any] = {"store": store, "rows": []}
    async with Router(_claude(url), **settings) as router:
        ids = await _chain(router, max(DEPTHS))
        rows: list[tuple[str, Measurement, float | None, list[str] | None]] = []
        first = await _median_of(sizes, lambda: measure(
            "first turn", _follow(router, None), requests=sizes.serial, concurrency=1,
            warmup=sizes.warmup, upstream_pids=[pid]))
        rows.append(("first turn", first, None, None))
        for depth in DEPTHS:
            previous = ids[depth - 1]
            follow, given = await _paired(sizes, pid, _follow(router, previous),
                                          _follow(router, None,
                                                  history=await _history(router, previous)))
            keeper = await _keeper_us(router, previous, 200)
            commands = await _commands(router, previous) if store == "redis" else None
            rows.append((f"follow-up at {depth} turns", follow, keeper, commands))
            if store == "redis":
                out.setdefault("cold_keeper_us", {})[depth] = await _keeper_us(
                    router, previous, 100, cold=True)
            rows.append((f"history as input, {depth} turns", given, None, None))
        if store == "redis":
            out["link_bytes"] = await _link_bytes(ids)
    for name, m, keeper, commands in rows:
        added = None
        if name.startswith("follow-up"):
            added = m.extra["added_p50_us"]
        out["rows"].append({"name": name, "p50_us": m.p50_us, "p99_us": m.p99_us,
                            "cpu_us": m.cpu_us, "keeper_us": keeper,
                            "redis_commands": commands, "added_p50_us": added})
    return out


async def _median_of(sizes: Sizes, run: Callable[[], Awaitable[Measurement]]) -> Measurement:
    runs = [await run() for _ in range(sizes.rounds)]
    runs.sort(key=lambda m: m.p50_us)
    return runs[len(runs) // 2]


async def _paired(
    sizes: Sizes, pid: int, follow: Callable[[], Awaitable[None]],
    given: Callable[[], Awaitable[None]],
) -> tuple[Measurement, Measurement]:
    """Follow-ups and history-as-input requests in alternating short batches; the
    follow-up's ``extra["added_p50_us"]`` is the median over rounds of the difference."""
    rounds = max(3, sizes.rounds * 3)
    batch = max(10, sizes.serial // rounds)
    ours: list[Measurement] = []
    theirs: list[Measurement] = []
    for i in range(rounds):
        order = [(follow, ours), (given, theirs)]
        for call, into in order if i % 2 == 0 else order[::-1]:
            into.append(await measure("x", call, requests=batch, concurrency=1,
                                      warmup=sizes.warmup if i == 0 else 2,
                                      upstream_pids=[pid]))
    added = statistics.median(a.p50_us - b.p50_us for a, b in zip(ours, theirs, strict=True))
    follow_m, given_m = (_middle(ours), _middle(theirs))
    follow_m.extra["added_p50_us"] = added
    return follow_m, given_m


def _middle(runs: list[Measurement]) -> Measurement:
    ordered = sorted(runs, key=lambda m: m.p50_us)
    return ordered[len(ordered) // 2]


async def _failover(sizes: Sizes) -> list[list[str]]:
    settings = {"redis_url": REDIS_URL, "redis_key_prefix": PREFIX + "fo:",
                "optional_pre_call_checks": ["responses_api_deployment_check"]}
    rows = []
    with upstreams(2, prefix="fo") as procs:
        async with running(procs):
            deps = [openai_deployment(p.url, model_name="g", deployment_id=p.name)
                    for p in procs]
            pids = [p.pid for p in procs if p.pid is not None]
            async with Router(deps, conversation_failover=True, **settings) as both:
                ids = await _chain(both, 10, "g")
                owner = (await both.aget_responses(ids[-1])).routing
                assert owner is not None
                survivor = [d for d in deps if d["model_info"]["id"] != owner.deployment_id]
                async with Router(survivor, conversation_failover=True, **settings) as rest:
                    native = await measure("owner serves", _follow(both, ids[-1], "g"),
                                           requests=sizes.serial, concurrency=1,
                                           warmup=sizes.warmup, upstream_pids=pids)
                    replay = await measure("replayed elsewhere", _follow(rest, ids[-1], "g"),
                                           requests=sizes.serial, concurrency=1,
                                           warmup=sizes.warmup, upstream_pids=pids)
                    on = await measure("create, failover on", _follow(both, None, "g"),
                                       requests=sizes.serial, concurrency=1,
                                       warmup=sizes.warmup, upstream_pids=pids)
            async with Router(deps, **settings) as off_router:
                off = await measure("create, failover off", _follow(off_router, None, "g"),
                                    requests=sizes.serial, concurrency=1,
                                    warmup=sizes.warmup, upstream_pids=pids)
    for m in (native, replay, on, off):
        rows.append([m.name, fmt(m.p50_us), fmt(m.p99_us), fmt(m.cpu_us)])
    return rows


async def _redis_up() -> bool:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        await client.ping()
    except Exception:
        return False
    finally:
        await client.aclose()
    return True


async def main() -> None:
    args, sizes = parse_args(__doc__, DEFAULT, QUICK)
    print_header("Kept conversations: follow-ups by depth", sizes)
    redis = await _redis_up()
    stores = ["memory", "redis"] if redis else ["memory"]
    results: dict[str, Any] = {"environment": environment(), "stores": []}
    if redis:
        await _clear()
    try:
        with FakeProcess("router.testing.anthropic", ("--api-key", KEY)) as fake:
            for store in stores:
                found = await _depths(store, fake.url, sizes, fake.pid or 0)
                results["stores"].append(found)
                _print_depths(found)
        if redis:
            rows = await _failover(sizes)
            print("\n### conversation_failover (native upstreams, Redis)\n")
            print(markdown_table(["path", "p50 µs", "p99 µs", "client CPU µs/req"], rows))
            results["failover"] = rows
        else:
            print("\n(Redis not reachable: the Redis rows and failover were skipped)")
    finally:
        if redis:
            await _clear()
    _print_targets(results)
    write_json(args.json, results)


def _print_depths(found: dict[str, Any]) -> None:
    print(f"\n### {found['store']} store (c=1)\n")
    rows = []
    for row in found["rows"]:
        commands = row["redis_commands"]
        rows.append([row["name"], fmt(row["p50_us"]), fmt(row["p99_us"]), fmt(row["cpu_us"]),
                     fmt(row["added_p50_us"]) if row["added_p50_us"] is not None else "-",
                     fmt(row["keeper_us"]) if row["keeper_us"] is not None else "-",
                     " ".join(commands) if commands else "-"])
    print(markdown_table(["request", "p50 µs", "p99 µs", "client CPU µs/req",
                          "added p50 µs (vs history as input)", "keeper µs",
                          "Redis commands"], rows))
    if "cold_keeper_us" in found:
        cold = found["cold_keeper_us"]
        print("\nkeeper µs on a replica that holds none of the conversation (whole chain "
              "read from Redis): " + ", ".join(f"{d} turns {fmt(v)}" for d, v in cold.items()))
    if "link_bytes" in found:
        length, usage = found["link_bytes"]
        print(f"\nstored per turn: {length:.0f} B of value, {usage:.0f} B of Redis memory "
              "(one key per response)")


def _print_targets(results: dict[str, Any]) -> None:
    print("\n### targets\n")
    for found in results["stores"]:
        by = {r["name"]: r for r in found["rows"]}
        one, fifty = by["follow-up at 1 turns"], by["follow-up at 50 turns"]
        ratio = fifty["added_p50_us"] / max(one["added_p50_us"], 1.0)
        print(f"* {found['store']}: added p50 at 50 turns / at 1 turn = {ratio:.2f} "
              f"(target <= 2): {verdict(ratio <= 2)}; keeper alone "
              f"{fmt(one['keeper_us'])} -> {fmt(fifty['keeper_us'])} µs")
        if found["store"] == "redis":
            worst = max(len(r["redis_commands"] or []) - 1 for r in found["rows"]
                        if r["redis_commands"])
            print(f"* redis: round trips on the critical path per follow-up (reads; the one "
                  f"write keeps the new link): {worst} (target <= 1): {verdict(worst <= 1)}")


if __name__ == "__main__":
    asyncio.run(main())
