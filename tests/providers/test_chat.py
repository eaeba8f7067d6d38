"""Chat Completions providers end to end: Router -> chat codec -> loopback fake server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from openai.types.responses import Response as SdkResponse
from openai.types.responses import ResponseStreamEvent
from pydantic import TypeAdapter

from providers.chat import VENDORS, ChatProvider, chat_providers
from providers.http import ClientPool
from router.config.keys import SUPPORTED_PROVIDERS
from router.config.models import DeploymentConfig
from router.errors import (
    AuthenticationError,
    ConfigError,
    ContextWindowExceededError,
    RouterError,
    UnsupportedParameterError,
)
from router.testing.chat import ChatUpstream
from tests.conftest import InOrder, azure_dep, calls_leave_no_cycles, openai_dep
from tests.providers.chat_types import check_request

EVENTS: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)
KEY = "sk-chat-SECRET"


@pytest.fixture
async def chat() -> AsyncIterator[Callable[..., Any]]:
    servers: list[ChatUpstream] = []

    async def start(name: str = "vllm", **options: Any) -> ChatUpstream:
        server = ChatUpstream(name, api_key=KEY, **options)
        servers.append(await server.__aenter__())
        return server

    yield start
    for server in servers:
        await server.__aexit__(None, None, None)


def vllm_dep(up: ChatUpstream, model_name: str = "llama", *, id: str | None = None,
             prefix: str = "hosted_vllm", **params: Any) -> dict[str, Any]:
    return {"model_name": model_name,
            "litellm_params": {"model": f"{prefix}/meta/llama-3", "api_base": f"{up.url}/v1",
                               "api_key": KEY, **params},
            "model_info": {"id": id or up.name}}


def azure_ai_dep(up: ChatUpstream, model_name: str = "llama", **params: Any) -> dict[str, Any]:
    return {"model_name": model_name,
            "litellm_params": {"model": "azure_ai/Llama-3.3-70B", "api_base": f"{up.url}/models",
                               "api_key": KEY, **params},
            "model_info": {"id": f"{up.name}-azure-ai"}}


def last_body(up: ChatUpstream) -> dict[str, Any]:
    body: dict[str, Any] = up.requests[-1][2]
    check_request(body)
    return body


async def test_plain_request_translates_both_ways(chat: Any, make_router: Any) -> None:
    up = await chat()
    router = make_router([vllm_dep(up)])
    answer = await router.aresponses(model="llama", input="hello there", instructions="terse",
                                     metadata={"run": "1"})
    sdk = SdkResponse.model_validate(answer.model_dump())
    assert sdk.output_text == "[vllm] echo: hello there" and sdk.metadata == {"run": "1"}
    assert sdk.usage is not None and sdk.usage.output_tokens == 4
    assert answer.routing.provider == "hosted_vllm"
    path, headers, _ = up.requests[-1]
    assert path == "/v1/chat/completions" and headers["Authorization"] == f"Bearer {KEY}"
    assert last_body(up)["messages"][0] == {"role": "system", "content": "terse"}


async def test_calls_leave_no_reference_cycles(chat: Any, make_router: Any) -> None:
    """A call's objects are freed as it ends, never left to the garbage collector."""
    up = await chat()
    await calls_leave_no_cycles(make_router([vllm_dep(up)]), "llama")
    await calls_leave_no_cycles(make_router([azure_ai_dep(up, "ai")]), "ai")


async def test_stream_is_the_whole_responses_event_sequence(chat: Any, make_router: Any) -> None:
    up = await chat()
    router = make_router([vllm_dep(up)])
    stream = await router.aresponses(model="llama", input="THINK then say hi", stream=True)
    events = [e.model_dump() async for e in stream]
    for event in events:
        EVENTS.validate_python(event)
    types = [e["type"] for e in events]
    assert types[0] == "response.created" and types[-1] == "response.completed"
    assert "response.reasoning_summary_text.delta" in types
    final = SdkResponse.model_validate(events[-1]["response"])
    assert final.output_text == "[vllm] echo: THINK then say hi"
    assert final.usage is not None and final.usage.output_tokens_details.reasoning_tokens == 3
    assert last_body(up)["stream_options"] == {"include_usage": True}


