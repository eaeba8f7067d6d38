"""The chat codec from fixtures: Responses <-> Chat Completions, both ways, no I/O."""

from __future__ import annotations

from typing import Any

import pytest
from openai.types.responses import Response as SdkResponse
from openai.types.responses import ResponseStreamEvent
from pydantic import TypeAdapter

from providers.chat_codec import HONOURED, ChatCodec, native_error
from providers.codec import Call
from router.errors import (
    AuthenticationError,
    ContentPolicyViolationError,
    ContextWindowExceededError,
    InvalidRequestError,
    MalformedResponseError,
    NotFoundError,
    RateLimitError,
    ServerError,
    ServiceUnavailableError,
    UnsupportedParameterError,
    classify,
)
from tests.providers.chat_types import check_chunk, check_completion, check_request

CODEC = ChatCodec()
EVENTS: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)


def call(stream: bool = False, drop: bool = False, **params: Any) -> Call:
    return Call("hosted_vllm", "llama", params, "resp_" + "ab" * 16, 1700000000,
                stream=stream, drop_params=drop)


def encode(**params: Any) -> dict[str, Any]:
    body = CODEC.encode(call(**params)).body
    check_request(body)
    return body


def completion(message: dict[str, Any], finish: str = "stop", **usage: Any) -> dict[str, Any]:
    body = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "llama",
            "choices": [{"index": 0, "message": {"role": "assistant", **message},
                         "finish_reason": finish, "logprobs": None}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15, **usage}}
    check_completion(body)
    return body


def decode(body: dict[str, Any], **params: Any) -> SdkResponse:
    return SdkResponse.model_validate(CODEC.decode(body, call(**params)))


# -- requests -----------------------------------------------------------------------


def test_plain_text_with_instructions() -> None:
    body = encode(input="Hello", instructions="Be brief", max_output_tokens=50,
                  temperature=0.2, top_p=0.9, user="u1", metadata={"k": "v"}, store=True)
    assert body == {"model": "llama", "max_tokens": 50, "temperature": 0.2, "top_p": 0.9,
                    "user": "u1", "messages": [{"role": "system", "content": "Be brief"},
                                               {"role": "user", "content": "Hello"}]}


def test_multi_turn_roles_and_parts() -> None:
    body = encode(input=[
        {"role": "developer", "content": "rules"},
        {"role": "user", "content": [{"type": "input_text", "text": "a"},
                                     {"type": "input_text", "text": "b"}]},
        {"type": "message", "role": "assistant",
         "content": [{"type": "output_text", "text": "c"}]},
        {"role": "user", "content": "d"},
    ])
    assert body["messages"] == [
        {"role": "system", "content": "rules"}, {"role": "user", "content": "ab"},
        {"role": "assistant", "content": "c"}, {"role": "user", "content": "d"}]


def test_tool_call_round_trip_request() -> None:
    body = encode(
        input=[{"role": "user", "content": "weather?"},
               {"type": "reasoning", "id": "rs_1", "summary": []},
               {"type": "function_call", "call_id": "c1", "name": "get", "arguments": "{}"},
               {"type": "function_call", "call_id": "c2", "name": "get", "arguments": "{}"},
               {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
               {"type": "function_call_output", "call_id": "c2",
                "output": [{"type": "input_text", "text": "rain"}]}],
        tools=[{"type": "function", "name": "get", "description": "d",
                "parameters": {"type": "object"}, "strict": True}],
        tool_choice={"type": "function", "name": "get"}, parallel_tool_calls=False)
    calls = body["messages"][1]["tool_calls"]
    assert [c["id"] for c in calls] == ["c1", "c2"] and body["messages"][1]["content"] is None
    assert body["messages"][2:] == [{"role": "tool", "tool_call_id": "c1", "content": "sunny"},
                                    {"role": "tool", "tool_call_id": "c2", "content": "rain"}]
    assert body["tools"][0]["function"] == {"name": "get", "description": "d",
                                            "parameters": {"type": "object"}, "strict": True}
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get"}}
    assert body["parallel_tool_calls"] is False


def test_structured_output_and_reasoning_effort() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    body = encode(input="x", text={"format": {"type": "json_schema", "name": "out",
                                              "schema": schema, "strict": True}},
                  reasoning={"effort": "high", "summary": "auto"})
    assert body["response_format"] == {"type": "json_schema", "json_schema": {
        "name": "out", "schema": schema, "strict": True}}
    assert body["reasoning_effort"] == "high"
    assert encode(input="x", text={"format": {"type": "json_object"}})["response_format"] == {
        "type": "json_object"}


def test_images_and_inline_files() -> None:
    body = encode(input=[{"role": "user", "content": [
        {"type": "input_text", "text": "what is it?"},
        {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "low"},
        {"type": "input_file", "filename": "a.pdf", "file_data": "data:application/pdf;base64,AA"},
    ]}])
    assert body["messages"][0]["content"] == [
        {"type": "text", "text": "what is it?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA",
                                            "detail": "low"}},
        {"type": "file", "file": {"file_data": "data:application/pdf;base64,AA",
                                  "filename": "a.pdf"}}]


