"""The router's one error hierarchy, and the mapping of upstream failures into it.

Every failure the caller can see is a :class:`RouterError`. Upstream answers
(HTTP status + OpenAI error ``code``) and transport exceptions (httpx) are
mapped at the provider boundary by :func:`error_from_status` and
:func:`error_from_transport`, so the attempt loop reasons about classes, never
about status codes. Each class states, as class attributes, what the router
does when it meets it: ``retryable`` (try another attempt in the same group; ``retry_same``:
also on the deployment that failed, when no other is left),
``cools_down`` (count it against the deployment), and ``fallback`` (which
fallback list applies: ``"default"``, ``"context_window"``,
``"content_policy"`` or ``None`` for none).

Tree::

    RouterError
    ├── ConfigError                         invalid configuration (every problem listed)
    ├── InvalidRequestError                 rejected before anything was sent
    ├── NoDeploymentAvailableError          nothing could serve (reason says why)
    │   └── UnknownModelError               the model group does not exist
    ├── PinnedDeploymentUnavailableError    the owner of a stored response failed
    ├── ResponseNotFoundError               no deployment holds the response id
    ├── StreamInterruptedError              a stream failed after events reached the caller
    └── UpstreamError                       the upstream answered with an error
        ├── BadRequestError                 400 / 422: the request itself is wrong
        │   ├── ContextWindowExceededError  input too long for the model
        │   ├── ContentPolicyViolationError refused by the content filter
        │   └── PreviousResponseNotFoundError  previous_response_id unknown upstream
        ├── AuthenticationError             401
        ├── PermissionDeniedError           403
        ├── NotFoundError                   404 (model, deployment or response)
        ├── ConflictError                   409
        ├── RateLimitError                  429 (``retry_after`` when the upstream said)
        │   └── QuotaExhaustedError         429 insufficient_quota: no retry
        ├── ServerError                     500 and other 5xx
        │   └── ServiceUnavailableError     502 / 503 / 504, overloaded
        ├── MalformedResponseError          a body or SSE event that is not valid
        ├── TimeoutError                    408, or no answer within the time left
        └── ConnectionError                 could not connect, or the connection broke

Every error carries ``model_group``, ``deployment_id`` (never a key) and the
attempt ``trail`` once the router has one; messages never contain secrets.
"""

from __future__ import annotations

import asyncio
import builtins
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import httpx

if TYPE_CHECKING:
    from router.types import AttemptTrail

__all__ = [
    "AuthenticationError",
    "BadRequestError",
    "ConfigError",
    "ConflictError",
    "ConnectionError",
    "ContentPolicyViolationError",
    "ContextWindowExceededError",
    "InvalidRequestError",
    "MalformedResponseError",
    "NoDeploymentAvailableError",
    "NotFoundError",
    "PermissionDeniedError",
    "PinnedDeploymentUnavailableError",
    "PreviousResponseNotFoundError",
    "QuotaExhaustedError",
    "RateLimitError",
    "ResponseNotFoundError",
    "RouterError",
    "ServerError",
    "ServiceUnavailableError",
    "StreamInterruptedError",
    "TimeoutError",
    "UnknownModelError",
    "UpstreamError",
    "classify",
    "error_from_failed_response",
    "error_from_status",
    "error_from_transport",
]


