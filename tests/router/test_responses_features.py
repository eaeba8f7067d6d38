"""Responses features beyond text, end to end through the Router (issue 17, item 5).

Each test runs a real Router over two loopback upstreams that answer these
features as OpenAI does (``router/testing/features.py``), with
``responses_api_deployment_check`` so that follow-ups must reach the
deployment that owns the previous response (a stranger answers 400). Every
response and stream event is validated against the official ``openai`` SDK
types, so a field the router dropped or mangled fails the test.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

import pytest
from openai.types.responses import Response as OpenAIResponse
from openai.types.responses import ResponseStreamEvent
from pydantic import TypeAdapter

from router.errors import BadRequestError
from router.router import Router
from router.testing import Upstream
from router.types import Response
from tests.conftest import StartUpstreams, openai_dep

Make = Callable[..., Router]
EVENTS: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)

MCP_TOOL = {"type": "mcp", "server_label": "deepwiki",
            "server_url": "https://mcp.deepwiki.com/mcp", "require_approval": "always"}
COMPUTER_TOOL = {"type": "computer_use_preview", "display_width": 1024,
                 "display_height": 768, "environment": "browser"}


@pytest.fixture
async def pair(upstreams: StartUpstreams, make_router: Make) -> tuple[Router, Upstream, Upstream]:
    east, west = await upstreams("east", "west")
    router = make_router([openai_dep(east), openai_dep(west)],
                         optional_pre_call_checks=["responses_api_deployment_check"])
    return router, east, west


def sdk(response: Response) -> OpenAIResponse:
    return OpenAIResponse.model_validate(response.model_dump())


def creates(*ups: Upstream) -> list[tuple[str, Any]]:
    return [(up.name, r.json) for up in ups for r in up.requests
            if r.method == "POST" and r.path.endswith("/responses")]


async def test_image_generation_stream_with_partial_images(
    pair: tuple[Router, Upstream, Upstream],
) -> None:
    router, east, west = pair
    stream = await router.aresponses(
        model="gpt-4o", input="Draw a river made of white owl feathers", stream=True,
        tools=[{"type": "image_generation", "partial_images": 2}])
    events = [e async for e in stream]
    for event in events:
        EVENTS.validate_python(event.model_dump())
    partials = [e for e in events if e.type == "response.image_generation_call.partial_image"]
    assert [e.partial_image_index for e in partials] == [0, 1]
    assert all(e.partial_image_b64 for e in partials)
    final = sdk(stream.response)
    (call,) = final.output
    assert call.type == "image_generation_call" and call.result
    ((_, body),) = creates(east, west)
    assert body["tools"] == [{"type": "image_generation", "partial_images": 2}]


async def test_mcp_approval_response_follow_up_stays_on_the_owner(
    pair: tuple[Router, Upstream, Upstream],
) -> None:
    router, east, west = pair
    first = await router.aresponses(model="gpt-4o", input="What is in the repo?",
                                    tools=[MCP_TOOL])
    listed, request = sdk(first).output
    assert (listed.type, request.type) == ("mcp_list_tools", "mcp_approval_request")
    for _ in range(3):  # each follow-up goes to the owner, whichever the strategy would pick
        follow = await router.aresponses(
            model="gpt-4o", previous_response_id=first.id, tools=[MCP_TOOL],
            input=[{"type": "mcp_approval_response", "approve": True,
                    "approval_request_id": request.id}])
        (call,) = sdk(follow).output
        assert call.type == "mcp_call" and call.approval_request_id == request.id
        assert follow.routing.deployment_id == first.routing.deployment_id
    owner = {"east": east, "west": west}[first.routing.deployment_id]
    assert len(creates(owner)) == 4


async def test_an_approval_for_an_unknown_request_is_the_callers_error(
    pair: tuple[Router, Upstream, Upstream],
) -> None:
    router, _, _ = pair
    first = await router.aresponses(model="gpt-4o", input="hi", tools=[MCP_TOOL])
    with pytest.raises(BadRequestError, match="No approval request"):
        await router.aresponses(
            model="gpt-4o", previous_response_id=first.id, tools=[MCP_TOOL],
            input=[{"type": "mcp_approval_response", "approve": True,
                    "approval_request_id": "mcpr_nope"}])
    assert router.cooldowns() == []


async def test_computer_use_with_reasoning_summary_and_truncation(
    pair: tuple[Router, Upstream, Upstream],
) -> None:
    router, east, west = pair
    first = await router.aresponses(
        model="gpt-4o", input="Check the latest news", tools=[COMPUTER_TOOL],
        reasoning={"summary": "concise"}, truncation="auto")
    thought, call = sdk(first).output
    assert thought.type == "reasoning" and thought.summary[0].text
    assert call.type == "computer_call" and call.action.type == "screenshot"
    follow = await router.aresponses(
        model="gpt-4o", previous_response_id=first.id, tools=[COMPUTER_TOOL],
        reasoning={"summary": "concise"}, truncation="auto",
        input=[{"type": "computer_call_output", "call_id": call.call_id,
                "output": {"type": "computer_screenshot",
                           "image_url": "data:image/png;base64,AAAA"}}])
    assert follow.routing.deployment_id == first.routing.deployment_id
    sent = [body for _, body in creates(east, west)]
    assert all(b["reasoning"] == {"summary": "concise"} and b["truncation"] == "auto"
               for b in sent)
    with pytest.raises(BadRequestError, match="truncation"):
        await router.aresponses(model="gpt-4o", input="x", tools=[COMPUTER_TOOL])


@pytest.mark.parametrize("fmt", [
    {"type": "grammar", "syntax": "lark",
     "definition": 'start: "add " NUMBER\n%import common.NUMBER'},
    {"type": "grammar", "syntax": "regex", "definition": r"^\d{4}-\d{2}-\d{2}$"},
])
@pytest.mark.parametrize("stream", [False, True])
async def test_custom_tool_with_a_grammar(
    pair: tuple[Router, Upstream, Upstream], fmt: dict[str, str], stream: bool,
) -> None:
    router, east, west = pair
    tool = {"type": "custom", "name": "math_exp", "description": "an expression",
            "format": fmt}
    result = await router.aresponses(model="gpt-4o", input="add 4 and 5", tools=[tool],
                                     stream=stream)
    if stream:
        events = [e async for e in result]
        for event in events:
            EVENTS.validate_python(event.model_dump())
        deltas = [e.delta for e in events if e.type == "response.custom_tool_call_input.delta"]
        assert "".join(deltas) == "add 4 and 5"
        result = result.response
    (call,) = sdk(result).output
    assert (call.type, call.name, call.input) == ("custom_tool_call", "math_exp", "add 4 and 5")
    ((_, body),) = creates(east, west)
    assert body["tools"] == [tool]  # the grammar reached the upstream byte for byte


async def test_prompt_with_no_input(pair: tuple[Router, Upstream, Upstream]) -> None:
    router, east, west = pair
    prompt = {"id": "pmpt_123", "version": "2", "variables": {"city": "Paris"}}
    first = await router.aresponses(model="gpt-4o", prompt=prompt)
    assert sdk(first).prompt is not None and sdk(first).prompt.id == "pmpt_123"
    ((_, body),) = creates(east, west)
    assert body["prompt"] == prompt and "input" not in body
    follow = await router.aresponses(model="gpt-4o", prompt=prompt,
                                     previous_response_id=first.id)
    assert follow.routing.deployment_id == first.routing.deployment_id


async def test_include_on_retrieve_is_sent_as_the_sdk_sends_it(
    pair: tuple[Router, Upstream, Upstream],
) -> None:
    router, east, west = pair
    first = await router.aresponses(
        model="gpt-4o", input="look", tools=[COMPUTER_TOOL], truncation="auto",
        reasoning={"summary": "auto"}, include=["reasoning.encrypted_content"])
    include = ["reasoning.encrypted_content", "message.output_text.logprobs"]
    got = await router.aget_responses(first.id, include=include)
    thought = sdk(got).output[0]
    assert thought.type == "reasoning" and thought.encrypted_content
    owner = {"east": east, "west": west}[first.routing.deployment_id]
    (retrieve,) = [r for r in owner.requests if r.method == "GET"]
    assert parse_qsl(retrieve.query_string) == [("include[]", v) for v in include]
    with pytest.raises(BadRequestError, match="include"):
        await router.aget_responses(first.id, include=["no.such.field"])
    assert router.cooldowns() == []