def test_stream_asks_for_usage() -> None:
    body = encode(input="x", stream=True)
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize(("params", "param"), [
    ({"tools": [{"type": "web_search"}]}, "tools[0]"),
    ({"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]},
     "input[0].content[0].file_id"),
    ({"input": [{"type": "item_reference", "id": "x"}]}, "input[0].type"),
    ({"top_logprobs": 2}, "top_logprobs"),
    ({"truncation": "auto"}, "truncation"),
    ({"text": {"format": {"type": "text"}, "verbosity": "low"}}, "text.verbosity"),
    ({"tool_choice": {"type": "web_search_preview"}}, "tool_choice"),
    ({"service_tier": "flex"}, "service_tier"),
    ({"input": [{"role": "system", "content": [
        {"type": "input_image", "image_url": "data:image/png;base64,AA"}]}]},
     "input[0].content"),
])
def test_unsupported_parameters_are_refused_or_dropped(params: dict[str, Any],
                                                       param: str) -> None:
    params.setdefault("input", "x")
    with pytest.raises(UnsupportedParameterError) as info:
        CODEC.encode(call(**params))
    assert info.value.param == param and "hosted_vllm" in info.value.message
    dropping = call(drop=True, **params)
    check_request(CODEC.encode(dropping).body)
    assert dropping.dropped == [param]


def test_every_honoured_parameter_is_read() -> None:
    assert {"input", "instructions", "tools", "tool_choice", "text", "reasoning",
            "max_output_tokens", "temperature", "top_p", "metadata", "user"} <= HONOURED


def test_malformed_input_is_an_invalid_request() -> None:
    with pytest.raises(InvalidRequestError, match=r"input\[0\]\.call_id"):
        CODEC.encode(call(input=[{"type": "function_call", "name": "f", "arguments": "{}"}]))


# -- answers ------------------------------------------------------------------------


def test_plain_answer_with_cached_and_reasoning_tokens() -> None:
    body = completion({"content": "Hi!"}, prompt_tokens_details={"cached_tokens": 4},
                      completion_tokens_details={"reasoning_tokens": 2})
    response = decode(body, metadata={"k": "v"})
    assert response.output_text == "Hi!" and response.status == "completed"
    assert response.id == "resp_" + "ab" * 16 and response.metadata == {"k": "v"}
    assert response.usage is not None
    assert response.usage.input_tokens_details.cached_tokens == 4
    assert response.usage.output_tokens_details.reasoning_tokens == 2


def test_reasoning_content_and_tool_calls() -> None:
    body = completion({"content": None, "reasoning_content": "think", "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}},
    ]}, finish="tool_calls")
    response = decode(body)
    kinds = [item.type for item in response.output]
    assert kinds == ["reasoning", "function_call"]
    assert response.output[0].summary[0].text == "think"  # type: ignore[union-attr]
    assert response.output[1].call_id == "call_1"  # type: ignore[union-attr]
    assert len({item.id for item in response.output}) == 2


@pytest.mark.parametrize(("finish", "status", "reason"), [
    ("stop", "completed", None), ("tool_calls", "completed", None),
    ("length", "incomplete", "max_output_tokens"),
    ("content_filter", "incomplete", "content_filter"),
])
def test_every_finish_reason(finish: str, status: str, reason: str | None) -> None:
    response = decode(completion({"content": "x"}, finish=finish))
    assert response.status == status
    assert (response.incomplete_details.reason if response.incomplete_details else None) == reason


def test_refusal_becomes_a_refusal_part() -> None:
    response = decode(completion({"content": None, "refusal": "no"}))
    assert response.output[0].content[0].type == "refusal"  # type: ignore[union-attr]


@pytest.mark.parametrize("body", [
    {"choices": []}, {"choices": [{"index": 0}]}, {"nothing": 1},
    {"choices": [{"message": {"tool_calls": [{"id": "x"}]}}]},
])
def test_malformed_answers_raise(body: dict[str, Any]) -> None:
    with pytest.raises((MalformedResponseError, KeyError, TypeError)):
        CODEC.decode(body, call())


