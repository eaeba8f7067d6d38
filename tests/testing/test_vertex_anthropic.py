"""The fake Vertex AI's Claude routes (router/testing/vertex_anthropic.py) refuse what Vertex
refuses, in Vertex's and Anthropic's shapes, and answer as Anthropic's API otherwise."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from router.testing.gemini import GeminiUpstream

PATH = "/v1/projects/p/locations/us-east5/publishers/anthropic/models/claude-x@1"
GOOD = {"anthropic_version": "vertex-2023-10-16", "max_tokens": 50,
        "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
async def fake() -> AsyncIterator[GeminiUpstream]:
    async with GeminiUpstream("vx") as up:
        yield up


async def post(fake: GeminiUpstream, verb: str, body: Any, token: str | None = None) -> Any:
    headers = {"authorization": f"Bearer {token or fake.issue()}"}
    async with httpx.AsyncClient() as client:
        return await client.post(f"{fake.url}{PATH}:{verb}", json=body, headers=headers)


async def test_a_good_call_is_answered_as_anthropic_answers(fake: GeminiUpstream) -> None:
    answer = await post(fake, "rawPredict", GOOD)
    assert answer.status_code == 200
    message = answer.json()
    assert message["type"] == "message" and message["model"] == "claude-x@1"
    assert message["content"] == [{"type": "text", "text": "[vx] hi"}]
    streamed = await post(fake, "streamRawPredict", {**GOOD, "stream": True})
    assert streamed.headers["content-type"].startswith("text/event-stream")
    assert "event: message_stop" in streamed.text


@pytest.mark.parametrize(("verb", "body", "says"), [
    ("rawPredict", {**GOOD, "model": "claude-x@1"}, "model: Extra inputs"),
    ("rawPredict", {k: v for k, v in GOOD.items() if k != "anthropic_version"},
     "anthropic_version"),
    ("rawPredict", {**GOOD, "anthropic_version": "2023-06-01"}, "anthropic_version"),
    ("rawPredict", {**GOOD, "stream": True}, "stream"),
    ("streamRawPredict", GOOD, "stream"),
    ("rawPredict", {**GOOD, "messages": [{"role": "user", "content": [{"type": "nope"}]}]},
     "messages"),
])
async def test_what_vertex_refuses_is_an_anthropic_400(
    fake: GeminiUpstream, verb: str, body: Any, says: str
) -> None:
    answer = await post(fake, verb, body)
    assert answer.status_code == 400
    error = answer.json()
    assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
    assert says in error["error"]["message"]


async def test_an_unknown_verb_and_a_bad_token_are_googles_errors(fake: GeminiUpstream) -> None:
    missing = await post(fake, "predict", GOOD)
    assert missing.status_code == 404 and missing.json()["error"]["status"] == "NOT_FOUND"
    refused = await post(fake, "rawPredict", GOOD, token="ya29.made-up")
    assert refused.status_code == 401
    assert refused.json()["error"]["status"] == "UNAUTHENTICATED"
    assert fake.claude.bodies == []  # neither reached Claude
