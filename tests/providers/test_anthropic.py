"""``anthropic/`` deployments end to end: Router -> provider -> the loopback fake Messages API.

What a user of Claude through the router relies on: plain and streamed calls
that validate as OpenAI's types, a tool-call conversation with thinking
carried across turns, Anthropic's errors driving retries, cooldowns and
fallbacks (also across providers, in one group with a native OpenAI
deployment), mid-stream failures, and parameters refused before any
upstream call.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from typing import Any

import pytest
from openai.types.responses import Response as SdkResponse
from openai.types.responses import ResponseStreamEvent
from pydantic import TypeAdapter

from providers.anthropic import AnthropicProvider
from providers.http import ClientPool
from router.config.models import DeploymentConfig
from router.errors import (
    AuthenticationError,
    ContextWindowExceededError,
    MalformedResponseError,
    ServiceUnavailableError,
    StreamInterruptedError,
    UnsupportedParameterError,
)
from router.router import Router
from router.testing import Upstream
from router.testing.anthropic import AnthropicUpstream
from tests.conftest import calls_leave_no_cycles
from tests.providers.anthropic_types import check_params

EVENTS: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)
KEY = "sk-ant-do-not-leak-51c0"
WEATHER = {"type": "function", "name": "get_weather",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}


def claude(up: AnthropicUpstream, group: str = "claude", **params: Any) -> dict[str, Any]:
    return {"model_name": group, "model_info": {"id": up.name},
            "litellm_params": {"model": "anthropic/claude-sonnet-4-5", "api_base": up.url,
                               "api_key": KEY, **params}}


def gpt(up: Upstream, group: str = "claude") -> dict[str, Any]:
    return {"model_name": group, "model_info": {"id": up.name},
            "litellm_params": {"model": "openai/gpt-4o", "api_base": f"{up.url}/v1",
                               "api_key": KEY}}


def router(*model_list: dict[str, Any], **settings: Any) -> Router:
    settings.setdefault("num_retries", 2)
    return Router(model_list=list(model_list), rng=random.Random(3), **settings)


@pytest.fixture
async def fakes() -> AsyncIterator[tuple[AnthropicUpstream, AnthropicUpstream]]:
    async with AnthropicUpstream("east", api_key=KEY) as east, \
            AnthropicUpstream("west", api_key=KEY) as west:
        yield east, west


async def events_of(stream: Any) -> list[dict[str, Any]]:
    events = [event._data async for event in stream]
    for event in events:
        EVENTS.validate_python(event)
    return events


async def test_plain_call_sends_a_valid_messages_request(
    fakes: tuple[AnthropicUpstream, AnthropicUpstream]
) -> None:
    east, _ = fakes
    async with router(claude(east)) as r:
        response = await r.aresponses(model="claude", input="Hello", instructions="Be kind.",
                                      max_output_tokens=50, user="u-7")
    sdk = SdkResponse.model_validate(response.model_dump())
    assert sdk.output_text == "[east] Hello" and sdk.status == "completed"
    assert sdk.id.startswith("resp_") and response.routing is not None
    assert response.routing.deployment_id == "east" and response.routing.provider == "anthropic"
    (sent,) = east.requests
    assert sent.headers["x-api-key"] == KEY and sent.headers["anthropic-version"] == "2023-06-01"
    check_params(sent.json)
    assert sent.json["metadata"] == {"user_id": "u-7"} and sent.json["max_tokens"] == 50


async def test_calls_leave_no_reference_cycles(
    fakes: tuple[AnthropicUpstream, AnthropicUpstream]
) -> None:
    """A call's objects are freed as it ends, never left to the garbage collector."""
    async with router(claude(fakes[0])) as r:
        await calls_leave_no_cycles(r, "claude")


async def test_stream_is_a_whole_responses_event_sequence(
    fakes: tuple[AnthropicUpstream, AnthropicUpstream]
) -> None:
    east, _ = fakes
    async with router(claude(east)) as r:
        stream = await r.aresponses(model="claude", input="Tell me", stream=True,
                                    reasoning={"effort": "low", "summary": "auto"})
        events = await events_of(stream)
    kinds = [e["type"] for e in events]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert "response.reasoning_summary_text.delta" in kinds
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    final = SdkResponse.model_validate(events[-1]["response"])
    assert final.output_text == "[east] Tell me"
    assert final.usage is not None and final.usage.output_tokens_details.reasoning_tokens > 0
    check_params(east.requests[0].json)
    assert east.requests[0].json["stream"] is True


