"""The Bedrock Converse codec from fixtures: requests, answers, streams, errors.

Every request the codec builds is validated against botocore's
``bedrock-runtime`` service model (the shapes AWS publishes), every
Response against the ``openai`` SDK's ``Response`` and every stream event
against its ``ResponseStreamEvent``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.session import Session
from botocore.validate import ParamValidator
from openai.types.responses import Response as SdkResponse
from openai.types.responses import ResponseStreamEvent
from pydantic import TypeAdapter

from providers.bedrock_codec import NOVA_EFFORTS, THINKING_BUDGETS, BedrockCodec, model_id
from providers.codec import Call, NativeRequest
from router.errors import (
    AuthenticationError,
    BadRequestError,
    ContextWindowExceededError,
    InvalidRequestError,
    MalformedResponseError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    ServiceUnavailableError,
    TimeoutError,
    UnsupportedParameterError,
    classify,
    error_from_status,
)

CLAUDE = "us.anthropic.claude-sonnet-4-20250514-v1:0"
NOVA = "amazon.nova-pro-v1:0"
PNG = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9aw"
       "AAAABJRU5ErkJggg==")
EVENTS: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)
CODEC = BedrockCodec()
_MODEL = Session().get_service_model("bedrock-runtime")


def call(model: str = CLAUDE, *, stream: bool = False, drop: bool = False,
         **params: Any) -> Call:
    params.setdefault("input", "hi")
    return Call(provider="bedrock", model=model, params=params, response_id="resp_" + "ab" * 16,
                created_at=1_700_000_000, stream=stream, drop_params=drop)


def encode(c: Call) -> dict[str, Any]:
    """The request body, after checking it against botocore's service model."""
    native = CODEC.encode(c)
    op = "ConverseStream" if c.stream else "Converse"
    shape = _MODEL.operation_model(op).input_shape
    assert shape is not None
    report = ParamValidator().validate({"modelId": model_id(c.model), **native.body}, shape)
    assert not report.has_errors(), report.generate_report()
    return native.body


def answer(*content: dict[str, Any], stop: str = "end_turn", **usage: int) -> dict[str, Any]:
    used = {"inputTokens": 10, "outputTokens": 5, "totalTokens": 15, **usage}
    return {"output": {"message": {"role": "assistant", "content": list(content)}},
            "stopReason": stop, "usage": used, "metrics": {"latencyMs": 12}}


def decoded(body: dict[str, Any], c: Call | None = None) -> SdkResponse:
    return SdkResponse.model_validate(CODEC.decode(body, c or call()))


def stream(events: list[dict[str, Any]], c: Call | None = None) -> list[dict[str, Any]]:
    decoder = CODEC.decoder(c or call(stream=True))
    out = [e for event in events for e in decoder.feed(event)] + decoder.end()
    for event in out:
        EVENTS.validate_python(event)
    assert [e["sequence_number"] for e in out] == list(range(len(out)))
    return out


# -- requests --------------------------------------------------------------------------


def test_plain_text_and_paths() -> None:
    native = CODEC.encode(call(input="Hello"))
    assert native == NativeRequest(
        f"/model/{CLAUDE}/converse",
        {"messages": [{"role": "user", "content": [{"text": "Hello"}]}]},
        headers={"accept": "application/json"})
    streamed = CODEC.encode(call(stream=True))
    assert streamed.path.endswith("/converse-stream")
    assert streamed.headers["accept"] == "application/vnd.amazon.eventstream"


def test_model_ids_arns_and_litellm_routes() -> None:
    arn = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc"
    assert CODEC.encode(call(arn)).path == (
        "/model/arn:aws:bedrock:us-east-1:123456789012:application-inference-profile%2Fabc"
        "/converse")
    assert CODEC.encode(call(f"converse/{CLAUDE}")).path == f"/model/{CLAUDE}/converse"
    assert model_id(f"invoke/{NOVA}") == NOVA


def test_multi_turn_system_turns_and_merged_roles() -> None:
    body = encode(call(instructions="Be brief.", input=[
        {"role": "developer", "content": "Use metric units."},
        {"role": "user", "content": "Hi"},
        {"role": "user", "content": [{"type": "input_text", "text": "there"}]},
        {"type": "message", "role": "assistant",
         "content": [{"type": "output_text", "text": "Hello!"}]},
        {"role": "user", "content": "How far is the moon?"},
    ]))
    assert body["system"] == [{"text": "Be brief."}, {"text": "Use metric units."}]
    assert body["messages"] == [
        {"role": "user", "content": [{"text": "Hi"}, {"text": "there"}]},
        {"role": "assistant", "content": [{"text": "Hello!"}]},
        {"role": "user", "content": [{"text": "How far is the moon?"}]},
    ]


