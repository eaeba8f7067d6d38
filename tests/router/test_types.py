"""Records, responses and stream events handed to the caller (router/types.py)."""

from __future__ import annotations

import copy
import json
import random
import re
from typing import Any

import pytest
from openai.types.responses import Response as OpenAIResponse
from openai.types.responses import ResponseStreamEvent
from pydantic import TypeAdapter

from router.types import (
    Attempt,
    AttemptTrail,
    Record,
    Response,
    RoutingInfo,
    StreamEvent,
    body_json,
    dump_json,
    parse_json,
    record_json,
)

# isort: split
# router.* must be imported before providers.* (an import cycle, see
# tests/providers/test_mock.py::test_providers_import_on_their_own).
from providers.mock import mock_response_payload, mock_stream_events


def _data() -> dict[str, Any]:
    return {
        "id": "resp_1",
        "status": "completed",
        "usage": {"input_tokens": 3, "output_tokens_details": {"reasoning_tokens": 0}},
        "output": [{"type": "message", "content": [{"type": "output_text", "text": "hi"}]}],
        "error": None,
        "metadata": {"k": None, "v": "x"},
    }


# -- Record ----------------------------------------------------------------------------


def test_attribute_and_item_access() -> None:
    rec = Record(_data())
    assert rec.id == "resp_1"
    assert rec["status"] == "completed"
    assert rec.error is None
    assert "usage" in rec and "nope" not in rec
    assert set(rec) == set(_data())
    assert rec.keys() == list(_data())


def test_nested_objects_are_wrapped() -> None:
    rec = Record(_data())
    assert isinstance(rec.usage, Record)
    assert rec.usage.input_tokens == 3
    assert rec.usage.output_tokens_details.reasoning_tokens == 0
    assert isinstance(rec.output, list)
    assert isinstance(rec.output[0], Record)
    assert rec.output[0].content[0].text == "hi"
    assert rec["usage"]["input_tokens"] == 3


def test_missing_field() -> None:
    rec = Record(_data())
    with pytest.raises(AttributeError, match="nope"):
        _ = rec.nope
    with pytest.raises(KeyError):
        _ = rec["nope"]
    assert not hasattr(rec, "nope")


def test_get() -> None:
    rec = Record(_data())
    assert rec.get("nope") is None
    assert rec.get("nope", 5) == 5
    assert rec.get("id") == "resp_1"
    assert isinstance(rec.get("usage"), Record)


def test_model_dump_is_a_deep_copy() -> None:
    data = _data()
    original = copy.deepcopy(data)
    rec = Record(data)
    dump = rec.model_dump()
    assert dump == original
    dump["usage"]["input_tokens"] = 999
    dump["output"][0]["content"].clear()
    dump["id"] = "changed"
    assert rec.usage.input_tokens == 3
    assert rec.output[0].content[0].text == "hi"
    assert rec.id == "resp_1"
    assert rec.model_dump() == original


def test_model_dump_exclude_none() -> None:
    dump = Record(_data()).model_dump(exclude_none=True)
    assert "error" not in dump
    assert dump["metadata"] == {"v": "x"}
    assert dump["status"] == "completed"


def test_model_dump_json_round_trips() -> None:
    import json

    assert json.loads(Record(_data()).model_dump_json()) == _data()


def test_equality_and_unhashable() -> None:
    assert Record(_data()) == Record(_data())
    assert Record(_data()) != Record({"id": "other"})
    with pytest.raises(TypeError):
        hash(Record(_data()))


# -- Response --------------------------------------------------------------------------


def test_output_text_over_several_messages_and_parts() -> None:
    resp = Response({"output": [
        {"type": "reasoning", "summary": [{"type": "summary_text", "text": "THINK"}]},
        {"type": "message", "content": [
            {"type": "output_text", "text": "Hello"},
            {"type": "refusal", "refusal": "REFUSED"},
            {"type": "output_text", "text": ", "},
        ]},
        {"type": "function_call", "name": "f", "arguments": "{}", "text": "CALL"},
        {"type": "message", "content": [{"type": "output_text", "text": "world"}]},
    ]})
    assert resp.output_text == "Hello, world"


def test_output_text_empty() -> None:
    assert Response({"output": []}).output_text == ""
    assert Response({}).output_text == ""
    assert Response({"output": [{"type": "message", "content": None}]}).output_text == ""


