"""Responses objects and events built for translated providers validate as the SDK's types."""

from __future__ import annotations

from typing import Any

import pytest
from openai.types.responses import Response as SdkResponse
from openai.types.responses import ResponseStreamEvent
from pydantic import TypeAdapter

from providers.codec import Call
from providers.response_ids import ResponseIds
from providers.responses_input import function_tools, input_items
from providers.responses_shapes import EventWriter, usage
from router.errors import InvalidRequestError

EVENTS: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)


def call(**params: Any) -> Call:
    return Call(provider="p", model="m", params={"input": "hi", **params},
                response_id=ResponseIds().new(), created_at=1_700_000_000, stream=True)


def validated(events: list[dict[str, Any]]) -> list[str]:
    for event in events:
        EVENTS.validate_python(event)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    return [e["type"] for e in events]


def test_reasoning_text_and_tool_call_in_one_stream() -> None:
    w = EventWriter(call(instructions="be brief", tools=[]))
    events = (w.start() + w.reasoning("think ") + w.reasoning("more")
              + w.reasoning_encrypted("sig") + w.text("Hel") + w.text("lo")
              + w.function_call(0, call_id="call_1", name="f") + w.arguments(0, '{"a":')
              + w.arguments(0, "1}") + w.finish(usage=usage(10, 5, cached_tokens=2)))
    kinds = validated(events)
    assert kinds.count("response.output_item.added") == 3
    assert kinds.count("response.output_item.done") == 3
    final = SdkResponse.model_validate(events[-1]["response"])
    assert final.output_text == "Hello" and final.instructions == "be brief"
    assert [o.type for o in final.output] == ["reasoning", "message", "function_call"]
    reasoning, _, tool = events[-1]["response"]["output"]
    assert reasoning["summary"] == [{"type": "summary_text", "text": "think more"}]
    assert reasoning["encrypted_content"] == "sig"
    assert tool["arguments"] == '{"a":1}' and tool["status"] == "completed"
    ids = {o["id"] for o in events[-1]["response"]["output"]}
    assert len(ids) == 3


def test_a_refusal_streams_as_a_message_with_a_refusal_part() -> None:
    w = EventWriter(call())
    events = w.start() + w.refusal("I can't ") + w.refusal("help.") + w.finish()
    kinds = validated(events)
    assert kinds.count("response.refusal.delta") == 2 and "response.refusal.done" in kinds
    [item] = SdkResponse.model_validate(events[-1]["response"]).output
    assert item.type == "message" and item.id.startswith("msg_")
    assert item.content[0].type == "refusal" and item.content[0].refusal == "I can't help."


def test_incomplete_failed_and_error_endings() -> None:
    w = EventWriter(call())
    kinds = validated(w.start() + w.text("x") + w.finish(incomplete_reason="max_output_tokens"))
    assert kinds[-1] == "response.incomplete"
    w = EventWriter(call())
    events = w.start() + w.text("x") + w.fail("server_error", "boom")
    assert validated(events)[-1] == "response.failed"
    assert events[-1]["response"]["error"] == {"code": "server_error", "message": "boom"}
    w = EventWriter(call())
    assert validated(w.start() + w.error("rate_limit_exceeded", "slow"))[-1] == "error"
    assert w.done


def test_web_search_call_is_one_whole_item_between_others() -> None:
    w = EventWriter(call())
    events = (w.start() + w.text("Let me look. ", key=0) + w.web_search_call(1, "weather")
              + w.web_search_call(1, "weather") + w.text("Sunny.", key=2) + w.finish())
    kinds = validated(events)
    searching = kinds.index("response.web_search_call.searching")
    assert kinds[searching - 1] == "response.web_search_call.in_progress"
    assert kinds[searching + 1] == "response.web_search_call.completed"
    final = SdkResponse.model_validate(events[-1]["response"])
    assert [o.type for o in final.output] == ["message", "web_search_call", "message"]
    search = events[-1]["response"]["output"][1]
    assert search["id"].startswith("ws_") and search["action"]["query"] == "weather"
    assert final.output_text == "Let me look. Sunny."


def test_annotations_are_announced_and_kept_on_the_message() -> None:
    w = EventWriter(call())
    cite = {"type": "url_citation", "url": "https://a.test", "title": "A", "start_index": 0,
            "end_index": 5}
    events = w.start() + w.text("Hello") + w.annotate(cite) + w.finish()
    kinds = validated(events)
    added = events[kinds.index("response.output_text.annotation.added")]
    assert added["annotation_index"] == 0 and added["annotation"] == cite
    part = events[kinds.index("response.content_part.done")]["part"]
    assert part["annotations"] == [cite]
    final = SdkResponse.model_validate(events[-1]["response"])
    assert final.output_text == "Hello"
    assert events[-1]["response"]["output"][0]["content"][0]["annotations"] == [cite]


def test_a_closed_item_cannot_grow_again() -> None:
    w = EventWriter(call())
    w.start()
    w.text("a", key="first")
    w.function_call(1, call_id="c", name="f")
    with pytest.raises(ValueError, match="already closed"):
        w.text("b", key="first")
    with pytest.raises(KeyError):
        w.arguments(2, "{}")


def test_input_spellings_become_canonical_items() -> None:
    items = input_items({"input": [
        {"role": "user", "content": "q"},
        {"type": "message", "role": "assistant", "content": "a"},
        {"type": "function_call_output", "call_id": "c", "output": "42"},
    ]})
    assert items[0]["content"] == [{"type": "input_text", "text": "q"}]
    assert items[1]["content"] == [{"type": "output_text", "text": "a"}]
    assert items[2]["type"] == "function_call_output"
    assert input_items({"input": "hi"})[0]["role"] == "user"


@pytest.mark.parametrize(("value", "where"), [
    (42, "input: expected a string or a list"),
    ([1], r"input\[0\]: expected an object"),
    ([{"role": "robot", "content": "x"}], r"input\[0\].role"),
    ([{"role": "user", "content": 5}], r"input\[0\].content"),
    ([{"role": "user", "content": [{"text": "x"}]}], r"input\[0\].content\[0\]"),
])
def test_malformed_input_names_the_item(value: Any, where: str) -> None:
    with pytest.raises(InvalidRequestError, match=where):
        input_items({"input": value})


def test_tools_are_checked() -> None:
    assert function_tools({"tools": [{"type": "function", "name": "f"}]})[0][0] == 0
    with pytest.raises(InvalidRequestError, match=r"tools\[0\].name"):
        function_tools({"tools": [{"type": "function"}]})
    with pytest.raises(InvalidRequestError, match="tools: expected a list"):
        function_tools({"tools": "f"})
