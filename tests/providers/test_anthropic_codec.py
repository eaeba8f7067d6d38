"""The Anthropic codec from fixtures: requests both ways, answers, streams, errors.

Every request the codec builds is checked against the ``anthropic`` package's
``MessageCreateParams`` types (:mod:`tests.providers.anthropic_types`), every
Response against ``openai``'s ``Response`` and every event against its
``ResponseStreamEvent``. Stream fixtures are produced from message fixtures
by the fake's own SSE writer, so a stream and the plain answer it mirrors
must translate to the same Response.
"""

from __future__ import annotations

import base64
import copy
from typing import Any

import httpx
import pytest
from openai.types.responses import Response as SdkResponse
from openai.types.responses import ResponseStreamEvent
from pydantic import TypeAdapter

from providers.anthropic_codec import (
    DEFAULT_MAX_TOKENS,
    REDACTED_PREFIX,
    THINKING_BUDGETS,
    AnthropicCodec,
)
from providers.codec import Call
from providers.response_ids import ResponseIds
from router.errors import (
    AuthenticationError,
    BadRequestError,
    ContextWindowExceededError,
    InvalidRequestError,
    MalformedResponseError,
    NotFoundError,
    PermissionDeniedError,
    QuotaExhaustedError,
    RateLimitError,
    ServerError,
    ServiceUnavailableError,
    UnsupportedParameterError,
    UpstreamError,
    classify,
    error_from_status,
)
from router.testing.anthropic import ERROR_STATUS, error_body, stream_events
from tests.providers.anthropic_types import check_params

CODEC = AnthropicCodec()
EVENTS: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)
PNG = "data:image/png;base64,iVBORw0KGgo="
PDF = "data:application/pdf;base64,JVBERi0xLjQ="
WEATHER = {"type": "function", "name": "get_weather", "description": "Weather in a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                          "required": ["city"]}}


def call(stream: bool = False, drop: bool = False, **params: Any) -> Call:
    params.setdefault("input", "hi")
    return Call(provider="anthropic", model="claude-sonnet-4-5", params=params,
                response_id=ResponseIds().new(), created_at=1_700_000_000, stream=stream,
                drop_params=drop)


def encode(stream: bool = False, **params: Any) -> dict[str, Any]:
    native = CODEC.encode(call(stream, **params))
    assert native.path == "/v1/messages"
    check_params(native.body)
    return native.body


def message(*blocks: dict[str, Any], stop: str = "end_turn", **usage: Any) -> dict[str, Any]:
    return {"id": "msg_01", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
            "content": list(blocks), "stop_reason": stop, "stop_sequence": None,
            "usage": {"input_tokens": 10, "output_tokens": 5, **usage}}


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value, "citations": None}


def tool_use(tool_id: str = "toolu_01", city: str = "Paris") -> dict[str, Any]:
    return {"type": "tool_use", "id": tool_id, "name": "get_weather", "input": {"city": city}}


def thinking(thought: str = "Let me think.", signature: str = "EqQBCkYIARgCIkB") -> dict[str, Any]:
    return {"type": "thinking", "thinking": thought, "signature": signature}


def decoded(body: dict[str, Any], c: Call | None = None) -> dict[str, Any]:
    response = CODEC.decode(body, c or call())
    SdkResponse.model_validate(response)
    return response


def streamed(body: dict[str, Any], c: Call | None = None) -> list[dict[str, Any]]:
    decoder = CODEC.decoder(c or call(stream=True))
    events = [e for native in stream_events(copy.deepcopy(body)) for e in decoder.feed(native)]
    events += decoder.end()
    for event in events:
        EVENTS.validate_python(event)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    return events


# -- requests ----------------------------------------------------------------------------------


