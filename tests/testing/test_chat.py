"""The fake Chat Completions server (router/testing/chat.py) is as strict as a real one,
and answers in the shapes of the ``openai`` SDK's Chat Completions types."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from router.testing.chat import ChatUpstream
from tests.providers.chat_types import check_chunk, check_completion

KEY = "k-chat"
OK = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
async def server() -> AsyncIterator[tuple[ChatUpstream, httpx.AsyncClient]]:
    async with ChatUpstream("f", api_key=KEY, models=["m"]) as up, httpx.AsyncClient(
        base_url=up.url, headers={"authorization": f"Bearer {KEY}"}
    ) as client:
        yield up, client


async def post(client: httpx.AsyncClient, body: Any, **kw: Any) -> httpx.Response:
    return await client.post("/v1/chat/completions", json=body, **kw)


async def test_answers_validate_as_sdk_types(server: Any) -> None:
    _, client = server
    answer = await post(client, {**OK, "messages": [{"role": "user", "content": "THINK x"}]})
    check_completion(answer.json())
    assert answer.json()["choices"][0]["message"]["reasoning_content"]
    streamed = await post(client, {**OK, "stream": True,
                                   "stream_options": {"include_usage": True}})
    lines = [ln[6:] for ln in streamed.text.splitlines() if ln.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    chunks = [json.loads(line) for line in lines[:-1]]
    for chunk in chunks:
        check_chunk(chunk)
    assert chunks[-1]["usage"]["total_tokens"] > 0 and chunks[-1]["choices"] == []


@pytest.mark.parametrize(("body", "status", "fragment"), [
    ({**OK, "input": "x"}, 400, "Unrecognized request argument supplied: input"),
    ({**OK, "messages": [{"role": "robot", "content": "x"}]}, 400, "messages[0].role"),
    ({**OK, "messages": [{"role": "user", "content": [{"type": "input_text"}]}]}, 400,
     "content[0].type"),
    ({**OK, "messages": [{"role": "tool", "content": "x"}]}, 400, "tool_call_id"),
    ({**OK, "stream_options": {"include_usage": True}}, 400, "stream_options"),
    ({**OK, "model": "nope"}, 404, "does not exist"),
    ({**OK, "tool_choice": "none"}, 400, "only allowed when 'tools' are specified"),
])
async def test_malformed_requests_get_openai_error_bodies(
    server: Any, body: Any, status: int, fragment: str
) -> None:
    _, client = server
    answer = await post(client, body)
    assert answer.status_code == status
    assert fragment in answer.json()["error"]["message"]


async def test_auth_is_checked(server: Any) -> None:
    _, client = server
    answer = await post(client, OK, headers={"authorization": "Bearer nope"})
    assert answer.status_code == 401 and answer.json()["error"]["code"] == "invalid_api_key"
    azure = await client.post("/models/chat/completions", json=OK,
                              headers={"authorization": "", "api-key": KEY})
    assert azure.status_code == 400  # api-version is required there
    azure = await client.post("/models/chat/completions?api-version=2024-05-01-preview",
                              json=OK, headers={"authorization": "", "api-key": KEY})
    assert azure.status_code == 200


async def test_injected_status_with_retry_after(server: Any) -> None:
    up, client = server
    up.faults.fail(429, retry_after="7")
    answer = await post(client, OK)
    assert answer.status_code == 429 and answer.headers["retry-after"] == "7"
    assert (await post(client, OK)).status_code == 200


def test_runs_in_its_own_process() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "router.testing.chat", "--port", "0"],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().split()
        assert line[0] == "READY"
        answer = httpx.post(f"{line[1]}/v1/chat/completions", json=OK, timeout=10)
        assert answer.json()["choices"][0]["message"]["content"] == "[chat] echo: hi"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
