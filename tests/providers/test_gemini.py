"""gemini/ end to end: Router -> GeminiProvider -> the loopback fake (router/testing/gemini.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from openai.types.responses import Response as SdkResponse
from openai.types.responses import ResponseStreamEvent
from pydantic import TypeAdapter

from router.errors import (
    AuthenticationError,
    ContextWindowExceededError,
    RateLimitError,
    UnsupportedParameterError,
)
from router.testing.gemini import GeminiUpstream
from tests.conftest import InOrder, calls_leave_no_cycles, openai_dep

EVENTS: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)


@pytest.fixture
async def fakes() -> AsyncIterator[Callable[..., Any]]:
    started: list[GeminiUpstream] = []

    async def start(name: str, **options: Any) -> GeminiUpstream:
        up = GeminiUpstream(name, **options)
        await up.__aenter__()
        started.append(up)
        return up

    yield start
    for up in started:
        await up.__aexit__(None, None, None)


def gemini_dep(up: GeminiUpstream, model_name: str = "flash", **params: Any) -> dict[str, Any]:
    return {"model_name": model_name,
            "litellm_params": {"model": "gemini/gemini-2.5-flash", "api_base": up.url,
                               "api_key": up.api_key, **params},
            "model_info": {"id": up.name}}


async def test_create_through_the_router(fakes: Any, make_router: Any) -> None:
    up = await fakes("g1")
    router = make_router([gemini_dep(up)])
    response = await router.aresponses(model="flash", input="hello", instructions="brief",
                                       max_output_tokens=20)
    sdk = SdkResponse.model_validate(response.model_dump())
    assert sdk.output_text == "[g1] echo: hello" and sdk.id.startswith("resp_")
    assert sdk.usage is not None and sdk.usage.input_tokens_details.cached_tokens == 3
    sent = up.requests[0]
    assert sent["model"] == "gemini-2.5-flash" and sent["verb"] == "generateContent"
    assert sent["headers"]["x-goog-api-key"] == up.api_key and "key" not in sent["query"]
    assert sent["body"]["generationConfig"] == {"maxOutputTokens": 20}


async def test_calls_leave_no_reference_cycles(fakes: Any, make_router: Any) -> None:
    """A call's objects are freed as it ends, never left to the garbage collector."""
    up = await fakes("g1")
    await calls_leave_no_cycles(make_router([gemini_dep(up)]), "flash")


async def test_stream_through_the_router(fakes: Any, make_router: Any) -> None:
    up = await fakes("g1")
    router = make_router([gemini_dep(up)])
    stream = await router.aresponses(model="flash", input="hello there", stream=True,
                                     reasoning={"effort": "low", "summary": "auto"})
    events = [event._data async for event in stream]
    for event in events:
        EVENTS.validate_python(event)
    assert events[-1]["type"] == "response.completed"
    final = SdkResponse.model_validate(events[-1]["response"])
    assert final.output_text == "[g1] echo: hello there"
    assert final.output[0].type == "reasoning"
    assert up.requests[0]["query"] == {"alt": "sse"}


async def test_tool_round_trip_replays_the_signature(fakes: Any, make_router: Any) -> None:
    up = await fakes("g1")
    router = make_router([gemini_dep(up)])
    tools = [{"type": "function", "name": "lookup", "parameters": {"type": "object"}}]
    first = await router.aresponses(model="flash", input="find x", tools=tools)
    call = next(item for item in first.output if item["type"] == "function_call")
    replay = [{"role": "user", "content": "find x"}, *(i.model_dump() for i in first.output),
              {"type": "function_call_output", "call_id": call["call_id"], "output": "42"}]
    second = await router.aresponses(model="flash", input=replay, tools=tools,
                                     tool_choice="none")
    assert second.output_text == "[g1] echo: "  # the fake echoes text parts only
    model_turn = up.requests[1]["body"]["contents"][1]
    assert model_turn["parts"][0]["thoughtSignature"]


async def test_throttle_is_retried_on_another_deployment(fakes: Any, make_router: Any) -> None:
    a, b = await fakes("a"), await fakes("b")
    a.faults.errors.append(("RESOURCE_EXHAUSTED", "Resource has been exhausted", 1.0))
    router = make_router([gemini_dep(a), gemini_dep(b)], routing_strategy=InOrder(),
                         num_retries=1)
    response = await router.aresponses(model="flash", input="hi")
    assert response.output_text == "[b] echo: hi"
    assert response.routing.deployment_id == "b"


