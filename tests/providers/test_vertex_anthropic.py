"""Claude on Vertex AI (providers/vertex_anthropic.py) end to end against the fake Vertex.

``vertex_ai/claude-...`` deployments send Anthropic's Messages body in Vertex's
framing (model in the URL, ``anthropic_version`` in the body) behind the
same OAuth tokens as Gemini on Vertex; answers, streams and errors come back
as Responses objects, and Google's own error shape is read too.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from openai.types.responses import Response as SdkResponse
from openai.types.responses import ResponseStreamEvent
from pydantic import TypeAdapter

from providers.codec import Call
from providers.vertex_anthropic import VERTEX_ANTHROPIC_VERSION, VertexAnthropicCodec, is_claude
from router.errors import AuthenticationError, RateLimitError, ServiceUnavailableError
from router.testing.gemini import GeminiUpstream
from tests.providers.test_vertex import fake, service_account, vertex_dep

__all__ = ["fake"]  # the fixture: a fake Vertex (its Claude routes too)

EVENTS: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)
CLAUDE = "claude-sonnet-4-5@20250929"


def claude_dep(up: GeminiUpstream, creds: dict[str, Any], *, name: str = "claude",
               group: str = "claude", **params: Any) -> dict[str, Any]:
    dep = vertex_dep(up, creds, name=name, model=f"vertex_ai/{CLAUDE}", **params)
    dep["model_name"] = group
    return dep


def call(stream: bool = False, **params: Any) -> Call:
    return Call(provider="vertex_ai", model=CLAUDE, params={"input": "hi", **params},
                response_id="resp_1", created_at=1, stream=stream)


# -- the codec ------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["claude-3-5-haiku@20241022", "Claude-opus-4@20250514",
                                   "anthropic/claude-sonnet-4-5"])
def test_claude_models_are_told_from_gemini(model: str) -> None:
    assert is_claude(model) and not is_claude("gemini-2.5-flash")


@pytest.mark.parametrize("stream", [False, True])
def test_the_body_moves_the_model_to_the_url(stream: bool) -> None:
    native = VertexAnthropicCodec().encode(call(stream, max_output_tokens=64))
    verb = "streamRawPredict" if stream else "rawPredict"
    assert native.path == f"/{CLAUDE}:{verb}"
    assert "model" not in native.body
    assert native.body["anthropic_version"] == VERTEX_ANTHROPIC_VERSION
    assert native.body["max_tokens"] == 64 and native.body.get("stream", False) is stream
    assert native.body["messages"] == [{"role": "user",
                                        "content": [{"type": "text", "text": "hi"}]}]


@pytest.mark.parametrize(("status", "body", "mapped", "code"), [
    (429, {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED",
                     "message": "Quota exceeded for aiplatform.googleapis.com"}}, 429, None),
    (401, [{"error": {"code": 401, "status": "UNAUTHENTICATED", "message": "bad token"}}],
     401, None),
    (529, {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
     503, "server_is_overloaded"),
    (400, {"type": "error", "error": {"type": "invalid_request_error",
                                      "message": "prompt is too long"}},
     400, "context_length_exceeded"),
])
def test_errors_are_read_in_either_shape(status: int, body: Any, mapped: int,
                                         code: str | None) -> None:
    error = VertexAnthropicCodec().error(status, body)
    assert error.status == mapped
    assert code is None or error.code == code


# -- end to end --------------------------------------------------------------------------------


async def test_create_and_stream_through_the_router(
    fake: GeminiUpstream, make_router: Callable[..., Any]
) -> None:
    creds = service_account(f"{fake.url}/token", fake)
    router = make_router([claude_dep(fake, creds)])
    response = await router.aresponses(model="claude", input="Hello there",
                                       instructions="Be brief.")
    SdkResponse.model_validate(response.model_dump())
    assert response.output_text == "[vx] Hello there" and response.id.startswith("resp_")
    assert response.usage is not None and response.usage.input_tokens > 0
    stream = await router.aresponses(model="claude", input="streamed", stream=True)
    events = [event async for event in stream]
    for event in events:
        EVENTS.validate_python(event.model_dump())
    assert events[-1].type == "response.completed"
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") \
        == "[vx] streamed"
    plain, streamed = fake.claude.bodies
    assert plain["anthropic_version"] == streamed["anthropic_version"] == "vertex-2023-10-16"
    assert "model" not in plain and plain["system"] == [{"type": "text", "text": "Be brief."}]
    assert streamed["stream"] is True


async def test_gemini_and_claude_share_one_token(
    fake: GeminiUpstream, make_router: Callable[..., Any]
) -> None:
    creds = service_account(f"{fake.url}/token", fake)
    router = make_router([vertex_dep(fake, creds), claude_dep(fake, creds)])
    gemini = await router.aresponses(model="flash", input="a")
    claude = await router.aresponses(model="claude", input="b")
    assert gemini.output_text == "[vx] echo: a" and claude.output_text == "[vx] b"
    assert fake.token_fetches == 1


async def test_a_conversation_goes_on_from_the_routers_store(
    fake: GeminiUpstream, make_router: Callable[..., Any]
) -> None:
    creds = service_account(f"{fake.url}/token", fake)
    router = make_router([claude_dep(fake, creds)])
    first = await router.aresponses(model="claude", input="My name is Ann.")
    await router.aresponses(model="claude", input="Who am I?", previous_response_id=first.id)
    messages = fake.claude.bodies[-1]["messages"]
    texts = [block["text"] for m in messages for block in m["content"]]
    assert texts == ["My name is Ann.", "[vx] My name is Ann.", "Who am I?"]


async def test_a_tool_call_comes_back_as_a_function_call(
    fake: GeminiUpstream, make_router: Callable[..., Any]
) -> None:
    creds = service_account(f"{fake.url}/token", fake)
    router = make_router([claude_dep(fake, creds)])
    tool = {"type": "function", "name": "get_weather", "description": "Weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                           "required": ["city"]}}
    response = await router.aresponses(model="claude", input="get_weather for Oslo",
                                       tools=[tool])
    calls = [item for item in response.output if item.type == "function_call"]
    assert [c.name for c in calls] == ["get_weather"]
    assert "city" in json.loads(calls[0].arguments)


async def test_anthropic_errors_fail_over_and_throttles_keep_their_wait(
    fake: GeminiUpstream, make_router: Callable[..., Any]
) -> None:
    creds = service_account(f"{fake.url}/token", fake)
    router = make_router([claude_dep(fake, creds, name="c1"),
                          claude_dep(fake, creds, name="c2")], num_retries=1)
    fake.claude.anthropic.faults.fail("overloaded_error")
    served = await router.aresponses(model="claude", input="again")
    assert served.output_text == "[vx] again" and len(fake.claude.bodies) == 2
    fake.claude.anthropic.faults.fail("rate_limit_error", times=2, retry_after=7)
    with pytest.raises(RateLimitError) as info:
        await router.aresponses(model="claude", input="throttled")
    assert info.value.retry_after == 7.0


async def test_an_overloaded_claude_alone_is_unavailable(
    fake: GeminiUpstream, make_router: Callable[..., Any]
) -> None:
    creds = service_account(f"{fake.url}/token", fake)
    router = make_router([claude_dep(fake, creds)], num_retries=0)
    fake.claude.anthropic.faults.fail("overloaded_error")
    with pytest.raises(ServiceUnavailableError):
        await router.aresponses(model="claude", input="x")


async def test_a_token_vertex_no_longer_knows_is_an_authentication_error(
    fake: GeminiUpstream, make_router: Callable[..., Any]
) -> None:
    creds = service_account(f"{fake.url}/token", fake)
    router = make_router([claude_dep(fake, creds)], num_retries=0)
    await router.aresponses(model="claude", input="x")
    fake.revoke()
    with pytest.raises(AuthenticationError, match="authentication credentials"):
        await router.aresponses(model="claude", input="y")
    assert len(fake.claude.bodies) == 1  # refused before Claude saw it
