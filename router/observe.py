"""Callbacks: how the router calls its observers without ever waiting for them.

A *callback* is passed per router (``Router(callbacks=[...])``) and is either

* an object with any of the hook methods ``on_success``, ``on_failure``,
  ``on_retry``, ``on_fallback``, ``on_cooldown`` (subclassing
  :class:`router.events.Callback` is optional; methods left as its no-ops
  are skipped), sync or ``async def``; or
* a plain callable, sync or async, called with every event (dispatch on its type).

Each hook gets one typed, immutable event (:mod:`router.events`), built once
per request and shared by every callback. Every create call ends in exactly
one ``on_success`` or ``on_failure``, a request rejected before routing (an
:class:`~router.errors.InvalidRequestError` from its arguments) included;
every failed attempt is in the event's ``trail``.

Callbacks never delay or break a request:

* no callback runs inline: sync callbacks run on the event loop right after
  the router returns (``loop.call_soon``, one call per event for all of them),
  so the caller holds the response first. They must be quick: a sync callback
  that blocks blocks the loop; slow work belongs in an ``async def`` callback.
  (The router's own observers, the Prometheus metrics and the request log,
  run inline: a few microseconds of arithmetic, cheaper than deferring them.)
* async callbacks run in one background task per event, at most
  ``CallbackLimits.max_pending`` tasks at once (beyond that the event is
  dropped and counted); the async callbacks of one event are stopped
  (cancelled, counted as timed out) after ``CallbackLimits.timeout`` seconds.
* an exception a callback raises is logged once per callback (with its
  traceback) and then only counted; see :meth:`Observers.stats`.

With no callback, no metrics and INFO logging of ``router.request`` off, the
request path builds no event and schedules nothing (:meth:`Observers.watching`).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from router.cost import TokenUsage
from router.errors import RouterError, error_from_failed_response
from router.events import (
    HOOKS,
    Callback,
    CooldownEvent,
    EndUser,
    FailureEvent,
    FallbackEvent,
    RetryEvent,
    SuccessEvent,
)
from router.logs import RequestLog
from router.types import AttemptTrail

if TYPE_CHECKING:
    from router.clock import Clock
    from router.cooldown import CooldownEntry
    from router.cost import Prices
    from router.errors import UpstreamError
    from router.request import RouteRequest
    from router.types import RoutingInfo

__all__ = ["CallbackLimits", "CallbackStats", "Hook", "Observers", "StreamWatch"]

log = logging.getLogger("router.observe")


@dataclass(frozen=True, slots=True)
class CallbackLimits:
    """Bounds on callback work: ``max_pending`` async callback tasks at once
    (events beyond it are dropped and counted), ``timeout`` seconds the async
    callbacks of one event may take together before they are cancelled
    (``None``: no limit)."""

    max_pending: int = 1000
    timeout: float | None = 10.0

    def __post_init__(self) -> None:
        if self.max_pending < 1:
            raise ValueError(f"CallbackLimits.max_pending must be >= 1, got {self.max_pending}")
        if self.timeout is not None and not self.timeout > 0:
            raise ValueError(f"CallbackLimits.timeout must be > 0 or None, got {self.timeout}")


@dataclass(frozen=True, slots=True)
class CallbackStats:
    """Callback trouble so far: calls that raised, async calls that timed out,
    events dropped because ``max_pending`` tasks were already running."""

    errors: int
    timeouts: int
    dropped: int


class _Handler:
    """One callable behind one hook, and whether its failure was logged yet."""

    __slots__ = ("fn", "is_async", "logged", "name")

    def __init__(self, fn: Callable[[Any], Any], name: str) -> None:
        self.fn = fn
        self.name = name
        self.is_async = _is_async(fn)
        self.logged = False


def _is_async(fn: Callable[..., Any]) -> bool:
    if inspect.iscoroutinefunction(fn):
        return True
    call = getattr(fn, "__call__", None)  # noqa: B004  (an object with async __call__)
    return call is not None and inspect.iscoroutinefunction(call)


class Hook:
    """The handlers of one hook: built-in ones run inline, the callbacks' sync and
    async ones deferred; false when there is none."""

    __slots__ = ("async_", "inline", "sync")

    def __init__(self, handlers: Sequence[_Handler], inline: Sequence[_Handler] = ()) -> None:
        self.inline = tuple(inline)
        self.sync = tuple(h for h in handlers if not h.is_async)
        self.async_ = tuple(h for h in handlers if h.is_async)

    def __bool__(self) -> bool:
        return bool(self.inline or self.sync or self.async_)


def _handlers(callbacks: Sequence[object]) -> dict[str, list[_Handler]]:
    """Each hook's handlers, in the order the callbacks were given."""
    found: dict[str, list[_Handler]] = {hook: [] for hook in HOOKS}
    for i, callback in enumerate(callbacks):
        methods = _hook_methods(callback)
        if methods:
            for hook, method in methods.items():
                found[hook].append(_Handler(method, f"{type(callback).__name__}.{hook}"))
        elif callable(callback):
            name = getattr(callback, "__qualname__", type(callback).__name__)
            handler = _Handler(callback, str(name))
            for hook in HOOKS:
                found[hook].append(handler)
        else:
            raise TypeError(
                f"Router(callbacks=...): callbacks[{i}] is a {type(callback).__name__}, which "
                f"is not callable and has none of the methods {', '.join(HOOKS)}"
            )
    return found