async def test_errors_are_classified(fakes: Any, make_router: Any) -> None:
    up = await fakes("g1")
    router = make_router([gemini_dep(up)], num_retries=0)
    up.faults.errors.append(("RESOURCE_EXHAUSTED", "quota", 7.0))
    with pytest.raises(RateLimitError) as info:
        await router.aresponses(model="flash", input="hi")
    assert info.value.retry_after == 7.0
    with pytest.raises(RateLimitError) as held:  # the router keeps the retry delay
        await router.aresponses(model="flash", input="hi")
    assert held.value.code == "retry_after_pending" and len(up.requests) == 1
    router = make_router([gemini_dep(up)], num_retries=0)
    up.faults.errors.append(("INVALID_ARGUMENT", "The input token count (9) exceeds the "
                             "maximum number of tokens allowed (5).", None))
    with pytest.raises(ContextWindowExceededError):
        await router.aresponses(model="flash", input="hi")
    with pytest.raises(UnsupportedParameterError, match="top_logprobs"):
        await router.aresponses(model="flash", input="hi", top_logprobs=3)
    assert len(up.requests) == 2


async def test_wrong_key_is_an_authentication_error(fakes: Any, make_router: Any) -> None:
    up = await fakes("g1")
    router = make_router([gemini_dep(up, api_key="wrong-key")], num_retries=0)
    with pytest.raises(AuthenticationError) as info:
        await router.aresponses(model="flash", input="hi")
    assert "wrong-key" not in repr(info.value) and "wrong-key" not in str(info.value)


async def test_mid_stream_error_is_raised(fakes: Any, make_router: Any) -> None:
    up = await fakes("g1")
    up.faults.stream_error = ("UNAVAILABLE", "overloaded")
    router = make_router([gemini_dep(up)], num_retries=0)
    stream = await router.aresponses(model="flash", input="hello there", stream=True)
    seen: list[str] = []
    with pytest.raises(Exception, match="overloaded"):
        async for event in stream:
            seen.append(event.type)
    assert "response.output_text.delta" in seen


async def test_mixed_group_retries_from_gemini_on_openai(
    fakes: Any, make_router: Any, upstreams: Any
) -> None:
    g = await fakes("g1")
    (o,) = await upstreams("o1")
    g.faults.errors.extend([("UNAVAILABLE", "down", None)] * 3)
    router = make_router([gemini_dep(g, "gpt-4o"), openai_dep(o)],
                         routing_strategy=InOrder(), num_retries=1)
    answer = await router.aresponses(model="gpt-4o", input="hi")
    assert answer.routing.deployment_id == "o1"
    assert len(g.requests) == 1


async def test_gemini_group_falls_back_to_an_openai_group(
    fakes: Any, make_router: Any, upstreams: Any
) -> None:
    g = await fakes("g1")
    (o,) = await upstreams("o1")
    g.faults.errors.extend([("INTERNAL", "boom", None)] * 2)
    router = make_router([gemini_dep(g), openai_dep(o)], num_retries=1,
                         fallbacks=[{"flash": ["gpt-4o"]}])
    stream = await router.aresponses(model="flash", input="hi", stream=True)
    events = [event async for event in stream]
    assert events[-1].type == "response.completed"
    assert len(g.requests) == 2 and o.hits == 1


async def test_cut_stream_is_an_error_not_a_clean_end(fakes: Any, make_router: Any) -> None:
    up = await fakes("g1")
    up.faults.cut_stream = True
    router = make_router([gemini_dep(up)], num_retries=0)
    stream = await router.aresponses(model="flash", input="hello there", stream=True)
    with pytest.raises(Exception, match="before it finished"):
        async for _ in stream:
            pass


@pytest.mark.parametrize(("finish", "block", "reason"), [
    ("MAX_TOKENS", None, "max_output_tokens"), ("SAFETY", None, "content_filter"),
    ("STOP", "PROHIBITED_CONTENT", "content_filter"),
])
async def test_incomplete_answers_from_the_fake(
    fakes: Any, make_router: Any, finish: str, block: str | None, reason: str
) -> None:
    up = await fakes("g1")
    up.faults.finish_reason, up.faults.block_reason = finish, block
    router = make_router([gemini_dep(up)])
    response = await router.aresponses(model="flash", input="hi")
    sdk = SdkResponse.model_validate(response.model_dump())
    assert sdk.status == "incomplete" and sdk.incomplete_details is not None
    assert sdk.incomplete_details.reason == reason


async def test_drop_params_through_the_router(fakes: Any, make_router: Any) -> None:
    up = await fakes("g1")
    router = make_router([gemini_dep(up, drop_params=True)])
    response = await router.aresponses(model="flash", input="hi", top_logprobs=2,
                                       parallel_tool_calls=False)
    assert response.output_text == "[g1] echo: hi"
    assert set(up.requests[0]["body"]) == {"contents"}