def test_plain_text_request() -> None:
    body = encode(input="Hello", instructions="Be brief.", temperature=0.2, top_p=0.9)
    assert body == {
        "model": "claude-sonnet-4-5", "max_tokens": DEFAULT_MAX_TOKENS,
        "system": [{"type": "text", "text": "Be brief."}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hello"}]}],
        "temperature": 0.2, "top_p": 0.9,
    }
    assert encode(stream=True)["stream"] is True


def test_multi_turn_merges_roles_and_lifts_system_messages() -> None:
    body = encode(instructions="Top.", input=[
        {"role": "developer", "content": "Answer in French."},
        {"role": "user", "content": "Hi"},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "there"}]},
        {"role": "assistant", "content": [{"type": "output_text", "text": "Bonjour"}]},
        {"role": "user", "content": "More"},
    ])
    assert body["system"] == [{"type": "text", "text": "Top."},
                              {"type": "text", "text": "Answer in French."}]
    assert [(m["role"], [b["text"] for b in m["content"]]) for m in body["messages"]] == [
        ("user", ["Hi", "there"]), ("assistant", ["Bonjour"]), ("user", ["More"])]


def test_tool_call_round_trip_request() -> None:
    body = encode(tools=[WEATHER], input=[
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {"type": "function_call", "call_id": "toolu_01", "name": "get_weather",
         "arguments": '{"city": "Paris"}'},
        {"type": "function_call", "call_id": "toolu_02", "name": "get_weather",
         "arguments": '{"city": "Rome"}'},
        {"type": "function_call_output", "call_id": "toolu_01", "output": "sunny"},
        {"type": "function_call_output", "call_id": "toolu_02",
         "output": [{"type": "input_text", "text": "rain"}]},
    ])
    assistant, results = body["messages"][1:]
    assert assistant == {"role": "assistant", "content": [
        {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "toolu_02", "name": "get_weather", "input": {"city": "Rome"}}]}
    assert results == {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_01", "content": "sunny"},
        {"type": "tool_result", "tool_use_id": "toolu_02",
         "content": [{"type": "text", "text": "rain"}]}]}
    assert body["tools"] == [{"name": "get_weather", "description": "Weather in a city",
                              "input_schema": WEATHER["parameters"]}]


@pytest.mark.parametrize(("choice", "parallel", "native"), [
    (None, None, None),
    ("auto", None, {"type": "auto"}),
    ("none", False, {"type": "none"}),
    ("required", None, {"type": "any"}),
    ({"type": "function", "name": "get_weather"}, False,
     {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True}),
    (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
])
def test_tool_choice(choice: Any, parallel: Any, native: Any) -> None:
    params: dict[str, Any] = {"tools": [WEATHER]}
    if choice is not None:
        params["tool_choice"] = choice
    if parallel is not None:
        params["parallel_tool_calls"] = parallel
    assert encode(**params).get("tool_choice") == native


def test_web_search_tool_and_its_choice() -> None:
    body = encode(tools=[{"type": "web_search", "filters": {"allowed_domains": ["a.org"]},
                          "user_location": {"type": "approximate", "city": "Oslo",
                                            "country": "NO"}}],
                  tool_choice={"type": "web_search_preview"})
    assert body["tools"] == [{"type": "web_search_20250305", "name": "web_search",
                              "allowed_domains": ["a.org"],
                              "user_location": {"type": "approximate", "city": "Oslo",
                                                "country": "NO"}}]
    assert body["tool_choice"] == {"type": "tool", "name": "web_search"}


def test_tool_choice_that_needs_tools_without_tools_is_refused() -> None:
    with pytest.raises(InvalidRequestError, match="tool_choice"):
        encode(tool_choice="required")
    assert "tool_choice" not in encode(tool_choice="auto")


def test_structured_output_uses_the_native_output_format() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"],
              "additionalProperties": False}
    body = encode(text={"format": {"type": "json_schema", "name": "count", "schema": schema,
                                   "strict": True}})
    assert body["output_config"] == {"format": {"type": "json_schema", "schema": schema}}
    assert "output_config" not in encode(text={"format": {"type": "text"}})