def test_routing_is_not_dumped() -> None:
    trail = AttemptTrail("g", [Attempt("g", "d1", 0.0, 0.1)])
    routing = RoutingInfo("g", "d1", "mock", trail)
    resp = Response(_data(), routing)
    assert resp.routing is routing
    assert "routing" not in resp.model_dump()
    assert resp.model_dump() == _data()
    assert routing.requested_model == "g"
    assert routing.attempts == trail.attempts
    assert routing.retries == 0
    assert routing.fallbacks == []


def test_mock_response_validates_as_openai_response_with_its_text() -> None:
    data = mock_response_payload("gpt-4o", {"input": "hello there", "temperature": 0.5},
                                 "Hi, how can I help?")
    resp = Response(data)
    parsed = OpenAIResponse.model_validate(resp.model_dump())
    assert parsed.output_text == resp.output_text == "Hi, how can I help?"
    assert parsed.id == resp.id
    assert parsed.usage is not None and parsed.usage.input_tokens == 2


def test_mock_response_validates_as_openai_response() -> None:
    resp = Response(mock_response_payload("gpt-4o", {"input": "hello"}, "Hi"))
    parsed = OpenAIResponse.model_validate(resp.model_dump())
    assert parsed.id == resp.id
    assert parsed.usage is not None and parsed.usage.output_tokens == 1


_ADAPTER: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)
_EVENT_TYPES = [e["type"] for e in mock_stream_events(mock_response_payload("m", {}, "a b c"))]


@pytest.mark.parametrize(
    "index", [pytest.param(i, id=t) for i, t in enumerate(_EVENT_TYPES)]
)
def test_mock_stream_events_validate_as_openai_events(index: int) -> None:
    events = mock_stream_events(mock_response_payload("m", {"input": "x"}, "a b c"))
    event = StreamEvent(events[index])
    parsed = _ADAPTER.validate_python(event.model_dump())
    assert parsed.type == event.type
    assert parsed.sequence_number == index


def test_mock_stream_event_types_are_distinct_per_position() -> None:
    # the parametrisation above relies on one completed event, at the end
    assert _EVENT_TYPES[0] == "response.created"
    assert _EVENT_TYPES[-1] == "response.completed"
    assert _EVENT_TYPES.count("response.completed") == 1


# -- StreamEvent -----------------------------------------------------------------------


def test_stream_event_response() -> None:
    event = StreamEvent({"type": "response.completed", "response": _data()})
    assert isinstance(event.response, Response)
    assert event.response.output_text == "hi"
    assert event.type == "response.completed"


def test_stream_event_without_response() -> None:
    event = StreamEvent({"type": "response.output_text.delta", "delta": "hi"})
    with pytest.raises(AttributeError, match="response"):
        _ = event.response
    assert event.delta == "hi"


# -- AttemptTrail ----------------------------------------------------------------------


def test_trail_retries_count_attempts_beyond_the_first_per_group() -> None:
    trail = AttemptTrail("a")
    assert trail.retries == 0
    assert str(trail) == "no attempt made"
    trail.attempts += [
        Attempt("a", "a1", 0.0, 0.1, error="ServerError", status=500),
        Attempt("a", "a2", 0.1, 0.1, error="RateLimitError", status=429),
        Attempt("a", "a1", 0.2, 0.1, error="ServerError", status=500),
        Attempt("b", "b1", 0.3, 0.1),
    ]
    assert trail.retries == 2
    text = str(trail)
    assert "a/a2: RateLimitError [429]" in text
    assert text.endswith("b/b1: ok")


def test_trail_single_attempt_per_group_is_no_retry() -> None:
    trail = AttemptTrail("a", [Attempt("a", "a1", 0, 0, error="X"), Attempt("b", "b1", 0, 0)])
    assert trail.retries == 0


