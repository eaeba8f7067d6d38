"""One-off calls without a model_list (router/oneoff.py), against loopback fakes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

import router as face
from router.errors import AuthenticationError
from router.oneoff import OneOffStream, aresponses, responses
from router.testing.chat import ChatUpstream

KEY = "k-oneoff"


@pytest.fixture
async def vllm() -> AsyncIterator[ChatUpstream]:
    async with ChatUpstream("vllm", api_key=KEY) as up:
        yield up


def test_exported_from_the_package() -> None:
    assert face.aresponses is aresponses and face.responses is responses


async def test_keys_and_base_from_the_environment(
    vllm: ChatUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOSTED_VLLM_API_BASE", f"{vllm.url}/v1")
    monkeypatch.setenv("HOSTED_VLLM_API_KEY", KEY)
    answer = await aresponses(model="hosted_vllm/llama", input="hi", temperature=0.5)
    assert answer.output_text == "[vllm] echo: hi"
    assert vllm.requests[-1][2]["temperature"] == 0.5
    assert vllm.requests[-1][2]["model"] == "llama"


async def test_keyword_credentials_win_over_the_environment(
    vllm: ChatUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOSTED_VLLM_API_KEY", "wrong")
    answer = await aresponses(model="hosted_vllm/llama", input="hi",
                              api_base=f"{vllm.url}/v1", api_key=KEY)
    assert answer.status == "completed"
    with pytest.raises(AuthenticationError):
        await aresponses(model="hosted_vllm/llama", input="hi", api_base=f"{vllm.url}/v1")


async def test_openai_from_its_environment(upstreams: Any,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    (up,) = await upstreams("native")
    monkeypatch.setenv("OPENAI_API_KEY", "k1")
    monkeypatch.setenv("OPENAI_BASE_URL", f"{up.url}/v1")
    answer = await aresponses(model="openai/gpt-4o", input="hi")
    assert answer.status == "completed" and up.hits == 1


async def test_a_stream_closes_its_router_at_the_end(
    vllm: ChatUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOSTED_VLLM_API_BASE", f"{vllm.url}/v1")
    monkeypatch.setenv("HOSTED_VLLM_API_KEY", KEY)
    stream = await aresponses(model="hosted_vllm/llama", input="hi", stream=True)
    assert isinstance(stream, OneOffStream)
    types = [event.type async for event in stream]
    assert types[-1] == "response.completed" and stream.response is not None
    assert stream._router is None  # closed
    early = await aresponses(model="hosted_vllm/llama", input="hi", stream=True)
    async with early:
        await early.__anext__()
    assert early._router is None


def test_sync_twin(threaded_upstreams: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    (up,) = threaded_upstreams("native")
    monkeypatch.setenv("OPENAI_API_KEY", "k1")
    monkeypatch.setenv("OPENAI_API_BASE", f"{up.url}/v1")
    assert responses(model="gpt-4o", input="hi").status == "completed"
    with responses(model="gpt-4o", input="hi", stream=True) as stream:
        types = [event.type for event in stream]
    assert types[-1] == "response.completed"