async def test_tool_call_round_trip(chat: Any, make_router: Any) -> None:
    up = await chat()
    router = make_router([vllm_dep(up)])
    tools = [{"type": "function", "name": "weather", "parameters": {"type": "object"}}]
    first = await router.aresponses(model="llama", input='CALL weather {"city":"Oslo"}',
                                    tools=tools)
    [fc] = first.model_dump()["output"]
    assert fc["type"] == "function_call" and json.loads(fc["arguments"]) == {"city": "Oslo"}
    history = [{"role": "user", "content": 'CALL weather {"city":"Oslo"}'}, fc,
               {"type": "function_call_output", "call_id": fc["call_id"], "output": "sunny"}]
    second = await router.aresponses(model="llama", input=history, tools=tools,
                                     tool_choice="none", parallel_tool_calls=False)
    assert second.output_text == "[vllm] echo: sunny"
    assert [m["role"] for m in last_body(up)["messages"]] == ["user", "assistant", "tool"]


async def test_azure_ai_uses_api_key_and_api_version(chat: Any, make_router: Any) -> None:
    up = await chat("foundry")
    router = make_router([azure_ai_dep(up)])
    answer = await router.aresponses(model="llama", input="hi", max_output_tokens=2)
    assert answer.status == "incomplete" and answer.output_text == "[foundry] echo:"
    path, headers, _ = up.requests[-1]
    assert path == "/models/chat/completions?api-version=2024-05-01-preview"
    assert headers["api-key"] == KEY


async def test_unsupported_parameter_is_refused_before_any_call(
    chat: Any, make_router: Any
) -> None:
    up = await chat()
    router = make_router([vllm_dep(up)])
    with pytest.raises(UnsupportedParameterError, match="tools\\[0\\]: hosted_vllm"):
        await router.aresponses(model="llama", input="x", tools=[{"type": "web_search"}])
    assert up.hits == 0
    dropping = make_router([vllm_dep(up, drop_params=True)])
    answer = await dropping.aresponses(model="llama", input="x", tools=[{"type": "web_search"}])
    assert answer.output_text == "[vllm] echo: x"


async def test_errors_map_to_the_router_classes(chat: Any, make_router: Any) -> None:
    up = await chat(error_style="vllm")
    router = make_router([vllm_dep(up)])
    with pytest.raises(ContextWindowExceededError):
        await router.aresponses(model="llama", input="TOOLONG prompt")
    bad_key = make_router([vllm_dep(up, api_key="wrong")])
    with pytest.raises(AuthenticationError) as info:
        await bad_key.aresponses(model="llama", input="x")
    assert "wrong" not in str(info.value) and KEY not in repr(info.value)


async def test_mixed_group_retries_across_providers_and_cools_down(
    chat: Any, upstreams: Any, make_router: Any
) -> None:
    vllm = await chat()
    (azure,) = await upstreams("azure")
    vllm.faults.fail(429, times=1, retry_after="30")
    router = make_router([vllm_dep(vllm, "mixed"), azure_dep(azure, "mixed")],
                         routing_strategy=InOrder(), num_retries=2)
    answer = await router.aresponses(model="mixed", input="hi")
    assert answer.routing.deployment_id == "azure"
    trail = answer.routing.trail
    assert [a.error for a in trail.attempts] == ["RateLimitError", None]
    [cooling] = router.cooldowns()
    assert cooling.deployment_id == "vllm" and cooling.until - cooling.started == 30.0


async def test_fallback_from_a_failing_chat_group(
    chat: Any, upstreams: Any, make_router: Any
) -> None:
    vllm = await chat()
    (azure,) = await upstreams("azure")
    vllm.faults.fail(500, times=10)
    router = make_router([vllm_dep(vllm, "local"), azure_dep(azure, "cloud")],
                         fallbacks=[{"local": ["cloud"]}], num_retries=1)
    answer = await router.aresponses(model="local", input="hi")
    assert answer.routing.model_group == "cloud" and answer.routing.deployment_id == "azure"
    stream = await router.aresponses(model="local", input="hi", stream=True)
    assert [e.type async for e in stream][-1] == "response.completed"