def test_images_and_files() -> None:
    plain = "data:text/plain;base64," + base64.b64encode(b"notes").decode()
    body = encode(input=[{"role": "user", "content": [
        {"type": "input_image", "image_url": "https://x.test/cat.jpg", "detail": "auto"},
        {"type": "input_image", "image_url": PNG},
        {"type": "input_file", "file_data": PDF, "filename": "a.pdf"},
        {"type": "input_file", "file_data": plain},
        {"type": "input_file", "file_url": "https://x.test/b.pdf"},
    ]}])
    assert body["messages"][0]["content"] == [
        {"type": "image", "source": {"type": "url", "url": "https://x.test/cat.jpg"}},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                     "data": "iVBORw0KGgo="}},
        {"type": "document", "title": "a.pdf",
         "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0xLjQ="}},
        {"type": "document", "source": {"type": "text", "media_type": "text/plain",
                                        "data": "notes"}},
        {"type": "document", "source": {"type": "url", "url": "https://x.test/b.pdf"}},
    ]


@pytest.mark.parametrize(("part", "where"), [
    ({"type": "input_image", "image_url": "data:image/tiff;base64,AA=="},
     r"input\[0\].content\[0\].image_url"),
    ({"type": "input_image", "file_id": "file_1"}, r"input\[0\].content\[0\]: .*file_id"),
    ({"type": "input_file", "file_id": "file_1"}, r"input\[0\].content\[0\]: .*file_data"),
    ({"type": "input_image", "image_url": "data:image/png,raw"}, "base64 data URL"),
    ({"type": "input_audio"}, r"input\[0\].content\[0\]: expected a text part"),
])
def test_parts_anthropic_cannot_take_are_named(part: dict[str, Any], where: str) -> None:
    with pytest.raises(InvalidRequestError, match=where):
        encode(input=[{"role": "user", "content": [part]}])


@pytest.mark.parametrize(("params", "where"), [
    ({"temperature": "hot"}, "temperature: expected a number"),
    ({"top_p": True}, "top_p: expected a number"),
    ({"include": "reasoning.encrypted_content"}, "include: expected a list"),
    ({"reasoning": {"effort": {"level": 1}}}, r"reasoning\.effort: expected one of"),
    ({"service_tier": ["auto"]}, "service_tier"),
    ({"input": [{"role": "user", "content": [
        {"type": "input_file", "file_data": "data:text/plain;base64,@@@"}]}]},
     r"input\[0\]\.content\[0\]\.file_data: not valid base64"),
    ({"tools": [{"type": "web_search", "filters": {"allowed_domains": 5}}]},
     "unexpected shape"),
])
def test_malformed_parameters_are_named(params: dict[str, Any], where: str) -> None:
    with pytest.raises(InvalidRequestError, match=where):
        encode(**params)


@pytest.mark.parametrize(("item", "where"), [
    ({"type": "item_reference", "id": "msg_1"}, r"input\[1\].type: .*item_reference"),
    ({"type": "function_call", "call_id": "c", "name": "f", "arguments": "{oops"},
     r"input\[1\].arguments"),
    ({"type": "function_call_output", "call_id": "c", "output": 3}, r"input\[1\].output"),
])
def test_items_anthropic_cannot_take_are_named(item: dict[str, Any], where: str) -> None:
    with pytest.raises(InvalidRequestError, match=where):
        encode(input=[{"role": "user", "content": "x"}, item])


@pytest.mark.parametrize("effort", sorted(THINKING_BUDGETS))
def test_reasoning_effort_sets_a_thinking_budget(effort: str) -> None:
    body = encode(reasoning={"effort": effort, "summary": "auto"})
    budget = THINKING_BUDGETS[effort]
    assert body["thinking"] == {"type": "enabled", "budget_tokens": budget}
    assert body["max_tokens"] == DEFAULT_MAX_TOKENS + budget


def test_reasoning_budget_fits_under_max_output_tokens() -> None:
    body = encode(reasoning={"effort": "high"}, max_output_tokens=3000)
    assert body["max_tokens"] == 3000 and body["thinking"]["budget_tokens"] == 2999
    assert "thinking" not in encode(reasoning={"effort": "none"})
    with pytest.raises(UnsupportedParameterError, match=r"reasoning\.effort"):
        encode(reasoning={"effort": "low"}, max_output_tokens=500)
    with pytest.raises(InvalidRequestError, match=r"reasoning\.effort: expected one of"):
        encode(reasoning={"effort": "huge"})


