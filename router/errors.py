"""The router's one error hierarchy, the mapping of upstream failures into it,
and the one table that says what the router does with each class.

Every failure the caller can see is a :class:`RouterError`. Upstream answers
(HTTP status + OpenAI error ``code``) and transport exceptions (httpx) are
mapped at the provider boundary by :func:`error_from_status`,
:func:`error_from_failed_response` and :func:`error_from_transport`, so the
attempt loop reasons about classes, never about status codes.

Tree::

    RouterError
    ├── ConfigError                         invalid configuration (every problem listed)
    ├── InvalidRequestError                 rejected before anything was sent
    │   ├── UnsupportedParameterError       a parameter the chosen provider cannot honour
    │   └── ConversationLimitError          the stored conversation would pass a size limit
    ├── NoDeploymentAvailableError          nothing could serve (reason says why)
    │   └── UnknownModelError               the model group does not exist
    ├── PinnedDeploymentUnavailableError    the owner of a stored response failed
    ├── ResponseNotFoundError               no deployment holds the response id
    ├── ConversationUnavailableError        the router's conversation store cannot be read
    ├── StreamInterruptedError              a stream failed after events reached the caller
    └── UpstreamError                       an upstream error the router cannot place
        │                                   more precisely (an unknown failed-response code)
        ├── BadRequestError                 400 / 422 / other 4xx; invalid_prompt, invalid_image...
        │   ├── ContextWindowExceededError  context_length_exceeded: input too long
        │   ├── ContentPolicyViolationError content_filter, (image_)content_policy_violation
        │   └── PreviousResponseNotFoundError  previous_response_id unknown upstream
        ├── AuthenticationError             401, invalid_api_key
        ├── PermissionDeniedError           403
        ├── NotFoundError                   404, model_not_found, DeploymentNotFound
        │   └── ObjectNotFoundError         404 for an object the request named (file, ...)
        ├── ConflictError                   409
        ├── RateLimitError                  429 (``retry_after`` when the upstream said)
        │   └── QuotaExhaustedError         429 insufficient_quota
        ├── ServerError                     500, other 5xx, server_error
        │   └── ServiceUnavailableError     502 / 503 / 504, server_is_overloaded, slow_down
        ├── MalformedResponseError          a body or SSE event that is not valid
        ├── TimeoutError                    408, vector_store_timeout, no answer in time
        └── ConnectionError                 could not connect, or the connection broke

What the router does with each class is one table, :data:`ERROR_TABLE` (a
subclass not listed reads its nearest listed base). Columns: ``retry``: try
another deployment of the group (each retry is paid from the retry budget);
``same``: also the deployment that failed, when no other is left;
``cooldown``: ``immediate`` (at once), ``counted`` (toward ``allowed_fails``
in a minute) or ``none``; ``duration`` of that cooldown: ``default``
(``cooldown_time``, growing on repeats up to ``max_cooldown_time``),
``retry-after`` (the upstream's ``Retry-After`` / ``retry-after-ms``, else
default) or ``long`` (an exhausted quota); ``fallback``: which fallback list
applies once the group gives up (``default``: ``fallbacks`` /
``default_fallbacks``; ``-``: none, the error goes to the caller)::

    class                             retry  same  cooldown   duration     fallback
    RouterError                       no     no    none       -            -
    ConfigError                       no     no    none       -            -
    InvalidRequestError               no     no    none       -            -
    UnsupportedParameterError         no     no    none       -            -
    NoDeploymentAvailableError        no     no    none       -            default
    UnknownModelError                 no     no    none       -            -
    PinnedDeploymentUnavailableError  no     no    none       -            -
    ResponseNotFoundError             no     no    none       -            -
    ConversationUnavailableError      no     no    none       -            -
    ConversationLimitError            no     no    none       -            -
    StreamInterruptedError            no     no    none       -            -
    UpstreamError                     no     no    none       -            -
    BadRequestError                   no     no    none       -            -
    ContextWindowExceededError        no     no    none       -            context_window
    ContentPolicyViolationError       no     no    none       -            content_policy
    PreviousResponseNotFoundError     no     no    none       -            -
    AuthenticationError               yes    no    immediate  default      default
    PermissionDeniedError             yes    no    immediate  default      default
    NotFoundError                     yes    no    immediate  default      default
    ObjectNotFoundError               yes    no    none       -            default
    ConflictError                     no     no    none       -            -
    RateLimitError                    yes    yes   immediate  retry-after  default
    QuotaExhaustedError               no     no    immediate  long         default
    ServerError                       yes    yes   counted    default      default
    ServiceUnavailableError           yes    yes   counted    default      default
    MalformedResponseError            yes    yes   counted    default      default
    TimeoutError                      yes    yes   counted    default      default
    ConnectionError                   yes    yes   counted    default      default

Why these rows: a 400 is the request's fault, so another deployment would
refuse it too; 401/403/404 are the deployment's (its key, its model name), so
the others may serve but the same one never will; an exhausted quota does not
come back in seconds and is not retried (the request goes to the fallbacks);
408, 5xx, timeouts, broken connections and garbled answers are the
upstream's bad moment, so they are retried elsewhere and count toward
cooling it down.

Every error carries ``model_group``, ``deployment_id`` (never a key) and the
attempt ``trail`` once the router has one; messages never contain secrets.
"""

