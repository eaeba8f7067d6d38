"""Which HTTP server should the proxy run on? aiohttp's against Starlette on uvicorn.

Both serve the same two endpoints in a child process on loopback: a JSON
``POST`` that decodes the body and answers a Responses-sized JSON object, and
an SSE ``POST`` that writes eight events. One aiohttp client drives each at
concurrency 1 and 64; reported: requests/s, p50, and the server's CPU per
request (from the child's ``/proc`` times). The proxy's choice (aiohttp) and
these figures are in the README's "Server" section.

    .venv/bin/python benchmarks/server_stack.py [--seconds 3]

Needs ``starlette`` and ``uvicorn`` installed (they are not dependencies).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

import aiohttp

_BODY = {"id": "resp_1", "object": "response", "status": "completed", "model": "m",
         "output": [{"type": "message", "role": "assistant", "content": [
             {"type": "output_text", "text": "hello " * 40, "annotations": []}]}],
         "usage": {"input_tokens": 10, "output_tokens": 40, "total_tokens": 50}}

_AIOHTTP = """
import json, sys
from aiohttp import web
BODY = json.dumps(%r).encode()
EVENT = b"event: response.output_text.delta\\ndata: " + BODY + b"\\n\\n"
async def create(request):
    json.loads(await request.read())
    return web.Response(body=BODY, content_type="application/json")
async def stream(request):
    json.loads(await request.read())
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    for _ in range(8):
        await resp.write(EVENT)
    await resp.write_eof()
    return resp
app = web.Application()
app.router.add_post("/json", create)
app.router.add_post("/sse", stream)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""

_STARLETTE = """
import json, sys, uvicorn
from starlette.applications import Starlette
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
BODY = json.dumps(%r).encode()
EVENT = b"event: response.output_text.delta\\ndata: " + BODY + b"\\n\\n"
async def create(request):
    json.loads(await request.body())
    return Response(BODY, media_type="application/json")
async def stream(request):
    json.loads(await request.body())
    async def events():
        for _ in range(8):
            yield EVENT
    return StreamingResponse(events(), media_type="text/event-stream")
app = Starlette(routes=[Route("/json", create, methods=["POST"]),
                        Route("/sse", stream, methods=["POST"])])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning",
            access_log=False, loop=sys.argv[2], http="httptools")
"""


def _free_port() -> int:
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _wait_up(url: str) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(200):
            try:
                async with session.post(url + "/json", data=b"{}") as r:
                    await r.read()
                    return
            except aiohttp.ClientError:
                await asyncio.sleep(0.05)
    raise RuntimeError("server did not start")


async def _drive(url: str, path: str, concurrency: int, seconds: float) -> list[float]:
    latencies: list[float] = []
    payload = json.dumps({"model": "m", "input": "hi"}).encode()
    deadline = time.perf_counter() + seconds
    conn = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=conn) as session:
        async def worker() -> None:
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                async with session.post(url + path, data=payload) as r:
                    await r.read()
                latencies.append(time.perf_counter() - start)
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


def _run(name: str, source: str, extra: list[str], seconds: float) -> list[dict[str, Any]]:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-c", source % _BODY, str(port), *extra])
    url = f"http://127.0.0.1:{port}"
    rows = []
    try:
        asyncio.run(_wait_up(url))
        for path in ("/json", "/sse"):
            for concurrency in (1, 64):
                before = _cpu(proc.pid)
                lat = asyncio.run(_drive(url, path, concurrency, seconds))
                cpu = _cpu(proc.pid) - before
                rows.append({"server": name, "kind": path[1:], "c": concurrency,
                             "req_s": len(lat) / seconds,
                             "p50_us": statistics.median(lat) * 1e6,
                             "cpu_us": cpu / len(lat) * 1e6})
    finally:
        proc.terminate()
        proc.wait()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    rows = _run("aiohttp", _AIOHTTP, [], args.seconds)
    rows += _run("starlette+uvicorn(asyncio)", _STARLETTE, ["asyncio"], args.seconds)
    try:
        import uvloop  # noqa: F401
        rows += _run("starlette+uvicorn(uvloop)", _STARLETTE, ["uvloop"], args.seconds)
    except ImportError:
        pass
    print(f"{'server':28} {'kind':5} {'c':>3} {'req/s':>8} {'p50 µs':>8} {'CPU µs/req':>10}")
    for r in rows:
        print(f"{r['server']:28} {r['kind']:5} {r['c']:>3} {r['req_s']:>8.0f} "
              f"{r['p50_us']:>8.0f} {r['cpu_us']:>10.0f}")


if __name__ == "__main__":
    main()