@pytest.mark.parametrize(("params", "param"), [
    ({"temperature": 0.3}, "temperature"),
    ({"top_p": 0.5}, "top_p"),
    ({"tools": [WEATHER], "tool_choice": "required"}, "tool_choice"),
])
def test_what_thinking_cannot_combine_with_is_refused(params: dict[str, Any], param: str) -> None:
    with pytest.raises(UnsupportedParameterError) as info:
        encode(reasoning={"effort": "low"}, **params)
    assert info.value.param == param
    dropping = call(drop=True, reasoning={"effort": "low"}, **params)
    assert param not in CODEC.encode(dropping).body and dropping.dropped == [param]
    assert encode(reasoning={"effort": "low"}, temperature=1, top_p=0.97)["top_p"] == 0.97


def test_reasoning_items_go_back_as_thinking_blocks() -> None:
    body = encode(input=[
        {"role": "user", "content": "Q"},
        {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "Hm."}],
         "encrypted_content": "sig-1"},
        {"type": "reasoning", "id": "rs_2", "summary": [],
         "encrypted_content": REDACTED_PREFIX + "opaque"},
        {"type": "reasoning", "id": "rs_3", "summary": [{"type": "summary_text", "text": "x"}]},
        {"type": "function_call", "call_id": "toolu_1", "name": "get_weather",
         "arguments": "{}"},
        {"type": "function_call_output", "call_id": "toolu_1", "output": "ok"},
    ], tools=[WEATHER])
    assert body["messages"][1]["content"] == [
        {"type": "thinking", "thinking": "Hm.", "signature": "sig-1"},
        {"type": "redacted_thinking", "data": "opaque"},
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}},
    ]


def test_user_metadata_and_service_tier() -> None:
    body = encode(user="u-1", metadata={"team": "a"}, service_tier="default")
    assert body["metadata"] == {"user_id": "u-1"} and body["service_tier"] == "standard_only"
    assert encode(metadata={"user_id": "u-2", "x": "y"})["metadata"] == {"user_id": "u-2"}
    assert "metadata" not in encode(metadata={"team": "a"}, store=False,
                                    include=["reasoning.encrypted_content"])


@pytest.mark.parametrize(("params", "param"), [
    ({"top_logprobs": 3}, "top_logprobs"),
    ({"truncation": "auto"}, "truncation"),
    ({"background": True}, "background"),
    ({"prompt_cache_key": "k"}, "prompt_cache_key"),
    ({"max_tool_calls": 2}, "max_tool_calls"),
    ({"service_tier": "flex"}, "service_tier"),
    ({"text": {"verbosity": "high"}}, "text.verbosity"),
    ({"text": {"format": {"type": "json_object"}}}, "text.format"),
    ({"tools": [{"type": "file_search", "vector_store_ids": ["vs"]}]}, "tools[0]"),
    ({"tools": [{"type": "web_search", "search_context_size": "high"}]},
     "tools[0].search_context_size"),
    ({"tool_choice": {"type": "allowed_tools", "tools": []}, "tools": [WEATHER]},
     "tool_choice"),
    ({"include": ["message.output_text.logprobs"]}, "include['message.output_text.logprobs']"),
    ({"reasoning": {"effort": "low", "generate_summary": "auto"}},
     "reasoning.generate_summary"),
    ({"some_future_param": 1}, "some_future_param"),
])
def test_what_anthropic_cannot_honour_is_refused_or_dropped(
    params: dict[str, Any], param: str
) -> None:
    with pytest.raises(UnsupportedParameterError) as info:
        encode(**params)
    assert info.value.param == param and info.value.provider == "anthropic"
    assert "anthropic" in info.value.message
    dropping = call(drop=True, **params)
    check_params(CODEC.encode(dropping).body)
    assert dropping.dropped == [param]


