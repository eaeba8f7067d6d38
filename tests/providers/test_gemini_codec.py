"""The Gemini codec (providers/gemini_codec.py) from fixtures: requests, bodies, streams, errors.

Requests the codec builds are validated against google-genai's own pydantic
types, and every translated Response / stream event against the openai SDK's.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from google.genai import types as genai
from openai.types.responses import Response as SdkResponse
from openai.types.responses import ResponseStreamEvent
from pydantic import TypeAdapter

from providers.codec import Call
from providers.gemini_codec import GeminiCodec, call_id, retry_delay
from router.errors import InvalidRequestError, MalformedResponseError, UnsupportedParameterError

EVENTS: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)
CODEC = GeminiCodec()
RID = "resp_" + "ab" * 16


def call(stream: bool = False, drop: bool = False, **params: Any) -> Call:
    return Call(provider="gemini", model="gemini-2.5-flash", params=params, response_id=RID,
                created_at=1700000000, stream=stream, drop_params=drop)


def encode(**params: Any) -> dict[str, Any]:
    native = CODEC.encode(call(**params))
    for content in native.body["contents"]:
        genai.Content.model_validate(content)
    if "systemInstruction" in native.body:
        genai.Content.model_validate(native.body["systemInstruction"])
    for tool in native.body.get("tools", []):
        genai.Tool.model_validate(tool)
    if "toolConfig" in native.body:
        genai.ToolConfig.model_validate(native.body["toolConfig"])
    if "generationConfig" in native.body:
        genai.GenerationConfig.model_validate(native.body["generationConfig"])
    return native.body


def decoded(body: dict[str, Any], **params: Any) -> SdkResponse:
    data = CODEC.decode(genai.GenerateContentResponse.model_validate(body).model_dump(
        by_alias=True, exclude_none=True, mode="json"), call(**params))
    return SdkResponse.model_validate(data)


def reply(*parts: dict[str, Any], finish: str = "STOP", **extra: Any) -> dict[str, Any]:
    return {"candidates": [{"content": {"role": "model", "parts": list(parts)},
                            "finishReason": finish}],
            "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 4,
                              "thoughtsTokenCount": 6, "cachedContentTokenCount": 8},
            **extra}


def test_plain_text_request_and_path() -> None:
    native = CODEC.encode(call(input="hi", instructions="be brief", max_output_tokens=50,
                               temperature=0.2, top_p=0.9))
    assert native.path == "/gemini-2.5-flash:generateContent" and not native.query
    assert native.body == {
        "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
        "systemInstruction": {"parts": [{"text": "be brief"}]},
        "generationConfig": {"maxOutputTokens": 50, "temperature": 0.2, "topP": 0.9}}
    streamed = CODEC.encode(call(stream=True, input="hi"))
    assert streamed.path.endswith(":streamGenerateContent") and streamed.query == {"alt": "sse"}


def test_multi_turn_with_developer_message_and_images() -> None:
    body = encode(input=[
        {"role": "developer", "content": "rule"},
        {"role": "user", "content": [
            {"type": "input_text", "text": "see"},
            {"type": "input_image", "image_url": "data:image/png;base64,iVBO"},
            {"type": "input_image", "image_url": "https://x.test/cat.jpg"},
            {"type": "input_file", "file_data": "data:application/pdf;base64,JVBE",
             "filename": "a.pdf"}]},
        {"role": "assistant", "content": "a cat"},
        {"role": "user", "content": "thanks"}])
    assert body["systemInstruction"] == {"parts": [{"text": "rule"}]}
    assert [c["role"] for c in body["contents"]] == ["user", "model", "user"]
    parts = body["contents"][0]["parts"]
    assert parts[1] == {"inlineData": {"mimeType": "image/png", "data": "iVBO"}}
    assert parts[2] == {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://x.test/cat.jpg"}}
    assert parts[3]["inlineData"]["mimeType"] == "application/pdf"


def test_tool_call_round_trip_carries_the_thought_signature() -> None:
    first = decoded(reply({"functionCall": {"name": "get", "args": {"q": 1}},
                           "thoughtSignature": "c2ln"}))
    kinds = [item.type for item in first.output]
    assert kinds == ["reasoning", "function_call"]
    fc = first.output[1]
    assert fc.type == "function_call" and fc.call_id == call_id(call(), 1)
    assert json.loads(fc.arguments) == {"q": 1}
    replay = [item.model_dump(exclude_none=True) for item in first.output]
    body = encode(input=[{"role": "user", "content": "go"}, *replay,
                         {"type": "function_call_output", "call_id": fc.call_id,
                          "output": '{"temp": 3}'}],
                  tools=[{"type": "function", "name": "get", "parameters": {"type": "object"}}])
    model = body["contents"][1]
    assert model == {"role": "model", "parts": [
        {"functionCall": {"name": "get", "args": {"q": 1}}, "thoughtSignature": "c2ln"}]}
    assert body["contents"][2]["parts"] == [
        {"functionResponse": {"name": "get", "response": {"temp": 3}}}]
    assert body["tools"] == [{"functionDeclarations": [
        {"name": "get", "parametersJsonSchema": {"type": "object"}}]}]


def test_output_without_its_call_is_refused() -> None:
    with pytest.raises(InvalidRequestError, match=r"input\[0\].call_id"):
        encode(input=[{"type": "function_call_output", "call_id": "c1", "output": "x"}])


@pytest.mark.parametrize(("choice", "config"), [
    ("auto", {"mode": "AUTO"}), ("none", {"mode": "NONE"}), ("required", {"mode": "ANY"}),
    ({"type": "function", "name": "f"}, {"mode": "ANY", "allowedFunctionNames": ["f"]}),
])
def test_tool_choice(choice: Any, config: dict[str, Any]) -> None:
    body = encode(input="x", tool_choice=choice,
                  tools=[{"type": "function", "name": "f"}, {"type": "web_search"}])
    assert body["toolConfig"] == {"functionCallingConfig": config}
    assert body["tools"][1] == {"googleSearch": {}}


def test_structured_output_and_reasoning() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    body = encode(input="x", reasoning={"effort": "low", "summary": "auto"},
                  text={"format": {"type": "json_schema", "name": "s", "schema": schema}})
    assert body["generationConfig"] == {
        "responseMimeType": "application/json", "responseJsonSchema": schema,
        "thinkingConfig": {"thinkingBudget": 1024, "includeThoughts": True}}


@pytest.mark.parametrize(("param", "value"), [
    ("tools", [{"type": "file_search", "vector_store_ids": ["v"]}]),
    ("parallel_tool_calls", False), ("top_logprobs", 2), ("service_tier", "flex"),
])
def test_what_gemini_cannot_honour_is_refused_or_dropped(param: str, value: Any) -> None:
    with pytest.raises(UnsupportedParameterError) as info:
        CODEC.encode(call(input="x", **{param: value}))
    assert info.value.provider == "gemini" and param in info.value.param
    dropped = call(drop=True, input="x", **{param: value})
    CODEC.encode(dropped)
    assert dropped.dropped and dropped.dropped[0].startswith(param)


def test_reasoning_text_and_usage_decode() -> None:
    response = decoded(reply({"text": "hmm", "thought": True}, {"text": "Hello "},
                             {"text": "world"}))
    assert [i.type for i in response.output] == ["reasoning", "message"]
    assert response.output[0].summary[0].text == "hmm"
    assert response.output_text == "Hello world" and response.status == "completed"
    assert response.id == RID
    u = response.usage
    assert u is not None and (u.input_tokens, u.output_tokens) == (10, 10)
    assert u.input_tokens_details.cached_tokens == 8
    assert u.output_tokens_details.reasoning_tokens == 6


@pytest.mark.parametrize(("finish", "status", "reason"), [
    ("STOP", "completed", None), ("MAX_TOKENS", "incomplete", "max_output_tokens"),
    ("SAFETY", "incomplete", "content_filter"), ("RECITATION", "incomplete", "content_filter"),
    ("PROHIBITED_CONTENT", "incomplete", "content_filter"),
    ("MALFORMED_FUNCTION_CALL", "failed", None),
])
def test_finish_reasons(finish: str, status: str, reason: str | None) -> None:
    response = decoded(reply({"text": "x"}, finish=finish))
    assert response.status == status
    assert (response.incomplete_details.reason if response.incomplete_details else None) == reason
    if status == "failed":
        assert response.error is not None and finish in response.error.message


def test_blocked_prompt_is_incomplete_content_filter() -> None:
    response = decoded({"promptFeedback": {"blockReason": "SAFETY"}})
    assert response.status == "incomplete" and response.output == []
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "content_filter"


@pytest.mark.parametrize("body", [
    {"candidates": "nope"}, {"candidates": [{"content": {"parts": "x"}}]},
    {"candidates": [{"content": {"parts": [{"functionCall": {"name": 3}}]}}]},
])
def test_malformed_bodies(body: dict[str, Any]) -> None:
    with pytest.raises((MalformedResponseError, KeyError, TypeError)):
        CODEC.decode(body, call())


@pytest.mark.parametrize(("status", "rpc", "message", "mapped", "code"), [
    (429, "RESOURCE_EXHAUSTED", "Quota exceeded", 429, "rate_limit_exceeded"),
    (503, "UNAVAILABLE", "The model is overloaded", 503, "server_is_overloaded"),
    (400, "INVALID_ARGUMENT", "The input token count (2000000) exceeds the maximum number of "
     "tokens allowed (1048576).", 400, "context_length_exceeded"),
    (400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", 401,
     "invalid_api_key"),
    (401, "UNAUTHENTICATED", "bad token", 401, "invalid_api_key"),
    (403, "PERMISSION_DENIED", "denied", 403, "PERMISSION_DENIED"),
    (404, "NOT_FOUND", "models/x is not found", 404, "model_not_found"),
    (500, "INTERNAL", "oops", 500, "server_error"),
])
def test_errors(status: int, rpc: str, message: str, mapped: int, code: str) -> None:
    error = CODEC.error(status, {"error": {"code": status, "message": message, "status": rpc}})
    assert (error.status, error.code, error.message) == (mapped, code, message)
    listed = CODEC.error(status, [{"error": {"code": status, "message": message, "status": rpc}}])
    assert listed.code == code


def test_error_without_a_google_body_keeps_the_status() -> None:
    assert CODEC.error(502, "<html>bad gateway</html>").status == 502


def _stream(chunks: list[dict[str, Any]], **params: Any) -> list[dict[str, Any]]:
    decoder = CODEC.decoder(call(stream=True, **params))
    events = [e for chunk in chunks for e in decoder.feed(chunk)] + decoder.end()
    for event in events:
        EVENTS.validate_python(event)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    return events


def test_stream_text_reasoning_and_call() -> None:
    events = _stream([
        {"candidates": [{"content": {"parts": [{"text": "hm", "thought": True}]}}]},
        {"candidates": [{"content": {"parts": [{"text": "Hi "}]}}]},
        {"candidates": [{"content": {"parts": [{"text": "there"}]}}]},
        {"candidates": [{"content": {"parts": [
            {"functionCall": {"name": "f", "args": {}}, "thoughtSignature": "c2ln"}]},
            "finishReason": "STOP"}],
         "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2}}])
    final = SdkResponse.model_validate(events[-1]["response"])
    assert events[-1]["type"] == "response.completed"
    assert [i.type for i in final.output] == ["reasoning", "message", "reasoning",
                                              "function_call"]
    assert final.output_text == "Hi there"
    assert final.output[3].call_id == call_id(call(), 3)  # type: ignore[union-attr]
    assert final.output[2].encrypted_content == "c2ln"  # type: ignore[union-attr]
    assert final.usage is not None and final.usage.total_tokens == 5


def test_stream_max_tokens_is_incomplete() -> None:
    events = _stream([{"candidates": [{"content": {"parts": [{"text": "x"}]},
                                       "finishReason": "MAX_TOKENS"}]}])
    assert events[-1]["type"] == "response.incomplete"


def test_stream_error_chunk_and_cut_stream_end_with_error_events() -> None:
    events = _stream([{"candidates": [{"content": {"parts": [{"text": "x"}]}}]},
                      {"error": {"code": 429, "message": "slow", "status": "RESOURCE_EXHAUSTED"}}])
    assert events[-1]["type"] == "error" and events[-1]["code"] == "rate_limit_exceeded"
    cut = _stream([{"candidates": [{"content": {"parts": [{"text": "x"}]}}]}])
    assert cut[-1]["type"] == "error"


def test_stream_malformed_function_call_fails() -> None:
    events = _stream([{"candidates": [{"content": {"parts": [{"text": "x"}]},
                                       "finishReason": "MALFORMED_FUNCTION_CALL"}]}])
    assert events[-1]["type"] == "response.failed"


def test_retry_delay_from_retry_info() -> None:
    detail = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"}
    assert retry_delay({"error": {"status": "RESOURCE_EXHAUSTED", "details": [
        {"@type": "type.googleapis.com/google.rpc.QuotaFailure"}, detail]}}) == 37.0
    assert retry_delay([{"error": {"details": [detail]}}]) == 37.0
    assert retry_delay({"error": {"details": [{"retryDelay": "soon"}]}}) is None
    assert retry_delay("text") is None
