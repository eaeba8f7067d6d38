"""The fake upstream's tools and options, driven by the official SDK (testing/features.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest

from router.testing import Upstream


@pytest.fixture
async def client() -> AsyncIterator[openai.AsyncOpenAI]:
    async with Upstream("east") as up:
        sdk = openai.AsyncOpenAI(base_url=f"{up.url}/v1", api_key="k1", max_retries=0)
        yield sdk
        await sdk.close()


async def test_prompt_without_input_is_accepted(client: openai.AsyncOpenAI) -> None:
    made = await client.responses.create(
        model="gpt-4o", prompt={"id": "pmpt_1", "version": "3", "variables": {"x": "y"}})
    assert made.prompt is not None and made.prompt.version == "3"
    assert made.output_text.endswith("prompt pmpt_1")


async def test_include_on_retrieve_through_the_sdk(client: openai.AsyncOpenAI) -> None:
    made = await client.responses.create(model="gpt-4o", input="hi")
    got = await client.responses.retrieve(made.id, include=["message.output_text.logprobs"])
    part = got.output[0].content[0]  # type: ignore[union-attr]
    assert part.logprobs == []  # type: ignore[union-attr]
    with pytest.raises(openai.BadRequestError, match="include"):
        await client.responses.retrieve(made.id, include=["nope"])  # type: ignore[list-item]


async def test_image_generation_stream_through_the_sdk(client: openai.AsyncOpenAI) -> None:
    stream = await client.responses.create(
        model="gpt-4o", input="owl", stream=True,
        tools=[{"type": "image_generation", "partial_images": 3}])
    kinds = [event.type async for event in stream]
    assert kinds.count("response.image_generation_call.partial_image") == 3


@pytest.mark.parametrize(("tools", "extra", "param"), [
    ([{"type": "image_generation", "partial_images": 4}], {}, "tools[0].partial_images"),
    ([{"type": "mcp", "server_label": "x"}], {}, "tools[0]"),
    ([{"type": "computer_use_preview", "display_width": 1, "display_height": 1,
       "environment": "browser"}], {}, "truncation"),
    ([{"type": "custom", "name": "c",
       "format": {"type": "grammar", "syntax": "ebnf", "definition": "x"}}], {},
     "tools[0].format"),
    ([{"type": "custom", "name": "c",
       "format": {"type": "grammar", "syntax": "regex", "definition": "("}}], {},
     "tools[0].format.definition"),
])
async def test_what_openai_refuses_is_a_400_naming_the_field(
    client: openai.AsyncOpenAI, tools: list[Any], extra: dict[str, Any], param: str,
) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        await client.responses.create(model="gpt-4o", input="x", tools=tools, **extra)
    assert info.value.param == param