def _hook_methods(callback: object) -> dict[str, Callable[[Any], Any]]:
    methods = {}
    for hook in HOOKS:
        method = getattr(callback, hook, None)
        if not callable(method) or getattr(type(callback), hook, None) is getattr(Callback, hook):
            continue
        methods[hook] = method
    return methods


class Observers:
    """One router's callbacks: which hooks are wanted, and their dispatch.

    ``callbacks`` are the user's (deferred, see the module docstring);
    ``builtin`` are the router's own sync observers (Prometheus metrics), run
    inline as the event happens, like the request log: they are quick, never
    block and never raise, and running them inline saves a loop callback per
    request. ``group_of`` names a deployment's model group (for cooldown
    events). Thread-safe: a router's sync twins emit from their own loop's thread.
    """

    def __init__(
        self,
        callbacks: Sequence[object],
        *,
        clock: Clock,
        group_of: Callable[[str], str | None],
        limits: CallbackLimits | None = None,
        builtin: Sequence[object] = (),
        request_log: RequestLog | None = None,
    ) -> None:
        self._clock = clock
        self._group_of = group_of
        self._limits = limits or CallbackLimits()
        self._log = request_log or RequestLog()
        found, own, logs = _handlers(callbacks), _handlers(builtin), _handlers([self._log])
        if any(h.is_async for hooks in own.values() for h in hooks):
            raise TypeError("Observers(builtin=...): built-in observers must be sync")
        # The request log alone reports only while INFO is enabled (see watching()).
        self._watch = any(found[h] or own[h] for h in ("on_success", "on_failure"))
        hooks = {h: Hook(found[h], own[h] + logs[h]) for h in HOOKS}
        self.success, self.failure = hooks["on_success"], hooks["on_failure"]
        self.retry, self.fallback = hooks["on_retry"], hooks["on_fallback"]
        self.cooldown = hooks["on_cooldown"]
        self._tasks: set[asyncio.Task[None]] = set()
        self._lock = threading.Lock()
        self._errors = self._timeouts = self._dropped = 0
        self._drop_logged = False

    def watching(self) -> bool:
        """Whether a request must report its end (a callback, or the INFO request log)."""
        return self._watch or self._log.enabled()

    def stats(self) -> CallbackStats:
        with self._lock:
            return CallbackStats(self._errors, self._timeouts, self._dropped)

    # -- events of the request path -------------------------------------------------

    def succeeded(
        self, request: RouteRequest, routing: RoutingInfo, *, latency: float,
        ttft: float | None, usage: TokenUsage | None, data: Mapping[str, Any],
    ) -> None:
        """Report a served request (``data``: the response JSON)."""
        trail = routing.trail
        rid, status = data.get("id"), data.get("status")
        # tuple.__new__ skips NamedTuple's keyword-parsing __new__ (a third of the cost of
        # reporting a request); the order is SuccessEvent's field order.
        self.emit(self.success, tuple.__new__(SuccessEvent, (
            trail.requested_model, routing.model_group, routing.deployment_id,
            routing.provider, len(trail.attempts), request.stream, latency, ttft, usage,
            routing.cost, rid if type(rid) is str else None,
            status if type(status) is str else None, EndUser.of(request.params), trail,
        )))

    def failed(
        self, request: RouteRequest, error: BaseException | None, *, latency: float,
        ttft: float | None = None, routing: RoutingInfo | None = None,
        error_class: str | None = None, usage: TokenUsage | None = None,
        cost: float | None = None,
    ) -> None:
        """Report a failed request; ``routing`` when it failed after being served."""
        trail = routing.trail if routing is not None else _trail_of(error, request)
        group, deployment = _where(error, request, trail, routing)
        self.emit(self.failure, FailureEvent(
            requested_model=trail.requested_model, model_group=group,
            deployment_id=deployment, attempt=len(trail.attempts), stream=request.stream,
            latency=latency, ttft=ttft,
            error_class=error_class or type(error).__name__,
            status=getattr(error, "status", None),
            message=error.message if isinstance(error, RouterError) else None,
            end_user=EndUser.of(request.params), trail=trail, usage=usage, cost=cost,
            error=error,
        ))

    def retrying(
        self, request: RouteRequest, trail: AttemptTrail, error: UpstreamError, wait: float
    ) -> None:
        """Report a retry about to happen (after ``wait`` seconds)."""
        last = trail.attempts[-1] if trail.attempts else None
        self.emit(self.retry, RetryEvent(
            requested_model=trail.requested_model,
            model_group=last.model_group if last else error.model_group or request.model,
            deployment_id=last.deployment_id if last else error.deployment_id,
            attempt=len(trail.attempts), error_class=type(error).__name__,
            status=error.status, wait=float(wait), end_user=EndUser.of(request.params), trail=trail,
        ))

    def falling_back(
        self, request: RouteRequest, trail: AttemptTrail, source: str, target: str,
        error: BaseException,
    ) -> None:
        """Report the move from group ``source`` to group ``target``."""
        self.emit(self.fallback, FallbackEvent(
            requested_model=trail.requested_model, from_group=source, to_group=target,
            attempt=len(trail.attempts), error_class=type(error).__name__,
            end_user=EndUser.of(request.params), trail=trail,
        ))

    def cooled(self, entry: CooldownEntry) -> None:
        """A :meth:`router.cooldown.Cooldowns.listen` listener."""
        if not self.cooldown:
            return
        self.emit(self.cooldown, CooldownEvent(
            deployment_id=entry.deployment_id, model_group=self._group_of(entry.deployment_id),
            reason=entry.reason, status=entry.status,
            seconds=max(0.0, entry.until - self._clock.now()), until_wall=entry.until_wall,
            times=entry.times, origin=entry.origin,
        ))

    # -- dispatch ---------------------------------------------------------------------

    def emit(self, hook: Hook, event: object) -> None:
        """Run ``hook``'s built-in handlers now and its callbacks after the current step
        (sync callbacks run now too when no loop runs; async ones are then dropped)."""
        if hook.inline:
            self._run_sync(hook.inline, event)
        if not (hook.sync or hook.async_):
            return
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if hook.sync:
            if loop is None:
                self._run_sync(hook.sync, event)
            else:
                loop.call_soon(self._run_sync, hook.sync, event)
        if hook.async_:
            if loop is None:
                self._drop("no event loop is running")
            else:
                run = _Run(self)
                self._spawn(loop, run, self._await_all(run, hook.async_, event))

    async def drain(self, timeout: float | None = None) -> bool:
        """Wait for the callbacks of events emitted so far on this loop; ``False`` when
        ``timeout`` seconds passed first (the rest keep running)."""
        await asyncio.sleep(0)  # sync handlers scheduled with call_soon run now
        loop = asyncio.get_running_loop()
        while True:
            mine = [t for t in list(self._tasks) if t.get_loop() is loop and not t.done()]
            if not mine:
                return True
            _, pending = await asyncio.wait(mine, timeout=timeout)
            if pending:
                return False

    async def aclose(self, timeout: float = 5.0) -> None:
        """Drain for up to ``timeout`` seconds, then cancel what is left on this loop."""
        if await self.drain(timeout):
            return
        loop = asyncio.get_running_loop()
        left = [t for t in list(self._tasks) if t.get_loop() is loop and not t.done()]
        log.warning("%d callback task(s) still running after %.1fs at close: cancelled",
                    len(left), timeout)
        for task in left:
            task.cancel()
        await asyncio.gather(*left, return_exceptions=True)

    def _run_sync(self, handlers: tuple[_Handler, ...], event: object) -> None:
        for handler in handlers:
            try:
                result = handler.fn(event)
            except Exception as exc:
                self._failed(handler, exc)
                continue
            if result is not None and inspect.isawaitable(result):  # it returned a coroutine
                self._spawn_awaitable(handler, result)

    def _spawn_awaitable(self, handler: _Handler, awaitable: Awaitable[Any]) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            closer = getattr(awaitable, "close", None)
            if closer is not None:
                closer()  # never awaited: close it rather than leak a warning
            self._drop("no event loop is running")
            return
        run = _Run(self)
        self._spawn(loop, run, self._await_one(run, handler, awaitable))

    def _spawn(
        self, loop: asyncio.AbstractEventLoop, run: _Run, work: Coroutine[Any, Any, None]
    ) -> None:
        """One background task for ``work``, stopped after ``timeout`` (one timer, not an
        ``asyncio.timeout`` per call: that costs more than the task itself)."""
        if len(self._tasks) >= self._limits.max_pending:
            work.close()
            self._drop(f"{self._limits.max_pending} callback tasks are already running")
            return
        task = loop.create_task(work)
        self._tasks.add(task)
        timeout = self._limits.timeout
        if timeout is not None:
            run.timer = loop.call_later(timeout, run.expire, task)
        task.add_done_callback(run.done)

    async def _await_all(self, run: _Run, handlers: tuple[_Handler, ...], event: object) -> None:
        for handler in handlers:
            run.current = handler
            try:
                await handler.fn(event)
            except Exception as exc:
                self._failed(handler, exc)

    async def _await_one(self, run: _Run, handler: _Handler, awaitable: Awaitable[Any]) -> None:
        run.current = handler
        try:
            await awaitable
        except Exception as exc:
            self._failed(handler, exc)

    def _failed(self, handler: _Handler, exc: BaseException) -> None:
        with self._lock:
            self._errors += 1
            first, handler.logged = not handler.logged, True
        if first:
            log.error("callback %s raised %s; it never breaks a request. Logged once: later "
                      "failures are only counted (Router.callback_stats())",
                      handler.name, type(exc).__name__, exc_info=exc)

    def _timed_out(self, handler: _Handler) -> None:
        with self._lock:
            self._timeouts += 1
            first, handler.logged = not handler.logged, True
        if first:
            log.error("callback %s took longer than %ss and was stopped. Logged once: later "
                      "failures are only counted (Router.callback_stats())",
                      handler.name, self._limits.timeout)

    def _drop(self, why: str) -> None:
        with self._lock:
            self._dropped += 1
            first, self._drop_logged = not self._drop_logged, True
        if first:
            log.warning("callback event dropped: %s. Logged once: later drops are only "
                        "counted (Router.callback_stats())", why)