def test_tool_call_round_trip_request() -> None:
    tool = {"type": "function", "name": "weather", "description": "Weather now",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}
    body = encode(call(tools=[tool], tool_choice="required", input=[
        {"role": "user", "content": "Weather in Paris?"},
        {"type": "function_call", "call_id": "tooluse_1", "name": "weather",
         "arguments": '{"city": "Paris"}'},
        {"type": "function_call_output", "call_id": "tooluse_1", "output": "18C, sunny"},
    ]))
    assert body["toolConfig"] == {
        "tools": [{"toolSpec": {"name": "weather", "description": "Weather now",
                                "inputSchema": {"json": tool["parameters"]}}}],
        "toolChoice": {"any": {}}}
    assert body["messages"][1:] == [
        {"role": "assistant", "content": [{"toolUse": {
            "toolUseId": "tooluse_1", "name": "weather", "input": {"city": "Paris"}}}]},
        {"role": "user", "content": [{"toolResult": {
            "toolUseId": "tooluse_1", "content": [{"text": "18C, sunny"}]}}]},
    ]


@pytest.mark.parametrize(("choice", "native"), [
    ("auto", {"auto": {}}), (None, {"auto": {}}), ("required", {"any": {}}),
    ({"type": "function", "name": "f"}, {"tool": {"name": "f"}}),
])
def test_tool_choice(choice: Any, native: dict[str, Any]) -> None:
    tools = [{"type": "function", "name": "f"}]
    body = encode(call(tools=tools, tool_choice=choice))
    assert body["toolConfig"]["toolChoice"] == native
    assert body["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"] == {
        "json": {"type": "object", "properties": {}}}


