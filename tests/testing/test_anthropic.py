"""The fake Anthropic Messages API: strict like the real one, answers shaped like the real one.

Answers and stream events are validated with the ``anthropic`` package's own
response types (``Message``, ``RawMessageStreamEvent``, ``ErrorResponse``),
so what the codec is tested against has Anthropic's shapes.
"""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from anthropic.types import Message, RawMessageStreamEvent
from anthropic.types.shared.error_response import ErrorResponse
from pydantic import TypeAdapter

from router.router import Router
from router.testing.anthropic import AnthropicProcess, AnthropicUpstream, example

KEY = "k-test"
HEADERS = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
STREAM_EVENTS: TypeAdapter[Any] = TypeAdapter(RawMessageStreamEvent)
TOOL = {"name": "get_weather", "description": "Weather",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                         "required": ["city"]}}


def body(**extra: Any) -> dict[str, Any]:
    return {"model": "claude-sonnet-4-5", "max_tokens": 100,
            "messages": [{"role": "user", "content": "Hello there"}], **extra}


@pytest.fixture
async def client() -> AsyncIterator[tuple[AnthropicUpstream, httpx.AsyncClient]]:
    async with AnthropicUpstream("fake", api_key=KEY) as up, \
            httpx.AsyncClient(base_url=up.url, headers=HEADERS) as c:
        yield up, c


def sse_events(text: str) -> list[dict[str, Any]]:
    events = []
    for frame in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in frame.splitlines())
        data = json.loads(lines["data"])
        assert lines["event"] == data["type"]
        events.append(data)
    return events


@pytest.mark.parametrize(("extra", "types"), [
    ({}, ["text"]),
    ({"thinking": {"type": "enabled", "budget_tokens": 1024}, "max_tokens": 2000},
     ["thinking", "text"]),
    ({"tools": [TOOL], "tool_choice": {"type": "any"}}, ["tool_use"]),
    ({"tools": [{"type": "web_search_20250305", "name": "web_search"}],
      "messages": [{"role": "user", "content": "search the news"}]},
     ["server_tool_use", "web_search_tool_result", "text"]),
])
async def test_answers_are_anthropic_messages(
    client: tuple[AnthropicUpstream, httpx.AsyncClient], extra: dict[str, Any],
    types: list[str]
) -> None:
    _, c = client
    answer = await c.post("/v1/messages", json=body(**extra))
    assert answer.status_code == 200, answer.text
    message = Message.model_validate(answer.json())
    assert [b.type for b in message.content] == types
    streamed = await c.post("/v1/messages", json=body(stream=True, **extra))
    events = sse_events(streamed.text)
    for event in events:
        if event["type"] != "ping":  # the SDK skips pings; its types have none
            STREAM_EVENTS.validate_python(event)
    kinds = [e["type"] for e in events]
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]
    assert "ping" in kinds and kinds.count("content_block_start") == len(types)


async def test_scripted_stop_reasons_and_cache_usage(
    client: tuple[AnthropicUpstream, httpx.AsyncClient]
) -> None:
    _, c = client
    cut = (await c.post("/v1/messages", json=body(max_tokens=1))).json()
    assert cut["stop_reason"] == "max_tokens" and cut["content"][0]["text"] == "[fake]"
    refused = (await c.post("/v1/messages", json=body(
        messages=[{"role": "user", "content": "please refuse"}]))).json()
    assert refused["stop_reason"] == "refusal"
    cached = body(cache_control={"type": "ephemeral"}, system="You are terse and helpful.")
    first = (await c.post("/v1/messages", json=cached)).json()["usage"]
    second = (await c.post("/v1/messages", json=cached)).json()["usage"]
    assert first["cache_creation_input_tokens"] > 0 and first["cache_read_input_tokens"] == 0
    assert second["cache_read_input_tokens"] == first["cache_creation_input_tokens"]


@pytest.mark.parametrize(("headers", "status", "kind"), [
    ({"x-api-key": "nope"}, 401, "authentication_error"),
    ({"anthropic-version": ""}, 400, "invalid_request_error"),
])
async def test_auth_and_version_are_checked(
    client: tuple[AnthropicUpstream, httpx.AsyncClient], headers: dict[str, str], status: int,
    kind: str
) -> None:
    _, c = client
    answer = await c.post("/v1/messages", json=body(), headers=headers)
    assert answer.status_code == status
    assert ErrorResponse.model_validate(answer.json()).error.type == kind