# -- errors -------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "body", "cls"), [
    (401, {"error": {"message": "bad key", "code": "invalid_api_key"}}, AuthenticationError),
    (404, {"error": {"message": "The model `x` does not exist", "code": "model_not_found"}},
     NotFoundError),
    (429, {"error": {"message": "slow", "type": "rate_limit"}}, RateLimitError),
    (400, {"object": "error", "message": "This model's maximum context length is 8 tokens.",
           "type": "BadRequestError", "code": 400}, ContextWindowExceededError),
    (400, {"error": {"message": "blocked by the content management policy"}},
     ContentPolicyViolationError),
    (500, {"error": "engine crashed"}, ServerError),
    (503, "<html>unavailable</html>", ServiceUnavailableError),
])
def test_error_bodies_are_classified(status: int, body: Any, cls: type) -> None:
    native = native_error(status, body)
    assert classify(native.status, native.code) is cls
    assert native.message


# -- streams ------------------------------------------------------------------------


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None,
          usage: dict[str, Any] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"id": "c", "object": "chat.completion.chunk", "created": 1,
                            "model": "llama", "choices": []}
    if delta is not None:
        data["choices"] = [{"index": 0, "delta": delta, "finish_reason": finish}]
    if usage is not None:
        data["usage"] = usage
    check_chunk(data)
    return data


USAGE = {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}


def run(chunks: list[dict[str, Any]], *, end: bool = True) -> list[dict[str, Any]]:
    decoder = CODEC.decoder(call(stream=True))
    events = [e for c in chunks for e in decoder.feed(c)]
    if end:
        events += decoder.end()
    for event in events:
        EVENTS.validate_python(event)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    return events


def test_stream_text_reasoning_and_tool_call() -> None:
    events = run([
        chunk({"role": "assistant", "content": ""}),
        chunk({"reasoning_content": "hm"}), chunk({"content": "He"}), chunk({"content": "llo"}),
        chunk({"tool_calls": [{"index": 0, "id": "call_9", "type": "function",
                               "function": {"name": "f", "arguments": ""}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}),
        chunk({}, "tool_calls"), chunk(usage=USAGE)], end=False)
    types = [e["type"] for e in events]
    assert types[:2] == ["response.created", "response.in_progress"]
    assert "response.reasoning_summary_text.delta" in types
    assert types.count("response.output_text.delta") == 2
    assert "response.function_call_arguments.done" in types
    final = SdkResponse.model_validate(events[-1]["response"])
    assert events[-1]["type"] == "response.completed" and final.output_text == "Hello"
    assert [i.type for i in final.output] == ["reasoning", "message", "function_call"]
    assert final.usage is not None and final.usage.total_tokens == 7


def test_stream_length_is_incomplete_even_without_usage_chunk() -> None:
    events = run([chunk({"content": "a"}), chunk({}, "length")])
    assert events[-1]["type"] == "response.incomplete"
    assert events[-1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}


def test_text_after_a_tool_call_opens_a_new_message() -> None:
    events = run([chunk({"content": "a"}),
                  chunk({"tool_calls": [{"index": 0, "id": "c", "function": {"name": "f"}}]}),
                  chunk({"content": "b"}), chunk({}, "stop")])
    output = events[-1]["response"]["output"]
    assert [i["type"] for i in output] == ["message", "function_call", "message"]


def test_stream_error_chunk_becomes_an_error_event() -> None:
    events = run([chunk({"content": "a"}),
                  {"error": {"message": "boom", "code": "server_error"}}], end=False)
    assert events[-1]["type"] == "error" and events[-1]["code"] == "server_error"


def test_stream_cut_before_a_finish_reason_has_no_terminal_event() -> None:
    events = run([chunk({"content": "a"})])
    assert events[-1]["type"] == "response.output_text.delta"


def test_tool_settings_without_tools_are_not_sent() -> None:
    body = encode(input="x", tool_choice="none", parallel_tool_calls=True)
    assert "tool_choice" not in body and "parallel_tool_calls" not in body


def test_streamed_refusal() -> None:
    events = run([chunk({"role": "assistant", "content": ""}), chunk({"refusal": "No."}),
                  chunk({}, "stop")])
    assert "response.refusal.delta" in [e["type"] for e in events]
    [item] = events[-1]["response"]["output"]
    assert item["content"] == [{"type": "refusal", "refusal": "No."}]
