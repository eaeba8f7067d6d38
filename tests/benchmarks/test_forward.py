"""benchmarks/forward.py, the floor row of proxy.py: a working proxy, plain and streamed,
so the floor it reports is the cost of forwarding, not of failing fast."""

from __future__ import annotations

import asyncio

import openai

from benchmarks.proxy import UPSTREAM_KEY, Floor
from router.testing import UpstreamProcess


async def test_the_floor_forwards_plain_and_streamed_creates() -> None:
    with UpstreamProcess("floor", api_key=UPSTREAM_KEY) as up:
        floor = await asyncio.to_thread(Floor, up.url)
        try:
            async with openai.AsyncOpenAI(base_url=f"{floor.url}/v1", api_key="unused",
                                          max_retries=0) as client:
                made = await client.responses.create(model="gpt-4o", input="Hello")
                events = [e.type async for e in await client.responses.create(
                    model="gpt-4o", input="Hello", stream=True)]
                held = await client.responses.create(
                    model="gpt-4o", input="More", previous_response_id=made.id)
        finally:
            await asyncio.to_thread(floor.stop)
    assert made.status == "completed" and made.output_text
    assert events[0] == "response.created" and events[-1] == "response.completed"
    assert held.previous_response_id == made.id  # the upstream held the first response
