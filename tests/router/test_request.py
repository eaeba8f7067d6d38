"""Splitting the caller's arguments and validating them (router/request.py)."""

from __future__ import annotations

import math
from typing import Any

import pytest

from router.errors import InvalidRequestError
from router.request import ROUTER_PARAMS, RouteRequest, build_request, check_response_id


def _build(params: dict[str, Any], **kwargs: Any) -> RouteRequest:
    options: dict[str, Any] = {"stream": False, "default_timeout": None, "now": 100.0}
    options.update(kwargs)
    return build_request("gpt-4o", params, **options)


def test_router_params_are_split_from_forwarded_params() -> None:
    params = {
        "input": "hi", "temperature": 0.2, "store": False,
        "some_future_param": {"nested": [1, 2]},
        "timeout": 30, "num_retries": 4, "fallbacks": ["b"], "disable_fallbacks": True,
        "mock_response": "canned", "stream_timeout": 5.0,
        "extra_headers": {"x-trace": "1"}, "extra_query": {"q": "1"},
        "extra_body": {"b": 1},
    }
    req = _build(params)
    assert req.params == {
        "input": "hi", "temperature": 0.2, "store": False,
        "some_future_param": {"nested": [1, 2]},
    }
    assert req.num_retries == 4
    assert req.fallbacks == ["b"]
    assert req.disable_fallbacks is True
    assert req.mock_response == "canned"
    assert req.stream_timeout == 5.0
    assert req.extra_headers == {"x-trace": "1"}
    assert req.extra_query == {"q": "1"}
    assert req.extra_body == {"b": 1}
    assert not ROUTER_PARAMS & set(req.params)


def test_unknown_params_are_forwarded_untouched() -> None:
    value = {"deep": {"list": [1, {"x": None}]}}
    req = _build({"input": "x", "brand_new_option": value, "tools": []})
    assert req.params["brand_new_option"] is value
    assert req.params["tools"] == []


def test_params_dict_is_consumed() -> None:
    params: dict[str, Any] = {"input": "x", "timeout": 3, "num_retries": 1}
    req = _build(params)
    assert req.params is params
    assert params == {"input": "x"}


def test_defaults_without_router_params() -> None:
    req = _build({"input": "x"})
    assert req.model == "gpt-4o"
    assert req.stream is False
    assert req.deadline is None
    assert req.num_retries is None
    assert req.fallbacks is None
    assert req.disable_fallbacks is False
    assert req.mock_response is None
    assert req.time_left(200.0) is None


def test_stream_flag_is_kept() -> None:
    assert _build({"input": "x"}, stream=True).stream is True


def test_deadline_from_timeout_and_now() -> None:
    req = _build({"timeout": 12.5}, now=1000.0)
    assert req.deadline == 1012.5
    assert req.time_left(1010.0) == pytest.approx(2.5)
    assert req.time_left(1020.0) == pytest.approx(-7.5)


def test_default_timeout_applies_when_none_given() -> None:
    assert _build({}, default_timeout=60.0, now=10.0).deadline == 70.0
    # an explicit timeout wins over the default
    assert _build({"timeout": 5}, default_timeout=60.0, now=10.0).deadline == 15.0
    # timeout=None means "use the default"
    assert _build({"timeout": None}, default_timeout=60.0, now=10.0).deadline == 70.0


def test_deadline_uses_monotonic_when_now_is_not_given() -> None:
    import time

    before = time.monotonic()
    req = build_request("m", {"timeout": 10}, stream=False, default_timeout=None)
    after = time.monotonic()
    assert req.deadline is not None
    assert before + 10 <= req.deadline <= after + 10


@pytest.mark.parametrize("timeout", [0, -1, -0.5, "10", True, [1]])
def test_invalid_timeout_names_the_parameter(timeout: Any) -> None:
    with pytest.raises(InvalidRequestError, match=r"^timeout: "):
        _build({"timeout": timeout})


def test_nan_timeout_is_rejected() -> None:
    with pytest.raises(InvalidRequestError, match=r"^timeout: "):
        _build({"timeout": math.nan})


@pytest.mark.parametrize("num_retries", [-1, 1.5, True, "2"])
def test_invalid_num_retries_names_the_parameter(num_retries: Any) -> None:
    with pytest.raises(InvalidRequestError, match=r"^num_retries: "):
        _build({"num_retries": num_retries})