async def test_stream_failures_mid_way_are_raised(chat: Any, make_router: Any) -> None:
    up = await chat()
    router = make_router([vllm_dep(up)])
    for fault in ("stream_error_times", "cut_times"):
        setattr(up.faults, fault, 1)
        stream = await router.aresponses(model="llama", input="a b c d e f", stream=True)
        seen: list[str] = []
        with pytest.raises(RouterError):
            async for event in stream:
                seen.append(event.type)
        assert "response.completed" not in seen


async def test_garbage_body_is_retried_elsewhere(chat: Any, make_router: Any) -> None:
    a, b = await chat("a"), await chat("b")
    a.faults.garbage_times = 1
    router = make_router([vllm_dep(a, id="a"), vllm_dep(b, id="b")],
                         routing_strategy=InOrder(), num_retries=1)
    answer = await router.aresponses(model="llama", input="x")
    assert answer.routing.deployment_id == "b"


async def test_supported_endpoints_switch_to_native_responses(
    upstreams: Any, make_router: Any
) -> None:
    (native,) = await upstreams("vllm-native")
    dep = {"model_name": "llama",
           "litellm_params": {"model": "hosted_vllm/llama", "api_base": f"{native.url}/v1",
                              "api_key": "k1"},
           "model_info": {"id": "n", "supported_endpoints": ["/v1/chat/completions",
                                                             "/v1/responses"]}}
    router = make_router([dep], optional_pre_call_checks=["responses_api_deployment_check"])
    first = await router.aresponses(model="llama", input="hi")
    assert first.id.startswith("resp_") and native.hits == 1
    follow = await router.aresponses(model="llama", input="more", previous_response_id=first.id)
    assert follow.status == "completed"
    got = await router.aget_responses(first.id)
    assert got.id == first.id


