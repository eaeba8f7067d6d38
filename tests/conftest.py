"""Shared fixtures: real loopback upstreams and routers that are closed after each test.

* ``upstreams``: ``a, b = await upstreams("east", "west")`` starts named
  :class:`router.testing.Upstream` servers (``api_key="k1"`` unless given) on the
  test's event loop and stops them at teardown.
* ``threaded_upstreams``: the same for plain ``def`` tests (the sync twins):
  each upstream runs on an event loop in a thread of its own, since the test's
  thread has no running loop to serve from.
* ``make_router``: ``router = make_router(model_list, **settings)`` (or
  ``make_router(config=doc)`` / ``make_router(path=...)``) builds a Router and
  closes it (``aclose``) at teardown, for async and sync tests alike.

Helpers to write deployments: :func:`openai_dep`, :func:`azure_dep`, and
:class:`InOrder`, a strategy that always picks the first candidate so retry and
failover paths are deterministic.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import ssl
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from providers.aiohttp_sender import AiohttpSender
from router.router import Router
from router.testing import Upstream

DEFAULT_KEY = "k1"


def openai_dep(
    up: Upstream,
    model_name: str = "gpt-4o",
    *,
    id: str | None = None,
    model: str = "openai/gpt-4o",
    api_key: str | None = DEFAULT_KEY,
    model_info: dict[str, Any] | None = None,
    **params: Any,
) -> dict[str, Any]:
    """An OpenAI deployment of ``model_name`` served by ``up`` (id: the upstream's name)."""
    litellm_params: dict[str, Any] = {"model": model, "api_base": f"{up.url}/v1", **params}
    if api_key is not None:
        litellm_params["api_key"] = api_key
    info = {"id": id or up.name, **(model_info or {})}
    return {"model_name": model_name, "litellm_params": litellm_params, "model_info": info}


def azure_dep(
    up: Upstream,
    model_name: str = "gpt-4o",
    *,
    id: str | None = None,
    deployment: str = "my-deployment",
    api_key: str | None = DEFAULT_KEY,
    api_base: str | None = None,
    **params: Any,
) -> dict[str, Any]:
    """An Azure deployment (v1 URL shape unless ``api_version`` is given) served by ``up``."""
    litellm_params: dict[str, Any] = {
        "model": f"azure/{deployment}", "api_base": api_base or up.url, **params,
    }
    if api_key is not None:
        litellm_params["api_key"] = api_key
    return {
        "model_name": model_name,
        "litellm_params": litellm_params,
        "model_info": {"id": id or up.name},
    }


class InOrder:
    """A strategy that picks the first candidate: the config order decides."""

    def pick(self, candidates: Sequence[Any], request: Any) -> Any:
        return candidates[0]


def create_paths(up: Upstream) -> list[str]:
    """Paths of the create (``POST``) requests ``up`` received."""
    return [r.path for r in up.requests if r.method == "POST" and r.path.endswith("/responses")]


# --------------------------------------------------------------------------- upstreams

StartUpstreams = Callable[..., Awaitable[tuple[Upstream, ...]]]


@pytest.fixture
async def upstreams() -> AsyncIterator[StartUpstreams]:
    """Start named upstreams on the test's loop; all are stopped at teardown."""
    started: list[Upstream] = []

    async def start(*names: str, api_key: str | None = DEFAULT_KEY,
                    **options: Any) -> tuple[Upstream, ...]:
        ups = []
        for name in names:
            up = Upstream(name, api_key=api_key, **options)
            await up.start()
            started.append(up)
            ups.append(up)
        return tuple(ups)

    yield start
    await asyncio.gather(*(up.stop() for up in started), return_exceptions=True)


class _LoopThread:
    """An event loop running in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True,
                                        name="test-upstreams")
        self._thread.start()

    def run(self, coro: Awaitable[Any], timeout: float = 10.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)  # type: ignore[arg-type]

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        self.loop.close()


@pytest.fixture
def threaded_upstreams() -> Iterator[Callable[..., tuple[Upstream, ...]]]:
    """Like ``upstreams`` but callable from sync tests: servers run on a thread's loop."""
    runner = _LoopThread()
    started: list[Upstream] = []

    def start(*names: str, api_key: str | None = DEFAULT_KEY,
              **options: Any) -> tuple[Upstream, ...]:
        async def make(name: str) -> Upstream:
            up = Upstream(name, api_key=api_key, **options)
            await up.start()
            return up

        ups = tuple(runner.run(make(name)) for name in names)
        started.extend(ups)
        return ups

    yield start
    for up in started:
        runner.run(up.stop())
    runner.stop()


# --------------------------------------------------------------------------- routers


@pytest.fixture
async def make_router() -> AsyncIterator[Callable[..., Router]]:
    """Build routers (``Router(model_list, **settings)``); each is closed at teardown.

    ``config=`` builds with :meth:`Router.from_dict`, ``path=`` with
    :meth:`Router.from_config`.
    """
    routers: list[Router] = []

    def make(model_list: Sequence[dict[str, Any]] | None = None, *,
             config: dict[str, Any] | None = None, path: str | Path | None = None,
             **settings: Any) -> Router:
        if config is not None:
            router = Router.from_dict(config, **settings)
        elif path is not None:
            router = Router.from_config(path, **settings)
        else:
            router = Router(list(model_list or ()), **settings)
        routers.append(router)
        return router

    yield make
    for router in routers:
        await router.aclose()


async def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll ``predicate`` every 5 ms until it holds (True) or ``timeout`` passes (False)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.005)
    return True


def sender_connections_in_use(sender: AiohttpSender) -> int:
    """Connections ``sender`` has checked out of its pool and not given back.

    Reads the aiohttp connector's ``_acquired`` (a renamed internal fails
    loudly); idle keep-alive connections are not counted.
    """
    connector = sender._session.connector
    return 0 if connector is None else len(connector._acquired)


@contextlib.asynccontextmanager
async def serve_routes(
    tls: ssl.SSLContext | None = None,
    **routes: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> AsyncIterator[str]:
    """Serve each handler at ``/<name>`` (any method, ``__`` in a name for ``/``) on a
    loopback port, over HTTPS with ``tls``; yields ``http(s)://127.0.0.1:port``. For
    raw HTTP behaviour the Responses upstream does not play (cut status lines, bad
    gzip, held bodies, certificates)."""
    app = web.Application()
    for name, handler in routes.items():
        app.router.add_route("*", "/" + name.replace("__", "/"), handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@contextlib.contextmanager
def no_reference_cycles() -> Iterator[None]:
    """Fail when the block leaves the router's or a provider's objects in reference cycles.

    Such objects outlive their request until a garbage collection finds them,
    which costs every request a share of that collection's work. The collector
    is paused for the block; what it then finds is kept and inspected.
    """
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        yield
        gc.collect()
        ours = sorted({f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.garbage
                       if type(o).__module__.startswith(("providers.", "router."))
                       and not type(o).__module__.startswith("router.testing")})
        assert not ours, f"left in reference cycles: {', '.join(ours)}"
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        if was_enabled:
            gc.enable()


async def calls_leave_no_cycles(router: Router, model: str, **params: Any) -> None:
    """Plain and streamed calls, kept and ``store=false``: once to warm up (pools, caches),
    then again under :func:`no_reference_cycles`."""
    for warm_up in (True, False):
        with contextlib.nullcontext() if warm_up else no_reference_cycles():
            for store in (True, False):
                await router.aresponses(model=model, input="hello", store=store, **params)
                stream = await router.aresponses(model=model, input="hello", stream=True,
                                                 store=store, **params)
                async for _ in stream:
                    pass
