"""Every row of the error table, injected on a real upstream: what the router does about it.

One deployment (``a``) of the requested group fails in one way; the group has
a healthy second deployment (``b``) and three fallback groups (``fb`` for the
generic fallbacks, ``cw`` for context-window, ``cp`` for content-policy
errors). Per row, over a plain call and, where the failure comes before the
first event, a streaming one:

* where the request ends: retried on ``b`` (same group), sent to a fallback
  group, or raised to the caller, and with which class;
* who was hit: every upstream's request count and the attempt trail;
* the cooldown: none, at once (``immediate``) or only on the failure after
  ``allowed_fails`` (``counted``), and its length from ``router.cooldowns()``
  on a :class:`ManualClock` with no jitter (``cooldown_time`` 10 s, so the
  "long" quota cooldown is ``max(12 x 10, 10 x 10)`` = 120 s);
* a second request: it skips a cooled ``a``; it still reaches ``a`` after a
  ``counted`` first failure, whose repeat then cools it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from router.clock import ManualClock
from router.errors import (
    BadRequestError,
    ConflictError,
    RouterError,
    UpstreamError,
)
from tests.conftest import InOrder, openai_dep
from tests.faults.conftest import attempts_of, error_event

#: Seconds a hanging ``a`` is given per attempt (its deployment ``timeout``).
HANG_TIMEOUT = 0.3
COOLDOWN = 10.0
LONG = 120.0  # max(QUOTA_COOLDOWN_FACTOR x cooldown_time, max_cooldown_time)

#: Group of each serving deployment.
GROUP = {"b": "gpt-4o", "fb": "fb", "cw": "cw", "cp": "cp"}


@dataclass(frozen=True)
class Row:
    """One error class: how to provoke it on ``a`` and what the router must do."""

    id: str
    arm: Callable[[Any], Any]  # sets the fault on ``a`` (may return an awaitable)
    error: str  # the class name in a's attempt
    served: str | None  # who serves ("b", "fb", "cw", "cp"); None: raised
    cooldown: str  # "immediate", "counted" or "none"
    seconds: float | None = None  # the cooldown's length
    raised: type[RouterError] | None = None
    stream: bool = True  # also for streams (the failure precedes the first event)
    reaches_a: bool = True  # a's server sees the request (not when it is down)
    timeout: float | None = None  # a's own attempt timeout (only where a hangs)


def _fail(status: int, **kw: Any) -> Callable[[Any], None]:
    return lambda a: a.faults.fail(status, **kw)


ROWS = [
    Row("429", _fail(429), "RateLimitError", "b", "immediate", COOLDOWN),
    Row("429-retry-after", _fail(429, retry_after=7), "RateLimitError", "b", "immediate", 7.0),
    Row("429-retry-after-ms", _fail(429, retry_after_ms=2500), "RateLimitError", "b",
        "immediate", 2.5),
    Row("429-insufficient-quota", _fail(429, code="insufficient_quota"),
        "QuotaExhaustedError", "fb", "immediate", LONG),
    Row("401", _fail(401, code="invalid_api_key"), "AuthenticationError", "b", "immediate",
        COOLDOWN),
    Row("403", _fail(403), "PermissionDeniedError", "b", "immediate", COOLDOWN),
    Row("404-model-not-found", _fail(404, code="model_not_found"), "NotFoundError", "b",
        "immediate", COOLDOWN),
    # a 404 about an object the request named: tried elsewhere, cools nothing
    Row("404-object", _fail(404, message="No such File object: file-abc"),
        "ObjectNotFoundError", "b", "none"),
    Row("400", _fail(400), "BadRequestError", None, "none", raised=BadRequestError),
    Row("422", _fail(422), "BadRequestError", None, "none", raised=BadRequestError),
    Row("409", _fail(409), "ConflictError", None, "none", raised=ConflictError),
    Row("400-context-window", _fail(400, code="context_length_exceeded"),
        "ContextWindowExceededError", "cw", "none"),
    Row("400-content-policy", _fail(400, code="content_filter"),
        "ContentPolicyViolationError", "cp", "none"),
    Row("408", _fail(408), "TimeoutError", "b", "counted", COOLDOWN),
    Row("500", _fail(500), "ServerError", "b", "counted", COOLDOWN),
    Row("502", _fail(502), "ServiceUnavailableError", "b", "counted", COOLDOWN),
    Row("503", _fail(503), "ServiceUnavailableError", "b", "counted", COOLDOWN),
    # a 503 that says when to come back is kept to its word at once, like a 429
    Row("503-retry-after", _fail(503, retry_after=7), "ServiceUnavailableError", "b",
        "immediate", 7.0),
    Row("504", _fail(504), "ServiceUnavailableError", "b", "counted", COOLDOWN),
    Row("timeout", lambda a: a.faults.hang(), "TimeoutError", "b", "counted", COOLDOWN,
        timeout=HANG_TIMEOUT),
    Row("connection-refused", lambda a: a.down(), "ConnectionError", "b", "counted",
        COOLDOWN, reaches_a=False),
    Row("malformed", lambda a: a.faults.malformed(), "MalformedResponseError", "b",
        "counted", COOLDOWN),
    # a Response with status "failed" (plain calls; a stream passes response.failed on)
    Row("failed-response", lambda a: a.faults.failed_response(code="server_error"),
        "ServerError", "b", "counted", COOLDOWN, stream=False),
    Row("failed-response-unknown-code", lambda a: a.faults.failed_response(code="bogus_code"),
        "UpstreamError", None, "none", raised=UpstreamError, stream=False),
]

#: SSE ``error`` events sent as a stream's first event (a scripted ``a``).
SSE_ROWS = [
    Row("rate_limit_exceeded", lambda a: None, "RateLimitError", "b", "immediate", COOLDOWN),
    Row("server_error", lambda a: None, "ServerError", "b", "counted", COOLDOWN),
    Row("no-code", lambda a: None, "ServerError", "b", "counted", COOLDOWN),
    Row("context_length_exceeded", lambda a: None, "ContextWindowExceededError", "cw", "none"),
    Row("bogus_code", lambda a: None, "UpstreamError", None, "none", raised=UpstreamError),
]


def _cases() -> list[Any]:
    plain = [pytest.param(r, False, id=f"{r.id}-plain") for r in ROWS]
    stream = [pytest.param(r, True, id=f"{r.id}-stream") for r in ROWS if r.stream]
    return plain + stream


async def _rig(upstreams: Any, make_router: Any, a: Any = None,
               timeout: float | None = None) -> tuple[Any, ...]:
    if a is None:
        (a,) = await upstreams("a")
    b, fb, cw, cp = await upstreams("b", "fb", "cw", "cp")
    clock = ManualClock()
    router = make_router(
        [openai_dep(a, timeout=timeout), openai_dep(b),
         *(openai_dep(up, up.name, model=f"openai/{up.name}") for up in (fb, cw, cp))],
        routing_strategy=InOrder(), num_retries=2, allowed_fails=1, cooldown_time=COOLDOWN,
        cooldown_jitter=0, clock=clock, fallbacks=[{"gpt-4o": ["fb"]}],
        context_window_fallbacks=[{"gpt-4o": ["cw"]}],
        content_policy_fallbacks=[{"gpt-4o": ["cp"]}],
    )
    return router, a, {"b": b, "fb": fb, "cw": cw, "cp": cp}


async def _call(router: Any, stream: bool) -> Any:
    """The routing info of a successful call (a stream is read to its end)."""
    if not stream:
        response = await router.aresponses(model="gpt-4o", input="x")
        assert response.status == "completed"
        return response.routing
    events = await router.aresponses(model="gpt-4o", input="x", stream=True)
    async with events:
        types = [event.type async for event in events]
    assert types[0] == "response.created" and types[-1] == "response.completed"
    return events.routing


async def _first(router: Any, row: Row, stream: bool) -> Any:
    """The first request: served where the row says, or raised as its class."""
    if row.served is None:
        assert row.raised is not None
        with pytest.raises(RouterError) as info:
            await _call(router, stream)
        assert type(info.value) is row.raised
        assert info.value.deployment_id == "a" and info.value.model_group == "gpt-4o"
        assert info.value.trail.fallbacks == []
        return info.value.trail
    routing = await _call(router, stream)
    assert routing.deployment_id == row.served
    assert routing.model_group == GROUP[row.served]
    return routing.trail


def _cooling(router: Any) -> list[tuple[str, str, float]]:
    return [(c.deployment_id, c.reason, c.until - c.started) for c in router.cooldowns()]


async def _check(router: Any, a: Any, others: dict[str, Any], row: Row, stream: bool,
                 hits_of_a: Callable[[], int]) -> None:
    trail = await _first(router, row, stream)
    served = [] if row.served is None else [(GROUP[row.served], row.served, None)]
    assert attempts_of(trail) == [("gpt-4o", "a", row.error), *served]
    assert {k: up.hits for k, up in others.items()} == {
        k: int(k == row.served) for k in others}
    assert hits_of_a() == int(row.reaches_a)
    cooled = [("a", row.error, row.seconds)]
    assert _cooling(router) == (cooled if row.cooldown == "immediate" else [])

    # A second request: a cooled `a` is skipped; otherwise `a` is tried (and fails) again.
    if row.cooldown == "immediate":
        routing = await _call(router, stream)
        assert attempts_of(routing.trail) == [("gpt-4o", "b", None)]
        assert hits_of_a() == int(row.reaches_a)
        assert _cooling(router) == cooled
        return
    trail = await _first(router, row, stream)
    assert attempts_of(trail)[0] == ("gpt-4o", "a", row.error)
    assert hits_of_a() == 2 * int(row.reaches_a)
    assert _cooling(router) == (cooled if row.cooldown == "counted" else [])


@pytest.mark.parametrize(("row", "stream"), _cases())
async def test_error_class(upstreams: Any, make_router: Any, row: Row, stream: bool) -> None:
    router, a, others = await _rig(upstreams, make_router, timeout=row.timeout)
    armed = row.arm(a)
    if inspect.isawaitable(armed):
        await armed
    await _check(router, a, others, row, stream, lambda: a.hits)


@pytest.mark.parametrize("row", [pytest.param(r, id=f"sse-error-{r.id}") for r in SSE_ROWS])
async def test_sse_error_event_before_the_first_event(
    upstreams: Any, make_router: Any, scripted: Any, row: Row
) -> None:
    code = None if row.id == "no-code" else row.id
    a = await scripted("a", [error_event(code)])
    router, _, others = await _rig(upstreams, make_router, a)
    await _check(router, a, others, row, True, lambda: a.hits)


async def test_the_table_covers_every_retried_class() -> None:
    """Each class the table retries or cools is provoked by some row above."""
    from router.errors import ERROR_TABLE

    provoked = {r.error for r in ROWS + SSE_ROWS}
    acting = {cls.__name__ for cls, p in ERROR_TABLE.items()
              if (p.retry or p.cooldown != "none") and issubclass(cls, UpstreamError)}
    assert acting <= provoked