from __future__ import annotations

import builtins
import datetime
import email.utils
import math
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

import httpx

if TYPE_CHECKING:
    from router.types import AttemptTrail

__all__ = [
    "ERROR_TABLE",
    "AuthenticationError",
    "BadRequestError",
    "ConfigError",
    "ConflictError",
    "ConnectionError",
    "ContentPolicyViolationError",
    "ContextWindowExceededError",
    "ConversationLimitError",
    "ConversationUnavailableError",
    "ErrorPolicy",
    "InvalidRequestError",
    "MalformedResponseError",
    "NoDeploymentAvailableError",
    "NotFoundError",
    "ObjectNotFoundError",
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
    "UnsupportedParameterError",
    "UpstreamConnectionError",
    "UpstreamError",
    "UpstreamTimeoutError",
    "classify",
    "error_from_failed_response",
    "error_from_status",
    "error_from_transport",
    "parse_retry_after",
    "policy_for",
    "render_error_table",
    "request_id_of",
]

CooldownKind = Literal["immediate", "counted", "none"]
DurationKind = Literal["default", "retry-after", "long"]
FallbackKind = Literal["default", "context_window", "content_policy"]


@dataclass(frozen=True, slots=True)
class ErrorPolicy:
    """One row of :data:`ERROR_TABLE`: what the router does with an error class.

    ``retry``: another deployment of the group may be tried; ``retry_same``:
    the deployment that failed may be tried again when no other is left;
    ``cooldown``: ``"immediate"``, ``"counted"`` (toward ``allowed_fails``) or
    ``"none"``; ``duration``: how long that cooldown lasts (meaningless when
    ``cooldown`` is ``"none"``); ``fallback``: the fallback list that applies,
    ``None`` for none.
    """

    retry: bool
    retry_same: bool
    cooldown: CooldownKind
    duration: DurationKind
    fallback: FallbackKind | None


class RouterError(Exception):
    """Base of every error the router raises.

    ``model_group`` and ``deployment_id`` say where it happened (``None`` when
    not tied to one); ``trail`` is the request's attempt trail, set by the
    router before the error reaches the caller. ``retryable``, ``retry_same``,
    ``cools_down`` and ``fallback`` read this class's row of :data:`ERROR_TABLE`.
    """

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

    @property
    def policy(self) -> ErrorPolicy:
        """This error's row of :data:`ERROR_TABLE`."""
        return policy_for(type(self))

    @property
    def retryable(self) -> bool:
        """Another deployment of the group may be tried."""
        return self.policy.retry

    @property
    def retry_same(self) -> bool:
        """The deployment that failed may be tried again when no other is left."""
        return self.policy.retry_same

    @property
    def cools_down(self) -> bool:
        """The error counts against the deployment (at once or toward ``allowed_fails``)."""
        return self.policy.cooldown != "none"

    @property
    def fallback(self) -> str | None:
        """The fallback list that applies (``"default"``, ``"context_window"``, ...)."""
        return self.policy.fallback

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


class UnsupportedParameterError(InvalidRequestError):
    """A parameter the deployment's provider cannot honour (refused before sending).

    ``param`` names the parameter (``"tools[2]"``, ``"reasoning.summary"``) and
    ``provider`` the provider that cannot honour it. A deployment with
    ``drop_params: true`` drops such parameters instead.
    """

    def __init__(self, message: str, *, param: str, provider: str,
                 model_group: str | None = None, deployment_id: str | None = None) -> None:
        super().__init__(message, model_group=model_group, deployment_id=deployment_id)
        self.param = param
        self.provider = provider


