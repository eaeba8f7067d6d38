"""The Responses API over HTTP: what OpenAI and Azure have in common.

Subclasses only say how to build a deployment's :class:`Endpoint` (URL,
auth headers, query); sending, error mapping and SSE parsing live here once.
Bodies are forwarded as the caller gave them: every parameter the router does
not consume goes upstream unchanged, and every field that comes back is kept.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import httpx
from httpx_sse import EventSource, ServerSentEvent

from providers.http import Answer, ClientPool
from router.errors import (
    InvalidRequestError,
    MalformedResponseError,
    UpstreamConnectionError,
    UpstreamError,
    classify,
    error_from_failed_response,
    error_from_status,
    error_from_transport,
    request_id_of,
)
from router.request import check_query
from router.types import (
    TERMINAL_EVENTS,
    Record,
    Response,
    StreamEvent,
    body_json,
    parse_json,
    record_json,
)

if TYPE_CHECKING:
    from router.config.models import DeploymentConfig
    from router.deployment import Deployment
    from router.request import RouteRequest

__all__ = [
    "Endpoint",
    "HttpResponsesProvider",
    "drain_events",
    "event_error",
    "merge_headers",
    "sse_messages",
    "status_error",
    "transport_error",
    "unsendable",
]

#: Seconds to wait for the end of the body once a terminal event has arrived.
DRAIN_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where and how to reach one deployment, prepared once.

    ``url`` is the Responses collection URL with the deployment's own query
    (Azure's ``api-version``, ``extra_query``) already in it, and ``target``
    the same as text (what a sender is given); ``stream_headers`` are
    ``headers`` plus ``accept: text/event-stream``.
    """

    collection_url: str
    origin: str
    headers: Mapping[str, str]
    query: Mapping[str, str]
    state_domain: str
    url: httpx.URL = field(init=False)
    target: str = field(init=False)
    stream_headers: Mapping[str, str] = field(init=False)

    def __post_init__(self) -> None:
        url = httpx.URL(self.collection_url, params=self.query or None)
        object.__setattr__(self, "url", url)
        object.__setattr__(self, "target", str(url))
        object.__setattr__(self, "stream_headers", {**self.headers, "accept": "text/event-stream"})

    def __repr__(self) -> str:  # headers hold the key: never show them
        return f"Endpoint({self.collection_url!r})"


class HttpResponsesProvider:
    """Sends Responses API calls through one pooled sender per upstream origin."""

    name = "http"

    def __init__(self, pool: ClientPool) -> None:
        self._pool = pool

    def prepare(self, config: DeploymentConfig) -> Endpoint:
        raise NotImplementedError

    def state_domain(self, deployment: Deployment) -> str:
        endpoint: Endpoint = deployment.endpoint
        return endpoint.state_domain

    async def create(
        self, deployment: Deployment, request: RouteRequest, timeout: float | None
    ) -> Response:
        ep: Endpoint = deployment.endpoint
        try:
            answer = await self._pool.get(ep.origin).send(
                "POST", _target(ep, request.extra_query),
                content=_body(deployment, request, stream=False),
                headers=merge_headers(ep.headers, request.extra_headers), timeout=timeout,
            )
            self._pool.heard(deployment.id, answer.headers)
            try:
                await answer.aread()
            finally:
                await answer.aclose()
        except httpx.HTTPError as exc:
            raise transport_error(exc, deployment) from exc
        data = _decode(answer, deployment)
        if data.get("status") == "failed" and not data.get("background"):
            raise error_from_failed_response(
                data.get("error") or {}, model_group=deployment.model_name,
                deployment_id=deployment.id,
            )
        return Response(data)

    async def stream(
        self, deployment: Deployment, request: RouteRequest, timeout: float | None
    ) -> AsyncGenerator[StreamEvent, None]:
        ep: Endpoint = deployment.endpoint
        try:
            answer = await self._pool.get(ep.origin).send(
                "POST", _target(ep, request.extra_query),
                content=_body(deployment, request, stream=True),
                headers=merge_headers(ep.stream_headers, request.extra_headers), timeout=timeout,
                read_timeout=request.stream_timeout or deployment.stream_timeout or timeout,
            )
            self._pool.heard(deployment.id, answer.headers)
        except httpx.HTTPError as exc:
            raise transport_error(exc, deployment) from exc
        try:
            if answer.status_code >= 400:
                await answer.aread()
                raise status_error(answer, deployment)
            source = sse_messages(answer)
            async for sse in source:
                event = _parse_event(sse, deployment)
                yield event
                if event.raw.get("type") in TERMINAL_EVENTS:
                    await drain_events(source)
                    return
            raise UpstreamConnectionError(
                "the upstream closed the stream before a terminal event",
                model_group=deployment.model_name, deployment_id=deployment.id,
            )
        except httpx.HTTPError as exc:
            raise transport_error(exc, deployment) from exc
        finally:
            await answer.aclose()

    async def call(
        self,
        deployment: Deployment,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        resource: str = "responses",
    ) -> Record:
        ep: Endpoint = deployment.endpoint
        if query:
            check_query(query, "query")  # before anything is sent: the caller's mistake
        collection = ep.url.path
        if resource != "responses":  # a sibling collection: .../conversations
            collection = collection.rsplit("/", 1)[0] + "/" + resource
        url = _with_query(ep.url.copy_with(path=f"{collection}/{path}"), _arrays(query))
        try:
            answer = await self._pool.get(ep.origin).send(
                method, url, headers=ep.headers, timeout=timeout
            )
            try:
                await answer.aread()
            finally:
                await answer.aclose()
        except httpx.HTTPError as exc:
            raise transport_error(exc, deployment) from exc
        return Record(_decode(answer, deployment))

    async def aclose(self) -> None:
        await self._pool.aclose()