@pytest.mark.parametrize("stream", [False, True])
async def test_tool_call_round_trip_with_thinking(
    fakes: tuple[AnthropicUpstream, AnthropicUpstream], stream: bool
) -> None:
    east, _ = fakes
    params: dict[str, Any] = {"tools": [WEATHER], "reasoning": {"effort": "low"}}
    first_input = [{"role": "user", "content": "Use get_weather for Oslo"}]
    async with router(claude(east)) as r:
        first = await _call(r, stream, input=first_input, **params)
        kinds = [o["type"] for o in first["output"]]
        assert kinds == ["reasoning", "function_call"]
        fc = first["output"][1]
        follow = [*first_input, *first["output"],
                  {"type": "function_call_output", "call_id": fc["call_id"], "output": "-3C"}]
        second = await _call(r, stream, input=follow, **params)
    assert SdkResponse.model_validate(second).output_text == "tool said: -3C"
    sent = east.requests[1].json
    check_params(sent)
    assert sent["messages"][1]["content"][0]["type"] == "thinking"
    assert sent["messages"][1]["content"][0]["signature"] == first["output"][0][
        "encrypted_content"]


async def _call(r: Router, stream: bool, **params: Any) -> dict[str, Any]:
    if not stream:
        dumped: dict[str, Any] = (await r.aresponses(model="claude", **params)).model_dump()
        return dumped
    events = await events_of(await r.aresponses(model="claude", stream=True, **params))
    response: dict[str, Any] = events[-1]["response"]
    return response


async def test_structured_output_and_incomplete_answer(
    fakes: tuple[AnthropicUpstream, AnthropicUpstream]
) -> None:
    east, _ = fakes
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    async with router(claude(east)) as r:
        shaped = await r.aresponses(model="claude", input="count", text={"format": {
            "type": "json_schema", "name": "count", "schema": schema}})
        cut = await r.aresponses(model="claude", input="one two three four five",
                                 max_output_tokens=2)
    assert shaped.output_text == '{"n": 1}'
    assert east.requests[0].json["output_config"]["format"]["schema"] == schema
    assert cut.status == "incomplete" and cut.incomplete_details is not None
    assert cut.incomplete_details.reason == "max_output_tokens"


async def test_overloaded_deployment_is_retried_elsewhere_and_cooled_down(
    fakes: tuple[AnthropicUpstream, AnthropicUpstream]
) -> None:
    east, west = fakes
    east.faults.fail("overloaded_error", times=5)
    west.faults.fail("overloaded_error", times=5)
    async with router(claude(east), claude(west), allowed_fails=0, cooldown_time=30) as r:
        with pytest.raises(ServiceUnavailableError, match="Overloaded") as info:
            await r.aresponses(model="claude", input="x", num_retries=1)
        east.faults.clear()
        west.faults.clear()
        assert {c.deployment_id for c in r.cooldowns()} == {"east", "west"}
        assert {c.reason for c in r.cooldowns()} == {"ServiceUnavailableError"}
    assert info.value.code == "server_is_overloaded" and info.value.status == 503
    assert len(east.requests) == len(west.requests) == 1


async def test_rate_limit_moves_to_the_other_deployment_with_retry_after(
    fakes: tuple[AnthropicUpstream, AnthropicUpstream]
) -> None:
    east, west = fakes
    east.faults.fail("rate_limit_error", retry_after=20)
    async with router(claude(east, order=1), claude(west, order=2)) as r:
        response = await r.aresponses(model="claude", input="hi")
        (limited,) = r.cooldowns()
    assert response.routing is not None and response.routing.deployment_id == "west"
    assert limited.deployment_id == "east" and limited.reason == "RateLimitError"
    assert limited.until - limited.started == pytest.approx(20, abs=1)
    assert [len(east.requests), len(west.requests)] == [1, 1]