class ConversationLimitError(InvalidRequestError):
    """Keeping the request's conversation would pass one of the store's size limits.

    ``setting`` names the limit (``conversation_max_response_bytes`` or
    ``conversation_max_bytes``); ``size`` is what it would hold, ``limit`` the
    setting's value, both in bytes. Raised before any upstream call, so
    nothing is sent and nothing is silently cut.
    """

    def __init__(self, message: str, *, setting: str, size: int, limit: int,
                 model_group: str | None = None) -> None:
        super().__init__(message, model_group=model_group)
        self.setting = setting
        self.size = size
        self.limit = limit


class NoDeploymentAvailableError(RouterError):
    """No deployment of the group could take the request.

    ``reason`` is one of ``"unknown_model"``, ``"all_cooled_down"``,
    ``"checks_rejected"``, ``"all_failed"``; ``details`` says more (for
    checks: which check removed which deployments). Another group may
    still serve, so the generic fallbacks apply.
    """

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


class ConversationUnavailableError(RouterError):
    """The history of ``response_id`` is kept by the router, and its store cannot be read
    now (Redis down): the request is refused rather than started without its history."""

    def __init__(self, message: str, *, response_id: str, model_group: str | None) -> None:
        super().__init__(message, model_group=model_group)
        self.response_id = response_id


class StreamInterruptedError(RouterError):
    """A stream failed after events had reached the caller; ``__cause__`` says how."""


class UpstreamError(RouterError):
    """The upstream answered with an error (or with something unusable).

    Raised as itself for a failure the router cannot place more precisely (a
    failed response with an error code it does not know): not retried.
    ``status`` is the HTTP status (``None`` for transport failures and failed
    responses), ``code``, ``type`` and ``param`` come from the OpenAI error
    body, ``request_id`` from ``x-request-id``, ``retry_after`` (seconds) from
    ``retry-after-ms`` or ``retry-after``.
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


class ContentPolicyViolationError(BadRequestError):
    """The content filter refused the request."""


class PreviousResponseNotFoundError(BadRequestError):
    """The upstream does not hold ``previous_response_id``."""


class AuthenticationError(UpstreamError):
    """401: the deployment's credentials were refused."""


class PermissionDeniedError(UpstreamError):
    """403: the credentials may not use this model or resource."""


class NotFoundError(UpstreamError):
    """404: the model, deployment or response does not exist upstream."""


class ObjectNotFoundError(NotFoundError):
    """404 about an object the request named (a file, vector store, prompt, conversation).

    The request's doing, not the deployment's: it never cools the deployment
    down. Another deployment of the group may hold the object (objects live in
    one account or resource), so it is still tried there.
    """


class ConflictError(UpstreamError):
    """409: the resource is in a state that forbids the call."""


class RateLimitError(UpstreamError):
    """429: too many requests; ``retry_after`` when the upstream said."""


class QuotaExhaustedError(RateLimitError):
    """429 ``insufficient_quota``: the account is out of quota (billing), for long."""


class ServerError(UpstreamError):
    """5xx: the upstream failed."""


class ServiceUnavailableError(ServerError):
    """502 / 503 / 504: the upstream is overloaded or down."""


class MalformedResponseError(UpstreamError):
    """The upstream answered with a body or event that is not valid."""


class TimeoutError(UpstreamError):
    """No answer within the time left (408, or a client-side timeout)."""


class ConnectionError(UpstreamError):
    """The connection could not be made or broke before an answer."""


# The two classes above shadow the built-ins inside this module only. Their
# names stay: a class's name is what events, metrics labels, attempt trails and
# LiteLLM's ``retry_policy`` keys (``TimeoutErrorRetries``) say. Code that also
# handles the built-ins imports these aliases instead, so nothing shadows.
UpstreamTimeoutError = TimeoutError
UpstreamConnectionError = ConnectionError


def _row(retry: str, cooldown: CooldownKind, duration: DurationKind,
         fallback: FallbackKind | None) -> ErrorPolicy:
    """``retry``: ``"no"``, ``"elsewhere"`` or ``"also same"``."""
    return ErrorPolicy(retry != "no", retry == "also same", cooldown, duration, fallback)


_NEVER = _row("no", "none", "default", None)