class RouterError(Exception):
    """Base of every error the router raises.

    ``model_group`` and ``deployment_id`` say where it happened (``None`` when
    not tied to one); ``trail`` is the request's attempt trail, set by the
    router before the error reaches the caller.
    """

    retryable: ClassVar[bool] = False
    retry_same: ClassVar[bool] = True
    cools_down: ClassVar[bool] = False
    fallback: ClassVar[str | None] = None

    def __init__(
        self,
        message: str,
        *,
        model_group: str | None = None,
        deployment_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.model_group = model_group
        self.deployment_id = deployment_id
        self.trail: AttemptTrail | None = None

    def __str__(self) -> str:
        where = [f"{k}={v}" for k, v in (("model_group", self.model_group),
                                          ("deployment", self.deployment_id)) if v]
        return f"{self.message} ({', '.join(where)})" if where else self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


class ConfigError(RouterError):
    """The configuration is invalid; ``problems`` lists each bad field by path."""

    def __init__(self, message: str, problems: Sequence[str] = ()) -> None:
        self.problems: tuple[str, ...] = tuple(problems)
        if self.problems:
            message = message + "\n" + "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(message)


class InvalidRequestError(RouterError):
    """The caller's request was rejected before anything was sent upstream."""


class NoDeploymentAvailableError(RouterError):
    """No deployment of the group could take the request.

    ``reason`` is one of ``"unknown_model"``, ``"all_cooled_down"``,
    ``"checks_rejected"``, ``"all_failed"``; ``details`` says more (for
    checks: which check removed which deployments). Another group may
    still serve, so the generic fallbacks apply.
    """

    fallback: ClassVar[str | None] = "default"

    def __init__(
        self,
        message: str,
        *,
        reason: str,
        model_group: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message, model_group=model_group)
        self.reason = reason
        self.details: Mapping[str, Any] = dict(details or {})


class UnknownModelError(NoDeploymentAvailableError):
    """The requested model group has no deployments."""

    fallback = None

    def __init__(self, model_group: str, known: Sequence[str]) -> None:
        names = ", ".join(sorted(known)) or "none"
        super().__init__(
            f"unknown model {model_group!r}; configured model groups: {names}",
            reason="unknown_model",
            model_group=model_group,
        )


class PinnedDeploymentUnavailableError(RouterError):
    """The deployment that owns ``response_id`` could not serve the request."""

    def __init__(
        self, message: str, *, response_id: str, model_group: str | None, deployment_id: str
    ) -> None:
        super().__init__(message, model_group=model_group, deployment_id=deployment_id)
        self.response_id = response_id


class ResponseNotFoundError(RouterError):
    """No deployment holds the stored response ``response_id``.

    ``unreachable`` lists deployments that could not be asked (errors other
    than "not found"); when it is not empty the answer may change on retry.
    """

    def __init__(
        self,
        message: str,
        *,
        response_id: str,
        model_group: str | None,
        unreachable: Sequence[str] = (),
    ) -> None:
        super().__init__(message, model_group=model_group)
        self.response_id = response_id
        self.unreachable = tuple(unreachable)


class StreamInterruptedError(RouterError):
    """A stream failed after events had reached the caller; ``__cause__`` says how."""


class UpstreamError(RouterError):
    """The upstream answered with an error (or with something unusable).

    ``status`` is the HTTP status (``None`` for transport failures), ``code``,
    ``type`` and ``param`` come from the OpenAI error body, ``request_id`` from
    ``x-request-id``, ``retry_after`` (seconds) from ``retry-after-ms`` or
    ``retry-after``.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        type: str | None = None,
        param: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
        body: Any = None,
        model_group: str | None = None,
        deployment_id: str | None = None,
    ) -> None:
        super().__init__(message, model_group=model_group, deployment_id=deployment_id)
        self.status = status
        self.code = code
        self.type = type
        self.param = param
        self.request_id = request_id
        self.retry_after = retry_after
        self.body = body

    def __str__(self) -> str:
        head = f"[{self.status}] " if self.status else ""
        code = f" (code={self.code})" if self.code else ""
        return head + super().__str__() + code


class BadRequestError(UpstreamError):
    """400 / 422: the request is wrong; retrying or falling back cannot help."""


class ContextWindowExceededError(BadRequestError):
    """The input does not fit the model's context window."""

    fallback = "context_window"


class ContentPolicyViolationError(BadRequestError):
    """The content filter refused the request."""

    fallback = "content_policy"


class PreviousResponseNotFoundError(BadRequestError):
    """The upstream does not hold ``previous_response_id``."""


class AuthenticationError(UpstreamError):
    """401: the deployment's credentials were refused."""

    retryable = True
    cools_down = True
    fallback = "default"


class PermissionDeniedError(UpstreamError):
    """403: the credentials may not use this model or resource."""

    retryable = True
    cools_down = True
    fallback = "default"


class NotFoundError(UpstreamError):
    """404: the model, deployment or response does not exist upstream."""

    retryable = True
    cools_down = True
    fallback = "default"


class ConflictError(UpstreamError):
    """409: the resource is in a state that forbids the call."""


class RateLimitError(UpstreamError):
    """429: too many requests; ``retry_after`` when the upstream said."""

    retryable = True
    cools_down = True
    fallback = "default"


class QuotaExhaustedError(RateLimitError):
    """429 ``insufficient_quota``: this account is out of quota. Another
    deployment (another account) may serve; this one never again for long."""

    retry_same = False


class ServerError(UpstreamError):
    """5xx: the upstream failed."""

    retryable = True
    cools_down = True
    fallback = "default"


class ServiceUnavailableError(ServerError):
    """502 / 503 / 504: the upstream is overloaded or down."""


class MalformedResponseError(UpstreamError):
    """The upstream answered with a body or event that is not valid."""

    retryable = True
    cools_down = True
    fallback = "default"


class TimeoutError(UpstreamError):
    """No answer within the time left (408, or a client-side timeout)."""

    retryable = True
    cools_down = True
    fallback = "default"


class ConnectionError(UpstreamError):
    """The connection could not be made or broke before an answer."""

    retryable = True
    cools_down = True
    fallback = "default"


_STATUS_CLASSES: Mapping[int, type[UpstreamError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    408: TimeoutError,
    409: ConflictError,
    422: BadRequestError,
    429: RateLimitError,
    500: ServerError,
    502: ServiceUnavailableError,
    503: ServiceUnavailableError,
    504: ServiceUnavailableError,
}

_CODE_CLASSES: Mapping[str, type[UpstreamError]] = {
    "context_length_exceeded": ContextWindowExceededError,
    "string_above_max_length": ContextWindowExceededError,
    "content_filter": ContentPolicyViolationError,
    "content_policy_violation": ContentPolicyViolationError,
    "previous_response_not_found": PreviousResponseNotFoundError,
    "insufficient_quota": QuotaExhaustedError,
    "rate_limit_exceeded": RateLimitError,
    "server_error": ServerError,
    "server_is_overloaded": ServiceUnavailableError,
    "slow_down": ServiceUnavailableError,
    "invalid_api_key": AuthenticationError,
}


def classify(status: int | None, code: str | None) -> type[UpstreamError]:
    """The most specific class for an upstream ``status`` and error ``code``."""
    by_code = _CODE_CLASSES.get(code) if code else None
    if by_code is not None and (status is None or status < 500 or issubclass(by_code, ServerError)):
        return by_code
    if status is None:
        return ServerError
    exact = _STATUS_CLASSES.get(status)
    if exact is not None:
        return exact
    if status >= 500:
        return ServerError
    return BadRequestError


def error_from_status(
    status: int,
    body: Any,
    headers: Mapping[str, str],
    *,
    model_group: str | None = None,
    deployment_id: str | None = None,
) -> UpstreamError:
    """Map an upstream HTTP error answer to the most specific class.

    ``body`` is the decoded JSON body (or raw text); ``headers`` are the
    answer's headers (case-insensitive mapping, as httpx gives them).
    """
    err = body.get("error") if isinstance(body, Mapping) else None
    err = err if isinstance(err, Mapping) else {}
    code = _str_or_none(err.get("code"))
    message = _str_or_none(err.get("message")) or f"upstream answered HTTP {status}"
    cls = classify(status, code)
    return cls(
        message,
        status=status,
        code=code,
        type=_str_or_none(err.get("type")),
        param=_str_or_none(err.get("param")),
        request_id=headers.get("x-request-id"),
        retry_after=parse_retry_after(headers),
        body=body,
        model_group=model_group,
        deployment_id=deployment_id,
    )


def error_from_failed_response(
    error: Mapping[str, Any], *, model_group: str | None, deployment_id: str | None
) -> UpstreamError:
    """Map the ``error`` of a Response whose ``status`` is ``"failed"``."""
    code = _str_or_none(error.get("code"))
    cls = classify(None, code)
    message = _str_or_none(error.get("message")) or "the upstream response failed"
    return cls(message, code=code, model_group=model_group, deployment_id=deployment_id)


def error_from_transport(
    exc: Exception, *, model_group: str | None = None, deployment_id: str | None = None
) -> UpstreamError:
    """Map an httpx (or asyncio) transport exception to the hierarchy."""
    cls: type[UpstreamError]
    if isinstance(exc, httpx.TimeoutException | builtins.TimeoutError) and not _refused(exc):
        cls = TimeoutError
        message = "the upstream did not answer in time"
    elif isinstance(exc, httpx.DecodingError):
        cls = MalformedResponseError
        message = "the upstream answer could not be decoded"
    elif isinstance(exc, httpx.TransportError | OSError):
        cls = ConnectionError
        message = f"connection to the upstream failed: {type(exc.__cause__ or exc).__name__}"
    else:
        cls = ServerError
        message = f"unexpected failure talking to the upstream: {type(exc).__name__}"
    return cls(message, model_group=model_group, deployment_id=deployment_id)


def _refused(exc: BaseException) -> bool:
    """A "timeout" whose cause is not a timeout (httpx-aiohttp maps a refused
    connection to ``ConnectTimeout``): it is a connection failure."""
    cause = exc.__cause__ or exc.__context__
    return cause is not None and not isinstance(
        cause, builtins.TimeoutError | asyncio.CancelledError
    )


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait, from ``retry-after-ms`` (Azure) or ``retry-after``.

    Non-positive or unparsable values (Azure has been seen sending ``-1`` and
    ``0``) mean "not said": ``None``.
    """
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        raw = headers.get(name)
        if raw is None:
            continue
        try:
            value = float(raw) * scale
        except ValueError:
            continue
        if math.isfinite(value) and value > 0:
            return value
    return None


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