def test_zero_num_retries_is_valid() -> None:
    assert _build({"num_retries": 0}).num_retries == 0


@pytest.mark.parametrize("model", ["", None, 3])
def test_model_is_required(model: Any) -> None:
    with pytest.raises(InvalidRequestError, match=r"^model: "):
        build_request(model, {}, stream=False, default_timeout=None)


def test_invalid_previous_response_id_is_rejected_before_io() -> None:
    with pytest.raises(InvalidRequestError, match=r"^previous_response_id: "):
        _build({"previous_response_id": "resp 1; DROP"})


def test_previous_response_id_property() -> None:
    assert _build({"previous_response_id": "resp_1"}).previous_response_id == "resp_1"
    assert _build({}).previous_response_id is None


def test_extra_body_previous_response_id_is_the_one_routed_by() -> None:
    """``extra_body`` is merged into the body last: its value is what the upstream reads."""
    def extra(value: object) -> dict[str, object]:
        return {"extra_body": {"previous_response_id": value}}

    assert _build({"previous_response_id": "resp_1", **extra("resp_2")}).previous_response_id \
        == "resp_2"
    assert _build(extra("resp_3")).previous_response_id == "resp_3"
    cleared = _build({"previous_response_id": "resp_1", **extra(None)})
    assert cleared.previous_response_id is None  # the body will carry null
    assert _build({"extra_body": {"other": 1}}).previous_response_id is None


def test_invalid_extra_body_previous_response_id_names_where() -> None:
    with pytest.raises(InvalidRequestError, match=r"^extra_body\.previous_response_id: "):
        _build({"extra_body": {"previous_response_id": "../../admin"}})


@pytest.mark.parametrize("bad", [{"a": 1}, [{"a": None}], [{"a": ["b", 2]}]])
def test_fallback_targets_must_be_model_names(bad: Any) -> None:
    with pytest.raises(InvalidRequestError, match=r"^fallbacks: expected model names"):
        _build({"fallbacks": bad})


def test_extra_body_must_be_a_mapping() -> None:
    with pytest.raises(InvalidRequestError, match=r"^extra_body: expected a mapping"):
        _build({"extra_body": ["previous_response_id", "resp_1"]})


# -- fallbacks -------------------------------------------------------------------------


@pytest.mark.parametrize(("given", "expected"), [
    (["gpt-4o-mini", "claude"], ["gpt-4o-mini", "claude"]),
    (("a",), ["a"]),
    ("solo", ["solo"]),
    ([{"gpt-4o": ["gpt-4o-mini", "gpt-35"]}], ["gpt-4o-mini", "gpt-35"]),
    ([{"gpt-4o": ["a"]}, "b", {"x": ["c"]}], ["a", "b", "c"]),
    ([], []),
])
def test_fallbacks_as_names_or_litellm_dicts(given: Any, expected: list[str]) -> None:
    assert _build({"fallbacks": given}).fallbacks == expected


def test_fallbacks_dict_with_single_name() -> None:
    assert _build({"fallbacks": [{"gpt-4o": "gpt-4o-mini"}]}).fallbacks == ["gpt-4o-mini"]


@pytest.mark.parametrize("bad", [[3], [None], [["nested"]]])
def test_invalid_fallbacks_name_the_parameter(bad: Any) -> None:
    with pytest.raises(InvalidRequestError, match=r"^fallbacks: "):
        _build({"fallbacks": bad})


# -- response ids ----------------------------------------------------------------------


@pytest.mark.parametrize("value", [
    "resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b",
    "resp-abc.def:123",
    "a",
    "x" * 256,
])
def test_check_response_id_accepts_real_ids(value: str) -> None:
    assert check_response_id(value, "response_id") == value


@pytest.mark.parametrize("value", [
    "",
    "x" * 257,
    "resp 1",
    "resp_1\n",
    "../etc/passwd",
    "resp_1/cancel",
    "resp_1?x=1",
    "résp_1",
    None,
    123,
    b"resp_1",
])
def test_check_response_id_rejects(value: Any) -> None:
    with pytest.raises(InvalidRequestError, match=r"^response_id: ") as info:
        check_response_id(value, "response_id")
    assert len(str(info.value)) < 250  # a huge value is not echoed whole