def test_neutral_values_are_not_refused() -> None:
    encode(truncation="disabled", background=False, top_logprobs=0, prompt_cache_key=None,
           text={"verbosity": "medium", "format": {"type": "text"}})
    nulls = encode(max_output_tokens=None, text=None, temperature=None, tool_choice=None,
                   reasoning=None, some_future_param=None, instructions=None)
    assert nulls["max_tokens"] == DEFAULT_MAX_TOKENS and "temperature" not in nulls


# -- answers -------------------------------------------------------------------------------------


def test_text_answer_with_cache_usage() -> None:
    response = decoded(message(text("Hello!"), cache_read_input_tokens=100,
                               cache_creation_input_tokens=20,
                               output_tokens_details={"thinking_tokens": 0}))
    sdk = SdkResponse.model_validate(response)
    assert sdk.output_text == "Hello!" and sdk.status == "completed"
    assert response["usage"] == {
        "input_tokens": 130, "output_tokens": 5, "total_tokens": 135,
        "input_tokens_details": {"cached_tokens": 100, "cache_write_tokens": 20},
        "output_tokens_details": {"reasoning_tokens": 0}}


def test_tool_use_answer_becomes_function_calls() -> None:
    response = decoded(message(text("Checking."), tool_use(), tool_use("toolu_02", "Rome"),
                               stop="tool_use"))
    calls = [o for o in response["output"] if o["type"] == "function_call"]
    assert [(c["call_id"], c["name"], c["arguments"]) for c in calls] == [
        ("toolu_01", "get_weather", '{"city": "Paris"}'),
        ("toolu_02", "get_weather", '{"city": "Rome"}')]
    assert response["status"] == "completed"
    assert len({o["id"] for o in response["output"]}) == 3


def test_thinking_round_trips_through_reasoning_items() -> None:
    redacted = {"type": "redacted_thinking", "data": "EmwKAhgBEgy"}
    response = decoded(message(thinking(), redacted, text("42"),
                               output_tokens_details={"thinking_tokens": 3}))
    first, second, _ = response["output"]
    assert first["summary"] == [{"type": "summary_text", "text": "Let me think."}]
    assert first["encrypted_content"] == "EqQBCkYIARgCIkB"
    assert second["summary"] == []
    assert second["encrypted_content"] == REDACTED_PREFIX + "EmwKAhgBEgy"
    assert response["usage"]["output_tokens_details"]["reasoning_tokens"] == 3
    again = encode(input=[{"role": "user", "content": "Q"}, *response["output"],
                          {"role": "user", "content": "And?"}])
    assert again["messages"][1]["content"] == [
        {"type": "thinking", "thinking": "Let me think.", "signature": "EqQBCkYIARgCIkB"},
        {"type": "redacted_thinking", "data": "EmwKAhgBEgy"},
        {"type": "text", "text": "42"}]


SEARCH = (
    {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search",
     "input": {"query": "weather Oslo"}},
    {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1",
     "content": [{"type": "web_search_result", "url": "https://yr.no", "title": "Yr",
                  "encrypted_content": "Eq", "page_age": None}]},
    {"type": "text", "text": "Cold.", "citations": [
        {"type": "web_search_result_location", "url": "https://yr.no", "title": "Yr",
         "cited_text": "-12C", "encrypted_index": "Eo8"},
        {"type": "char_location", "cited_text": "x", "document_index": 0,
         "document_title": None, "start_char_index": 0, "end_char_index": 1,
         "file_id": None}]},
)


def test_earlier_web_search_calls_are_left_out_of_the_history() -> None:
    response = decoded(message(*SEARCH))
    body = encode(input=[{"role": "user", "content": "Weather?"}, *response["output"],
                         {"role": "user", "content": "Thanks"}])
    assert body["messages"][1] == {"role": "assistant",
                                   "content": [{"type": "text", "text": "Cold."}]}


