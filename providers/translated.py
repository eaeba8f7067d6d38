"""Providers reached through a codec: the HTTP half of translation, written once.

A :class:`TranslatedProvider` subclass names its codec and says how to reach
one deployment (:meth:`TranslatedProvider.prepare`: base URL, auth headers,
and a codec of the target's own when one provider serves several APIs),
and, where the provider needs it, how to authorise each request
(:meth:`TranslatedProvider.authorize_now`, else the awaited
:meth:`TranslatedProvider.authorize`: a signature, a refreshed token) and how
its stream is framed (:meth:`TranslatedProvider.frames`: SSE by default).
Everything else is shared with the native Responses path: the router's
pooled sender per upstream origin, timeouts, the error table, and the rule
that a stream's ``error`` event is raised, never passed on as data.

Translated responses get router-made ids (``resp_`` and 128 random bits, read
from the OS a batch at a time: :mod:`providers.response_ids`), so
ownership records, ``responses_api_deployment_check`` and logs treat them like
native ones. The upstream keeps no conversation state, so
``previous_response_id`` and ``conversation`` are refused here with a clear
error (never dropped, since dropping them would silently forget the
conversation), and by-id calls answer "not found".
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import httpx

from providers.codec import Call, Codec, NativeRequest
from providers.http import Answer, ClientPool
from providers.response_ids import ResponseIds
from providers.responses_http import (
    drain_events,
    event_error,
    sse_messages,
    transport_error,
    unsendable,
)
from router.errors import (
    ConnectionError,
    InvalidRequestError,
    MalformedResponseError,
    NotFoundError,
    RouterError,
    UpstreamError,
    error_from_status,
)
from router.types import (
    TERMINAL_EVENTS,
    Record,
    Response,
    StreamEvent,
    body_json,
    parse_json,
)

if TYPE_CHECKING:
    from router.config import DeploymentConfig
    from router.deployment import Deployment
    from router.request import RouteRequest

__all__ = ["Target", "TranslatedProvider"]

Json = dict[str, Any]

log = logging.getLogger("router.providers")

#: What a codec raises on an answer of the wrong shape (the upstream's malformed answer).
_MALFORMED = (KeyError, IndexError, TypeError, ValueError, AttributeError)

#: Parameters no translated upstream can honour: the conversation lives upstream.
_STATEFUL = ("previous_response_id", "conversation")


@dataclass(frozen=True, slots=True)
class Target:
    """Where and how to reach one translated deployment, prepared once.

    ``base_url`` has no trailing slash; each request's codec path is appended.
    ``headers`` usually hold the credentials, so they never appear in a repr.
    """

    base_url: str
    origin: str
    headers: Mapping[str, str]
    state_domain: str
    query: Mapping[str, str] | None = None
    drop_params: bool = False
    #: the codec for this deployment when it is not the provider's own (a provider that
    #: serves several APIs, as Vertex AI serves Gemini and Claude)
    codec: Codec | None = None
    #: ``query`` encoded once (``"?api-version=..."``, or ``""``), for the common request
    #: that adds no query of its own.
    query_string: str = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "query_string", "?" + urlencode(self.query) if self.query else "")

    def __repr__(self) -> str:
        return f"Target({self.base_url!r})"


class TranslatedProvider:
    """Sends codec-built requests through one pooled sender per upstream origin."""

    name = "translated"
    codec: Codec

    def __init__(self, pool: ClientPool) -> None:
        self._pool = pool
        self._warned: set[tuple[str, str]] = set()
        self._ids = ResponseIds()

    # -- what a subclass supplies ---------------------------------------------------------

    def prepare(self, config: DeploymentConfig) -> Target:
        raise NotImplementedError

    def authorize_now(
        self, deployment: Deployment, method: str, url: str, headers: dict[str, str],
        body: bytes,
    ) -> Mapping[str, str] | None:
        """The headers to send (``headers`` plus any per-request auth) when they can be made
        without waiting; ``None`` when they cannot (a token or credentials to refresh),
        and :meth:`authorize` then makes them. Default: ``headers`` as given.

        Most requests need no wait, so they skip the coroutine an ``await`` of
        :meth:`authorize` would cost.
        """
        return headers

    async def authorize(
        self, deployment: Deployment, method: str, url: str, headers: dict[str, str],
        body: bytes,
    ) -> Mapping[str, str]:
        """The headers to send when :meth:`authorize_now` could not make them (it may
        wait); default: as given."""
        return headers

    def error_body(self, answer: Answer) -> Any:
        """A native error answer's body, read, for :meth:`Codec.error` (JSON, else text).

        Override to add what the provider says in headers only (Bedrock's
        ``x-amzn-errortype``).
        """
        try:
            return json.loads(answer.content)
        except ValueError:
            return answer.text[:500]

    def frames(self, answer: Answer, deployment: Deployment) -> AsyncGenerator[Json, None]:
        """The native stream's events as JSON objects (default: SSE ``data`` lines)."""
        return _sse_objects(answer, deployment)

    def codec_of(self, deployment: Deployment) -> Codec:
        """The codec that speaks ``deployment``'s API (its target's, else the provider's)."""
        target: Target = deployment.endpoint
        return target.codec or self.codec

    # -- the Provider interface -----------------------------------------------------------

    def state_domain(self, deployment: Deployment) -> str:
        target: Target = deployment.endpoint
        return target.state_domain

    def stateless(self, endpoint: object) -> bool:
        """The upstream keeps no conversation (a codec's :class:`Target`; a subclass
        may also prepare native Responses endpoints, which keep theirs)."""
        return isinstance(endpoint, Target)

    async def create(
        self, deployment: Deployment, request: RouteRequest, timeout: float | None
    ) -> Response:
        call = self._call(deployment, request, stream=False)
        codec = self.codec_of(deployment)
        try:
            answer = await self._send(deployment, request, call, timeout, codec)
            try:
                await answer.aread()
            finally:
                await answer.aclose()
        except httpx.HTTPError as exc:
            raise transport_error(exc, deployment) from exc
        if answer.status_code >= 400:
            raise self._status_error(answer, deployment)
        body = _json_object(answer.content, answer.status_code, deployment)
        return Response(self._translate(codec.decode, deployment, body, call))

    async def stream(
        self, deployment: Deployment, request: RouteRequest, timeout: float | None
    ) -> AsyncGenerator[StreamEvent, None]:
        call = self._call(deployment, request, stream=True)
        codec = self.codec_of(deployment)
        try:
            answer = await self._send(deployment, request, call, timeout, codec)
        except httpx.HTTPError as exc:
            raise transport_error(exc, deployment) from exc
        try:
            if answer.status_code >= 400:
                await answer.aread()
                raise self._status_error(answer, deployment)
            decoder = codec.decoder(call)
            feed = decoder.feed
            frames = self.frames(answer, deployment)
            async for frame in frames:
                try:  # _translate's rules, inline: this runs once per native event
                    events = feed(frame)
                except RouterError as exc:
                    self._attributed(exc, deployment)
                    raise
                except _MALFORMED as exc:
                    raise self._malformed(exc, deployment) from None
                for event in events:
                    kind = event["type"]
                    if kind == "error":
                        raise event_error(event, deployment)
                    yield StreamEvent(event)
                    if kind in TERMINAL_EVENTS:
                        await drain_events(frames)
                        return
            for event in self._translate(decoder.end, deployment):
                yield _checked(event, deployment)
                if event["type"] in TERMINAL_EVENTS:
                    return
            raise ConnectionError(
                "the upstream closed the stream before its end",
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
        raise NotFoundError(
            f"{self.name} keeps no stored {resource}, so {method} {resource}/{path} "
            "has nothing to answer",
            status=404, model_group=deployment.model_name, deployment_id=deployment.id,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()

    # -- internals ------------------------------------------------------------------------

    def _call(self, deployment: Deployment, request: RouteRequest, *, stream: bool) -> Call:
        target: Target = deployment.endpoint
        params = request.params
        for name in _STATEFUL:
            if params.get(name) is not None:
                raise InvalidRequestError(
                    f"{name}: {self.name} keeps no conversation state, so a follow-up "
                    "cannot be continued there; send the whole conversation as input",
                    model_group=deployment.model_name, deployment_id=deployment.id,
                )
        return Call(self.name, deployment.upstream_model, params, self._ids.new(),
                    int(time.time()), stream, target.drop_params)

    def _native(self, call: Call, deployment: Deployment, codec: Codec) -> NativeRequest:
        try:
            native = codec.encode(call)
        except RouterError as exc:
            self._attributed(exc, deployment)
            raise
        for param in call.dropped:
            if (deployment.id, param) not in self._warned:
                self._warned.add((deployment.id, param))
                log.warning("deployment %r (%s): dropped %s, which it cannot honour "
                            "(drop_params)", deployment.id, self.name, param)
        return native

    async def _send(
        self, deployment: Deployment, request: RouteRequest, call: Call, timeout: float | None,
        codec: Codec,
    ) -> Answer:
        native = self._native(call, deployment, codec)
        target: Target = deployment.endpoint
        body = native.body
        extra = deployment.config.litellm_params.extra_body
        if extra or request.extra_body:
            body = {**body, **(extra or {}), **(request.extra_body or {})}
        try:
            content = body_json(body)
        except (TypeError, ValueError):
            raise unsendable(body) from None
        url = _url(target, native, request.extra_query)
        # by items: a codec's constant headers are a read-only mapping, which ``{**a, **b}``
        # would copy key by key through the mapping interface
        headers = dict(target.headers)
        headers.update(native.headers.items())
        if request.extra_headers:
            headers.update(request.extra_headers)
        sent = self.authorize_now(deployment, "POST", url, headers, content)
        if sent is None:
            sent = await self.authorize(deployment, "POST", url, headers, content)
        answer = await self._pool.get(target.origin).send(
            "POST", url, headers=sent, content=content, timeout=timeout,
            read_timeout=(request.stream_timeout or deployment.stream_timeout or timeout)
            if call.stream else None,
        )
        self._pool.heard(deployment.id, answer.headers)
        return answer

    def _status_error(self, answer: Answer, deployment: Deployment) -> UpstreamError:
        native = self.codec_of(deployment).error(answer.status_code, self.error_body(answer))
        return error_from_status(
            native.status, native.body(), answer.headers,
            model_group=deployment.model_name, deployment_id=deployment.id,
        )

    def _translate(self, step: Callable[..., Any], deployment: Deployment, *args: Any) -> Any:
        """Run a codec step on ``args``; a body of the wrong shape is the upstream's
        malformed answer."""
        try:
            return step(*args)
        except RouterError as exc:
            self._attributed(exc, deployment)
            raise
        except _MALFORMED as exc:
            raise self._malformed(exc, deployment) from None

    @staticmethod
    def _attributed(exc: RouterError, deployment: Deployment) -> None:
        """Name the deployment (and its group) on an error a codec raised."""
        exc.model_group = exc.model_group or deployment.model_name
        exc.deployment_id = exc.deployment_id or deployment.id

    def _malformed(self, exc: Exception, deployment: Deployment) -> MalformedResponseError:
        return MalformedResponseError(
            f"the upstream's answer is not a valid {self.name} body "
            f"({type(exc).__name__} while translating it)",
            model_group=deployment.model_name, deployment_id=deployment.id,
        )


def _url(target: Target, native: NativeRequest, extra: Mapping[str, Any] | None) -> str:
    url = target.base_url + native.path
    if not (native.query or extra):
        return url + target.query_string
    # urlencode, not httpx.URL: a fixed query (Azure's api-version) on every request
    # would otherwise cost a URL parse each time.
    return url + "?" + urlencode({**(target.query or {}), **native.query, **(extra or {})})


def _json_object(content: bytes, status: int, deployment: Deployment) -> Json:
    try:
        data = parse_json(content)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise MalformedResponseError(
            f"upstream answered HTTP {status} with a body that is not a JSON object",
            status=status, model_group=deployment.model_name, deployment_id=deployment.id,
        )
    return data


def _checked(event: Json, deployment: Deployment) -> StreamEvent:
    """A translated event for the caller; an ``error`` event is raised instead."""
    if event["type"] == "error":
        raise event_error(event, deployment)
    return StreamEvent(event)


async def _sse_objects(answer: Answer, deployment: Deployment) -> AsyncGenerator[Json, None]:
    """SSE ``data`` lines as JSON objects; ``[DONE]`` (Chat Completions' end) is skipped."""
    async for sse in sse_messages(answer):
        if sse.data == "[DONE]" or not sse.data:
            continue
        try:
            data = parse_json(sse.data)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise MalformedResponseError(
                f"upstream sent a stream event whose data is not a JSON object: "
                f"{sse.data[:80]!r}",
                model_group=deployment.model_name, deployment_id=deployment.id,
            )
        if "type" not in data and sse.event and sse.event != "message":
            data["type"] = sse.event
        yield data