def json_values(rng: random.Random, depth: int = 0) -> Any:
    """A JSON value as a response or its input holds one: objects, lists, text (any
    script, escapes, emoji), integers small and huge, decimals, booleans, null."""
    kind = rng.randrange(8 if depth < 4 else 5)
    if kind == 0:
        return rng.choice(["", "plain", "é ü ß", "日本語", "emoji 😀", 'q"uo\\te\n\t', "\u2028",
                           "\x00\x1f"]) + str(rng.random())
    if kind == 1:
        return rng.choice([0, -1, 7, 2**53, -(2**63), 10**30])
    if kind == 2:
        return rng.choice([0.5, 0.1, 1.25, -3.75, 0.7, 123.456])
    if kind == 3:
        return rng.choice([True, False])
    if kind == 4:
        return None
    if kind == 5:
        return [json_values(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {f"k{i}{rng.choice(['', 'é', '😀'])}": json_values(rng, depth + 1)
            for i in range(rng.randrange(5))}


@pytest.mark.parametrize("seed", range(20))
def test_parse_json_reads_what_json_loads_reads(seed: int) -> None:
    rng = random.Random(seed)
    value = {"output": [json_values(rng) for _ in range(5)]}
    for text in (json.dumps(value), json.dumps(value, ensure_ascii=False)):
        assert parse_json(text) == parse_json(text.encode()) == json.loads(text)


@pytest.mark.parametrize("text", [
    '\ufeff{"a": 1}',  # a byte order mark (jiter refuses it; json.loads takes it as bytes)
    '{"text": "\\ud83d"}',  # half of an emoji's surrogate pair, escaped
    '{"a": NaN, "b": Infinity}',
    '{"a": 1, "a": 2}',
])
def test_parse_json_takes_what_only_json_loads_takes(text: str) -> None:
    raw = text.encode("utf-8")
    expected = json.loads(raw)
    parsed = parse_json(raw)
    assert json.dumps(parsed) == json.dumps(expected)  # NaN != NaN: compare the text


@pytest.mark.parametrize("raw", [b"", b"{bad", b'{"a": 1} trailing', b"\xff\xfe\x00"])
def test_parse_json_refuses_what_json_loads_refuses(raw: bytes) -> None:
    with pytest.raises(ValueError):
        json.loads(raw)
    with pytest.raises(ValueError):
        parse_json(raw)


@pytest.mark.parametrize("seed", range(3))
def test_parse_json_reads_every_float_as_json_loads_does(seed: int) -> None:
    rng = random.Random(seed)
    values = [rng.random() * 10.0 ** rng.randint(-300, 300) for _ in range(2000)]
    values += [rng.uniform(-1e6, 1e6) for _ in range(1000)] + [5e-324, 1.7976931348623157e308]
    text = json.dumps(values)
    assert parse_json(text) == json.loads(text)


@pytest.mark.parametrize("seed", range(20))
def test_dump_json_writes_what_json_dumps_writes(seed: int) -> None:
    rng = random.Random(seed)
    value = {"output": [json_values(rng) for _ in range(5)]}
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    assert dump_json(value) == text.encode()
    assert parse_json(dump_json(value)) == value


@pytest.mark.parametrize("value", [
    {"text": "\ud83d cut in half"},  # what parse_json returns for an escaped lone surrogate
    {"item": Record({"type": "message", "content": "é"})},  # a router's record, passed back
    [parse_json(b'{"text": "\\ud83d"}')],
])
def test_dump_json_writes_what_utf8_cannot_carry_as_json_dumps_does(value: Any) -> None:
    out = dump_json(value)
    assert out == json.dumps(value, separators=(",", ":"), default=record_json).encode()
    assert json.loads(out) == json.loads(json.dumps(value, default=record_json))


def _dumps_body(value: Any) -> bytes:
    """What body_json promises: json.dumps with NaN refused and records as their JSON."""
    return json.dumps(value, allow_nan=False, default=record_json).encode()


@pytest.mark.parametrize("seed", range(20))
def test_body_json_writes_what_json_dumps_writes(seed: int) -> None:
    rng = random.Random(seed)
    value = {"input": [json_values(rng) for _ in range(5)],
             "keys": {7: "an int key", 2.5: "a float key", True: "a bool key", None: "null"},
             "record": Record({"type": "message", "content": "é \ud83d"})}
    assert body_json(value) == _dumps_body(value)


@pytest.mark.parametrize("value", [
    {"seed": float("nan")}, {"x": [float("inf")]}, {"tags": {1, 2}}, {"when": object()},
    {"deep": {"er": [1, {"bad": b"bytes"}]}},
])
def test_body_json_refuses_what_json_dumps_refuses_and_goes_on(value: Any) -> None:
    with pytest.raises((TypeError, ValueError)) as expected:
        _dumps_body(value)
    body = {"input": [1, {"x": 2}], **value}
    with pytest.raises(type(expected.value), match=re.escape(str(expected.value))):
        body_json(body)
    # A failure leaves nothing behind: the same body, fixed, is not taken for a circular
    # one (an encoder whose record of open containers outlived the failure would say so).
    for name in value:
        del body[name]
    assert body_json(body) == _dumps_body(body)


def test_body_json_refuses_a_circular_body() -> None:
    body: dict[str, Any] = {"input": []}
    body["input"].append(body)
    with pytest.raises(ValueError, match="Circular reference"):
        body_json(body)
