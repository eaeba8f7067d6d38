"""Every router error class maps to an OpenAI-shaped answer the SDK classifies right."""

from __future__ import annotations

import inspect
import json

import router.errors as rerr
from router.proxy.errors import STATUS_BY_CLASS, ApiError, api_error, error_event, error_response


def _router_error_classes() -> list[type[rerr.RouterError]]:
    return [obj for _, obj in inspect.getmembers(rerr, inspect.isclass)
            if issubclass(obj, rerr.RouterError)]


def test_every_router_error_class_is_listed() -> None:
    missing = [c.__name__ for c in _router_error_classes() if c not in STATUS_BY_CLASS]
    assert missing == []


def test_only_config_and_base_errors_are_500() -> None:
    five_hundred = {c for c, row in STATUS_BY_CLASS.items() if row[0] == 500}
    assert five_hundred == {rerr.RouterError, rerr.ConfigError}


def test_upstream_credential_failures_are_not_the_callers_401() -> None:
    for cls in (rerr.AuthenticationError, rerr.PermissionDeniedError):
        error = api_error(cls("Incorrect API key provided: sk-upstream-secret", status=401))
        assert error.status == 502 and "sk-upstream-secret" not in error.message


def test_rate_limit_carries_retry_after() -> None:
    error = api_error(rerr.RateLimitError("slow down", status=429, retry_after=2.4))
    answer = error_response(error)
    assert answer.status == 429 and answer.headers["Retry-After"] == "2"
    assert json.loads(answer.body)["error"]["code"] == "rate_limit_exceeded"  # type: ignore[arg-type]


def test_invalid_request_names_the_field() -> None:
    error = api_error(rerr.InvalidRequestError("previous_response_id: 'x y' is not valid"))
    assert (error.status, error.param) == (400, "previous_response_id")


def test_unknown_model_is_400_on_model() -> None:
    error = api_error(rerr.UnknownModelError("gpt-9", ["gpt-4o"]))
    assert (error.status, error.param, error.code) == (400, "model", "model_not_found")


def test_upstream_bad_request_keeps_code_and_param() -> None:
    error = api_error(rerr.ContextWindowExceededError(
        "too long", status=400, code="context_length_exceeded", param="input"))
    assert (error.status, error.code, error.param) == (400, "context_length_exceeded", "input")


def test_response_not_found_is_404() -> None:
    error = api_error(rerr.ResponseNotFoundError("nope", response_id="resp_1", model_group=None))
    assert error.status == 404 and "resp_1" in error.message


def test_error_event_shape() -> None:
    event = error_event(ApiError(502, "cut", "server_error", None, "upstream_error"), 7)
    assert event == {"type": "error", "code": "upstream_error", "message": "cut",
                     "param": None, "sequence_number": 7}
