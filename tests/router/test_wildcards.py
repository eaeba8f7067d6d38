"""Wildcard model groups (router/wildcards.py), through the Router against loopback fakes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from router.errors import ConfigError, UnknownModelError
from router.testing.chat import ChatUpstream
from router.wildcards import concrete_model
from tests.conftest import InOrder

KEY = "k-wild"


@pytest.fixture
async def vllm() -> AsyncIterator[ChatUpstream]:
    async with ChatUpstream("vllm", api_key=KEY) as up:
        yield up


def dep(up: ChatUpstream, model_name: str, model: str, id: str) -> dict[str, Any]:
    return {"model_name": model_name,
            "litellm_params": {"model": model, "api_base": f"{up.url}/v1", "api_key": KEY},
            "model_info": {"id": id}}


def sent_model(up: ChatUpstream) -> str:
    model: str = up.requests[-1][2]["model"]
    return model


async def test_a_provider_wildcard_serves_any_model_of_it(
    vllm: ChatUpstream, make_router: Any
) -> None:
    router = make_router([dep(vllm, "hosted_vllm/*", "hosted_vllm/*", "wild")])
    answer = await router.aresponses(model="hosted_vllm/meta/llama-3", input="hi")
    assert sent_model(vllm) == "meta/llama-3"
    assert answer.routing.deployment_id == "wild"
    assert answer.routing.model_group == "hosted_vllm/*"
    stream = await router.aresponses(model="hosted_vllm/qwen", input="hi", stream=True)
    assert [e.type async for e in stream][-1] == "response.completed"
    assert sent_model(vllm) == "qwen"
    again = router.deployments("hosted_vllm/qwen")
    assert again[0] is router.deployments("hosted_vllm/qwen")[0]


async def test_exact_names_win_then_the_most_specific_pattern(
    vllm: ChatUpstream, make_router: Any
) -> None:
    router = make_router([
        dep(vllm, "*", "hosted_vllm/*", "any"),
        dep(vllm, "team/*", "hosted_vllm/team-*", "team"),
        dep(vllm, "team/special", "hosted_vllm/special-model", "exact"),
    ])
    exact = await router.aresponses(model="team/special", input="x")
    assert exact.routing.deployment_id == "exact" and sent_model(vllm) == "special-model"
    team = await router.aresponses(model="team/qwen", input="x")
    assert team.routing.deployment_id == "team" and sent_model(vllm) == "team-qwen"
    other = await router.aresponses(model="mistral-7b", input="x")
    assert other.routing.deployment_id == "any" and sent_model(vllm) == "mistral-7b"


async def test_model_star_takes_the_provider_from_the_request(
    vllm: ChatUpstream, make_router: Any
) -> None:
    router = make_router([dep(vllm, "*", "*", "passthrough")])
    answer = await router.aresponses(model="hosted_vllm/llama", input="x")
    assert answer.routing.provider == "hosted_vllm" and sent_model(vllm) == "llama"
    with pytest.raises(UnknownModelError):
        await router.aresponses(model="nosuch/llama", input="x")


async def test_a_name_no_pattern_matches_is_unknown(vllm: ChatUpstream, make_router: Any) -> None:
    router = make_router([dep(vllm, "hosted_vllm/*", "hosted_vllm/*", "wild")])
    with pytest.raises(UnknownModelError):
        await router.aresponses(model="groq/llama", input="x")


async def test_cooldowns_belong_to_the_wildcard_deployment(
    vllm: ChatUpstream, make_router: Any
) -> None:
    async with ChatUpstream("b", api_key=KEY) as other:
        router = make_router([dep(vllm, "hosted_vllm/*", "hosted_vllm/*", "a"),
                              dep(other, "hosted_vllm/*", "hosted_vllm/*", "b")],
                             routing_strategy=InOrder(), num_retries=1)
        vllm.faults.fail(429, times=1, retry_after="30")
        first = await router.aresponses(model="hosted_vllm/x", input="x")
        assert first.routing.deployment_id == "b"
        assert [c.deployment_id for c in router.cooldowns()] == ["a"]
        second = await router.aresponses(model="hosted_vllm/y", input="x")
        assert second.routing.deployment_id == "b" and vllm.hits == 1


async def test_a_fallback_may_name_a_model_a_wildcard_serves(
    vllm: ChatUpstream, make_router: Any
) -> None:
    async with ChatUpstream("broken", api_key=KEY) as broken:
        broken.faults.fail(500, times=10)
        router = make_router([dep(broken, "local", "hosted_vllm/small", "broken"),
                              dep(vllm, "hosted_vllm/*", "hosted_vllm/*", "wild")],
                             fallbacks=[{"local": ["hosted_vllm/big"]}], num_retries=0)
        answer = await router.aresponses(model="local", input="x")
        assert answer.routing.deployment_id == "wild" and sent_model(vllm) == "big"
    with pytest.raises(ConfigError, match="unknown model group 'groq/big'"):
        make_router([dep(vllm, "hosted_vllm/*", "hosted_vllm/*", "wild")],
                    fallbacks=[{"hosted_vllm/*": ["groq/big"]}])


@pytest.mark.parametrize(("model", "name", "segments", "expected"), [
    ("anthropic/*", "anthropic/claude-3", ("claude-3",), "anthropic/claude-3"),
    ("openai/fo::*:static::*", "fo::hi:static::yo", ("hi", "yo"), "openai/fo::hi:static::yo"),
    ("bedrock/meta.llama3*", "x-meta.llama3-70b", ("x-", "-70b"), "bedrock/meta.llama3-70b"),
    ("openai/gpt-4o", "gpt-anything", ("anything",), "openai/gpt-4o"),
    ("*", "groq/llama", ("groq/llama",), "groq/llama"),
])
def test_concrete_model(model: str, name: str, segments: tuple[str, ...], expected: str) -> None:
    assert concrete_model(model, name, segments) == expected