def test_tool_choice_none_leaves_tools_out_unless_the_conversation_used_them() -> None:
    tools = [{"type": "function", "name": "f"}]
    assert "toolConfig" not in encode(call(tools=tools, tool_choice="none"))
    history = [{"role": "user", "content": "x"},
               {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"},
               {"type": "function_call_output", "call_id": "c", "output": "y"}]
    with pytest.raises(UnsupportedParameterError, match="tool_choice"):
        CODEC.encode(call(tools=tools, tool_choice="none", input=history))


def test_structured_output() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    body = encode(call(text={"format": {"type": "json_schema", "name": "thing",
                                        "schema": schema, "strict": True}}))
    fmt = body["outputConfig"]["textFormat"]
    assert fmt["type"] == "json_schema"
    assert fmt["structure"]["jsonSchema"]["name"] == "thing"
    assert json.loads(fmt["structure"]["jsonSchema"]["schema"]) == schema
    assert "outputConfig" not in encode(call(text={"format": {"type": "text"}}))
    with pytest.raises(UnsupportedParameterError, match=r"text\.format"):
        CODEC.encode(call(text={"format": {"type": "json_object"}}))


def test_images_and_documents() -> None:
    body = encode(call(input=[{"role": "user", "content": [
        {"type": "input_text", "text": "What is this?"},
        {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}"},
        {"type": "input_image", "image_url": "s3://my-bucket/cat.JPG"},
        {"type": "input_file", "filename": "Q3 report (final).pdf",
         "file_data": "data:application/pdf;base64,JVBERi0xLjQK"},
    ]}]))
    content = body["messages"][0]["content"]
    assert content[1] == {"image": {"format": "png", "source": {"bytes": PNG}}}
    assert content[2] == {"image": {"format": "jpeg",
                                    "source": {"s3Location": {"uri": "s3://my-bucket/cat.JPG"}}}}
    assert content[3] == {"document": {"format": "pdf", "name": "Q3 report (final)",
                                       "source": {"bytes": "JVBERi0xLjQK"}}}


def test_web_image_urls_are_refused_or_dropped() -> None:
    parts = [{"type": "input_text", "text": "see"},
             {"type": "input_image", "image_url": "https://example.com/cat.png"}]
    with pytest.raises(UnsupportedParameterError) as info:
        CODEC.encode(call(input=[{"role": "user", "content": parts}]))
    assert info.value.param == "input[0].content[1].image_url"
    assert "data: URL" in info.value.message and info.value.provider == "bedrock"
    c = call(drop=True, input=[{"role": "user", "content": parts}])
    assert encode(c)["messages"][0]["content"] == [{"text": "see"}]
    assert c.dropped == ["input[0].content[1].image_url"]


@pytest.mark.parametrize(("params", "where"), [
    ({"temperature": 1.5}, "temperature"), ({"top_p": -0.1}, "top_p"),
    ({"include": "reasoning.encrypted_content"}, "include"),
])
def test_values_bedrock_cannot_take_are_invalid(params: dict[str, Any], where: str) -> None:
    with pytest.raises(InvalidRequestError, match=f"^{where}: "):
        CODEC.encode(call(drop=True, **params))


def test_bad_media_is_an_invalid_request() -> None:
    with pytest.raises(InvalidRequestError, match=r"input\[0\]\.content\[0\]\.image_url"):
        CODEC.encode(call(input=[{"role": "user", "content": [
            {"type": "input_image", "image_url": "data:image/tiff;base64,AAAA"}]}]))
    with pytest.raises(InvalidRequestError, match="document format"):
        CODEC.encode(call(input=[{"role": "user", "content": [
            {"type": "input_file", "filename": "x.exe", "file_data": "AAAA"}]}]))
    with pytest.raises(InvalidRequestError, match=r"input\[0\]\.arguments"):
        CODEC.encode(call(input=[{"type": "function_call", "call_id": "c", "name": "f",
                                  "arguments": "{nope"}]))


@pytest.mark.parametrize("effort", ["low", "medium", "high"])
def test_reasoning_effort_is_a_claude_thinking_budget(effort: str) -> None:
    body = encode(call(reasoning={"effort": effort, "summary": "auto"}))
    budget = THINKING_BUDGETS[effort]
    assert body["additionalModelRequestFields"] == {
        "thinking": {"type": "enabled", "budget_tokens": budget}}
    assert body["inferenceConfig"]["maxTokens"] > budget
    capped = encode(call(reasoning={"effort": "high"}, max_output_tokens=3000))
    assert capped["additionalModelRequestFields"]["thinking"]["budget_tokens"] == 2999
    assert "additionalModelRequestFields" not in encode(call(reasoning={"effort": "none"}))


@pytest.mark.parametrize(("effort", "nova"), list(NOVA_EFFORTS.items()))
def test_reasoning_effort_on_nova_2_is_its_reasoning_effort(effort: str, nova: str) -> None:
    for model in ("us.amazon.nova-2-lite-v1:0", "global.amazon.nova-2-lite-v1:0"):
        body = encode(call(model, reasoning={"effort": effort}, max_output_tokens=500))
        assert body["additionalModelRequestFields"] == {
            "reasoningConfig": {"type": "enabled", "maxReasoningEffort": nova}}
        assert body["inferenceConfig"] == {"maxTokens": 500}  # no budget to fit
    assert "additionalModelRequestFields" not in encode(
        call("us.amazon.nova-2-lite-v1:0", reasoning={"effort": "none"}))


def test_reasoning_effort_elsewhere_is_refused() -> None:
    with pytest.raises(UnsupportedParameterError,
                       match=r"reasoning\.effort: bedrock thinks only on Claude 3\.7 .* Nova 2"):
        CODEC.encode(call(NOVA, reasoning={"effort": "low"}))
    with pytest.raises(InvalidRequestError, match="max_output_tokens"):
        CODEC.encode(call(reasoning={"effort": "low"}, max_output_tokens=500))
    old_claude = "anthropic.claude-3-5-sonnet-20240620-v1:0"
    assert "additionalModelRequestFields" not in encode(
        call(old_claude, drop=True, reasoning={"effort": "low"}))


def test_reasoning_items_are_replayed_with_their_signature() -> None:
    body = encode(call(input=[
        {"role": "user", "content": "q"},
        {"type": "reasoning", "id": "rs_1", "encrypted_content": "SIG",
         "summary": [{"type": "summary_text", "text": "Let me think."}]},
        {"type": "reasoning", "id": "rs_2", "encrypted_content": "bedrock-redacted:UkVE",
         "summary": []},
        {"type": "reasoning", "id": "rs_3", "summary": [{"type": "summary_text",
                                                         "text": "unsigned"}]},
        {"role": "assistant", "content": "A."},
    ]))
    assert body["messages"][1]["content"] == [
        {"reasoningContent": {"reasoningText": {"text": "Let me think.", "signature": "SIG"}}},
        {"reasoningContent": {"redactedContent": "UkVE"}},
        {"text": "A."},
    ]


def test_inference_settings_and_metadata() -> None:
    body = encode(call(max_output_tokens=100, temperature=0.2, top_p=0.9,
                       metadata={"team": "search"}, user="u-1", service_tier="flex",
                       store=False, include=["reasoning.encrypted_content"],
                       truncation="disabled", parallel_tool_calls=True,
                       prompt_cache_key="k"))
    assert body["inferenceConfig"] == {"maxTokens": 100, "temperature": 0.2, "topP": 0.9}
    assert body["requestMetadata"] == {"team": "search", "user": "u-1"}
    assert body["serviceTier"] == {"type": "flex"}


@pytest.mark.parametrize(("params", "param"), [
    ({"parallel_tool_calls": False}, "parallel_tool_calls"),
    ({"tools": [{"type": "web_search"}]}, "tools[0]"),
    ({"truncation": "auto"}, "truncation"),
    ({"include": ["message.output_text.logprobs"]}, "include"),
    ({"top_logprobs": 3}, "top_logprobs"),
    ({"background": True}, "background"),
    ({"service_tier": "scale"}, "service_tier"),
    ({"text": {"verbosity": "low"}}, "text.verbosity"),
    ({"input": [{"type": "item_reference", "id": "x"}]}, "input[0]"),
    ({"input": [{"role": "user", "content": [{"type": "input_audio"}]}]},
     "input[0].content[0]"),
])
def test_what_cannot_be_honoured_is_refused(params: dict[str, Any], param: str) -> None:
    with pytest.raises(UnsupportedParameterError) as info:
        CODEC.encode(call(**params))
    assert info.value.param == param
    assert info.value.message.startswith(f"{param}: bedrock ")
    dropping = call(drop=True, **params)
    CODEC.encode(dropping)
    assert dropping.dropped == [param]


# -- answers ---------------------------------------------------------------------------


def test_plain_answer() -> None:
    response = decoded(answer({"text": "Hello!"}))
    assert response.output_text == "Hello!" and response.status == "completed"
    assert response.id == "resp_" + "ab" * 16 and response.model == CLAUDE
    assert response.usage is not None and response.usage.input_tokens == 10


def test_tool_call_answer_and_its_reasoning() -> None:
    response = decoded(answer(
        {"reasoningContent": {"reasoningText": {"text": "Need weather.", "signature": "S"}}},
        {"text": "Let me check."},
        {"toolUse": {"toolUseId": "tooluse_9", "name": "weather", "input": {"city": "Oslo"}}},
        stop="tool_use"))
    kinds = [item.type for item in response.output]
    assert kinds == ["reasoning", "message", "function_call"]
    reasoning, _, fc = response.output
    assert reasoning.summary[0].text == "Need weather."  # type: ignore[union-attr]
    assert reasoning.encrypted_content == "S"  # type: ignore[union-attr]
    assert fc.call_id == "tooluse_9" and json.loads(fc.arguments) == {"city": "Oslo"}  # type: ignore[union-attr]
    assert len({item.id for item in response.output}) == 3


def test_redacted_reasoning_round_trips() -> None:
    response = decoded(answer({"reasoningContent": {"redactedContent": "UkVE"}},
                              {"text": "ok"}))
    item = response.output[0].model_dump()
    again = encode(call(input=[{"role": "user", "content": "q"}, item]))
    assert again["messages"][1]["content"] == [{"reasoningContent": {"redactedContent": "UkVE"}}]


def test_usage_counts_cache_reads_and_writes_as_input() -> None:
    response = decoded(answer({"text": "x"}, cacheReadInputTokens=100,
                              cacheWriteInputTokens=20))
    assert response.usage is not None
    assert response.usage.input_tokens == 130
    assert response.usage.input_tokens_details.cached_tokens == 100
    assert response.usage.total_tokens == 135


@pytest.mark.parametrize(("stop", "status", "reason"), [
    ("end_turn", "completed", None), ("tool_use", "completed", None),
    ("stop_sequence", "completed", None),
    ("max_tokens", "incomplete", "max_output_tokens"),
    ("model_context_window_exceeded", "incomplete", "max_output_tokens"),
    ("guardrail_intervened", "incomplete", "content_filter"),
    ("content_filtered", "incomplete", "content_filter"),
])
def test_stop_reasons(stop: str, status: str, reason: str | None) -> None:
    response = decoded(answer({"text": "x"}, stop=stop))
    assert response.status == status
    details = response.incomplete_details
    assert (details.reason if details else None) == reason


@pytest.mark.parametrize("stop", ["malformed_model_output", "malformed_tool_use"])
def test_malformed_model_output_is_a_server_error(stop: str) -> None:
    with pytest.raises(ServerError, match=stop):
        CODEC.decode(answer({"text": "x"}, stop=stop), call())


@pytest.mark.parametrize("body", [
    {"output": {}, "stopReason": "end_turn", "usage": {}},
    {"output": {"message": {"content": [{"toolUse": {"name": "f"}}]}},
     "stopReason": "tool_use", "usage": {"inputTokens": 1, "outputTokens": 1}},
    {"output": {"message": {"content": []}}, "stopReason": "end_turn"},
    {"output": {"message": {"content": "text"}}, "stopReason": "end_turn",
     "usage": {"inputTokens": 1, "outputTokens": 1}},
])
def test_malformed_bodies_raise(body: dict[str, Any]) -> None:
    with pytest.raises((KeyError, TypeError, MalformedResponseError)):
        CODEC.decode(body, call())
    with pytest.raises(MalformedResponseError, match="stopReason"):
        CODEC.decode(answer({"text": "x"}, stop="bored"), call())


# -- errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "status", "message", "cls"), [
    ("ThrottlingException", 429, "Too many requests, please wait.", RateLimitError),
    ("ModelNotReadyException", 429, "Model is loading.", ServiceUnavailableError),
    ("ServiceUnavailableException", 503, "Service unavailable.", ServiceUnavailableError),
    ("InternalServerException", 500, "Internal error.", ServerError),
    ("ModelErrorException", 424, "The model failed.", ServerError),
    ("ModelTimeoutException", 408, "Model timed out.", TimeoutError),
    ("AccessDeniedException", 403, "You don't have access to the model.",
     PermissionDeniedError),
    ("ResourceNotFoundException", 404, "Could not resolve the foundation model.",
     NotFoundError),
    ("ValidationException", 400, "Input is too long for requested model.",
     ContextWindowExceededError),
    ("ValidationException", 400, "prompt is too long: 250000 tokens > 200000 maximum",
     ContextWindowExceededError),
    ("ValidationException", 400, "A conversation must start with a user message.",
     BadRequestError),
    ("UnrecognizedClientException", 403, "The security token is invalid.",
     AuthenticationError),
    ("InvalidSignatureException", 403, "Signature expired.", AuthenticationError),
    ("ExpiredTokenException", 403, "The security token included in the request is expired",
     AuthenticationError),
])
def test_error_table(kind: str, status: int, message: str, cls: type[Exception]) -> None:
    for body in ({"message": message, "__type": f"{kind}:http://internal.amazon.com/coral/"},
                 {"Message": message, "__type": f"com.amazon.coral#{kind}"}):
        native = CODEC.error(status, body)
        error = error_from_status(native.status, native.body(), {})
        assert type(error) is cls and error.message == message