def test_web_search_answer() -> None:
    response = decoded(message(*SEARCH, server_tool_use={"web_search_requests": 1}))
    assert [o["type"] for o in response["output"]] == ["web_search_call", "message"]
    assert response["output"][0]["action"] == {"type": "search", "query": "weather Oslo"}
    assert response["output"][1]["content"][0]["annotations"] == [
        {"type": "url_citation", "url": "https://yr.no", "title": "Yr", "start_index": 0,
         "end_index": 5}]


@pytest.mark.parametrize(("stop", "status", "reason"), [
    ("end_turn", "completed", None),
    ("stop_sequence", "completed", None),
    ("tool_use", "completed", None),
    ("pause_turn", "completed", None),
    ("max_tokens", "incomplete", "max_output_tokens"),
    ("model_context_window_exceeded", "incomplete", "max_output_tokens"),
    ("refusal", "incomplete", "content_filter"),
])
def test_stop_reasons(stop: str, status: str, reason: str | None) -> None:
    response = decoded(message(text("x"), stop=stop))
    assert response["status"] == status
    assert response["incomplete_details"] == (None if reason is None else {"reason": reason})
    final = streamed(message(text("x"), stop=stop))[-1]
    assert final["type"] == f"response.{status}"
    assert final["response"]["incomplete_details"] == response["incomplete_details"]


@pytest.mark.parametrize("body", [
    {"type": "error", "error": {"type": "api_error", "message": "x"}},
    {"type": "message", "content": "not a list", "usage": {}},
    {"type": "message", "content": [{"type": "text"}], "usage": {}},
    {"type": "message", "content": [{"type": "text", "text": "x"}]},
    {"type": "message", "content": [{"no": "type"}], "usage": {}},
])
def test_malformed_bodies_raise_what_the_seam_maps(body: dict[str, Any]) -> None:
    # TranslatedProvider turns these into MalformedResponseError (see test_translated.py).
    with pytest.raises((MalformedResponseError, KeyError, TypeError)):
        CODEC.decode(body, call())


def test_request_params_are_echoed() -> None:
    response = decoded(message(text("x")), call(instructions="I", max_output_tokens=77,
                                                 metadata={"k": "v"}, tools=[WEATHER]))
    assert response["instructions"] == "I" and response["max_output_tokens"] == 77
    assert response["metadata"] == {"k": "v"} and response["tools"] == [WEATHER]


# -- streams ---------------------------------------------------------------------------------------


