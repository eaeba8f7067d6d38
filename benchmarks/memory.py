"""Peak memory: a process routing through the Router against one using bare aiohttp.

Each client runs in a fresh process of its own (so imports and caches are
its own) and drives the same plain create at concurrency 32 against one fake
upstream process; the child reports its peak RSS (``ru_maxrss``) at start (after
its imports and, for the router, building a ``Router``) and after the load.
Issue 17 asks the router's peak to stay within 1.25x the bare client's.

    .venv/bin/python benchmarks/memory.py [--requests 4000] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TARGET = 1.25
CONCURRENCY = 32
MODEL = "gpt-4o"
INPUT = "Say hello in one short sentence."
#: The children import only what their client needs (nothing of the router for
#: the bare one), so each peak is that client's own.
BODY = json.dumps({"model": MODEL, "input": INPUT, "store": False}).encode()
HEADERS = {"content-type": "application/json", "authorization": "Bearer k"}


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def _bare(url: str, requests: int) -> dict[str, float]:
    import aiohttp

    start = _peak_mb()
    async with aiohttp.ClientSession() as session:
        async def one() -> None:
            async with session.post(f"{url}/v1/responses", data=BODY, headers=HEADERS) as answer:
                json.loads(await answer.read())
        await _load(one, requests)
    return {"start": start, "peak": _peak_mb()}


async def _router(url: str, requests: int) -> dict[str, float]:
    from router.router import Router

    router = Router([{"model_name": MODEL, "litellm_params": {
        "model": f"openai/{MODEL}", "api_base": f"{url}/v1", "api_key": "k"}}])
    start = _peak_mb()

    async def one() -> None:
        await router.aresponses(model=MODEL, input=INPUT, store=False)
    await _load(one, requests)
    await router.aclose()
    return {"start": start, "peak": _peak_mb()}


async def _load(one: Any, requests: int) -> None:
    left = requests

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await one()

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))


def _child(kind: str, url: str, requests: int) -> None:
    run = _bare if kind == "bare" else _router
    print(json.dumps(asyncio.run(run(url, requests))))


def _measure(kind: str, url: str, requests: int) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, "--child", kind, url, str(requests)],
                         capture_output=True, text=True, check=True, cwd=ROOT)
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--quick", action="store_true", help="500 requests")
    parser.add_argument("--child", nargs=3, metavar=("KIND", "URL", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child[0], args.child[1], int(args.child[2]))
        return
    from benchmarks.common import markdown_table
    from router.testing import UpstreamProcess

    requests = 500 if args.quick else args.requests
    with UpstreamProcess("memory", api_key="k", record_requests=False) as upstream:
        bare = _measure("bare", upstream.url, requests)
        routed = _measure("router", upstream.url, requests)
    rows = [["bare aiohttp", f"{bare['start']:.1f}", f"{bare['peak']:.1f}"],
            ["Router, 1 deployment", f"{routed['start']:.1f}", f"{routed['peak']:.1f}"]]
    print(f"## Peak RSS, {requests} plain creates at concurrency {CONCURRENCY}, "
          "one fresh process per client\n")
    print(markdown_table(["client", "RSS at start MB", "peak RSS MB"], rows))
    ratio = routed["peak"] / bare["peak"]
    print(f"\n- {'PASS' if ratio <= TARGET else 'FAIL'}: router peak RSS <= {TARGET}x the "
          f"bare client's: {ratio:.2f}x")


if __name__ == "__main__":
    main()
