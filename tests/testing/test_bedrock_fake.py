"""The fake Bedrock is as strict as the real one: signatures, shapes, conversation rules.

Requests here are signed with botocore directly (not through the router), so
each rule is shown to refuse what Bedrock refuses, with Bedrock's exception
name, status and words.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.eventstream import EventStreamBuffer

from router.testing.bedrock import BedrockFake, event_message, thinking_signature

KEY, SECRET = "AKIDFAKEBEDROCK", "fake-secret"
MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
HELLO = {"messages": [{"role": "user", "content": [{"text": "hello"}]}]}


@pytest.fixture
async def fake() -> AsyncIterator[BedrockFake]:
    async with BedrockFake("f", models=[MODEL]) as started:
        yield started


def signed(url: str, body: bytes, secret: str = SECRET) -> dict[str, str]:
    request = AWSRequest(method="POST", url=url, data=body,
                         headers={"content-type": "application/json"})
    SigV4Auth(Credentials(KEY, secret), "bedrock", "us-east-1").add_auth(request)
    return dict(request.headers.items())


async def post(fake: BedrockFake, body: Any, *, op: str = "converse", model: str = MODEL,
               sent: bytes | None = None, headers: dict[str, str] | None = None
               ) -> httpx.Response:
    url = f"{fake.url}/model/{model}/{op}"
    raw = json.dumps(body).encode()
    async with httpx.AsyncClient() as client:
        return await client.post(url, content=sent if sent is not None else raw,
                                 headers=headers if headers is not None else signed(url, raw))


def refused(answer: httpx.Response, status: int, kind: str, words: str) -> None:
    assert answer.status_code == status, answer.text
    assert answer.headers["x-amzn-errortype"].startswith(f"{kind}:")
    assert words in answer.json()["message"]


async def test_a_signed_request_is_answered(fake: BedrockFake) -> None:
    answer = await post(fake, HELLO)
    assert answer.status_code == 200
    body = answer.json()
    assert body["output"]["message"]["content"] == [{"text": "[f] hello"}]
    assert body["stopReason"] == "end_turn" and body["usage"]["outputTokens"] == 2


async def test_signature_failures(fake: BedrockFake) -> None:
    raw = json.dumps(HELLO).encode()
    url = f"{fake.url}/model/{MODEL}/converse"
    altered = raw.replace(b"hello", b"HELLO")
    refused(await post(fake, HELLO, sent=altered, headers=signed(url, raw)), 403,
            "InvalidSignatureException", "signature we calculated does not match")
    refused(await post(fake, HELLO, headers=signed(url, raw, "other-secret")), 403,
            "InvalidSignatureException", "does not match")
    refused(await post(fake, HELLO, headers={"content-type": "application/json"}), 403,
            "MissingAuthenticationTokenException", "Missing Authentication Token")
    refused(await post(fake, HELLO, headers={"authorization": "Bearer x"}), 403,
            "IncompleteSignatureException", "AWS4-HMAC-SHA256")


async def test_stale_dates_are_refused() -> None:
    async with BedrockFake("f", clock=lambda: 0.0) as stale:
        refused(await post(stale, HELLO), 403, "InvalidSignatureException",
                "Signature expired")


@pytest.mark.parametrize(("body", "words"), [
    ({**HELLO, "temprature": 1}, 'Unknown parameter in input: "temprature"'),
    ({"messages": [{"role": "user", "content": [{"text": "a", "image": {}}]}]},
     "tagged union"),
    ({"messages": [{"role": "user"}]}, 'Missing required parameter in messages[0]: "content"'),
    ({"messages": [{"role": "assistant", "content": [{"text": "a"}]}]},
     "must start with a user message"),
    ({"messages": [{"role": "user", "content": [{"text": "a"}]},
                   {"role": "user", "content": [{"text": "b"}]}]}, "must alternate"),
    ({"messages": [{"role": "user", "content": [{"text": "  "}]}]}, "is blank"),
    ({"messages": [{"role": "user", "content": [{"image": {
        "format": "png", "source": {"bytes": "not base64!"}}}]}]}, "not valid base64"),
    ({"messages": [{"role": "user", "content": [{"text": "a"}]},
                   {"role": "assistant", "content": [{"toolUse": {
                       "toolUseId": "t1", "name": "f", "input": {}}}]},
                   {"role": "user", "content": [{"toolResult": {
                       "toolUseId": "t1", "content": [{"text": "r"}]}}]}]},
     "toolConfig field must be defined"),
    ({"messages": [{"role": "user", "content": [{"text": "a"}]},
                   {"role": "assistant", "content": [{"reasoningContent": {"reasoningText": {
                       "text": "hm", "signature": "forged"}}}, {"text": "b"}]},
                   {"role": "user", "content": [{"text": "c"}]}]},
     "Invalid `signature`"),
    ({**HELLO, "inferenceConfig": {"temperature": 1.5}}, "not in [0, 1]"),
    ({**HELLO, "inferenceConfig": {"maxTokens": 1000},
      "additionalModelRequestFields": {"thinking": {"type": "enabled",
                                                    "budget_tokens": 1024}}},
     "must be greater than `thinking.budget_tokens`"),
])
async def test_malformed_requests_are_validation_exceptions(
    fake: BedrockFake, body: dict[str, Any], words: str
) -> None:
    refused(await post(fake, body), 400, "ValidationException", words)


NOVA_2 = "us.amazon.nova-2-lite-v1:0"


@pytest.mark.parametrize(("model", "extra", "words"), [
    (MODEL, {"reasoningConfig": {"type": "enabled", "maxReasoningEffort": "low"}},
     "extraneous key [reasoningConfig]"),
    (NOVA_2, {"thinking": {"type": "enabled", "budget_tokens": 2048}},
     "extraneous key [thinking]"),
    (NOVA_2, {"reasoningConfig": {"type": "enabled", "maxReasoningEffort": "max"}},
     "maxReasoningEffort"),
])
async def test_each_family_reasons_in_its_own_field(
    fake: BedrockFake, model: str, extra: dict[str, Any], words: str
) -> None:
    body = {**HELLO, "additionalModelRequestFields": extra}
    refused(await post(fake, body, model=model), 400, "ValidationException", words)


async def test_thinking_signed_by_the_fake_is_accepted_back(fake: BedrockFake) -> None:
    thought = "Thinking about: a"
    body = {"messages": [
        {"role": "user", "content": [{"text": "a"}]},
        {"role": "assistant", "content": [{"reasoningContent": {"reasoningText": {
            "text": thought, "signature": thinking_signature(thought)}}}, {"text": "b"}]},
        {"role": "user", "content": [{"text": "c"}]}]}
    assert (await post(fake, body)).status_code == 200


async def test_unknown_models_and_too_long_inputs(fake: BedrockFake) -> None:
    refused(await post(fake, HELLO, model="meta.llama9"), 404, "ResourceNotFoundException",
            "Could not resolve the foundation model")
    fake._context_words = 1
    refused(await post(fake, HELLO), 400, "ValidationException", "Input is too long")


async def test_stream_frames_decode_with_botocore(fake: BedrockFake) -> None:
    answer = await post(fake, HELLO, op="converse-stream")
    assert answer.headers["content-type"] == "application/vnd.amazon.eventstream"
    buffer = EventStreamBuffer()
    buffer.add_data(answer.content)
    frames = [(m.headers[":event-type"], json.loads(m.payload)) for m in buffer]
    names = [name for name, _ in frames]
    assert names == ["messageStart", "contentBlockDelta", "contentBlockStop", "messageStop",
                     "metadata"]
    assert all("p" in payload for _, payload in frames)  # Bedrock's padding
    assert frames[1][1]["delta"] == {"text": "[f] hello"}


def test_event_message_matches_the_documented_frame() -> None:
    frame = event_message({":message-type": "event", ":event-type": "x"}, b'{"a":1}')
    buffer = EventStreamBuffer()
    buffer.add_data(frame[:10])
    assert list(buffer) == []  # a frame cut short waits for the rest
    buffer.add_data(frame[10:])
    (message,) = list(buffer)
    assert message.headers == {":message-type": "event", ":event-type": "x"}
    assert message.payload == b'{"a":1}'
    assert int.from_bytes(frame[:4], "big") == len(frame)


async def test_runs_in_its_own_process() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "router.testing.bedrock", "--port", "0",
        stdout=asyncio.subprocess.PIPE)
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 20)
        assert line.startswith(b"READY http://127.0.0.1:")
        url = line.split()[1].decode()
        raw = json.dumps(HELLO).encode()
        target = f"{url}/model/{MODEL}/converse"
        async with httpx.AsyncClient() as client:
            answer = await client.post(target, content=raw, headers=signed(target, raw))
        assert answer.status_code == 200
    finally:
        process.terminate()
        await process.wait()
