"""One serving process: a Router, the app, and the listening socket it inherits.

Forked by :mod:`router.proxy.supervisor` (:func:`run_worker`) with the
listening socket's file descriptor (shared by every worker: the kernel hands
each new connection to one of them). It tells the supervisor
it is ready by writing a line to the readiness pipe, and on SIGTERM (or
SIGINT) it drains: it stops accepting, reports not ready, lets in-flight
requests and streams finish within ``graceful_shutdown_timeout``, ends the
streams still open with an ``error`` event, cancels what is left, closes
the Router and exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import yaml
from aiohttp import web

from router.clock import SystemClock
from router.config.loading import ConfigWarning
from router.errors import ConfigError
from router.proxy.app import ServerContext, cut_streams, make_app
from router.proxy.auth import KeyRing
from router.proxy.metrics import ServerMetrics, gather_workers, socket_path
from router.proxy.settings import ServerSettings, server_settings
from router.proxy.state import MemoryState, RedisState, ServerState
from router.proxy.supervisor import EX_CONFIG, WorkerSpec
from router.router import Router

__all__ = ["LOOPS", "load_document", "loop_factory", "run_worker", "serve"]

log = logging.getLogger("router.proxy")

#: Streams still open this long before the grace period ends are cut (with an
#: ``error`` event), so they end before aiohttp cancels what is left.
_CUT_MARGIN = 0.25

#: ``--loop`` choices: uvloop's event loop when installed (``auto``), or always asyncio's.
LOOPS = ("auto", "uvloop", "asyncio")

LoopFactory = Callable[[], asyncio.AbstractEventLoop]


def loop_factory(name: str) -> LoopFactory | None:
    """The event loop the workers run (``None``: asyncio's own).

    uvloop (in the ``proxy`` extra) takes about a tenth off the server's CPU
    per request (README, "What it costs"); ``auto`` uses it when it is
    installed. ``uvloop`` insists on it: a :class:`ConfigError` if it is not.
    """
    if name not in LOOPS:
        raise ConfigError(f"--loop: expected one of {', '.join(LOOPS)}, got {name!r}")
    if name == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if name == "uvloop":
            raise ConfigError("--loop uvloop: uvloop is not installed "
                              "(pip install 'responses-router[proxy]')") from None
        return None
    return uvloop.new_event_loop


def load_document(path: str) -> dict[str, object]:
    """The config file as a mapping (YAML, of which JSON is a subset)."""
    with open(path, encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    return doc if isinstance(doc, dict) else {}


def _state(settings: ServerSettings, router: Router) -> ServerState:
    if settings.redis_target is None:
        return MemoryState(time.time, router.aresponse_owner, ttl=settings.ownership_ttl)
    return RedisState(settings.redis_target, prefix=settings.redis_key_prefix,
                      ttl=settings.ownership_ttl, clock=SystemClock())


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


async def serve(spec: WorkerSpec) -> None:
    """Serve until SIGTERM, then drain and return."""
    from prometheus_client import CollectorRegistry

    settings = server_settings(load_document(spec.config), source=spec.config)
    registry = CollectorRegistry(auto_describe=True)
    run_dir = Path(spec.run_dir)
    keys = KeyRing(settings)
    if keys.open:
        log.warning("no master_key or api_keys configured: every caller is let in")
    async with Router.from_config(spec.config, metrics=registry) as router:
        state = _state(settings, router)
        ctx = ServerContext(
            router, settings, state, keys, ServerMetrics(registry),
            lambda: gather_workers(run_dir), redis_configured=settings.redis_target is not None)
        runner = web.AppRunner(
            make_app(ctx), handler_cancellation=True, access_log=None,
            keepalive_timeout=settings.idle_timeout,
            shutdown_timeout=settings.graceful_shutdown_timeout)
        local = web.AppRunner(_local_app(registry), access_log=None, shutdown_timeout=1.0)
        sock = socket.socket(fileno=spec.fd)
        private = socket_path(run_dir, spec.index)
        with contextlib.suppress(FileNotFoundError):
            private.unlink()
        await _start(local, web.UnixSite, str(private))
        await _start(runner, web.SockSite, sock)
        stop = _stop_event()
        log.info("worker %d serving (pid %d, event loop %s)", spec.index, os.getpid(),
                 type(asyncio.get_running_loop()).__module__.split(".")[0])
        os.write(spec.ready_fd, f"ready {spec.index} {os.getpid()}\n".encode())
        os.close(spec.ready_fd)
        await stop.wait()
        ctx.draining = True
        grace = settings.graceful_shutdown_timeout
        log.info("worker %d draining (up to %gs)", spec.index, grace)
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


def run_worker(spec: WorkerSpec, loop: LoopFactory | None = None) -> int:
    """The body of a forked worker process, on the event loop ``loop`` makes (asyncio's by
    default); returns its exit status."""
    logging.basicConfig(level=os.environ.get("RESPONSES_ROUTER_LOG", "WARNING").upper(),
                        format="%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s")
    warnings.simplefilter("ignore", ConfigWarning)  # the supervisor reported them once
    try:
        with asyncio.Runner(loop_factory=loop) as runner:
            runner.run(serve(spec))
    except ConfigError as exc:
        print(f"responses-router: {exc}", file=sys.stderr, flush=True)
        return EX_CONFIG
    return 0