#: The decision table: one row per class (subclasses not listed read their base's).
ERROR_TABLE: Mapping[type[RouterError], ErrorPolicy] = MappingProxyType({
    RouterError: _NEVER,
    ConfigError: _NEVER,
    InvalidRequestError: _NEVER,
    UnsupportedParameterError: _NEVER,
    NoDeploymentAvailableError: _row("no", "none", "default", "default"),
    UnknownModelError: _NEVER,
    PinnedDeploymentUnavailableError: _NEVER,
    ResponseNotFoundError: _NEVER,
    ConversationUnavailableError: _NEVER,
    ConversationLimitError: _NEVER,
    StreamInterruptedError: _NEVER,
    UpstreamError: _NEVER,
    BadRequestError: _NEVER,
    ContextWindowExceededError: _row("no", "none", "default", "context_window"),
    ContentPolicyViolationError: _row("no", "none", "default", "content_policy"),
    PreviousResponseNotFoundError: _NEVER,
    AuthenticationError: _row("elsewhere", "immediate", "default", "default"),
    PermissionDeniedError: _row("elsewhere", "immediate", "default", "default"),
    NotFoundError: _row("elsewhere", "immediate", "default", "default"),
    ObjectNotFoundError: _row("elsewhere", "none", "default", "default"),
    ConflictError: _NEVER,
    RateLimitError: _row("also same", "immediate", "retry-after", "default"),
    QuotaExhaustedError: _row("no", "immediate", "long", "default"),
    ServerError: _row("also same", "counted", "default", "default"),
    ServiceUnavailableError: _row("also same", "counted", "default", "default"),
    MalformedResponseError: _row("also same", "counted", "default", "default"),
    TimeoutError: _row("also same", "counted", "default", "default"),
    ConnectionError: _row("also same", "counted", "default", "default"),
})


def policy_for(cls: type[RouterError]) -> ErrorPolicy:
    """The row of :data:`ERROR_TABLE` for ``cls`` or its nearest listed base."""
    for base in cls.__mro__:
        row = ERROR_TABLE.get(base)
        if row is not None:
            return row
    raise TypeError(f"{cls.__name__} is not a RouterError")