def test_unknown_error_keeps_its_status() -> None:
    native = CODEC.error(502, "<html>bad gateway</html>")
    assert native.status == 502 and "bad gateway" in native.message


# -- streams ---------------------------------------------------------------------------


def _delta(index: int, delta: dict[str, Any]) -> dict[str, Any]:
    return {"contentBlockDelta": {"contentBlockIndex": index, "delta": delta, "p": "abc"}}


FULL = [
    {"messageStart": {"role": "assistant", "p": "a"}},
    _delta(0, {"reasoningContent": {"text": "Need "}}),
    _delta(0, {"reasoningContent": {"text": "weather."}}),
    _delta(0, {"reasoningContent": {"signature": "SIG"}}),
    {"contentBlockStop": {"contentBlockIndex": 0}},
    _delta(1, {"text": "Checking"}),
    _delta(1, {"text": " now."}),
    {"contentBlockStop": {"contentBlockIndex": 1}},
    {"contentBlockStart": {"contentBlockIndex": 2, "start": {"toolUse": {
        "toolUseId": "tooluse_1", "name": "weather"}}}},
    _delta(2, {"toolUse": {"input": '{"city":'}}),
    _delta(2, {"toolUse": {"input": ' "Oslo"}'}}),
    {"contentBlockStop": {"contentBlockIndex": 2}},
    {"messageStop": {"stopReason": "tool_use"}},
    {"metadata": {"usage": {"inputTokens": 7, "outputTokens": 9, "totalTokens": 16,
                            "cacheReadInputTokens": 3},
                  "metrics": {"latencyMs": 40}}},
]