async def test_key_and_base_from_the_environment(
    chat: Any, make_router: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    up = await chat()
    monkeypatch.setenv("HOSTED_VLLM_API_BASE", f"{up.url}/v1")
    monkeypatch.setenv("HOSTED_VLLM_API_KEY", KEY)
    router = make_router([{"model_name": "m", "litellm_params": {"model": "hosted_vllm/x"}}])
    assert (await router.aresponses(model="m", input="hi")).output_text.endswith("hi")


def test_missing_api_base_is_a_config_error() -> None:
    provider = ChatProvider(ClientPool(), VENDORS[0], environ={})
    config = DeploymentConfig.model_validate(
        {"model_name": "m", "litellm_params": {"model": "hosted_vllm/x"}})
    with pytest.raises(ConfigError, match="api_base is required for hosted_vllm/"):
        provider.prepare(config)


def test_every_vendor_prefix_is_a_supported_provider() -> None:
    assert {v.prefix for v in VENDORS} <= set(SUPPORTED_PROVIDERS)


def test_ollama_base_gets_its_openai_path() -> None:
    provider = chat_providers(ClientPool(), {})["ollama_chat"]
    config = DeploymentConfig.model_validate(
        {"model_name": "m", "litellm_params": {"model": "ollama_chat/llama3"}})
    target = provider.prepare(config)
    assert target.base_url == "http://localhost:11434/v1"  # type: ignore[union-attr]


async def test_streamed_tool_call(chat: Any, make_router: Any) -> None:
    up = await chat()
    router = make_router([vllm_dep(up)])
    tools = [{"type": "function", "name": "weather", "parameters": {"type": "object"}}]
    stream = await router.aresponses(model="llama", input='CALL weather {"city":"Oslo"}',
                                     tools=tools, stream=True)
    events = [e.model_dump() async for e in stream]
    for event in events:
        EVENTS.validate_python(event)
    deltas = [e["delta"] for e in events if e["type"] == "response.function_call_arguments.delta"]
    assert "".join(deltas) == '{"city":"Oslo"}'
    [item] = events[-1]["response"]["output"]
    assert item["type"] == "function_call" and item["call_id"] == "call_fake0"


async def test_native_pass_through_streams(upstreams: Any, make_router: Any) -> None:
    (native,) = await upstreams("vllm-native")
    dep = {"model_name": "llama",
           "litellm_params": {"model": "hosted_vllm/llama", "api_base": f"{native.url}/v1",
                              "api_key": "k1"},
           "model_info": {"id": "n", "supported_endpoints": ["/v1/responses"]}}
    router = make_router([dep])
    stream = await router.aresponses(model="llama", input="hi", stream=True)
    assert [e.type async for e in stream][-1] == "response.completed"
    assert native.requests[-1].path == "/v1/responses"


async def test_a_litellm_config_loads_unchanged(
    chat: Any, make_router: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    up = await chat()
    monkeypatch.setenv("MY_VLLM_KEY", KEY)
    config = {
        "model_list": [
            {"model_name": "llama", "litellm_params": {
                "model": "hosted_vllm/meta/llama-3", "api_base": f"{up.url}/v1",
                "api_key": "os.environ/MY_VLLM_KEY", "drop_params": True}},
            {"model_name": "llama", "litellm_params": {
                "model": "azure_ai/Llama-3.3-70B", "api_base": f"{up.url}/models",
                "api_key": "os.environ/MY_VLLM_KEY"}},
        ],
        "router_settings": {"routing_strategy": "simple-shuffle", "num_retries": 2},
    }
    router = make_router(config=config)
    for _ in range(4):
        assert (await router.aresponses(model="llama", input="hi")).status == "completed"


async def test_refusal_plain_and_streamed(chat: Any, make_router: Any) -> None:
    up = await chat()
    router = make_router([vllm_dep(up)])
    plain = await router.aresponses(model="llama", input="REFUSE please")
    assert plain.model_dump()["output"][0]["content"][0]["type"] == "refusal"
    stream = await router.aresponses(model="llama", input="REFUSE please", stream=True)
    events = [e.model_dump() async for e in stream]
    for event in events:
        EVENTS.validate_python(event)
    assert events[-1]["response"]["output"][0]["content"][0]["type"] == "refusal"


@pytest.mark.parametrize(("api_base", "api_version", "base", "query"), [
    ("https://res.services.ai.azure.com", None, "https://res.services.ai.azure.com/models",
     {"api-version": "2024-05-01-preview"}),
    ("https://res.services.ai.azure.com/models/", "2025-01-01", "https://res.services.ai.azure.com/models",
     {"api-version": "2025-01-01"}),
    ("https://llama.eastus2.models.ai.azure.com", None,
     "https://llama.eastus2.models.ai.azure.com", None),
])
def test_azure_ai_url_shapes(api_base: str, api_version: str | None, base: str,
                             query: dict[str, str] | None) -> None:
    provider = chat_providers(ClientPool(), {})["azure_ai"]
    params: dict[str, Any] = {"model": "azure_ai/x", "api_base": api_base, "api_key": KEY}
    if api_version:
        params["api_version"] = api_version
    config = DeploymentConfig.model_validate({"model_name": "m", "litellm_params": params})
    target = provider.prepare(config)
    assert target.base_url == base and target.query == query  # type: ignore[union-attr]
    assert target.headers["api-key"] == KEY and KEY not in repr(target)


async def test_output_items_of_a_returned_response_go_back_as_input(
    chat: Any, make_router: Any, upstreams: Any
) -> None:
    """``input=[..., *first.output, ...]`` as with the OpenAI SDK: the router's
    ``Record`` items are sent as the JSON they hold, translated or native."""
    vllm = await chat("vllm")
    (native,) = await upstreams("native")
    router = make_router([vllm_dep(vllm), openai_dep(native, model_name="native")])
    replies = {}
    for model in ("llama", "native"):
        first = await router.aresponses(model=model, input="Hello")
        replies[model] = first.output_text
        turn = [{"role": "user", "content": "Hello"}, *first.output,
                {"role": "user", "content": "More"}]
        second = await router.aresponses(model=model, input=turn)
        assert second.output_text
    sent = last_body(vllm)["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert replies["llama"] in str(sent[1]["content"])
    assert native.requests[-1].json["input"][1]["type"] == "message"