async def test_auth_failure_falls_back_to_another_group(
    fakes: tuple[AnthropicUpstream, AnthropicUpstream]
) -> None:
    east, west = fakes
    bad = claude(east)
    bad["litellm_params"]["api_key"] = "wrong"
    async with router(bad, claude(west, group="claude-backup"),
                      fallbacks=[{"claude": ["claude-backup"]}]) as r:
        response = await r.aresponses(model="claude", input="hi")
        assert response.routing is not None and response.routing.deployment_id == "west"
        with pytest.raises(AuthenticationError) as info:
            await r.aresponses(model="claude", input="hi", disable_fallbacks=True)
    assert KEY not in repr(info.value) and "wrong" not in repr(info.value)
    assert "invalid x-api-key" in info.value.message


async def test_prompt_too_long_takes_the_context_window_fallback(
    fakes: tuple[AnthropicUpstream, AnthropicUpstream]
) -> None:
    east, west = fakes
    east.faults.fail("invalid_request_error", times=2)  # the fake's "prompt is too long"
    async with router(claude(east), claude(west, group="claude-1m"),
                      context_window_fallbacks=[{"claude": ["claude-1m"]}]) as r:
        response = await r.aresponses(model="claude", input="a very long prompt")
        assert response.routing is not None and response.routing.deployment_id == "west"
        with pytest.raises(ContextWindowExceededError):
            await r.aresponses(model="claude", input="again", disable_fallbacks=True)
    assert len(east.requests) == 2, "a request's own fault is not retried on the same group"


@pytest.mark.parametrize("stream", [False, True])
async def test_one_group_mixing_anthropic_and_openai(
    fakes: tuple[AnthropicUpstream, AnthropicUpstream], stream: bool
) -> None:
    east, _ = fakes
    async with Upstream("azure-east") as openai_up:
        east.faults.fail("overloaded_error", times=10)
        async with router(claude(east), gpt(openai_up), routing_strategy="simple-shuffle",
                          allowed_fails=0) as r:
            served = set()
            for _ in range(4):
                if stream:
                    s = await r.aresponses(model="claude", input="hi", stream=True)
                    events = await events_of(s)
                    assert events[-1]["type"] == "response.completed"
                    assert s.routing is not None
                    served.add(s.routing.deployment_id)
                else:
                    response = await r.aresponses(model="claude", input="hi")
                    assert response.routing is not None
                    served.add(response.routing.deployment_id)
            assert served == {"azure-east"}
            assert [c.deployment_id for c in r.cooldowns()] == ["east"]
        east.faults.clear()
        async with router(claude(east), gpt(openai_up)) as r:
            providers = set()
            for _ in range(8):
                response = await r.aresponses(model="claude", input="hi")
                assert response.routing is not None
                providers.add(response.routing.provider)
                SdkResponse.model_validate(response.model_dump())
    assert providers == {"anthropic", "openai"}


async def test_error_before_the_first_event_is_retried_elsewhere(
    fakes: tuple[AnthropicUpstream, AnthropicUpstream]
) -> None:
    east, west = fakes
    east.faults.mid_stream("overloaded_error", after=0)
    async with router(claude(east, order=1), claude(west, order=2)) as r:
        stream = await r.aresponses(model="claude", input="hi", stream=True)
        events = await events_of(stream)
    assert events[-1]["type"] == "response.completed"
    assert stream.routing is not None and stream.routing.deployment_id == "west"
    assert [len(east.requests), len(west.requests)] == [1, 1]


@pytest.mark.parametrize("fault", ["mid_stream", "cut_stream", "malformed"])
async def test_failure_after_events_reached_the_caller_is_raised(
    fakes: tuple[AnthropicUpstream, AnthropicUpstream], fault: str
) -> None:
    east, _ = fakes
    getattr(east.faults, fault)(after=4)
    seen: list[str] = []
    async with router(claude(east)) as r:
        stream = await r.aresponses(model="claude", input="one two three", stream=True)
        with pytest.raises(StreamInterruptedError) as info:
            async for event in stream:
                seen.append(event.type)
    assert "response.created" in seen and "response.completed" not in seen
    assert info.value.__cause__ is not None


async def test_malformed_answer_is_retried(
    fakes: tuple[AnthropicUpstream, AnthropicUpstream]
) -> None:
    east, west = fakes
    east.faults.malformed(times=5)
    west.faults.malformed(times=5)
    async with router(claude(east), claude(west)) as r:
        with pytest.raises(MalformedResponseError, match="anthropic"):
            await r.aresponses(model="claude", input="hi", num_retries=1)
    assert len(east.requests) + len(west.requests) == 2