def render_error_table() -> str:
    """:data:`ERROR_TABLE` as the aligned text table the module docstring shows."""
    header = ("class", "retry", "same", "cooldown", "duration", "fallback")
    rows = [header] + [
        (cls.__name__, _yes(p.retry), _yes(p.retry_same), p.cooldown,
         p.duration if p.cooldown != "none" else "-", p.fallback or "-")
        for cls, p in ERROR_TABLE.items()
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    return "\n".join(
        "    " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in rows
    )


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


# -- mapping upstream failures -----------------------------------------------------------

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

#: OpenAI / Azure error codes, from HTTP error bodies, SSE ``error`` events and
#: the ``error`` of a failed Response (whose codes are the image and prompt ones).
_CODE_CLASSES: Mapping[str, type[UpstreamError]] = {
    "context_length_exceeded": ContextWindowExceededError,
    "string_above_max_length": ContextWindowExceededError,
    "content_filter": ContentPolicyViolationError,
    "content_policy_violation": ContentPolicyViolationError,
    "image_content_policy_violation": ContentPolicyViolationError,
    "previous_response_not_found": PreviousResponseNotFoundError,
    "insufficient_quota": QuotaExhaustedError,
    "rate_limit_exceeded": RateLimitError,
    "server_error": ServerError,
    "server_is_overloaded": ServiceUnavailableError,
    "slow_down": ServiceUnavailableError,
    "vector_store_timeout": TimeoutError,
    "invalid_api_key": AuthenticationError,
    "model_not_found": NotFoundError,
    "DeploymentNotFound": NotFoundError,
    "invalid_prompt": BadRequestError,
    "invalid_image": BadRequestError,
    "invalid_image_format": BadRequestError,
    "invalid_base64_image": BadRequestError,
    "invalid_image_url": BadRequestError,
    "image_too_large": BadRequestError,
    "image_too_small": BadRequestError,
    "image_parse_error": BadRequestError,
    "invalid_image_mode": BadRequestError,
    "image_file_too_large": BadRequestError,
    "unsupported_image_media_type": BadRequestError,
    "empty_image_file": BadRequestError,
    "failed_to_download_image": BadRequestError,
    "image_file_not_found": BadRequestError,
}

#: Words that mark an unknown code as the upstream's failure rather than the request's.
_SERVER_HINTS = ("server", "internal", "overload", "unavailable", "timeout", "timed_out")


def classify(status: int | None, code: str | None) -> type[UpstreamError]:
    """The most specific class for an upstream ``status`` and error ``code``.

    A known code wins unless it would turn a 5xx into a client error. Without
    a status (a failed Response, an SSE ``error`` event): no code at all is a
    server failure; an unknown code is a :class:`ServerError` when it reads
    like one (``..._server_...``, ``..._timeout``), else a plain, never
    retried :class:`UpstreamError`, since retrying a request the upstream
    refused for a reason we do not know would repeat the refusal.
    """
    by_code = _CODE_CLASSES.get(code) if code else None
    if by_code is not None and (status is None or status < 500 or issubclass(by_code, ServerError)):
        return by_code
    if status is None:
        return _unknown_code_class(code)
    exact = _STATUS_CLASSES.get(status)
    if exact is not None:
        return exact
    if status >= 500:
        return ServerError
    return BadRequestError


def _unknown_code_class(code: str | None) -> type[UpstreamError]:
    if code is None:
        return ServerError
    lowered = code.lower()
    return ServerError if any(h in lowered for h in _SERVER_HINTS) else UpstreamError


#: Codes of a 404 that is the deployment's own (its model or Azure deployment name).
_DEPLOYMENT_CODES = frozenset({"model_not_found", "DeploymentNotFound"})

#: What a 404's message says when it is about an object the request named
#: ("No such File object: file-...", "Vector store with id 'vs_...' not found").
_OBJECT = re.compile(
    r"\b(?:file|vector[ _]store|prompt|conversation|container|assistant|thread)\b"
    r"|\b(?:file-|vs_|pmpt_|conv_|cntr_|asst_|thread_)\w", re.IGNORECASE)


def error_from_status(
    status: int,
    body: Any,
    headers: Mapping[str, str],
    *,
    model_group: str | None = None,
    deployment_id: str | None = None,
    wall: float | None = None,
) -> UpstreamError:
    """Map an upstream HTTP error answer to the most specific class.

    ``body`` is the decoded JSON body (or raw text); ``headers`` are the
    answer's headers (case-insensitive mapping, as httpx gives them); ``wall``
    is the current Unix time for a ``Retry-After`` given as an HTTP date
    (default: ``time.time()``).
    """
    err = body.get("error") if isinstance(body, Mapping) else None
    err = err if isinstance(err, Mapping) else {}
    code = _str_or_none(err.get("code"))
    message = _str_or_none(err.get("message")) or f"upstream answered HTTP {status}"
    cls = classify(status, code)
    if cls is NotFoundError and code not in _DEPLOYMENT_CODES and _OBJECT.search(message):
        cls = ObjectNotFoundError
    return cls(
        message,
        status=status,
        code=code,
        type=_str_or_none(err.get("type")),
        param=_str_or_none(err.get("param")),
        request_id=request_id_of(headers),
        retry_after=parse_retry_after(headers, wall=wall),
        body=body,
        model_group=model_group,
        deployment_id=deployment_id,
    )


#: Where each provider puts its request id (OpenAI and Azure, Anthropic, AWS).
REQUEST_ID_HEADERS = ("x-request-id", "request-id", "x-amzn-requestid")


def request_id_of(headers: Mapping[str, str]) -> str | None:
    """The upstream's request id from ``headers`` (case-insensitive), whichever provider."""
    for name in REQUEST_ID_HEADERS:
        value = headers.get(name)
        if value:
            return value
    return None


def error_from_failed_response(
    error: Mapping[str, Any], *, model_group: str | None, deployment_id: str | None
) -> UpstreamError:
    """Map the ``error`` of a Response whose ``status`` is ``"failed"`` (see :func:`classify`)."""
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
    """A "timeout" caused by a socket error that is not a timeout: a connection failure.

    httpx-aiohttp (``providers.http.default_client()``, a caller's client)
    maps a refused connection (aiohttp's ``ClientConnectorError``, an
    ``OSError``) to ``ConnectTimeout``. httpx's own timeouts are caused by
    httpcore's, which are not ``OSError``s, and stay timeouts.
    """
    cause = exc.__cause__ or exc.__context__
    return isinstance(cause, OSError) and not isinstance(cause, builtins.TimeoutError)


def parse_retry_after(headers: Mapping[str, str], *, wall: float | None = None) -> float | None:
    """Seconds to wait, from ``retry-after-ms`` (Azure) or ``retry-after``.

    ``retry-after`` may be seconds or an HTTP date (RFC 9110), which is turned
    into seconds from ``wall`` (Unix time; default ``time.time()``).
    Non-positive or unparsable values (Azure has been seen sending ``-1`` and
    ``0``), and dates in the past, mean "not said": ``None``.
    """
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        raw = headers.get(name)
        if raw is None:
            continue
        value = _seconds(raw, scale)
        if value is None and name == "retry-after":
            value = _date_seconds(raw, time.time() if wall is None else wall)
        if value is not None and math.isfinite(value) and value > 0:
            return value
    return None


def _seconds(raw: str, scale: float) -> float | None:
    try:
        return float(raw) * scale
    except ValueError:
        return None


def _date_seconds(raw: str, wall: float) -> float | None:
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000" (zone unknown); HTTP dates are always UTC
        when = when.replace(tzinfo=datetime.UTC)
    return when.timestamp() - wall


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
