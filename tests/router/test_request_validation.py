"""Every router parameter is checked once, with an error naming it (router/request.py).

The end-to-end half (nothing reaches an upstream, nothing cools down, other
callers are served) is in ``tests/router/test_bad_requests.py``.
"""

from __future__ import annotations

from typing import Any

import pytest

from router.errors import InvalidRequestError
from router.headers import CALLER_FORBIDDEN, caller_header_problem, header_problem
from router.request import RouteRequest, build_request

GROUPS = frozenset({"gpt-4o", "gpt-4o-mini", "alias"})


def _build(params: dict[str, Any], *, stream: Any = False) -> RouteRequest:
    return build_request("gpt-4o", params, stream=stream, default_timeout=None, now=0.0,
                         groups=GROUPS)


def _refused(params: dict[str, Any], *, stream: Any = False) -> str:
    with pytest.raises(InvalidRequestError) as info:
        _build(params, stream=stream)
    return info.value.message


@pytest.mark.parametrize(("params", "named"), [
    # the cases a new user tried (issue 17)
    ({"input": object()}, "input:"),
    ({"input": 5}, "input:"),
    ({"mock_response": 123}, "mock_response:"),
    ({"extra_headers": "x"}, "extra_headers:"),
    ({"extra_headers": {"api-key": 5}}, "extra_headers: header 'api-key'"),
    ({"extra_headers": {"x-trace": "a\r\nInjected: 1"}}, "extra_headers: header 'x-trace'"),
    ({"extra_headers": {"Authorization": "Bearer wrong"}}, "extra_headers: header 'Authorization'"),
    ({"extra_query": "x"}, "extra_query:"),
    ({"num_retries": "3"}, "num_retries:"),
    ({"stream_timeout": -1}, "stream_timeout:"),
    ({"fallbacks": ["no-such-group"]}, "fallbacks: unknown model group 'no-such-group'"),
    ({"extra_body": {"stream": True}}, "extra_body: 'stream'"),
    # their neighbours
    ({"extra_body": {"model": "other"}}, "extra_body: 'model'"),
    ({"extra_body": "x"}, "extra_body:"),
    ({"extra_body": {1: "x"}}, "extra_body:"),
    ({"extra_headers": {"api-key": "k2"}}, "extra_headers: header 'api-key'"),
    ({"extra_headers": {"OpenAI-Organization": "org-x"}}, "extra_headers: header"),
    ({"extra_headers": {"Content-Length": "1"}}, "extra_headers: header 'Content-Length'"),
    ({"extra_headers": {"bad name": "v"}}, "extra_headers: header name 'bad name'"),
    ({"extra_headers": {5: "v"}}, "extra_headers: header name int"),
    ({"extra_headers": {"x-a": "v\x00"}}, "extra_headers: header 'x-a'"),
    ({"extra_query": {"q": None}}, "extra_query: 'q'"),
    ({"extra_query": {"q": object()}}, "extra_query: 'q'"),
    ({"extra_query": {"q": float("inf")}}, "extra_query: 'q'"),
    ({"extra_query": {"api-version": "2020-01-01"}}, "extra_query: 'api-version'"),
    ({"extra_query": {3: "x"}}, "extra_query: parameter name"),
    ({"stream_timeout": 0}, "stream_timeout:"),
    ({"stream_timeout": float("inf")}, "stream_timeout:"),
    ({"stream_timeout": "5"}, "stream_timeout:"),
    ({"stream_timeout": True}, "stream_timeout:"),
    ({"timeout": 1e309}, "timeout:"),
    ({"timeout": float("nan")}, "timeout:"),
    ({"num_retries": True}, "num_retries:"),
    ({"num_retries": -1}, "num_retries:"),
    ({"num_retries": 1.5}, "num_retries:"),
    ({"disable_fallbacks": "false"}, "disable_fallbacks:"),
    ({"disable_fallbacks": 1}, "disable_fallbacks:"),
    ({"fallbacks": [{"model": "gpt-4o-mini", "messages": []}]}, "fallbacks: per-fallback"),
    ({"fallbacks": [{"gpt-4o": ["nope"]}]}, "fallbacks: unknown model group 'nope'"),
    ({"fallbacks": [3]}, "fallbacks:"),
])
def test_each_bad_parameter_is_named(params: dict[str, Any], named: str) -> None:
    assert _refused(params).startswith(named)


@pytest.mark.parametrize("stream", ["false", "true", 1, 0, None])
def test_stream_must_be_a_bool(stream: Any) -> None:
    assert _refused({"input": "x"}, stream=stream).startswith("stream: expected True or False")


def test_messages_show_no_header_value() -> None:
    # A refused credential header carries a secret: the message names the header only.
    message = _refused({"extra_headers": {"Authorization": "Bearer sk-SECRET"}})
    assert "sk-SECRET" not in message
    message = _refused({"extra_headers": {"x-a": "sk-SECRET\r\n"}})
    assert "sk-SECRET" not in message


def test_an_unprintable_object_is_shown_by_its_type() -> None:
    class Loud:
        def __repr__(self) -> str:
            raise AssertionError("repr must not be called on caller objects")

    assert "a Loud" in _refused({"input": Loud()})
    assert "a Loud" in _refused({"mock_response": Loud()})


def test_good_router_parameters_pass_through() -> None:
    req = _build({
        "input": [{"role": "user", "content": "hi"}], "stream_timeout": 2,
        "extra_headers": {"x-trace": "1", "OpenAI-Beta": "responses=v1"},
        "extra_query": {"q": "1", "n": 2, "many": ["a", "b"]},
        "extra_body": {"metadata": {"k": "v"}}, "fallbacks": ["gpt-4o-mini", "alias"],
        "disable_fallbacks": False, "mock_response": "canned", "num_retries": 0,
    })
    assert req.stream_timeout == 2.0
    assert req.extra_headers == {"x-trace": "1", "OpenAI-Beta": "responses=v1"}
    assert req.fallbacks == ["gpt-4o-mini", "alias"]
    assert (req.mock_response, req.num_retries, req.disable_fallbacks) == ("canned", 0, False)


def test_fallbacks_are_not_checked_without_known_groups() -> None:
    req = build_request("gpt-4o", {"fallbacks": ["elsewhere"]}, stream=False,
                        default_timeout=None, now=0.0)
    assert req.fallbacks == ["elsewhere"]


def test_every_forbidden_header_is_refused_in_any_case() -> None:
    for name in CALLER_FORBIDDEN:
        assert caller_header_problem(name.upper(), "v") is not None
        assert header_problem(name, "v") is None  # a deployment's config may set them


def test_a_long_string_in_the_wrong_parameter_is_not_shown() -> None:
    assert _refused({"timeout": "sk-proj-0123456789abcdef"}) == (
        "timeout: expected a positive number of seconds, got a string of 24 characters")
    assert _refused({"timeout": "5"}).endswith("got '5'")