async def test_unsupported_parameter_is_refused_before_any_upstream_call(
    fakes: tuple[AnthropicUpstream, AnthropicUpstream]
) -> None:
    east, west = fakes
    async with router(claude(east), claude(west, group="dropping", drop_params=True)) as r:
        with pytest.raises(UnsupportedParameterError) as info:
            await r.aresponses(model="claude", input="hi", top_logprobs=2)
        assert info.value.param == "top_logprobs" and info.value.provider == "anthropic"
        assert not east.requests
        response = await r.aresponses(model="dropping", input="hi", top_logprobs=2)
    assert response.output_text == "[west] hi" and "top_logprobs" not in west.requests[0].json


async def test_key_and_base_come_from_the_environment(
    fakes: tuple[AnthropicUpstream, AnthropicUpstream], monkeypatch: pytest.MonkeyPatch
) -> None:
    east, _ = fakes
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.setenv("ANTHROPIC_API_BASE", east.url + "/v1")
    entry = {"model_name": "claude", "litellm_params": {"model": "anthropic/claude-haiku-4-5"}}
    async with router(entry) as r:
        response = await r.aresponses(model="claude", input="env")
        assert KEY not in repr(r.deployments()[0].endpoint)
    assert response.output_text == "[east] env"
    assert east.requests[0].json["model"] == "claude-haiku-4-5"



async def test_prompt_caching_reports_cached_and_written_tokens(
    fakes: tuple[AnthropicUpstream, AnthropicUpstream]
) -> None:
    east, _ = fakes
    cached = claude(east, extra_body={"cache_control": {"type": "ephemeral"}})
    instructions = "You are a patient assistant who answers in full sentences."
    async with router(cached) as r:
        first = await r.aresponses(model="claude", input="Hi", instructions=instructions)
        second = await r.aresponses(model="claude", input="Hi", instructions=instructions)
    assert first.usage is not None and second.usage is not None
    written = first.usage.input_tokens_details.cache_write_tokens
    assert written > 0 and first.usage.input_tokens_details.cached_tokens == 0
    assert second.usage.input_tokens_details.cached_tokens == written
    assert second.usage.input_tokens == first.usage.input_tokens
    check_params(east.requests[0].json)


@pytest.mark.parametrize("stream", [False, True])
async def test_web_search_runs_on_anthropic_and_cites_its_sources(
    fakes: tuple[AnthropicUpstream, AnthropicUpstream], stream: bool
) -> None:
    east, _ = fakes
    async with router(claude(east)) as r:
        response = await _call(r, stream, input="search the weather in Oslo",
                               tools=[{"type": "web_search"}])
    search, answer = response["output"]
    assert search["type"] == "web_search_call" and search["status"] == "completed"
    assert search["action"]["query"] == "search the weather in Oslo"
    (citation,) = answer["content"][0]["annotations"]
    assert citation["type"] == "url_citation" and citation["url"] == "https://example.com/"
    assert east.requests[0].json["tools"] == [{"type": "web_search_20250305",
                                               "name": "web_search"}]


def test_prepare_reads_base_version_and_headers_once() -> None:
    provider = AnthropicProvider(ClientPool(), environ={})
    config = DeploymentConfig.model_validate({"model_name": "c", "litellm_params": {
        "model": "anthropic/claude-opus-4-1", "api_base": "https://gw.test/anthropic/v1/",
        "api_key": KEY, "extra_headers": {"anthropic-version": "2023-01-01",
                                          "anthropic-beta": "context-1m-2025-08-07"}}})
    target = provider.prepare(config)
    assert target.base_url == "https://gw.test/anthropic"
    assert target.headers["anthropic-version"] == "2023-01-01"
    assert target.headers["anthropic-beta"] == "context-1m-2025-08-07"
    assert target.headers["x-api-key"] == KEY and KEY not in repr(target)
    bare = provider.prepare(DeploymentConfig.model_validate(
        {"model_name": "c", "litellm_params": {"model": "anthropic/claude-opus-4-1"}}))
    assert bare.base_url == "https://api.anthropic.com" and "x-api-key" not in bare.headers
