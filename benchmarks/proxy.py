"""What does the server add? The same requests straight to an upstream and through it.

One fake upstream runs in its own process (:class:`router.testing.UpstreamProcess`);
``responses-router serve`` runs with 1 worker (memory state) and with 2
workers (Redis at ``REDIS_URL``), each in front of that upstream. One
aiohttp client sends the same create, plain and ``stream=True``, at
concurrency 1 and 64, straight to the upstream and through each server, the
three side by side (interleaved for each cell). Reported per row: requests/s,
p50 and p99, time to first event (streams), the server's CPU per request
(supervisor and workers, from ``/proc``), and at the end each worker's RSS and
the time from start to ``READY``.

A fourth target, ``floor``, is a bare aiohttp forwarder
(:mod:`benchmarks.forward`): what any proxy built on aiohttp adds on this
machine. The server's figures minus the floor's are its own layer (auth,
checks, the Router, state); both are printed after the verdicts.

Targets (printed PASS/FAIL): at concurrency 1 the server adds at most 300 µs
to the p50 of a plain request; with 2 workers at concurrency 64 it reaches at
least 0.7x the direct requests/s of the same client; at most 80 MB RSS per
worker (at ready, and after the run: one worker without Redis keeps every
stored response's owner records in memory until ``response_ownership_ttl``,
so its RSS grows with the creates it served); ready within 1 s of start.

    .venv/bin/python benchmarks/proxy.py [--seconds 3] [--rounds 1] [--json PATH]

The machine's cores are shared by the client, the upstream and the server:
on 2 cores the concurrency-64 rows measure the machine as much as the server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from router.testing import UpstreamProcess

MASTER = "sk-bench-master"
#: The clients' key: an API key (not the master key), so each stored response's
#: owner is recorded as in production.
CLIENT_KEY = "sk-bench-client"
UPSTREAM_KEY = "k"
_TICK = os.sysconf("SC_CLK_TCK")
BODY = json.dumps({"model": "gpt-4o", "input": "Say hello in one short sentence."}).encode()
STREAM_BODY = json.dumps({"model": "gpt-4o", "input": "Say hello in one short sentence.",
                          "stream": True}).encode()


@dataclass
class Row:
    target: str
    kind: str
    concurrency: int
    req_s: float
    p50_us: float
    p99_us: float
    ttfe_us: float | None
    server_cpu_us: float | None
    requests: int = 0


class Child:
    """A server in a child process that prints ``READY <url>``; ``ready_s`` is start to READY."""

    def __init__(self, command: list[str]) -> None:
        started = time.perf_counter()
        self.proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True,
                                     cwd=Path(__file__).resolve().parent.parent)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("READY "):
            raise RuntimeError(f"server did not start: {line!r}")
        self.ready_s = time.perf_counter() - started
        self.url = line.split()[1]
        self.rss_at_ready = self.worker_rss_mb()

    def pids(self) -> list[int]:
        found = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True,
                               text=True)
        return [self.proc.pid] + [int(p) for p in found.stdout.split()]

    def cpu(self) -> float:
        return sum(_cpu(pid) for pid in self.pids())

    def worker_rss_mb(self) -> list[float]:
        return [_rss_mb(pid) for pid in self.pids()[1:]]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


class Server(Child):
    """``responses-router serve`` with ``workers`` workers in front of ``upstream_url``."""

    def __init__(self, upstream_url: str, workers: int, redis_url: str | None,
                 directory: Path) -> None:
        router: dict[str, Any] = {"num_retries": 0, "redis_key_prefix":
                                  f"bench-proxy:{uuid.uuid4().hex[:8]}:"}
        if redis_url:
            router["redis_url"] = redis_url
        config = {"model_list": [{"model_name": "gpt-4o", "litellm_params": {
            "model": "openai/gpt-4o", "api_base": f"{upstream_url}/v1", "api_key": UPSTREAM_KEY}}],
            "router_settings": router, "general_settings": {
                "master_key": MASTER, "api_keys": [{"key": CLIENT_KEY, "key_alias": "bench"}]}}
        path = directory / f"proxy-{workers}.yaml"
        path.write_text(yaml.safe_dump(config))
        super().__init__([sys.executable, "-m", "router.proxy.cli", "serve", "--config",
                          str(path), "--port", "0", "--workers", str(workers)])


class Floor(Child):
    """The bare aiohttp forwarder (:mod:`benchmarks.forward`): what any aiohttp proxy adds."""

    def __init__(self, upstream_url: str) -> None:
        super().__init__([sys.executable, "-m", "benchmarks.forward", upstream_url,
                          UPSTREAM_KEY])


def _cpu(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def _one(session: aiohttp.ClientSession, url: str, stream: bool
               ) -> tuple[float, float | None]:
    start = time.perf_counter()
    first: float | None = None
    async with session.post(url, data=STREAM_BODY if stream else BODY) as answer:
        if answer.status != 200:
            raise RuntimeError(f"HTTP {answer.status}: {await answer.text()}")
        if stream:
            async for _ in answer.content:
                if first is None:
                    first = time.perf_counter() - start
        else:
            json.loads(await answer.read())
    return time.perf_counter() - start, first


async def _drive(url: str, key: str, stream: bool, concurrency: int, seconds: float
                 ) -> tuple[list[float], list[float]]:
    latencies: list[float] = []
    firsts: list[float] = []
    headers = {"content-type": "application/json", "authorization": f"Bearer {key}"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        for _ in range(min(20, concurrency * 2)):  # warm up connections and caches
            await _one(session, url, stream)
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            while time.perf_counter() < deadline:
                total, first = await _one(session, url, stream)
                latencies.append(total)
                if first is not None:
                    firsts.append(first)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, firsts


def _measure(name: str, url: str, server: Child | None, kind: str, concurrency: int,
             seconds: float) -> Row:
    before = server.cpu() if server else 0.0
    started = time.perf_counter()
    key = CLIENT_KEY if server else UPSTREAM_KEY
    latencies, firsts = asyncio.run(_drive(f"{url}/v1/responses", key, kind == "stream",
                                           concurrency, seconds))
    elapsed = time.perf_counter() - started
    cpu = (server.cpu() - before) / len(latencies) * 1e6 if server else None
    ordered = sorted(latencies)
    return Row(name, kind, concurrency, len(latencies) / elapsed,
               statistics.median(latencies) * 1e6, ordered[int(len(ordered) * 0.99)] * 1e6,
               statistics.median(firsts) * 1e6 if firsts else None, cpu, len(latencies))


def _median_rows(rounds: list[list[Row]]) -> list[Row]:
    out = []
    for cells in zip(*rounds, strict=True):
        first = cells[0]

        def med(name: str, cells: tuple[Row, ...] = cells) -> Any:
            values = [getattr(c, name) for c in cells if getattr(c, name) is not None]
            return statistics.median(values) if values else None

        out.append(Row(first.target, first.kind, first.concurrency, med("req_s"),
                       med("p50_us"), med("p99_us"), med("ttfe_us"), med("server_cpu_us"),
                       sum(c.requests for c in cells)))
    return out


def _table(rows: list[Row]) -> str:
    lines = ["| target | kind | c | req/s | p50 µs | p99 µs | first event µs | server CPU µs/req |",
             "|---|---|--:|--:|--:|--:|--:|--:|"]
    for r in rows:
        ttfe = f"{r.ttfe_us:.0f}" if r.ttfe_us is not None else "-"
        cpu = f"{r.server_cpu_us:.0f}" if r.server_cpu_us is not None else "-"
        lines.append(f"| {r.target} | {r.kind} | {r.concurrency} | {r.req_s:.0f} | "
                     f"{r.p50_us:.0f} | {r.p99_us:.0f} | {ttfe} | {cpu} |")
    return "\n".join(lines)


def _find(rows: list[Row], target: str, kind: str, c: int) -> Row:
    return next(r for r in rows if (r.target, r.kind, r.concurrency) == (target, kind, c))


def _verdicts(rows: list[Row], rss: dict[str, dict[str, list[float]]],
              ready: dict[str, float]) -> list[tuple[str, bool, str]]:
    out = []
    for target in [t for t in ("proxy-1w", "proxy-2w") if any(r.target == t for r in rows)]:
        added = _find(rows, target, "plain", 1).p50_us - _find(rows, "direct", "plain", 1).p50_us
        out.append((f"{target}: added p50 at c=1 <= 300 µs", added <= 300, f"{added:+.0f} µs"))
    if any(r.target == "proxy-2w" for r in rows):
        for kind in ("plain", "stream"):
            ratio = _find(rows, "proxy-2w", kind, 64).req_s / _find(rows, "direct", kind, 64).req_s
            out.append((f"proxy-2w {kind}: req/s at c=64 >= 0.7x direct", ratio >= 0.7,
                        f"{ratio:.2f}x"))
    for target, when in rss.items():
        served = sum(r.requests for r in rows if r.target == target)
        for moment, values in when.items():
            label = moment if moment == "at ready" else f"after {served} creates"
            out.append((f"{target}: RSS per worker <= 80 MB {label}", max(values) <= 80,
                        ", ".join(f"{v:.0f} MB" for v in values)))
    for target, seconds in ready.items():
        out.append((f"{target}: ready within 1 s", seconds <= 1.0, f"{seconds:.2f} s"))
    return out


def _floor_lines(rows: list[Row]) -> list[str]:
    """How much of what the server adds any aiohttp proxy adds here (the ``floor`` row)."""
    direct = _find(rows, "direct", "plain", 1).p50_us
    floor = _find(rows, "floor", "plain", 1).p50_us - direct
    out = [f"floor (bare aiohttp forwarder): added p50 at c=1 {floor:+.0f} µs"]
    for target in [t for t in ("proxy-1w", "proxy-2w") if any(r.target == t for r in rows)]:
        own = _find(rows, target, "plain", 1).p50_us - direct - floor
        out.append(f"{target}: added p50 at c=1 beyond the floor {own:+.0f} µs")
    for kind in ("plain", "stream"):
        ratio = _find(rows, "floor", kind, 64).req_s / _find(rows, "direct", kind, 64).req_s
        out.append(f"floor {kind}: req/s at c=64 {ratio:.2f}x direct")
    return out


def _redis_url() -> str | None:
    import redis

    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError:
        print("Redis does not answer: the 2-worker rows are skipped")
        return None
    return url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="per cell")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    upstream = UpstreamProcess("bench", api_key=UPSTREAM_KEY, record_requests=False)
    upstream.start()
    servers: dict[str, Child] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            servers["floor"] = Floor(upstream.url)
            servers["proxy-1w"] = Server(upstream.url, 1, None, Path(tmp))
            redis_url = _redis_url()
            if redis_url:
                servers["proxy-2w"] = Server(upstream.url, 2, redis_url, Path(tmp))
            targets: list[tuple[str, str, Child | None]] = [("direct", upstream.url, None)]
            targets += [(name, s.url, s) for name, s in servers.items()]
            rounds = []
            for _ in range(args.rounds):
                rounds.append([_measure(name, url, server, kind, c, args.seconds)
                               for kind in ("plain", "stream") for c in (1, 64)
                               for name, url, server in targets])
            rows = _median_rows(rounds)
            rss = {name: {"at ready": s.rss_at_ready, "after": s.worker_rss_mb()}
                   for name, s in servers.items() if name != "floor"}
            ready = {name: s.ready_s for name, s in servers.items() if name != "floor"}
    finally:
        for server in servers.values():
            server.stop()
        upstream.stop()
    print(_table(rows))
    print()
    verdicts = _verdicts(rows, rss, ready)
    for name, ok, value in verdicts:
        print(f"{'PASS' if ok else 'FAIL'}  {name}: {value}")
    print()
    for line in _floor_lines(rows):
        print(line)
    if args.json:
        args.json.write_text(json.dumps({"rows": [asdict(r) for r in rows], "rss_mb": rss,
                                         "ready_s": ready, "verdicts": verdicts}, indent=2))


if __name__ == "__main__":
    main()
