"""Shared helpers for the benchmarks: fake upstreams, a load driver, tables, JSON.

Every benchmark drives a client (a bare HTTP client or a :class:`router.Router`)
against fake upstreams that run in *separate OS processes*
(:class:`router.testing.UpstreamProcess`), so the client's event loop and CPU
time are its own. :func:`measure` runs ``N`` calls at a fixed concurrency and
reports requests/s, p50/p99 latency and the client process's CPU time per
request (``time.process_time``), plus the upstreams' CPU per request (read
from ``/proc``) so a saturated upstream is visible rather than hidden.

:func:`compare` runs several :class:`Variant` s in interleaved rounds (the
order rotates each round) and keeps the median of each figure over the
rounds, which damps drift on a small, shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from router.testing import UpstreamProcess

__all__ = [
    "HEADERS",
    "INPUT",
    "MODEL",
    "Call",
    "Measurement",
    "Sizes",
    "Variant",
    "compare",
    "create_body",
    "environment",
    "fmt",
    "markdown_table",
    "measure",
    "openai_deployment",
    "parse_args",
    "percentile",
    "print_header",
    "run_in_loop",
    "running",
    "upstreams",
    "verdict",
    "write_json",
]

#: One request to drive: performs a full call (including reading the whole answer).
Call = Callable[[], Awaitable[None]]

MODEL = "gpt-4o"
INPUT = "Say hello in one short sentence."
API_KEY = "k"
HEADERS = {"content-type": "application/json", "authorization": f"Bearer {API_KEY}"}
_CLOCK_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


# --------------------------------------------------------------------------- setup


def openai_deployment(
    url: str, *, model_name: str = MODEL, deployment_id: str | None = None
) -> dict[str, Any]:
    """A ``model_list`` entry for one fake upstream, OpenAI shape."""
    entry: dict[str, Any] = {
        "model_name": model_name,
        "litellm_params": {"model": f"openai/{MODEL}", "api_base": f"{url}/v1", "api_key": API_KEY},
    }
    if deployment_id is not None:
        entry["model_info"] = {"id": deployment_id}
    return entry


def create_body(*, stream: bool = False, previous_response_id: str | None = None) -> bytes:
    """The JSON body the router would send for the benchmark's create call."""
    body: dict[str, Any] = {"model": MODEL, "input": INPUT}
    if previous_response_id is not None:
        body["previous_response_id"] = previous_response_id
    if stream:
        body["stream"] = True
    return json.dumps(body).encode()


@contextlib.asynccontextmanager
async def running(procs: Sequence[UpstreamProcess]) -> AsyncIterator[None]:
    """Start ``procs`` in parallel threads; stop every one of them at the end."""
    try:
        started = await asyncio.gather(
            *(asyncio.to_thread(p.start) for p in procs), return_exceptions=True
        )
        for result in started:
            if isinstance(result, BaseException):
                raise result
        yield
    finally:
        await asyncio.gather(*(asyncio.to_thread(p.stop) for p in procs))


@contextlib.contextmanager
def upstreams(count: int, *, prefix: str = "up") -> Iterator[list[UpstreamProcess]]:
    """``count`` fake upstreams, each in its own process, not recording requests."""
    with contextlib.ExitStack() as stack:
        procs = [UpstreamProcess(f"{prefix}{i}", record_requests=False) for i in range(count)]
        for proc in procs:
            stack.enter_context(proc)
        yield procs


def _process_cpu(pid: int) -> float:
    """User + system CPU seconds of another process (Linux ``/proc``); 0 when unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICK


def _cpu_of(pids: Sequence[int]) -> float:
    return sum(_process_cpu(pid) for pid in pids)


# --------------------------------------------------------------------------- driving


@dataclass(frozen=True, slots=True)
class Measurement:
    """The figures of one run (or the median of several rounds)."""

    name: str
    concurrency: int
    requests: int
    seconds: float
    rps: float
    p50_us: float
    p99_us: float
    cpu_us: float  # client process CPU per request
    upstream_cpu_us: float  # all upstream processes' CPU per request
    extra: dict[str, Any] = field(default_factory=dict)


def percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted sequence (0.0 when empty)."""
    if not ordered:
        return 0.0
    index = min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))
    return ordered[index]


async def _drive(call: Call, requests: int, concurrency: int) -> list[float]:
    """Run ``requests`` calls with ``concurrency`` workers; each call's latency, seconds."""
    latencies: list[float] = []
    remaining = requests
    clock = time.perf_counter

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            t0 = clock()
            await call()
            latencies.append(clock() - t0)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


async def measure(
    name: str,
    call: Call,
    *,
    requests: int,
    concurrency: int,
    warmup: int = 0,
    upstream_pids: Sequence[int] = (),
) -> Measurement:
    """Warm up, then time ``requests`` calls at ``concurrency``."""
    if warmup:
        await _drive(call, warmup, concurrency)
    gc.collect()
    cpu0, up0, t0 = time.process_time(), _cpu_of(upstream_pids), time.perf_counter()
    latencies = await _drive(call, requests, concurrency)
    wall = time.perf_counter() - t0
    cpu, up = time.process_time() - cpu0, _cpu_of(upstream_pids) - up0
    latencies.sort()
    return Measurement(
        name=name, concurrency=concurrency, requests=requests, seconds=wall,
        rps=requests / wall, p50_us=percentile(latencies, 0.50) * 1e6,
        p99_us=percentile(latencies, 0.99) * 1e6, cpu_us=cpu / requests * 1e6,
        upstream_cpu_us=up / requests * 1e6,
    )