class _Run:
    """One background callback task: the handler it awaits now, its timer, whether
    time ran out (then the task is cancelled and the handler counted as timed out)."""

    __slots__ = ("current", "expired", "observers", "timer")

    def __init__(self, observers: Observers) -> None:
        self.observers = observers
        self.current: _Handler | None = None
        self.expired = False
        self.timer: asyncio.TimerHandle | None = None

    def expire(self, task: asyncio.Task[None]) -> None:
        self.expired = True
        task.cancel()

    def done(self, task: asyncio.Task[None]) -> None:
        self.observers._tasks.discard(task)
        if self.timer is not None:
            self.timer.cancel()
        if self.expired and self.current is not None:
            self.observers._timed_out(self.current)


def _trail_of(error: BaseException | None, request: RouteRequest) -> AttemptTrail:
    trail = getattr(error, "trail", None)
    return trail if isinstance(trail, AttemptTrail) else AttemptTrail(request.model)


def _where(
    error: BaseException | None, request: RouteRequest, trail: AttemptTrail,
    routing: RoutingInfo | None,
) -> tuple[str, str | None]:
    """The group and deployment a failed request last ran on."""
    if routing is not None:
        return routing.model_group, routing.deployment_id
    if trail.attempts:
        last = trail.attempts[-1]
        return last.model_group, last.deployment_id
    if isinstance(error, RouterError):
        return error.model_group or request.model, error.deployment_id
    return request.model, None


