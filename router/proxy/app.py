"""The routes: OpenAI's ``/v1/responses`` endpoints, models, health, metrics.

Each handler is the same four steps: authenticate (:mod:`router.proxy.auth`),
check (body shape, the key's models and limits, who owns the response
addressed), call the Router's public API, write the answer. Every path is
served with and without the ``/v1`` prefix, as LiteLLM's proxy does.

A client that disconnects cancels its handler (the server runs with
aiohttp's ``handler_cancellation``), which cancels the Router call: the
upstream request is dropped and its load slot freed. Streams are written
by :mod:`router.proxy.sse` (backpressure, ``write_timeout``); a stream that
fails after its first event ends with a Responses ``error`` event, and so
does a stream still running when the shutdown grace period ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from router.errors import RouterError, StreamInterruptedError
from router.proxy.auth import KeyRing, Principal, presented_key
from router.proxy.body import parse_create, parse_json_object
from router.proxy.errors import ApiError, api_error, error_response, internal_error
from router.proxy.metrics import ServerMetrics
from router.proxy.settings import ServerSettings
from router.proxy.sse import HEADERS, EventWriter, pump
from router.proxy.state import ServerState, StateUnavailable
from router.request import check_response_id
from router.router import Router
from router.types import dump_json

__all__ = ["ServerContext", "cut_streams", "make_app", "request_ids"]

log = logging.getLogger("router.proxy")
access_log = logging.getLogger("router.proxy.access")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MetricsSource = Callable[[], Awaitable[bytes]]


def request_ids() -> Iterator[str]:
    """Unique request ids (32 hex digits, as a UUID's), cheaply: a random prefix per
    worker, then a counter."""
    prefix = os.urandom(8).hex()
    return (f"{prefix}{n:016x}" for n in itertools.count())


@dataclass
class ServerContext:
    """What the handlers share in one worker."""

    router: Router
    settings: ServerSettings
    state: ServerState
    keys: KeyRing
    metrics: ServerMetrics
    metrics_text: MetricsSource
    redis_configured: bool = False
    draining: bool = False
    #: The handler tasks writing streams now (see :func:`cut_streams`).
    streams: set[asyncio.Task[Any]] = field(default_factory=set)
    #: Ids for answers to requests that bring no ``x-request-id``.
    request_ids: Iterator[str] = field(default_factory=request_ids)


_CONTEXT = web.AppKey("context", ServerContext)
_REQUEST_ID = "router.proxy.request_id"
_KEY_ID = "router.proxy.key_id"


def _ctx(request: web.Request) -> ServerContext:
    return request.app[_CONTEXT]


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=dump_json(data), content_type="application/json",
                        headers=headers)


def _not_found(response_id: str) -> ApiError:
    return ApiError(404, f"Response with id '{response_id}' not found.",
                    "invalid_request_error", None, "not_found")


def _shutdown() -> ApiError:
    return ApiError(503, "the server shut down before the stream ended", "server_error",
                    None, "server_shutting_down")


def _unavailable() -> ApiError:
    return ApiError(503, "the server's shared state (Redis) is unavailable; retry later",
                    "service_unavailable", None, "state_unavailable", retry_after=1.0)


# -- middleware: errors, auth -------------------------------------------------------


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every failure into an OpenAI error answer; count, tag and log the answer.

    Every answer carries ``x-request-id`` (the caller's, or a new one); the
    access log (INFO, logger ``router.proxy.access``) names the caller by key
    id, never by key.
    """
    ctx = _ctx(request)
    started = time.perf_counter()
    request[_REQUEST_ID] = request.headers.get("x-request-id", "")[:128] or next(ctx.request_ids)
    response = await _answer(ctx, request, handler)
    if not response.prepared:
        response.headers["x-request-id"] = request[_REQUEST_ID]
    ctx.metrics.answered(request, response.status)
    if access_log.isEnabledFor(logging.INFO):
        access_log.info("%s %s %d %.1fms key=%s request=%s", request.method, request.path,
                        response.status, (time.perf_counter() - started) * 1000,
                        request.get(_KEY_ID, "-"), request[_REQUEST_ID])
    return response


async def _answer(ctx: ServerContext, request: web.Request, handler: Handler
                  ) -> web.StreamResponse:
    try:
        response = await handler(request)
    except ApiError as exc:
        response = error_response(exc)
    except RouterError as exc:
        response = error_response(api_error(exc))
    except StateUnavailable:
        response = error_response(_unavailable())
    except web.HTTPRequestEntityTooLarge:
        limit = ctx.settings.max_request_size_mb
        response = error_response(ApiError(
            413, f"the request body is larger than the limit of {limit:g} MB",
            "invalid_request_error", None, "request_too_large"))
    except web.HTTPException as exc:
        response = error_response(ApiError(exc.status, exc.reason, "invalid_request_error"))
    except (asyncio.CancelledError, ConnectionError):
        raise
    except Exception:
        log.exception("unexpected failure handling %s %s", request.method, request.path)
        response = error_response(internal_error())
    return response


def _principal(request: web.Request) -> Principal:
    ctx = _ctx(request)
    key = presented_key(request.headers.get("Authorization"), request.headers.get("api-key"))
    principal = ctx.keys.authenticate(key)
    if principal is not None:
        request[_KEY_ID] = principal.key_id
    if principal is None:
        message = ("Incorrect API key provided." if key else
                   "You didn't provide an API key (Authorization: Bearer YOUR_KEY).")
        raise ApiError(401, message, "invalid_request_error", None, "invalid_api_key")
    return principal


async def _read_body(request: web.Request) -> dict[str, Any]:
    if request.content.is_eof():  # all here already (a small body): nothing to wait for
        return parse_json_object(await request.read())
    timeout = _ctx(request).settings.body_timeout
    try:
        async with asyncio.timeout(timeout):
            raw = await request.read()
    except TimeoutError:
        raise ApiError(408, f"the request body did not arrive within {timeout:g} s",
                       "invalid_request_error", None, "request_timeout") from None
    return parse_json_object(raw)


# -- create ---------------------------------------------------------------------------


async def create(request: web.Request) -> web.StreamResponse:
    """``POST /v1/responses``: JSON, or SSE with ``"stream": true``."""
    ctx = _ctx(request)
    principal = _principal(request)
    body = parse_create(await _read_body(request))
    if not principal.may_use(body.model):
        raise _unknown_model(body.model)
    await _admit(ctx, principal)
    previous = body.params.get("previous_response_id")
    if previous is not None:
        await _check_previous(ctx, principal, previous)
    conversation = _conversation_id(body.params.get("conversation"))
    if conversation is not None:
        await _check_conversation(ctx, principal, conversation)
    async with _parallel_slot(ctx, principal):
        if body.stream:
            return await _stream(request, ctx, principal, body.model, body.params)
        return await _create(ctx, principal, body.model, body.params)


def _owned(principal: Principal, params: dict[str, Any]) -> dict[str, Any]:
    """The Router's arguments: the body's, and the key that will own the response (the
    Router records it in the same write as the response's deployment)."""
    if not principal.admin:  # the master key sees every response: no record to make
        params["response_owner"] = principal.key_id
    return params


async def _create(ctx: ServerContext, principal: Principal, model: str,
                  params: dict[str, Any]) -> web.StreamResponse:
    result = await ctx.router.aresponses(model=model, **_owned(principal, params))
    data = result._data
    await _count_tokens(ctx, principal, data)
    return _json(data, headers=_routing_headers(result))


@contextlib.asynccontextmanager
async def _parallel_slot(ctx: ServerContext, principal: Principal) -> AsyncIterator[None]:
    """Hold one of the key's ``max_parallel_requests`` slots (a stream: to its end)."""
    limit = principal.max_parallel
    if limit is None:
        yield
        return
    token = next(ctx.request_ids)  # unique across workers: a random prefix each
    if not await ctx.state.enter(principal.key_id, token, limit):
        ctx.metrics.limited(principal.key_id)
        raise ApiError(429, f"rate limit reached: {limit} parallel requests for key "
                            f"{principal.key_id}", "rate_limit_error", None,
                       "rate_limit_exceeded", retry_after=1.0)
    try:
        yield
    finally:
        await asyncio.shield(ctx.state.leave(principal.key_id, token))


def _unknown_model(model: str) -> ApiError:
    return ApiError(400, f"unknown model {model!r}; see GET /v1/models for the models "
                         "this key may use", "invalid_request_error", "model", "model_not_found")


async def _admit(ctx: ServerContext, principal: Principal) -> None:
    verdict = await ctx.state.admit(principal.key_id, principal.rpm_limit, principal.tpm_limit)
    if not verdict.allowed:
        ctx.metrics.limited(principal.key_id)
        raise ApiError(429, f"{verdict.reason} for key {principal.key_id}", "rate_limit_error",
                       None, "rate_limit_exceeded", retry_after=verdict.retry_after)


async def _check_previous(ctx: ServerContext, principal: Principal, previous: str) -> None:
    """A conversation continues only with the key that owns its last response."""
    check_response_id(previous, "previous_response_id")  # memory and Redis answer alike
    if principal.admin:
        return
    if not principal.may_see(await _response_owner(ctx, previous)):
        raise ApiError(400, f"Previous response with id '{previous}' not found.",
                       "invalid_request_error", "previous_response_id",
                       "previous_response_not_found")


async def _response_owner(ctx: ServerContext, response_id: str) -> str | None:
    """The key that owns a response: from the shared state; else (Redis did not take the
    owner's write, which the Router then kept in this worker alone) from this worker's
    Router, which holds only records it wrote itself."""
    owner = await ctx.state.response_owner(response_id)
    if owner is None and ctx.redis_configured:
        owner = await ctx.router.aresponse_owner(response_id)
    return owner


def _conversation_id(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) else None


async def _check_conversation(ctx: ServerContext, principal: Principal, conversation: str
                              ) -> None:
    """A conversation belongs to the key whose request first named it (claimed here,
    before the upstream call, atomically; each use renews the claim); to any other key
    it does not exist. The master key claims too (so no key takes its conversations
    over), and may use every conversation."""
    check_response_id(conversation, "conversation")  # an id no upstream made claims nothing
    owner = await ctx.state.claim_conversation(conversation, principal.key_id)
    if not principal.may_see(owner):
        raise ApiError(404, f"Conversation with id '{conversation}' not found.",
                       "invalid_request_error", "conversation", "not_found")


async def _count_tokens(ctx: ServerContext, principal: Principal,
                        data: dict[str, Any] | None) -> None:
    """Add a response's tokens to its key's minute, for a key with a ``tpm_limit`` (no
    other key's count is ever read, so the others cost no Redis round trip)."""
    if principal.tpm_limit is None:
        return
    usage = (data or {}).get("usage") or {}
    total = usage.get("total_tokens") if isinstance(usage, dict) else None
    if isinstance(total, int):
        await ctx.state.add_tokens(principal.key_id, total)


def _routing_headers(result: Any) -> dict[str, str]:
    routing = getattr(result, "routing", None)
    if routing is None:
        return {}
    return {"x-router-model-group": routing.model_group,
            "x-router-deployment-id": routing.deployment_id}


# -- streams ----------------------------------------------------------------------------


async def _stream(request: web.Request, ctx: ServerContext, principal: Principal,
                  model: str, params: dict[str, Any]) -> web.StreamResponse:
    """Write a stream's events (:func:`router.proxy.sse.pump`); a client that stops
    reading (``write_timeout``) or goes away is dropped, and the upstream call with it."""
    stream = await ctx.router.aresponses(model=model, stream=True, **_owned(principal, params))
    ctx.metrics.streams.inc()
    task = asyncio.current_task()
    if task is not None:
        ctx.streams.add(task)
    response = web.StreamResponse(headers={**HEADERS, **_routing_headers(stream),
                                           "x-request-id": request[_REQUEST_ID]})
    try:
        await response.prepare(request)
        await _events(ctx, principal, stream, EventWriter(response, ctx.settings.write_timeout))
        await response.write_eof()
    except (TimeoutError, ConnectionError):
        ctx.metrics.stream_dropped()
        if request.transport is not None:
            request.transport.close()
    finally:
        ctx.metrics.streams.dec()
        if task is not None:
            ctx.streams.discard(task)
        await stream.aclose()
    return response


async def _events(ctx: ServerContext, principal: Principal, stream: Any,
                  writer: EventWriter) -> None:
    """The stream's events; a failure after the first ends it with an ``error`` event."""
    try:
        await pump(stream, writer)
    except RouterError as exc:
        cause = exc.__cause__ if isinstance(exc, StreamInterruptedError) and isinstance(
            exc.__cause__, RouterError) else exc
        await writer.end_with_error(api_error(cause))
        return
    except asyncio.CancelledError:
        if not ctx.draining:
            raise
        # cut_streams(): the grace period is over; say so rather than just cut.
        with contextlib.suppress(Exception):
            async with asyncio.timeout(1.0):
                await writer.end_with_error(_shutdown())
        return
    final = stream.response
    if final is not None:
        await _count_tokens(ctx, principal, final._data)


async def cut_streams(ctx: ServerContext, after: float) -> None:
    """At the end of the shutdown grace period, end every open stream with an ``error`` event.

    Runs while the worker drains (``ctx.draining``); the cut streams finish
    their handlers normally, so their answers end cleanly.
    """
    await asyncio.sleep(after)
    for task in list(ctx.streams):
        task.cancel()


# -- by id --------------------------------------------------------------------------------


async def _owned_id(request: web.Request) -> tuple[ServerContext, str]:
    """The addressed response id, once the caller is known to own it (else 404)."""
    ctx = _ctx(request)
    principal = _principal(request)
    rid = request.match_info["response_id"]
    try:
        check_response_id(rid, "response_id")
    except RouterError:
        raise _not_found(rid) from None
    if not principal.admin and not principal.may_see(await _response_owner(ctx, rid)):
        raise _not_found(rid)
    return ctx, rid


def _query(request: web.Request, *, allowed: frozenset[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in set(request.query.keys()):
        values = request.query.getall(name)
        key = name.removesuffix("[]")
        if key not in allowed:
            raise ApiError(400, f"{key}: unsupported query parameter",
                           "invalid_request_error", key, "unsupported_parameter")
        out[key] = values if name.endswith("[]") or len(values) > 1 else values[0]
    return out


async def retrieve(request: web.Request) -> web.StreamResponse:
    """``GET /v1/responses/{id}``."""
    ctx, rid = await _owned_id(request)
    query = _query(request, allowed=frozenset({"include"}))
    result = await ctx.router.aget_responses(rid, **query)
    return _json(result._data, headers=_routing_headers(result))


async def delete(request: web.Request) -> web.StreamResponse:
    """``DELETE /v1/responses/{id}``; the ownership record goes with it."""
    ctx, rid = await _owned_id(request)
    result = await ctx.router.adelete_responses(rid)
    await ctx.state.forget(rid)
    return _json(result._data)


async def cancel(request: web.Request) -> web.StreamResponse:
    """``POST /v1/responses/{id}/cancel``."""
    ctx, rid = await _owned_id(request)
    result = await ctx.router.acancel_responses(rid)
    return _json(result._data, headers=_routing_headers(result))


async def input_items(request: web.Request) -> web.StreamResponse:
    """``GET /v1/responses/{id}/input_items``."""
    ctx, rid = await _owned_id(request)
    query = _query(request, allowed=frozenset({"after", "before", "limit", "order", "include"}))
    result = await ctx.router.alist_input_items(rid, **query)
    return _json(result._data)


# -- models, health, metrics ----------------------------------------------------------------


async def models(request: web.Request) -> web.StreamResponse:
    """``GET /v1/models``: the model groups this key may use."""
    principal = _principal(request)
    names = [m for m in _ctx(request).router.model_names if principal.may_use(m)]
    return _json({"object": "list", "data": [_model(m) for m in names]})


async def model(request: web.Request) -> web.StreamResponse:
    """``GET /v1/models/{model}``."""
    principal = _principal(request)
    name = request.match_info["model"]
    if name not in _ctx(request).router.model_names or not principal.may_use(name):
        raise ApiError(404, f"The model '{name}' does not exist",
                       "invalid_request_error", "model", "model_not_found")
    return _json(_model(name))


def _model(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 0, "owned_by": "responses-router"}


async def liveliness(request: web.Request) -> web.StreamResponse:
    """``/health/liveliness``: the process serves requests."""
    return _json({"status": "alive"})


async def readiness(request: web.Request) -> web.StreamResponse:
    """``/health/readiness``: Redis answers (when configured) and deployments exist.

    503 while the worker drains for shutdown, when Redis does not answer, or
    when no deployment is configured; the body says which, and how many
    deployments are healthy (not cooling down) now.
    """
    ctx = _ctx(request)
    redis = "not configured"
    if ctx.redis_configured:
        redis = "connected" if await ctx.state.ping() else "unreachable"
    states = ctx.router.inspect()
    healthy = sum(1 for s in states if s.healthy)
    ready = not ctx.draining and redis != "unreachable" and bool(states)
    body = {"status": "ready" if ready else "not ready", "redis": redis,
            "draining": ctx.draining,
            "deployments": {"total": len(states), "healthy": healthy},
            "model_groups": ctx.router.model_names}
    return _json(body, status=200 if ready else 503)


async def metrics(request: web.Request) -> web.StreamResponse:
    """``/metrics``: Prometheus text for every worker of this server."""
    text = await _ctx(request).metrics_text()
    return web.Response(body=text,
                        headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})


async def _not_found_route(request: web.Request) -> web.StreamResponse:
    raise ApiError(404, f"no route {request.method} {request.path}", "invalid_request_error",
                   None, "unknown_url")


def make_app(ctx: ServerContext) -> web.Application:
    """The aiohttp application of one worker (body size limit from the settings)."""
    app = web.Application(middlewares=[_errors], client_max_size=ctx.settings.max_request_bytes)
    app[_CONTEXT] = ctx
    for prefix in ("/v1", ""):
        app.router.add_post(f"{prefix}/responses", create)
        app.router.add_get(f"{prefix}/responses/{{response_id}}", retrieve)
        app.router.add_delete(f"{prefix}/responses/{{response_id}}", delete)
        app.router.add_post(f"{prefix}/responses/{{response_id}}/cancel", cancel)
        app.router.add_get(f"{prefix}/responses/{{response_id}}/input_items", input_items)
        app.router.add_get(f"{prefix}/models", models)
        app.router.add_get(f"{prefix}/models/{{model:.+}}", model)
    app.router.add_get("/health/liveliness", liveliness)
    app.router.add_get("/health/liveness", liveliness)
    app.router.add_get("/health/readiness", readiness)
    app.router.add_get("/metrics", metrics)
    app.router.add_route("*", "/{tail:.*}", _not_found_route)
    return app