def test_stream_translates_to_the_same_response_as_the_plain_answer() -> None:
    body = message(thinking(), text("Let me check."), tool_use(), stop="tool_use",
                   cache_read_input_tokens=4, output_tokens_details={"thinking_tokens": 3})
    c = call(stream=True)
    events = streamed(body, c)
    kinds = [e["type"] for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    for kind in ("response.reasoning_summary_text.delta", "response.output_text.delta",
                 "response.function_call_arguments.delta",
                 "response.function_call_arguments.done"):
        assert kind in kinds
    assert events[-1]["response"]["output"] == decoded(body, c)["output"]
    assert events[-1]["response"]["usage"] == decoded(body, c)["usage"]


def test_stream_with_redacted_thinking_and_web_search() -> None:
    body = message({"type": "redacted_thinking", "data": "Emw"}, *SEARCH)
    c = call(stream=True)
    events = streamed(body, c)
    kinds = [e["type"] for e in events]
    assert "response.web_search_call.searching" in kinds
    assert kinds.count("response.output_text.annotation.added") == 1
    assert events[-1]["response"]["output"] == decoded(body, c)["output"]


def test_tool_call_without_arguments_streams_an_empty_object() -> None:
    body = message({"type": "tool_use", "id": "toolu_9", "name": "now", "input": {}},
                   stop="tool_use")
    events = streamed(body)
    done = [e for e in events if e["type"] == "response.function_call_arguments.done"]
    assert done[0]["arguments"] == "{}"


def test_unknown_stream_events_and_pings_are_ignored() -> None:
    decoder = CODEC.decoder(call(stream=True))
    assert decoder.feed({"type": "ping"}) == []
    assert decoder.feed({"type": "some_future_event", "x": 1}) == []


def test_error_event_mid_stream() -> None:
    decoder = CODEC.decoder(call(stream=True))
    events = []
    for native in list(stream_events(message(text("Hello world"))))[:4]:
        events += decoder.feed(native)
    events += decoder.feed(error_body("overloaded_error"))
    assert events[-1]["type"] == "error" and events[-1]["code"] == "server_is_overloaded"
    assert decoder.feed({"type": "message_stop"}) == [] and decoder.end() == []
    for event in events:
        EVENTS.validate_python(event)


def test_stream_that_ends_before_message_stop_ends_with_an_error_event() -> None:
    decoder = CODEC.decoder(call(stream=True))
    for native in list(stream_events(message(text("Hello"))))[:-1]:
        decoder.feed(native)
    (event,) = decoder.end()
    assert event["type"] == "error" and "message_stop" in event["message"]


# -- errors ----------------------------------------------------------------------------------------


def upstream_error(kind: str, message: str | None = None,
                   headers: dict[str, str] | None = None) -> UpstreamError:
    native = CODEC.error(ERROR_STATUS[kind], error_body(kind, message))
    return error_from_status(native.status, native.body(), httpx.Headers(headers or {}))


@pytest.mark.parametrize(("kind", "message", "cls"), [
    ("overloaded_error", None, ServiceUnavailableError),
    ("rate_limit_error", None, RateLimitError),
    ("authentication_error", None, AuthenticationError),
    ("permission_error", None, PermissionDeniedError),
    ("not_found_error", None, NotFoundError),
    ("invalid_request_error", "prompt is too long: 250000 tokens > 200000 maximum",
     ContextWindowExceededError),
    ("invalid_request_error", "input length and `max_tokens` exceed context limit: 198000 + "
     "8192 > 200000", ContextWindowExceededError),
    ("invalid_request_error", "messages.0.content: Field required", BadRequestError),
    ("request_too_large", None, BadRequestError),
    ("billing_error", None, QuotaExhaustedError),
    ("api_error", None, ServerError),
    ("timeout_error", None, ServerError),
])
def test_error_answers_map_into_the_error_table(
    kind: str, message: str | None, cls: type[UpstreamError]
) -> None:
    error = upstream_error(kind, message)
    assert type(error) is cls or (cls is ServerError and isinstance(error, ServerError))
    assert error.message and error.type == kind
    if cls is BadRequestError:
        assert type(error) is BadRequestError


def test_rate_limit_carries_retry_after_and_overload_is_not_a_client_error() -> None:
    assert upstream_error("rate_limit_error", headers={"retry-after": "7"}).retry_after == 7.0
    overloaded = CODEC.error(529, error_body("overloaded_error"))
    assert overloaded.status == 503 and overloaded.code == "server_is_overloaded"


def test_non_anthropic_error_bodies_keep_their_status() -> None:
    native = CODEC.error(502, "<html>Bad gateway</html>")
    assert native.status == 502 and "Bad gateway" in native.message
    assert CODEC.error(529, "").status == 503
    odd = CODEC.error(418, {"type": "error", "error": {"type": "teapot_error", "message": "t"}})
    assert odd.status == 418 and odd.code == "teapot_error"


@pytest.mark.parametrize(("kind", "message", "cls"), [
    ("overloaded_error", "Overloaded", ServiceUnavailableError),
    ("rate_limit_error", "slow down", RateLimitError),
    ("api_error", "Internal server error", ServerError),
    ("invalid_request_error", "prompt is too long: 1 > 0", ContextWindowExceededError),
    ("authentication_error", "bad key", AuthenticationError),
])
def test_stream_error_events_map_into_the_error_table(
    kind: str, message: str, cls: type[UpstreamError]
) -> None:
    decoder = CODEC.decoder(call(stream=True))
    (event,) = decoder.feed(error_body(kind, message))
    assert classify(None, event["code"]) is cls and event["message"] == message
