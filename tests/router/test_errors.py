"""The error hierarchy and the mapping of upstream failures into it (router/errors.py).

The expected tables are written out here independently of the module, so a
change to the mapping has to be made in both places on purpose; the
completeness test (as httpx's ``tests/test_exceptions.py``) proves that every
``UpstreamError`` subclass can actually be produced by some upstream failure.
"""

from __future__ import annotations

import asyncio
import builtins
import email.utils
import inspect
from typing import Any

import httpx
import pytest
from aiohttp import web

from providers.http import default_client
from router import errors
from router.errors import (
    AuthenticationError,
    BadRequestError,
    ConfigError,
    ConflictError,
    ConnectionError,
    ContentPolicyViolationError,
    ContextWindowExceededError,
    ConversationLimitError,
    ConversationUnavailableError,
    InvalidRequestError,
    MalformedResponseError,
    NoDeploymentAvailableError,
    NotFoundError,
    PermissionDeniedError,
    PinnedDeploymentUnavailableError,
    PreviousResponseNotFoundError,
    QuotaExhaustedError,
    RateLimitError,
    ResponseNotFoundError,
    RouterError,
    ServerError,
    ServiceUnavailableError,
    StreamInterruptedError,
    TimeoutError,
    UnknownModelError,
    UpstreamError,
    classify,
    error_from_failed_response,
    error_from_status,
    error_from_transport,
    parse_retry_after,
    policy_for,
    render_error_table,
)
from tests.conftest import serve_routes

# -- expected tables, written independently of the module -----------------------------