@dataclass(frozen=True, slots=True)
class Variant:
    """A named client setup: ``open()`` yields the call to drive and closes it after."""

    name: str
    open: Callable[[], AbstractAsyncContextManager[Call]]


def _median(runs: Sequence[Measurement]) -> Measurement:
    first = runs[0]
    if len(runs) == 1:
        return first

    def med(attr: str) -> float:
        return float(statistics.median(float(getattr(r, attr)) for r in runs))

    return Measurement(
        name=first.name, concurrency=first.concurrency,
        requests=sum(r.requests for r in runs), seconds=sum(r.seconds for r in runs),
        rps=med("rps"), p50_us=med("p50_us"), p99_us=med("p99_us"), cpu_us=med("cpu_us"),
        upstream_cpu_us=med("upstream_cpu_us"),
        extra={"rounds": len(runs), "rps_rounds": [r.rps for r in runs],
               "p50_us_rounds": [r.p50_us for r in runs]},
    )


def paired(a: Measurement, b: Measurement, attr: str, how: Callable[[float, float], float]
           ) -> tuple[float, list[float]]:
    """``how(a, b)`` round by round (each round measured both, side by side): the median
    and every round's value; one value from the medians when there were no rounds."""
    key = f"{attr}_rounds"
    mine, theirs = a.extra.get(key), b.extra.get(key)
    if not mine or not theirs or len(mine) != len(theirs):
        value = how(getattr(a, attr), getattr(b, attr))
        return value, [value]
    values = [how(x, y) for x, y in zip(mine, theirs, strict=True)]
    return float(statistics.median(values)), values


async def compare(
    variants: Sequence[Variant],
    *,
    concurrency: int,
    requests: int,
    warmup: int,
    rounds: int,
    upstream_pids: Sequence[int] = (),
) -> list[Measurement]:
    """Each variant's median figures over ``rounds`` interleaved rounds."""
    runs: dict[str, list[Measurement]] = {v.name: [] for v in variants}
    for round_no in range(rounds):
        shift = round_no % len(variants)
        for variant in [*variants[shift:], *variants[:shift]]:
            async with variant.open() as call:
                runs[variant.name].append(await measure(
                    variant.name, call, requests=requests, concurrency=concurrency,
                    warmup=warmup, upstream_pids=upstream_pids,
                ))
    return [_median(runs[v.name]) for v in variants]


def run_in_loop(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run ``main`` on a fresh default asyncio event loop."""
    asyncio.run(main())


# --------------------------------------------------------------------------- output


def fmt(value: float, digits: int = 0) -> str:
    """A number for a table cell, with thousands separators."""
    return f"{value:,.{digits}f}"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub markdown table; numeric-looking columns are right-aligned."""
    def numeric(col: int) -> bool:
        cells = [r[col] for r in rows if r[col] not in ("", "-")]
        return bool(cells) and all(c.lstrip("+-").replace(",", "").replace(".", "").replace(
            "%", "").replace("x", "").isdigit() for c in cells)

    align = ["---:" if numeric(i) else "---" for i in range(len(headers))]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def environment() -> dict[str, Any]:
    """What the figures were measured on."""
    return {
        "python": sys.version.split()[0], "platform": platform.platform(),
        "cpus": os.cpu_count(), "loop": "asyncio (default)",
        "loadavg_1m": round(os.getloadavg()[0], 2),
    }


def print_header(title: str, sizes: Sizes) -> None:
    """The table title and what the figures were measured on."""
    env = environment()
    print(f"## {title}\n")
    print(f"Python {env['python']}, {env['cpus']} CPUs, {env['loop']} loop; "
          f"{sizes.rounds} interleaved round(s), median per figure; "
          f"1-min load average at the end: {env['loadavg_1m']}\n")


def write_json(path: str | None, payload: dict[str, Any]) -> None:
    """Write ``payload`` (measurements become dicts) to ``path`` when given."""
    if not path:
        return

    def encode(obj: Any) -> Any:
        if isinstance(obj, Measurement):
            return asdict(obj)
        raise TypeError(f"cannot encode {type(obj).__name__}")

    document = {"environment": environment(), **payload}
    Path(path).write_text(json.dumps(document, indent=2, default=encode) + "\n")
    print(f"\nwrote {path}")


# --------------------------------------------------------------------------- arguments


@dataclass(frozen=True, slots=True)
class Sizes:
    """How many requests to time per run at c=1 and at c>1, warm-up, and rounds."""

    serial: int
    parallel: int
    warmup: int
    rounds: int

    def requests(self, concurrency: int) -> int:
        return self.serial if concurrency == 1 else self.parallel


def parse_args(
    doc: str | None,
    default: Sizes,
    quick: Sizes,
    *,
    extra: Callable[[argparse.ArgumentParser], None] | None = None,
    argv: Sequence[str] | None = None,
) -> tuple[argparse.Namespace, Sizes]:
    """``--quick``, ``--json PATH``, ``--rounds N``, ``--scale F`` (+ ``extra``); the sizes."""
    parser = argparse.ArgumentParser(
        description=(doc or "").split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="a ~10 s smoke run")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--rounds", type=int, help="interleaved rounds per figure")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply request counts")
    if extra is not None:
        extra(parser)
    args = parser.parse_args(argv)
    sizes = quick if args.quick else default
    sizes = Sizes(
        serial=max(10, int(sizes.serial * args.scale)),
        parallel=max(10, int(sizes.parallel * args.scale)),
        warmup=sizes.warmup, rounds=args.rounds or sizes.rounds,
    )
    return args, sizes