def _body(deployment: Deployment, request: RouteRequest, *, stream: bool) -> bytes:
    body: dict[str, Any] = {"model": deployment.upstream_model, **request.params}
    if stream:
        body["stream"] = True
    extra = deployment.config.litellm_params.extra_body
    if extra:
        body.update(extra)
    if request.extra_body:
        body.update(request.extra_body)
    try:
        return body_json(body)
    except (TypeError, ValueError):
        raise unsendable(body) from None


def unsendable(body: Mapping[str, Any]) -> InvalidRequestError:
    """The error for a body that is not JSON, naming the first parameter at fault.

    Raised before anything is sent, and not an upstream failure, so it cools
    no deployment down.
    """
    for name, value in body.items():
        try:
            json.dumps(value, allow_nan=False, default=record_json)
        except (TypeError, ValueError) as exc:
            reason = "NaN or infinity" if isinstance(exc, ValueError) else str(exc)
            return InvalidRequestError(f"{name}: cannot be sent as JSON ({reason[:120]})")
    return InvalidRequestError("the request body cannot be sent as JSON")


def _arrays(query: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """``query`` with list values named ``name[]``, as the OpenAI SDK sends them
    (``include[]=a&include[]=b``)."""
    if not query:
        return query
    return {f"{k}[]" if isinstance(v, list | tuple) else k: v for k, v in query.items()}


def _with_query(base: httpx.URL, extra: Mapping[str, Any] | None) -> str:
    """``base`` with ``extra`` merged into its query, as text."""
    return str(base.copy_merge_params(extra) if extra else base)


def _target(endpoint: Endpoint, extra: Mapping[str, Any] | None) -> str:
    """The collection URL with ``extra`` (a request's ``extra_query``) merged in."""
    return _with_query(endpoint.url, extra) if extra else endpoint.target


def sse_messages(answer: Answer) -> AsyncGenerator[ServerSentEvent, None]:
    """The answer's SSE messages, parsed by httpx-sse.

    httpx-sse reads only a response's ``headers`` and ``aiter_text()``, which
    every :class:`Answer` has (a test holds it to that).
    """
    return EventSource(cast(httpx.Response, answer)).aiter_sse()


def merge_headers(base: Mapping[str, str], extra: Mapping[str, str] | None) -> Mapping[str, str]:
    return {**base, **extra} if extra else base


def _decode(answer: Answer, deployment: Deployment) -> dict[str, Any]:
    if answer.status_code >= 400:
        raise status_error(answer, deployment)
    try:
        data = parse_json(answer.content)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise MalformedResponseError(
            f"upstream answered HTTP {answer.status_code} with a body that is not a JSON object",
            status=answer.status_code,
            request_id=request_id_of(answer.headers),
            model_group=deployment.model_name,
            deployment_id=deployment.id,
        )
    return data


def status_error(answer: Answer, deployment: Deployment) -> UpstreamError:
    try:
        body: Any = json.loads(answer.content)
    except ValueError:
        body = answer.text[:500]
    return error_from_status(
        answer.status_code, body, answer.headers,
        model_group=deployment.model_name, deployment_id=deployment.id,
    )


def transport_error(exc: Exception, deployment: Deployment) -> UpstreamError:
    return error_from_transport(exc, model_group=deployment.model_name, deployment_id=deployment.id)


def _parse_event(sse: ServerSentEvent, deployment: Deployment) -> StreamEvent:
    """One SSE message as an event; an ``error`` event or bad JSON raises."""
    try:
        data = parse_json(sse.data)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise MalformedResponseError(
            f"upstream sent a stream event whose data is not a JSON object: {sse.data[:80]!r}",
            model_group=deployment.model_name, deployment_id=deployment.id,
        )
    if "type" not in data and sse.event:
        data["type"] = sse.event
    if data.get("type") == "error":
        raise event_error(data, deployment)
    return StreamEvent(data)


async def drain_events(source: AsyncGenerator[Any, None]) -> None:
    """Read what follows a terminal event (normally only the end of the body).

    Reading to the end lets every generator under ``source`` (httpx-sse's and
    httpx's) finish; one abandoned half-way is finalised by the event loop
    instead, at the cost of a task and a wake-up each. Anything after the
    terminal event (a ``[DONE]`` sentinel, a cut connection) is ignored, and
    an upstream that keeps the body open is given up on after
    ``DRAIN_SECONDS``.
    """
    try:
        async with asyncio.timeout(DRAIN_SECONDS):
            async for _ in source:
                pass
    except (TimeoutError, httpx.HTTPError):
        pass


def event_error(data: Mapping[str, Any], deployment: Deployment) -> UpstreamError:
    inner = data.get("error")
    fields: Mapping[str, Any] = inner if isinstance(inner, Mapping) else data
    code = fields.get("code")
    code = code if isinstance(code, str) else None
    message = fields.get("message")
    return classify(None, code)(
        message if isinstance(message, str) else "the upstream sent an error event",
        code=code, body=dict(data),
        model_group=deployment.model_name, deployment_id=deployment.id,
    )