STATUS_TABLE: dict[int, type[UpstreamError]] = {
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

# code -> (the status the upstream sends it with, the class expected); None: the code
# comes in the `error` of a Response with status "failed" (or an SSE error event).
CODE_TABLE: dict[str, tuple[int | None, type[UpstreamError]]] = {
    "context_length_exceeded": (400, ContextWindowExceededError),
    "string_above_max_length": (400, ContextWindowExceededError),
    "content_filter": (400, ContentPolicyViolationError),
    "content_policy_violation": (400, ContentPolicyViolationError),
    "image_content_policy_violation": (None, ContentPolicyViolationError),
    "previous_response_not_found": (400, PreviousResponseNotFoundError),
    "insufficient_quota": (429, QuotaExhaustedError),
    "rate_limit_exceeded": (429, RateLimitError),
    "server_error": (500, ServerError),
    "server_is_overloaded": (503, ServiceUnavailableError),
    "slow_down": (503, ServiceUnavailableError),
    "vector_store_timeout": (None, TimeoutError),
    "invalid_api_key": (401, AuthenticationError),
    "model_not_found": (404, NotFoundError),
    "DeploymentNotFound": (404, NotFoundError),
    "invalid_prompt": (None, BadRequestError),
    "invalid_image": (None, BadRequestError),
    "invalid_image_format": (None, BadRequestError),
    "invalid_base64_image": (None, BadRequestError),
    "invalid_image_url": (None, BadRequestError),
    "image_too_large": (None, BadRequestError),
    "image_too_small": (None, BadRequestError),
    "image_parse_error": (None, BadRequestError),
    "invalid_image_mode": (None, BadRequestError),
    "image_file_too_large": (None, BadRequestError),
    "unsupported_image_media_type": (None, BadRequestError),
    "empty_image_file": (None, BadRequestError),
    "failed_to_download_image": (None, BadRequestError),
    "image_file_not_found": (None, BadRequestError),
}

#: Every code of the OpenAI SDK's ``ResponseError.code`` (a failed Response).
FAILED_RESPONSE_CODES = (
    "server_error", "rate_limit_exceeded", "invalid_prompt", "vector_store_timeout",
    "invalid_image", "invalid_image_format", "invalid_base64_image", "invalid_image_url",
    "image_too_large", "image_too_small", "image_parse_error", "image_content_policy_violation",
    "invalid_image_mode", "image_file_too_large", "unsupported_image_media_type",
    "empty_image_file", "failed_to_download_image", "image_file_not_found",
)

TRANSPORT_TABLE: list[tuple[Exception, type[UpstreamError]]] = [
    (httpx.ConnectError("refused"), ConnectionError),
    (httpx.ReadTimeout("slow"), TimeoutError),
    (httpx.ConnectTimeout("slow connect"), TimeoutError),
    (httpx.PoolTimeout("no connection free"), TimeoutError),
    (httpx.WriteTimeout("slow write"), TimeoutError),
    (httpx.RemoteProtocolError("peer closed"), ConnectionError),
    (httpx.ReadError("reset"), ConnectionError),
    (httpx.DecodingError("bad gzip"), MalformedResponseError),
    (builtins.TimeoutError(), TimeoutError),
    (OSError("network unreachable"), ConnectionError),
    (ConnectionResetError("reset by peer"), ConnectionError),
    (ValueError("something else"), ServerError),
]


def _body(code: str | None = None, message: str = "upstream said no", **extra: Any) -> Any:
    return {"error": {"message": message, "type": "invalid_request_error", "code": code,
                      "param": None, **extra}}


# -- status and code mapping ---------------------------------------------------------


def test_expected_tables_cover_the_module_tables() -> None:
    # A new status or code in the module must be added to the tables above too.
    assert set(STATUS_TABLE) == set(errors._STATUS_CLASSES)
    assert set(CODE_TABLE) == set(errors._CODE_CLASSES)


@pytest.mark.parametrize(("status", "cls"), sorted(STATUS_TABLE.items()),
                         ids=[str(s) for s in sorted(STATUS_TABLE)])
def test_status_maps_to_its_class(status: int, cls: type[UpstreamError]) -> None:
    err = error_from_status(status, _body(), httpx.Headers())
    assert type(err) is cls
    assert err.status == status


@pytest.mark.parametrize("code", sorted(CODE_TABLE))
def test_code_maps_to_most_specific_class(code: str) -> None:
    status, cls = CODE_TABLE[code]
    if status is None:
        err = error_from_failed_response({"code": code, "message": "m"}, model_group=None,
                                         deployment_id=None)
    else:
        err = error_from_status(status, _body(code), httpx.Headers())
    assert type(err) is cls
    assert err.code == code
    assert err.status == status


def test_every_failed_response_code_of_the_sdk_is_mapped() -> None:
    assert set(FAILED_RESPONSE_CODES) <= set(CODE_TABLE)


@pytest.mark.parametrize("status", [402, 405, 406, 410, 413, 415, 418, 451, 499])
def test_unknown_4xx_is_bad_request(status: int) -> None:
    assert type(error_from_status(status, _body(), httpx.Headers())) is BadRequestError


@pytest.mark.parametrize("status", [501, 505, 507, 520, 529, 599])
def test_unknown_5xx_is_server_error(status: int) -> None:
    assert type(error_from_status(status, _body(), httpx.Headers())) is ServerError


def test_unknown_code_falls_back_to_the_status() -> None:
    err = error_from_status(403, _body("some_new_code"), httpx.Headers())
    assert type(err) is PermissionDeniedError
    assert err.code == "some_new_code"


def test_client_error_code_does_not_downgrade_a_5xx() -> None:
    # A 500 that says context_length_exceeded is still the server's failure.
    err = error_from_status(500, _body("context_length_exceeded"), httpx.Headers())
    assert type(err) is ServerError


def test_previous_response_not_found_with_404_is_specific() -> None:
    err = error_from_status(404, _body("previous_response_not_found"), httpx.Headers())
    assert type(err) is PreviousResponseNotFoundError


def test_body_fields_and_request_id_are_kept() -> None:
    body = _body("context_length_exceeded", message="too long", param="input")
    headers = httpx.Headers({"X-Request-Id": "req_123"})
    err = error_from_status(400, body, headers, model_group="g", deployment_id="d1")
    assert err.message == "too long"
    assert err.type == "invalid_request_error"
    assert err.param == "input"
    assert err.request_id == "req_123"
    assert err.body == body
    assert (err.model_group, err.deployment_id) == ("g", "d1")


@pytest.mark.parametrize("body", ["<html>Bad gateway</html>", None, {"error": "boom"}, {}, []])
def test_non_openai_bodies_get_a_default_message(body: Any) -> None:
    err = error_from_status(502, body, httpx.Headers())
    assert type(err) is ServiceUnavailableError
    assert err.message == "upstream answered HTTP 502"
    assert err.code is None


# -- completeness ----------------------------------------------------------------------


def _reachable() -> set[type[UpstreamError]]:
    found: set[type[UpstreamError]] = set()
    for status in range(400, 600):
        found.add(type(error_from_status(status, _body(), httpx.Headers())))
    for code, (status, _) in CODE_TABLE.items():
        if status is not None:
            found.add(type(error_from_status(status, _body(code), httpx.Headers())))
        found.add(classify(None, code))
    found.add(classify(None, "a_code_nobody_knows"))
    found.add(type(error_from_status(
        404, {"error": {"message": "No such File object: file-1"}}, httpx.Headers())))
    for exc, _ in TRANSPORT_TABLE:
        found.add(type(error_from_transport(exc)))
    return found


def test_every_upstream_error_subclass_is_reachable() -> None:
    defined = {
        obj for _, obj in inspect.getmembers(errors, inspect.isclass)
        if issubclass(obj, UpstreamError) and obj.__module__ == errors.__name__
    }
    assert len(defined) >= 15  # the tree in the docstring
    assert defined - _reachable() == set()


def test_every_public_error_is_a_router_error() -> None:
    for name in errors.__all__:
        obj = getattr(errors, name)
        if inspect.isclass(obj) and name.endswith("Error"):
            assert issubclass(obj, RouterError), name


# -- transport -------------------------------------------------------------------------


@pytest.mark.parametrize(("exc", "cls"), TRANSPORT_TABLE,
                         ids=[type(e).__name__ for e, _ in TRANSPORT_TABLE])
def test_transport_exception_maps_to_class(exc: Exception, cls: type[UpstreamError]) -> None:
    err = error_from_transport(exc, model_group="g", deployment_id="d1")
    assert type(err) is cls
    assert err.status is None
    assert (err.model_group, err.deployment_id) == ("g", "d1")


def test_refused_connection_reported_as_connect_timeout_is_a_connection_error() -> None:
    # httpx-aiohttp maps a refused connection to ConnectTimeout, with the cause kept
    try:
        try:
            raise ConnectionRefusedError(111, "Connection refused")
        except ConnectionRefusedError as cause:
            raise httpx.ConnectTimeout("connect failed") from cause
    except httpx.ConnectTimeout as exc:
        err = error_from_transport(exc)
    assert type(err) is ConnectionError
    assert "ConnectionRefusedError" in str(err)


def test_timeout_caused_by_a_timeout_stays_a_timeout() -> None:
    try:
        try:
            raise builtins.TimeoutError()
        except builtins.TimeoutError as cause:
            raise httpx.ConnectTimeout("slow") from cause
    except httpx.ConnectTimeout as exc:
        assert type(error_from_transport(exc)) is TimeoutError


async def test_real_httpx_timeouts_and_refusals_through_callers_clients() -> None:
    """httpx's own read timeout (caused by httpcore's, not an OSError) stays a timeout;
    a refused connection through httpx-aiohttp (reported as ConnectTimeout) does not."""
    async def stall(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(5)
        return web.Response()

    async with serve_routes(stall=stall) as base, httpx.AsyncClient() as client:
        with pytest.raises(httpx.ReadTimeout) as read:
            await client.get(f"{base}/stall", timeout=httpx.Timeout(5.0, read=0.1))
    assert type(error_from_transport(read.value)) is TimeoutError

    async with serve_routes() as gone:
        pass  # the port is free again
    async with default_client() as client:
        with pytest.raises(httpx.TransportError) as refused:
            await client.get(f"{gone}/x")
    assert type(error_from_transport(refused.value)) is ConnectionError


async def test_asyncio_timeout_is_a_timeout_error() -> None:
    with pytest.raises(builtins.TimeoutError) as info:
        async with asyncio.timeout(0.001):
            await asyncio.sleep(1)
    assert type(error_from_transport(info.value)) is TimeoutError


def test_transport_message_does_not_echo_the_exception_text() -> None:
    # httpx messages can carry a URL with credentials in it.
    exc = httpx.ConnectError("failed for https://user:sk-SECRET123@example.com/v1")
    err = error_from_transport(exc)
    assert "sk-SECRET123" not in str(err)
    assert "sk-SECRET123" not in repr(err)
    assert "ConnectError" in str(err)


# -- retry-after -----------------------------------------------------------------------


@pytest.mark.parametrize(("headers", "expected"), [
    ({"retry-after": "5"}, 5.0),
    ({"Retry-After": "2.5"}, 2.5),
    ({"retry-after-ms": "1500"}, 1.5),
    ({"retry-after-ms": "250", "retry-after": "7"}, 0.25),  # ms wins
    ({"retry-after-ms": "-1", "retry-after": "3"}, 3.0),  # a useless ms value is skipped
    ({"retry-after-ms": "-1"}, None),
    ({"retry-after-ms": "0"}, None),
    ({"retry-after": "0"}, None),
    ({"retry-after": "-1"}, None),
    ({"retry-after": "soon"}, None),
    ({"retry-after-ms": "abc", "retry-after": "junk"}, None),
    ({"retry-after": "nan"}, None),
    ({}, None),
])
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert parse_retry_after(httpx.Headers(headers)) == expected


WALL = 1_800_000_000.0


@pytest.mark.parametrize(("offset", "expected"), [(30, 30.0), (1, 1.0), (0, None), (-60, None)])
def test_parse_retry_after_http_date(offset: int, expected: float | None) -> None:
    date = email.utils.formatdate(WALL + offset, usegmt=True)  # "Fri, 15 Jan 2027 ... GMT"
    assert parse_retry_after(httpx.Headers({"retry-after": date}), wall=WALL) == expected


def test_parse_retry_after_http_date_with_unknown_zone_is_utc() -> None:
    date = email.utils.formatdate(WALL + 12)  # "... -0000"
    assert date.endswith("-0000")
    assert parse_retry_after(httpx.Headers({"retry-after": date}), wall=WALL) == 12.0


def test_parse_retry_after_http_date_defaults_to_the_real_wall_clock() -> None:
    import time

    date = email.utils.formatdate(time.time() + 3600, usegmt=True)
    seconds = parse_retry_after(httpx.Headers({"retry-after": date}))
    assert seconds is not None and 3500 < seconds <= 3600


def test_retry_after_date_reaches_the_error() -> None:
    date = email.utils.formatdate(WALL + 20, usegmt=True)
    err = error_from_status(429, _body(), httpx.Headers({"retry-after": date}), wall=WALL)
    assert err.retry_after == 20.0


def test_parse_retry_after_rejects_infinity() -> None:
    assert parse_retry_after(httpx.Headers({"retry-after": "inf"})) is None


def test_retry_after_reaches_the_error() -> None:
    headers = httpx.Headers({"retry-after-ms": "1200"})
    err = error_from_status(429, _body("rate_limit_exceeded"), headers)
    assert isinstance(err, RateLimitError)
    assert err.retry_after == pytest.approx(1.2)


# -- failed responses ------------------------------------------------------------------


@pytest.mark.parametrize(("code", "cls"), [
    ("server_error", ServerError),
    ("rate_limit_exceeded", RateLimitError),
    ("insufficient_quota", QuotaExhaustedError),
    ("context_length_exceeded", ContextWindowExceededError),
    ("invalid_prompt", BadRequestError),
    ("image_content_policy_violation", ContentPolicyViolationError),
    ("vector_store_timeout", TimeoutError),
    (None, ServerError),  # failed without saying why: the upstream's failure
    ("something_new", UpstreamError),  # unknown: not retried
    ("backend_server_hiccup", ServerError),  # unknown, but reads as the server's
    ("upstream_timed_out", ServerError),
    ("InternalFailure", ServerError),
])
def test_error_from_failed_response(code: str | None, cls: type[UpstreamError]) -> None:
    err = error_from_failed_response(
        {"code": code, "message": "it failed"}, model_group="g", deployment_id="d1"
    )
    assert type(err) is cls
    assert err.code == code
    assert err.status is None
    assert err.message == "it failed"
    assert (err.model_group, err.deployment_id) == ("g", "d1")


def test_error_from_failed_response_without_message() -> None:
    err = error_from_failed_response({}, model_group=None, deployment_id=None)
    assert type(err) is ServerError
    assert err.message == "the upstream response failed"


@pytest.mark.parametrize("code", ["invalid_prompt", "image_content_policy_violation",
                                  "something_new", "invalid_image_url"])
def test_failed_responses_the_request_caused_are_not_retried(code: str) -> None:
    err = error_from_failed_response({"code": code}, model_group=None, deployment_id=None)
    assert not err.retryable
    assert not err.cools_down


def test_unknown_code_with_a_status_still_follows_the_status() -> None:
    assert classify(400, "something_new") is BadRequestError
    assert classify(503, "something_new") is ServiceUnavailableError
    assert classify(None, "something_new") is UpstreamError


# -- what the router does with each class: the one table -----------------------------------

# class -> (retry elsewhere, retry same, cooldown, duration, fallback), written out here
# independently of errors.ERROR_TABLE ("-": duration does not apply).
TABLE: dict[type[RouterError], tuple[bool, bool, str, str, str | None]] = {
    RouterError: (False, False, "none", "-", None),
    ConfigError: (False, False, "none", "-", None),
    InvalidRequestError: (False, False, "none", "-", None),
    errors.UnsupportedParameterError: (False, False, "none", "-", None),
    NoDeploymentAvailableError: (False, False, "none", "-", "default"),  # another group may
    UnknownModelError: (False, False, "none", "-", None),
    PinnedDeploymentUnavailableError: (False, False, "none", "-", None),
    ResponseNotFoundError: (False, False, "none", "-", None),
    ConversationUnavailableError: (False, False, "none", "-", None),
    ConversationLimitError: (False, False, "none", "-", None),
    StreamInterruptedError: (False, False, "none", "-", None),
    UpstreamError: (False, False, "none", "-", None),
    BadRequestError: (False, False, "none", "-", None),
    ContextWindowExceededError: (False, False, "none", "-", "context_window"),
    ContentPolicyViolationError: (False, False, "none", "-", "content_policy"),
    PreviousResponseNotFoundError: (False, False, "none", "-", None),
    AuthenticationError: (True, False, "immediate", "default", "default"),
    PermissionDeniedError: (True, False, "immediate", "default", "default"),
    NotFoundError: (True, False, "immediate", "default", "default"),
    errors.ObjectNotFoundError: (True, False, "none", "-", "default"),
    ConflictError: (False, False, "none", "-", None),
    RateLimitError: (True, True, "immediate", "retry-after", "default"),
    QuotaExhaustedError: (False, False, "immediate", "long", "default"),
    ServerError: (True, True, "counted", "default", "default"),
    ServiceUnavailableError: (True, True, "counted", "default", "default"),
    MalformedResponseError: (True, True, "counted", "default", "default"),
    TimeoutError: (True, True, "counted", "default", "default"),
    ConnectionError: (True, True, "counted", "default", "default"),
}


def test_every_error_class_has_a_row() -> None:
    defined = {
        obj for _, obj in inspect.getmembers(errors, inspect.isclass)
        if issubclass(obj, RouterError) and obj.__module__ == errors.__name__
    }
    assert defined == set(errors.ERROR_TABLE) == set(TABLE)


@pytest.mark.parametrize("cls", list(TABLE), ids=[c.__name__ for c in TABLE])
def test_table_row(cls: type[RouterError]) -> None:
    retry, same, cooldown, duration, fallback = TABLE[cls]
    row = policy_for(cls)
    assert (row.retry, row.retry_same, row.cooldown, row.fallback) == (
        retry, same, cooldown, fallback)
    if cooldown != "none":
        assert row.duration == duration


@pytest.mark.parametrize("cls", [c for c in TABLE if issubclass(c, UpstreamError)],
                         ids=lambda c: c.__name__)
def test_instances_read_their_row(cls: type[UpstreamError]) -> None:
    retry, same, cooldown, _, fallback = TABLE[cls]
    err = cls("x", status=None)
    assert (err.retryable, err.retry_same, err.cools_down, err.fallback) == (
        retry, same, cooldown != "none", fallback)
    assert err.policy is policy_for(cls)


def test_a_subclass_reads_its_nearest_listed_base() -> None:
    class AzureThrottled(ServiceUnavailableError):
        pass

    assert policy_for(AzureThrottled) is policy_for(ServiceUnavailableError)
    assert AzureThrottled("x").retryable


def test_policy_for_a_foreign_class_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="ValueError"):
        policy_for(ValueError)  # type: ignore[arg-type]


def test_the_docstring_shows_the_table_the_code_uses() -> None:
    assert errors.__doc__ is not None
    assert render_error_table() in errors.__doc__


# The rows the issue requires, from what the upstream sends to what the router does.
# (status, code, class, retry elsewhere, retry same, cooldown, duration, fallback)
SCENARIOS = [
    (429, "rate_limit_exceeded", RateLimitError, True, True, "immediate", "retry-after",
     "default"),
    (429, "insufficient_quota", QuotaExhaustedError, False, False, "immediate", "long",
     "default"),
    (401, "invalid_api_key", AuthenticationError, True, False, "immediate", "default",
     "default"),
    (403, None, PermissionDeniedError, True, False, "immediate", "default", "default"),
    (400, None, BadRequestError, False, False, "none", "-", None),
    (400, "context_length_exceeded", ContextWindowExceededError, False, False, "none", "-",
     "context_window"),
    (400, "content_filter", ContentPolicyViolationError, False, False, "none", "-",
     "content_policy"),
    (404, "DeploymentNotFound", NotFoundError, True, False, "immediate", "default", "default"),
    (408, None, TimeoutError, True, True, "counted", "default", "default"),
    (500, None, ServerError, True, True, "counted", "default", "default"),
    (502, None, ServiceUnavailableError, True, True, "counted", "default", "default"),
    (503, "server_is_overloaded", ServiceUnavailableError, True, True, "counted", "default",
     "default"),
    (504, None, ServiceUnavailableError, True, True, "counted", "default", "default"),
]


@pytest.mark.parametrize(
    ("status", "code", "cls", "retry", "same", "cooldown", "duration", "fallback"), SCENARIOS,
    ids=[f"{s}-{c}" for s, c, *_ in SCENARIOS])
def test_required_rows(status: int, code: str | None, cls: type[UpstreamError], retry: bool,
                       same: bool, cooldown: str, duration: str, fallback: str | None) -> None:
    err = error_from_status(status, _body(code), httpx.Headers())
    assert type(err) is cls
    row = err.policy
    assert (row.retry, row.retry_same, row.cooldown, row.fallback) == (
        retry, same, cooldown, fallback)
    if cooldown != "none":
        assert row.duration == duration


@pytest.mark.parametrize("exc", [httpx.ReadTimeout("t"), httpx.ConnectError("c"),
                                 httpx.DecodingError("d"), httpx.RemoteProtocolError("p")],
                         ids=lambda e: type(e).__name__)
def test_transport_failures_retry_elsewhere_and_count(exc: Exception) -> None:
    err = error_from_transport(exc)
    assert err.retryable and err.retry_same
    assert err.policy.cooldown == "counted"
    assert err.fallback == "default"


def test_malformed_body_is_an_upstream_failure_that_counts() -> None:
    err = MalformedResponseError("not JSON", status=200)
    assert err.retryable and err.policy.cooldown == "counted"


def test_hierarchy_shape() -> None:
    assert issubclass(QuotaExhaustedError, RateLimitError)
    assert issubclass(ServiceUnavailableError, ServerError)
    for cls in (ContextWindowExceededError, ContentPolicyViolationError,
                PreviousResponseNotFoundError):
        assert issubclass(cls, BadRequestError)
    assert issubclass(UnknownModelError, NoDeploymentAvailableError)
    # Our TimeoutError / ConnectionError must not be caught by the builtins' handlers.
    assert not issubclass(TimeoutError, builtins.TimeoutError)
    assert not issubclass(ConnectionError, builtins.ConnectionError)


# -- messages ----------------------------------------------------------------------------


def test_str_has_status_code_group_and_deployment() -> None:
    err = error_from_status(
        429, _body("rate_limit_exceeded", message="slow down"), httpx.Headers(),
        model_group="gpt-4o", deployment_id="east-1",
    )
    text = str(err)
    assert "429" in text
    assert "rate_limit_exceeded" in text
    assert "slow down" in text
    assert "gpt-4o" in text and "east-1" in text
    assert repr(err).startswith("RateLimitError(")


def test_str_without_location_is_the_message() -> None:
    assert str(InvalidRequestError("timeout: bad")) == "timeout: bad"


def test_config_error_lists_every_problem() -> None:
    err = ConfigError("invalid configuration", ["model_list[0].model: missing",
                                                "router_settings.num_retries: must be >= 0"])
    assert err.problems == ("model_list[0].model: missing",
                            "router_settings.num_retries: must be >= 0")
    text = str(err)
    assert text.startswith("invalid configuration")
    assert "  - model_list[0].model: missing" in text
    assert "  - router_settings.num_retries: must be >= 0" in text


def test_config_error_without_problems() -> None:
    err = ConfigError("bad")
    assert err.problems == ()
    assert str(err) == "bad"


def test_unknown_model_error_lists_known_groups() -> None:
    err = UnknownModelError("gpt-5", ["b-group", "a-group"])
    assert err.reason == "unknown_model"
    assert err.model_group == "gpt-5"
    assert "'gpt-5'" in str(err)
    assert "a-group, b-group" in str(err)
    assert "none" in str(UnknownModelError("x", []))


def test_no_deployment_error_keeps_reason_and_details() -> None:
    details = {"check": ["d1"]}
    err = NoDeploymentAvailableError("nothing", reason="checks_rejected", details=details)
    details["check"] = []
    assert err.reason == "checks_rejected"
    assert err.details == {"check": ["d1"]}  # a copy: the caller's dict may change
    assert err.trail is None


def test_pinned_and_not_found_errors_carry_the_response_id() -> None:
    pinned = PinnedDeploymentUnavailableError(
        "owner down", response_id="resp_1", model_group="g", deployment_id="d1"
    )
    assert (pinned.response_id, pinned.deployment_id) == ("resp_1", "d1")
    missing = ResponseNotFoundError("gone", response_id="resp_2", model_group=None)
    assert missing.response_id == "resp_2"


@pytest.mark.parametrize(("message", "code", "cls"), [
    ("No such File object: file-abc123", None, "ObjectNotFoundError"),
    ("Vector store with id 'vs_1' not found.", None, "ObjectNotFoundError"),
    ("Prompt with id 'pmpt_9' not found", None, "ObjectNotFoundError"),
    ("Conversation with id 'conv_1' not found.", None, "ObjectNotFoundError"),
    ("The model `gpt-9` does not exist or you do not have access to it.", "model_not_found",
     "NotFoundError"),
    ("The API deployment for this resource does not exist.", "DeploymentNotFound",
     "NotFoundError"),
    ("Resource not found", None, "NotFoundError"),  # a wrong URL: the deployment's config
])
def test_a_404_about_an_object_the_request_named_cools_nothing(
    message: str, code: str | None, cls: str
) -> None:
    error = errors.error_from_status(404, {"error": {"message": message, "code": code}}, {})
    assert type(error).__name__ == cls
    assert error.cools_down is (cls == "NotFoundError")
    assert error.retryable  # another deployment may hold the object, or the model


@pytest.mark.parametrize("name", ["x-request-id", "request-id", "x-amzn-requestid"])
def test_the_request_id_is_read_whichever_provider_sent_it(name: str) -> None:
    error = errors.error_from_status(429, {}, httpx.Headers({name: "req_42"}))
    assert error.request_id == "req_42"