def test_stream_of_reasoning_text_and_a_tool_call() -> None:
    out = stream(FULL)
    kinds = [e["type"] for e in out]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert kinds.count("response.output_item.added") == 3
    assert "response.reasoning_summary_text.delta" in kinds
    assert "response.function_call_arguments.delta" in kinds
    final = SdkResponse.model_validate(out[-1]["response"])
    assert final.output_text == "Checking now."
    assert [o.type for o in final.output] == ["reasoning", "message", "function_call"]
    assert final.output[0].encrypted_content == "SIG"  # type: ignore[union-attr]
    assert json.loads(final.output[2].arguments) == {"city": "Oslo"}  # type: ignore[union-attr]
    assert final.usage is not None and final.usage.input_tokens == 10
    plain = decoded(answer(
        {"reasoningContent": {"reasoningText": {"text": "Need weather.", "signature": "SIG"}}},
        {"text": "Checking now."},
        {"toolUse": {"toolUseId": "tooluse_1", "name": "weather", "input": {"city": "Oslo"}}},
        stop="tool_use"))
    assert [o.id for o in final.output] == [o.id for o in plain.output]


@pytest.mark.parametrize(("stop", "kind", "reason"), [
    ("max_tokens", "response.incomplete", "max_output_tokens"),
    ("content_filtered", "response.incomplete", "content_filter"),
    ("guardrail_intervened", "response.incomplete", "content_filter"),
    ("end_turn", "response.completed", None),
    ("malformed_model_output", "response.failed", None),
])
def test_stream_stop_reasons(stop: str, kind: str, reason: str | None) -> None:
    out = stream([{"messageStart": {"role": "assistant"}}, _delta(0, {"text": "a"}),
                  {"contentBlockStop": {"contentBlockIndex": 0}},
                  {"messageStop": {"stopReason": stop}},
                  {"metadata": {"usage": {"inputTokens": 1, "outputTokens": 1,
                                          "totalTokens": 2}, "metrics": {"latencyMs": 1}}}])
    assert out[-1]["type"] == kind
    details = out[-1]["response"]["incomplete_details"]
    assert (details or {}).get("reason") == reason


