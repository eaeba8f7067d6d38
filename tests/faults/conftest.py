"""Fixtures of the fault-injection suite, and the leak check that runs after every test.

* ``make_router`` and ``upstreams`` wrap the fixtures of ``tests/conftest.py``
  and remember what they made, so that :func:`no_leaks` can inspect it.
* ``no_leaks`` (autouse): after each test, while the routers are still open,
  every router is back to zero requests in flight and holds no pooled
  connection in use (:func:`connections_in_use`), and no task the test left
  behind is still running, apart from the router's long-lived background work
  and the upstreams' server side. Then routers and upstreams are closed and no
  task at all may be left. Waits are a settle (at most ``SETTLE`` seconds of
  polling), never timing assertions.
* :class:`ScriptedUpstream`: a streaming upstream that plays a fixed script of
  SSE frames (``error`` events, bad JSON, a pause mid-stream, a cut), for what
  :class:`router.testing.FaultPlan` cannot inject.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from router.router import Router
from router.testing import Upstream
from tests.conftest import sender_connections_in_use, wait_until

#: Longest wait for in-flight work to wind down after a test (a settle, not a bound).
SETTLE = 3.0

#: Background work a router keeps while it is open (ended by ``aclose``).
_LONG_LIVED = frozenset({"SharedCooldowns._subscribe", "SharedCooldowns._write"})


# --------------------------------------------------------------------------- helpers


def attempts_of(trail: Any) -> list[tuple[str, str, str | None]]:
    """``(group, deployment, error class or None)`` per attempt of a trail."""
    return [(a.model_group, a.deployment_id, a.error) for a in trail.attempts]


def connections_in_use(router: Router) -> int:
    """Pooled connections the router has checked out and not given back.

    The default pool is one ``AiohttpSender`` per upstream origin
    (``ClientPool._senders``); see :func:`tests.conftest.connections_in_use`.
    """
    return sum(
        sender_connections_in_use(sender)  # type: ignore[arg-type]
        for sender in list(router._parts.pool._senders.values())
    )


def _name(task: asyncio.Task[Any]) -> str:
    coro = task.get_coro()
    return str(getattr(coro, "__qualname__", type(coro).__name__))


def _server_side(task: asyncio.Task[Any]) -> bool:
    """A task of a test upstream's HTTP server (aiohttp's web side, the fake itself)."""
    code = getattr(task.get_coro(), "cr_code", None)
    filename = "" if code is None else code.co_filename.replace("\\", "/")
    return "/aiohttp/web_" in filename or filename.endswith("/router/testing/upstream.py") \
        or filename.endswith("/tests/faults/conftest.py")


# --------------------------------------------------------------------------- a scripted upstream

#: Script steps (besides event dicts and raw bytes).
PAUSE = "pause"  # hold the stream until ``resume()`` (or stop)
CUT = "cut"  # close the connection


@dataclass
class ScriptedUpstream:
    """Answers ``POST /v1/responses`` (any body) with ``script`` as a text/event-stream.

    A dict step is sent as ``event: <type>`` with the dict as JSON data, bytes
    as they are; :data:`PAUSE` waits for :meth:`resume` (``paused`` is set
    while it waits), :data:`CUT` closes the connection. The stream ends after
    the last step. ``hits`` counts the requests received.
    """

    name: str
    script: Sequence[dict[str, Any] | bytes | str]
    hits: int = 0
    paused: asyncio.Event = field(default_factory=asyncio.Event)
    _go: asyncio.Event = field(default_factory=asyncio.Event)
    _runner: web.AppRunner | None = None
    _port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    def resume(self) -> None:
        self._go.set()

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/responses", self._answer)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        self._go.set()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        self.hits += 1
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        for seq, step in enumerate(self.script):
            if step == PAUSE:
                self.paused.set()
                await self._go.wait()
            elif step == CUT:
                if request.transport is not None:
                    request.transport.close()
                return resp
            elif isinstance(step, bytes):
                await resp.write(step)
            elif isinstance(step, dict):
                data = json.dumps({**step, "sequence_number": seq})
                await resp.write(f"event: {step['type']}\ndata: {data}\n\n".encode())
        await resp.write_eof()
        return resp


def created_event(response_id: str = "resp_scripted") -> dict[str, Any]:
    """A ``response.created`` event as OpenAI sends it first."""
    return {"type": "response.created", "response": {
        "id": response_id, "object": "response", "status": "in_progress", "model": "gpt-4o",
        "output": [], "error": None,
    }}


def error_event(code: str | None, message: str = "scripted failure") -> dict[str, Any]:
    """An SSE ``error`` event (OpenAI's shape: code and message at the top)."""
    return {"type": "error", "code": code, "message": message, "param": None}


# --------------------------------------------------------------------------- tracking fixtures


@dataclass
class Made:
    """What the test built: closed and checked by :func:`no_leaks`."""

    routers: list[Router] = field(default_factory=list)
    upstreams: list[Any] = field(default_factory=list)


@pytest.fixture
def made() -> Iterator[Made]:
    yield Made()


@pytest.fixture
def make_router(make_router: Callable[..., Router], made: Made) -> Callable[..., Router]:
    """``tests/conftest.py``'s ``make_router``, remembering each router."""

    def make(*args: Any, **kwargs: Any) -> Router:
        router = make_router(*args, **kwargs)
        made.routers.append(router)
        return router

    return make


@pytest.fixture
def upstreams(upstreams: Callable[..., Any], made: Made) -> Callable[..., Any]:
    """``tests/conftest.py``'s ``upstreams``, remembering each upstream."""

    async def start(*names: str, **options: Any) -> tuple[Upstream, ...]:
        ups: tuple[Upstream, ...] = await upstreams(*names, **options)
        made.upstreams.extend(ups)
        return ups

    return start


@pytest.fixture
async def scripted(made: Made) -> AsyncIterator[Callable[..., Any]]:
    """``up = await scripted("a", [created_event(), PAUSE, ...])``: started, stopped after."""

    async def start(name: str, script: Sequence[dict[str, Any] | bytes | str]) -> ScriptedUpstream:
        up = ScriptedUpstream(name, script)
        await up.start()
        made.upstreams.append(up)
        return up

    yield start


# --------------------------------------------------------------------------- the leak check


@pytest.fixture(autouse=True)
async def no_leaks(
    made: Made, make_router: Any, upstreams: Any
) -> AsyncIterator[None]:
    """After the test: no load, no connection in use, no task left (see the module docstring)."""
    before = asyncio.all_tasks()
    yield
    here = asyncio.current_task()

    def left(*, open_routers: bool) -> list[asyncio.Task[Any]]:
        new = [t for t in asyncio.all_tasks() - before if t is not here and not t.done()]
        if open_routers:
            new = [t for t in new if _name(t) not in _LONG_LIVED and not _server_side(t)]
        return new

    def quiet() -> bool:
        return not left(open_routers=True) and all(
            r.services.load.total_in_flight() == 0 and connections_in_use(r) == 0
            for r in made.routers)

    await wait_until(quiet, SETTLE)
    try:
        leaks = {
            "in flight": [r.services.load.total_in_flight() for r in made.routers],
            "connections in use": [connections_in_use(r) for r in made.routers],
            "tasks": [_name(t) for t in left(open_routers=True)],
        }
        assert leaks == {"in flight": [0] * len(made.routers),
                         "connections in use": [0] * len(made.routers), "tasks": []}
    finally:
        for router in made.routers:
            await router.aclose()
        await asyncio.gather(*(up.stop() for up in made.upstreams), return_exceptions=True)
    await wait_until(lambda: not left(open_routers=False), SETTLE)
    assert [_name(t) for t in left(open_routers=False)] == [], "tasks left after closing"
