"""The Responses API over HTTP: what OpenAI and Azure have in common.

Subclasses only say how to build a deployment's :class:`Endpoint` (URL,
auth headers, query); sending, error mapping and SSE parsing live here once.
Bodies are forwarded as the caller gave them: every parameter the router does
not consume goes upstream unchanged, and every field that comes back is kept.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
from httpx_sse import EventSource

from providers.http import ClientPool
from router.errors import (
    ConnectionError,
    MalformedResponseError,
    UpstreamError,
    classify,
    error_from_failed_response,
    error_from_status,
    error_from_transport,
)
from router.types import Record, Response, StreamEvent

if TYPE_CHECKING:
    from router.config import DeploymentConfig
    from router.deployment import Deployment
    from router.request import RouteRequest

__all__ = ["TERMINAL_EVENTS", "Endpoint", "HttpResponsesProvider"]

#: Event types after which a Responses stream ends.
TERMINAL_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})
_NO_TIMEOUT = httpx.Timeout(None)


def _timeout(seconds: float | None) -> httpx.Timeout:
    return _NO_TIMEOUT if seconds is None else httpx.Timeout(seconds)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where and how to reach one deployment, prepared once."""

    collection_url: str
    origin: str
    headers: Mapping[str, str]
    query: Mapping[str, str]
    state_domain: str

    def __repr__(self) -> str:  # headers hold the key: never show them
        return f"Endpoint({self.collection_url!r})"


class HttpResponsesProvider:
    """Sends Responses API calls over one pooled httpx client per upstream."""

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
        client = self._pool.get(ep.origin)
        try:
            answer = await client.post(
                ep.collection_url,
                content=_body(deployment, request, stream=False),
                headers=_headers(ep, request.extra_headers),
                params=_query(ep, request.extra_query),
                timeout=_timeout(timeout),
            )
        except httpx.HTTPError as exc:
            raise _transport_error(exc, deployment) from exc
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
        client = self._pool.get(ep.origin)
        read = request.stream_timeout or deployment.stream_timeout or timeout
        built = client.build_request(
            "POST",
            ep.collection_url,
            content=_body(deployment, request, stream=True),
            headers=_headers(ep, request.extra_headers, accept="text/event-stream"),
            params=_query(ep, request.extra_query),
            timeout=httpx.Timeout(timeout, read=read),
        )
        try:
            answer = await client.send(built, stream=True)
        except httpx.HTTPError as exc:
            raise _transport_error(exc, deployment) from exc
        try:
            if answer.status_code >= 400:
                await answer.aread()
                raise _status_error(answer, deployment)
            async for event in _events(answer, deployment):
                yield event
        except httpx.HTTPError as exc:
            raise _transport_error(exc, deployment) from exc
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
    ) -> Record:
        ep: Endpoint = deployment.endpoint
        client = self._pool.get(ep.origin)
        try:
            answer = await client.request(
                method,
                f"{ep.collection_url}/{path}",
                headers=ep.headers,
                params=_query(ep, query),
                timeout=_timeout(timeout),
            )
        except httpx.HTTPError as exc:
            raise _transport_error(exc, deployment) from exc
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
    return json.dumps(body).encode()


def _headers(
    ep: Endpoint, extra: Mapping[str, str] | None, accept: str | None = None
) -> Mapping[str, str]:
    if not extra and accept is None:
        return ep.headers
    merged = dict(ep.headers)
    if accept is not None:
        merged["accept"] = accept
    if extra:
        merged.update(extra)
    return merged


def _query(ep: Endpoint, extra: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    if not extra:
        return ep.query or None
    return {**ep.query, **extra}


def _decode(answer: httpx.Response, deployment: Deployment) -> dict[str, Any]:
    if answer.status_code >= 400:
        raise _status_error(answer, deployment)
    try:
        data = json.loads(answer.content)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise MalformedResponseError(
            f"upstream answered HTTP {answer.status_code} with a body that is not a JSON object",
            status=answer.status_code,
            request_id=answer.headers.get("x-request-id"),
            model_group=deployment.model_name,
            deployment_id=deployment.id,
        )
    return data


def _status_error(answer: httpx.Response, deployment: Deployment) -> UpstreamError:
    try:
        body: Any = json.loads(answer.content)
    except ValueError:
        body = answer.text[:500]
    return error_from_status(
        answer.status_code, body, answer.headers,
        model_group=deployment.model_name, deployment_id=deployment.id,
    )


def _transport_error(exc: Exception, deployment: Deployment) -> UpstreamError:
    return error_from_transport(exc, model_group=deployment.model_name, deployment_id=deployment.id)


async def _events(
    answer: httpx.Response, deployment: Deployment
) -> AsyncGenerator[StreamEvent, None]:
    """Parse SSE into events; an ``error`` event or a cut stream raises."""
    async for sse in EventSource(answer).aiter_sse():
        try:
            data = json.loads(sse.data)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise MalformedResponseError(
                f"upstream sent a stream event whose data is not a JSON object: {sse.data[:80]!r}",
                model_group=deployment.model_name, deployment_id=deployment.id,
            )
        kind = data.get("type") or sse.event
        if kind == "error":
            raise _event_error(data, deployment)
        yield StreamEvent(data)
        if kind in TERMINAL_EVENTS:
            return
    raise ConnectionError(
        "the upstream closed the stream before a terminal event",
        model_group=deployment.model_name, deployment_id=deployment.id,
    )


def _event_error(data: Mapping[str, Any], deployment: Deployment) -> UpstreamError:
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