@pytest.mark.parametrize(("bad", "named"), [
    ({"temprature": 1}, "temprature: Extra inputs are not permitted"),
    ({"max_tokens": None}, "max_tokens"),
    ({"messages": [{"role": "user", "content": [{"type": "text", "txt": "x"}]}]},
     "messages.0.content.0.txt"),
    ({"messages": [{"role": "system", "content": "x"}]}, "messages.0.role"),
    ({"messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/tiff",
                                     "data": "AA"}}]}]}, "media_type"),
    ({"messages": [{"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_x", "content": "1"}]}]},
     "unexpected `tool_use_id`"),
    ({"messages": [
        {"role": "user", "content": "x"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1",
                                           "name": "get_weather", "input": {}}]}],
      "tools": [TOOL]}, "without `tool_result`"),
    ({"messages": [{"role": "user", "content": [{"type": "thinking", "thinking": "x",
                                                 "signature": "s"}]}]}, "user message"),
    ({"thinking": {"type": "enabled", "budget_tokens": 2048}}, "budget_tokens"),
    ({"thinking": {"type": "enabled", "budget_tokens": 1024}, "max_tokens": 2000,
      "temperature": 0.5}, "temperature may only be set to 1"),
    ({"thinking": {"type": "enabled", "budget_tokens": 1024}, "max_tokens": 2000,
      "tools": [TOOL], "tool_choice": {"type": "any"}}, "forces tool use"),
    ({"tools": [TOOL], "tool_choice": {"type": "tool", "name": "other"}}, "tool_choice.name"),
    ({"tools": [{**TOOL, "parameters": {}}]}, "tools.0.parameters"),
    ({"tool_choice": {"type": "any"}}, "only be specified while providing tools"),
    ({"metadata": {"user_id": "u", "team": "x"}}, "metadata.team"),
    ({"output_config": {"format": {"type": "json_object"}}}, "output_config.format"),
])
async def test_invalid_requests_are_refused_naming_the_field(
    client: tuple[AnthropicUpstream, httpx.AsyncClient], bad: dict[str, Any], named: str
) -> None:
    _, c = client
    answer = await c.post("/v1/messages", json={**body(), **bad})
    assert answer.status_code == 400
    error = ErrorResponse.model_validate(answer.json()).error
    assert error.type == "invalid_request_error" and named in error.message


async def test_faults(client: tuple[AnthropicUpstream, httpx.AsyncClient]) -> None:
    up, c = client
    up.faults.fail("rate_limit_error", retry_after=3)
    up.faults.fail("overloaded_error")
    limited = await c.post("/v1/messages", json=body())
    assert limited.status_code == 429 and limited.headers["retry-after"] == "3"
    overloaded = await c.post("/v1/messages", json=body())
    assert overloaded.status_code == 529
    assert overloaded.json()["error"] == {"type": "overloaded_error", "message": "Overloaded"}
    up.faults.mid_stream("api_error", after=2)
    events = sse_events((await c.post("/v1/messages", json=body(stream=True))).text)
    assert [e["type"] for e in events] == ["message_start", "content_block_start", "error"]
    up.faults.cut_stream(after=2)
    with pytest.raises(httpx.HTTPError):
        await c.post("/v1/messages", json=body(stream=True))
    assert (await c.post("/v1/messages", json=body())).status_code == 200
    assert len(up.requests) == 5 and up.requests[0].headers["x-api-key"] == KEY


def test_example_values_follow_the_schema() -> None:
    schema = {"type": "object", "properties": {
        "n": {"type": "integer"}, "tags": {"type": "array", "items": {"type": "string"}},
        "kind": {"enum": ["a", "b"]}, "ok": {"type": "boolean"}}}
    assert example(schema) == {"n": 1, "tags": ["x"], "kind": "a", "ok": True}


def test_own_process_serves_the_sync_router() -> None:
    with AnthropicProcess("proc", api_key=KEY) as proc:
        entry = {"model_name": "claude", "litellm_params": {
            "model": "anthropic/claude-sonnet-4-5", "api_base": proc.url, "api_key": KEY}}
        with Router(model_list=[entry], rng=random.Random(1)) as r:
            response = r.responses(model="claude", input="from a thread")
            events = list(r.responses(model="claude", input="streamed", stream=True))
    assert response.output_text == "[proc] from a thread"
    assert events[-1].type == "response.completed"


async def test_stream_chunks_sets_the_number_of_text_deltas() -> None:
    async with AnthropicUpstream("fake", api_key=KEY, stream_chunks=7) as up, \
            httpx.AsyncClient(base_url=up.url, headers=HEADERS) as c:
        answer = await c.post("/v1/messages", json=body(stream=True, messages=[
            {"role": "user", "content": "a fairly long sentence to cut into many small pieces"}]))
    deltas = [e for e in sse_events(answer.text) if e["type"] == "content_block_delta"]
    assert len(deltas) == 7
