"""One serving process: a Router, the app, and the listening socket it inherits.

Started by :mod:`router.proxy.supervisor` as ``python -m router.proxy.worker``
with the listening socket's file descriptor (shared by every worker: the
kernel hands each new connection to one of them). It tells the supervisor
it is ready by writing a line to the readiness pipe, and on SIGTERM (or
SIGINT) it drains: it stops accepting, reports not ready, lets in-flight
requests and streams finish within ``graceful_shutdown_timeout``, ends the
streams still open with an ``error`` event, cancels what is left, closes
the Router and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import yaml
from aiohttp import web

from router.errors import ConfigError
from router.proxy.app import ServerContext, cut_streams, make_app
from router.proxy.auth import KeyRing
from router.proxy.metrics import ServerMetrics, gather_workers, socket_path
from router.proxy.settings import ServerSettings, server_settings
from router.proxy.state import MemoryState, RedisState, ServerState
from router.proxy.supervisor import EX_CONFIG
from router.router import Router

__all__ = ["WorkerOptions", "load_document", "main", "run_worker"]

log = logging.getLogger("router.proxy")

#: Streams still open this long before the grace period ends are cut (with an
#: ``error`` event), so they end before aiohttp cancels what is left.
_CUT_MARGIN = 0.25


class WorkerOptions(argparse.Namespace):
    config: str
    fd: int
    ready_fd: int
    index: int
    run_dir: str


def load_document(path: str) -> dict[str, object]:
    """The config file as a mapping (YAML, of which JSON is a subset)."""
    with open(path, encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    return doc if isinstance(doc, dict) else {}


def _state(settings: ServerSettings) -> ServerState:
    if settings.redis_dsn is None:
        return MemoryState(time.time, ttl=settings.ownership_ttl)
    return RedisState(settings.redis_dsn.get_secret_value(), prefix=settings.redis_key_prefix,
                      ttl=settings.ownership_ttl, wall=time.time)


def _local_app(registry: object) -> web.Application:
    from prometheus_client import generate_latest

    async def local_metrics(request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(registry),  # type: ignore[arg-type]
                            content_type="text/plain")

    app = web.Application()
    app.router.add_get("/metrics", local_metrics)
    return app


async def _start(runner: web.BaseRunner, site_factory: type[web.BaseSite], *args: object
                 ) -> None:
    await runner.setup()
    await site_factory(runner, *args).start()


async def run_worker(opts: WorkerOptions) -> None:
    """Serve until SIGTERM, then drain and exit."""
    from prometheus_client import CollectorRegistry

    settings = server_settings(load_document(opts.config), source=opts.config)
    registry = CollectorRegistry(auto_describe=True)
    run_dir = Path(opts.run_dir)
    state = _state(settings)
    keys = KeyRing(settings)
    if keys.open:
        log.warning("no master_key or api_keys configured: every caller is let in")
    async with Router.from_config(opts.config, metrics=registry) as router:
        ctx = ServerContext(
            router, settings, state, keys, ServerMetrics(registry),
            lambda: gather_workers(run_dir), redis_configured=settings.redis_dsn is not None)
        runner = web.AppRunner(
            make_app(ctx), handler_cancellation=True, access_log=None,
            keepalive_timeout=settings.idle_timeout,
            shutdown_timeout=settings.graceful_shutdown_timeout)
        local = web.AppRunner(_local_app(registry), access_log=None, shutdown_timeout=1.0)
        sock = socket.socket(fileno=opts.fd)
        private = socket_path(run_dir, opts.index)
        with contextlib.suppress(FileNotFoundError):
            private.unlink()
        await _start(local, web.UnixSite, str(private))
        await _start(runner, web.SockSite, sock)
        stop = _stop_event()
        os.write(opts.ready_fd, f"ready {opts.index} {os.getpid()}\n".encode())
        os.close(opts.ready_fd)
        await stop.wait()
        ctx.draining = True
        grace = settings.graceful_shutdown_timeout
        log.info("worker %d draining (up to %gs)", opts.index, grace)
        cutter = asyncio.create_task(cut_streams(ctx, max(0.0, grace - _CUT_MARGIN)))
        await runner.cleanup()
        cutter.cancel()
        await local.cleanup()
        await state.aclose()


def _stop_event() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


def _parse(argv: Sequence[str] | None) -> WorkerOptions:
    parser = argparse.ArgumentParser(prog="python -m router.proxy.worker")
    parser.add_argument("--config", required=True)
    parser.add_argument("--fd", type=int, required=True, help="listening socket")
    parser.add_argument("--ready-fd", type=int, required=True, help="readiness pipe")
    parser.add_argument("--index", type=int, required=True)
    parser.add_argument("--run-dir", required=True)
    return parser.parse_args(argv, namespace=WorkerOptions())


def main(argv: Sequence[str] | None = None) -> None:
    logging.basicConfig(level=os.environ.get("RESPONSES_ROUTER_LOG", "WARNING").upper(),
                        format="%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s")
    try:
        asyncio.run(run_worker(_parse(argv)))
    except ConfigError as exc:
        print(f"responses-router: {exc}", file=sys.stderr, flush=True)
        sys.exit(EX_CONFIG)


if __name__ == "__main__":
    main()
