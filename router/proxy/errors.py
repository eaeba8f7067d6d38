"""Errors as OpenAI sends them: ``{"error": {"message", "type", "param", "code"}}``.

Every :class:`router.errors.RouterError` class maps to a status through
:data:`STATUS_BY_CLASS` (every class is listed, and a test says so; a
subclass added later reads its nearest listed base until it is), chosen so
that the official SDKs raise their own matching class:
400 ``BadRequestError``, 401 ``AuthenticationError``, 404 ``NotFoundError``,
429 ``RateLimitError`` (with ``Retry-After``), 5xx ``InternalServerError``.

Two choices worth stating. An upstream that refuses *the server's*
credentials (401/403 from a deployment) is a 502, not a 401: the caller's
key is fine, and a 401 would tell its SDK otherwise. An unknown model and a
model the caller's key may not use answer the same 400, so a key cannot
probe which model groups exist.

Messages are the router's own (they name no secret); an unexpected
exception becomes a 500 whose message says nothing of the internals.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from aiohttp import web

import router.errors as rerr
from router.types import dump_json

__all__ = [
    "STATUS_BY_CLASS", "ApiError", "api_error", "error_event", "error_response", "internal_error",
]


@dataclass(eq=False)
class ApiError(Exception):
    """One error answer (raised by handlers): HTTP status and the OpenAI error's fields."""

    status: int
    message: str
    type: str = "invalid_request_error"
    param: str | None = None
    code: str | None = None
    retry_after: float | None = None

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type,
                          "param": self.param, "code": self.code}}


#: status, OpenAI ``type``, default ``code`` for each router error class.
STATUS_BY_CLASS: dict[type[rerr.RouterError], tuple[int, str, str | None]] = {
    rerr.RouterError: (500, "server_error", None),
    rerr.ConfigError: (500, "server_error", None),
    rerr.InvalidRequestError: (400, "invalid_request_error", None),
    rerr.UnsupportedParameterError: (400, "invalid_request_error", "unsupported_parameter"),
    rerr.NoDeploymentAvailableError: (503, "service_unavailable", "no_deployment_available"),
    rerr.UnknownModelError: (400, "invalid_request_error", "model_not_found"),
    rerr.PinnedDeploymentUnavailableError: (503, "service_unavailable",
                                            "pinned_deployment_unavailable"),
    rerr.ResponseNotFoundError: (404, "invalid_request_error", "not_found"),
    rerr.ConversationUnavailableError: (503, "service_unavailable", "conversation_unavailable"),
    rerr.ConversationLimitError: (400, "invalid_request_error", "conversation_too_large"),
    rerr.StreamInterruptedError: (502, "server_error", "stream_interrupted"),
    rerr.UpstreamError: (502, "server_error", "upstream_error"),
    rerr.BadRequestError: (400, "invalid_request_error", None),
    rerr.ContextWindowExceededError: (400, "invalid_request_error", "context_length_exceeded"),
    rerr.ContentPolicyViolationError: (400, "invalid_request_error", "content_filter"),
    rerr.PreviousResponseNotFoundError: (400, "invalid_request_error",
                                         "previous_response_not_found"),
    rerr.AuthenticationError: (502, "server_error", "upstream_authentication_failed"),
    rerr.PermissionDeniedError: (502, "server_error", "upstream_permission_denied"),
    rerr.NotFoundError: (404, "invalid_request_error", "not_found"),
    rerr.ObjectNotFoundError: (404, "invalid_request_error", "not_found"),
    rerr.ConflictError: (409, "invalid_request_error", None),
    rerr.RateLimitError: (429, "rate_limit_error", "rate_limit_exceeded"),
    rerr.QuotaExhaustedError: (429, "insufficient_quota", "insufficient_quota"),
    rerr.ServerError: (502, "server_error", "upstream_error"),
    rerr.ServiceUnavailableError: (503, "service_unavailable", "upstream_unavailable"),
    rerr.MalformedResponseError: (502, "server_error", "upstream_malformed_response"),
    rerr.TimeoutError: (504, "server_error", "upstream_timeout"),
    rerr.ConnectionError: (502, "server_error", "upstream_connection_failed"),
}

_FIELD = re.compile(r"^([A-Za-z_][\w.\[\]]*): ")


def _row(cls: type[rerr.RouterError]) -> tuple[int, str, str | None]:
    for base in cls.__mro__:
        row = STATUS_BY_CLASS.get(base)
        if row is not None:
            return row
    raise TypeError(f"{cls.__name__} is not a RouterError")


def api_error(exc: rerr.RouterError) -> ApiError:
    """The answer for a router error (status, type, code, param, Retry-After)."""
    status, kind, code = _row(type(exc))
    param = None
    retry_after = None
    if isinstance(exc, rerr.UnknownModelError):
        param = "model"
    elif isinstance(exc, rerr.UnsupportedParameterError):
        param = exc.param
    elif isinstance(exc, rerr.InvalidRequestError):
        match = _FIELD.match(exc.message)
        param = match.group(1) if match else None
    if isinstance(exc, rerr.UpstreamError):
        code = exc.code or code
        retry_after = exc.retry_after
        if isinstance(exc, rerr.BadRequestError | rerr.ConflictError):
            param = exc.param
    message = _message(exc)
    return ApiError(status, message, kind, param, code, retry_after)


def _message(exc: rerr.RouterError) -> str:
    if isinstance(exc, rerr.AuthenticationError | rerr.PermissionDeniedError):
        return "the upstream deployments refused the server's credentials"
    if isinstance(exc, rerr.ResponseNotFoundError):
        return f"Response with id '{exc.response_id}' not found."
    return exc.message


def internal_error() -> ApiError:
    return ApiError(500, "the server failed to handle the request", "server_error", None,
                    "internal_error")


def error_response(error: ApiError, headers: dict[str, str] | None = None) -> web.Response:
    """The HTTP answer for ``error`` (JSON body, ``Retry-After`` when known)."""
    out = dict(headers or {})
    if error.retry_after is not None:
        out["Retry-After"] = str(max(1, round(error.retry_after)))
    return web.Response(status=error.status, body=dump_json(error.body()),
                        content_type="application/json", headers=out)


def error_event(error: ApiError, sequence_number: int) -> dict[str, Any]:
    """A Responses ``error`` stream event (a stream that fails after its first event)."""
    return {"type": "error", "code": error.code or error.type, "message": error.message,
            "param": error.param, "sequence_number": sequence_number}
