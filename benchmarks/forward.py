"""The floor under any aiohttp proxy: a bare forwarder, for ``proxy.py``'s ``floor`` row.

It does the least a Responses proxy can do on aiohttp: read the body, parse
it, send it to one upstream through one pooled ``aiohttp.ClientSession``,
and answer with what came back (a JSON body parsed and written again; a
stream relayed chunk by chunk, without reading its events). No auth, no
routing, no checks, no state. On the event loop the server's workers use
(uvloop when installed). What it adds to a request is what the HTTP stack
costs on this machine, whatever runs on it; the server's figure minus this
one is the server's own layer.

    .venv/bin/python -m benchmarks.forward UPSTREAM_URL UPSTREAM_KEY

prints ``READY http://127.0.0.1:PORT`` and serves until SIGTERM.
"""

from __future__ import annotations

import asyncio
import signal
import sys

import aiohttp
from aiohttp import web

from router.proxy.worker import loop_factory
from router.types import dump_json, parse_json

__all__ = ["serve"]


def _app(session: aiohttp.ClientSession, upstream: str, key: str) -> web.Application:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    async def create(request: web.Request) -> web.StreamResponse:
        body = parse_json(await request.read())
        async with session.post(f"{upstream}/v1/responses", data=dump_json(body),
                                headers=headers) as answer:
            if not body.get("stream"):
                return web.Response(status=answer.status, body=dump_json(
                    parse_json(await answer.read())), content_type="application/json")
            out = web.StreamResponse(status=answer.status,
                                     headers={"Content-Type": "text/event-stream"})
            await out.prepare(request)
            async for chunk in answer.content.iter_any():
                await out.write(chunk)
            await out.write_eof()
            return out

    app = web.Application()
    app.router.add_post("/v1/responses", create)
    return app


async def serve(upstream: str, key: str) -> None:
    """Serve on a free loopback port until SIGTERM; print ``READY <url>`` once listening."""
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with aiohttp.ClientSession() as session:
        runner = web.AppRunner(_app(session, upstream, key), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        print(f"READY http://127.0.0.1:{port}", flush=True)
        await stop.wait()
        await runner.cleanup()


def main() -> None:
    with asyncio.Runner(loop_factory=loop_factory("auto")) as runner:
        runner.run(serve(sys.argv[1], sys.argv[2]))


if __name__ == "__main__":
    main()