@pytest.mark.parametrize(("frame", "code"), [
    ({"throttlingException": {"message": "slow down"}}, "rate_limit_exceeded"),
    ({"serviceUnavailableException": {"message": "busy"}}, "server_is_overloaded"),
    ({"internalServerException": {"message": "oops"}}, "server_error"),
    ({"modelStreamErrorException": {"message": "model died", "originalStatusCode": 500}},
     "server_error"),
    ({"validationException": {"message": "Input is too long for requested model."}},
     "context_length_exceeded"),
    ({":error": {"code": "InternalFailure", "message": "?"}}, None),
])
def test_stream_exception_frames_are_error_events(frame: dict[str, Any],
                                                  code: str | None) -> None:
    out = stream([{"messageStart": {"role": "assistant"}}, _delta(0, {"text": "a"}), frame])
    assert out[-1]["type"] == "error" and out[-1]["code"] == code
    assert out[-1]["message"]
    first = stream([frame])
    assert [e["type"] for e in first] == ["error"]  # nothing reached the caller: retryable
    assert issubclass(classify(None, code), ServerError) == (code in (
        None, "server_error", "server_is_overloaded"))


def test_stream_cut_before_message_stop_is_an_error_and_after_it_a_finish() -> None:
    cut = stream(FULL[:6])
    assert cut[-1]["type"] == "error" and "before its messageStop" in cut[-1]["message"]
    no_usage = stream(FULL[:-1])
    assert no_usage[-1]["type"] == "response.completed"
    assert no_usage[-1]["response"]["usage"] is None


def test_malformed_stream_events_raise() -> None:
    decoder = CODEC.decoder(call(stream=True))
    decoder.feed({"messageStart": {"role": "assistant"}})
    with pytest.raises(KeyError):
        decoder.feed({"contentBlockDelta": {"delta": {"text": "x"}}})
    with pytest.raises(KeyError):
        CODEC.decoder(call(stream=True)).feed({"contentBlockDelta": {"contentBlockIndex": 0,
                                                                     "delta": {"toolUse": {
                                                                         "input": "{"}}}})