class StreamWatch:
    """Ends one stream: costs its terminal event, reports its outcome exactly once.

    Built by the router for a stream it returns when the deployment has
    prices or the request is observed (``observers`` is ``None`` when only
    the cost is wanted). ``started``: the call's clock time; ``ttft``: seconds
    from it to the first event.
    """

    __slots__ = ("_done", "_observers", "_prices", "_request", "_started", "_ttft")

    def __init__(
        self, observers: Observers | None, prices: Prices | None, request: RouteRequest,
        started: float, ttft: float,
    ) -> None:
        self._observers = observers
        self._prices = prices
        self._request = request
        self._started = started
        self._ttft = ttft
        self._done = False

    def completed(
        self, routing: RoutingInfo, data: Mapping[str, Any], usage: TokenUsage | None
    ) -> RoutingInfo:
        """The terminal event's response ``data`` (its ``usage`` parsed) arrived:
        ``routing`` with its cost."""
        cost = None if self._prices is None else self._prices.cost(usage)
        if cost is not None:
            routing = routing.with_cost(cost)
        observers = self._observers
        if observers is None or self._done:
            return routing
        self._done = True
        latency = observers._clock.now() - self._started
        if data.get("status") == "failed":
            observers.failed(self._request, None, latency=latency, ttft=self._ttft,
                             routing=routing, error_class=_failed_class(data), usage=usage,
                             cost=cost)
        else:
            observers.succeeded(self._request, routing, latency=latency, ttft=self._ttft,
                                usage=usage, data=data)
        return routing

    def failed(self, routing: RoutingInfo | None, error: BaseException | None) -> None:
        """The stream broke (``error``) or was closed early (``None``) before its end."""
        observers = self._observers
        if observers is None or self._done:
            return
        self._done = True
        latency = observers._clock.now() - self._started
        observers.failed(self._request, error, latency=latency, ttft=self._ttft,
                         routing=routing, error_class=None if error else "StreamClosed")


def _failed_class(data: Mapping[str, Any]) -> str:
    """The error class a ``response.failed`` terminal event maps to."""
    error = data.get("error")
    mapped = error_from_failed_response(
        error if isinstance(error, dict) else {}, model_group=None, deployment_id=None)
    return type(mapped).__name__
