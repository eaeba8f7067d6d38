"""Create-body checks: JSON objects only, known fields typed, router arguments refused."""

from __future__ import annotations

import pytest

from router.proxy.body import parse_create, parse_json_object
from router.proxy.errors import ApiError


@pytest.mark.parametrize("raw", [b"", b"{", b"[]", b"null", b"3", b'"s"', b"[" * 100000])
def test_not_an_object(raw: bytes) -> None:
    with pytest.raises(ApiError) as info:
        parse_json_object(raw)
    assert info.value.status == 400


@pytest.mark.parametrize(("body", "param"), [
    ({"input": "x"}, "model"),
    ({"model": "", "input": "x"}, "model"),
    ({"model": "m", "input": 42}, "input"),
    ({"model": "m", "stream": 1}, "stream"),
    ({"model": "m", "max_output_tokens": True}, "max_output_tokens"),
    ({"model": "m", "max_output_tokens": 1.5}, "max_output_tokens"),
    ({"model": "m", "temperature": "hot"}, "temperature"),
    ({"model": "m", "metadata": []}, "metadata"),
    ({"model": "m", "extra_headers": {"api-key": "x"}}, "extra_headers"),
    ({"model": "m", "mock_response": "x"}, "mock_response"),
    ({"model": "m", "conversation": 7}, "conversation"),
])
def test_bad_field_is_named(body: dict[str, object], param: str) -> None:
    with pytest.raises(ApiError) as info:
        parse_create(dict(body))
    assert (info.value.status, info.value.param) == (400, param)
    assert param in info.value.message


def test_good_body_passes_unknown_fields_through() -> None:
    body = parse_create({"model": "m", "input": [{"role": "user", "content": "hi"}],
                         "stream": True, "temperature": 1, "max_output_tokens": None,
                         "brand_new_field": {"x": 1}})
    assert (body.model, body.stream) == ("m", True)
    assert body.params == {"input": [{"role": "user", "content": "hi"}], "temperature": 1,
                           "max_output_tokens": None, "brand_new_field": {"x": 1}}
