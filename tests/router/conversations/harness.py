"""One loopback fake per translated provider, behind one shape, for conversation tests.

``start(kind, name)`` returns a :class:`Fake`: the running fake, a deployment
entry for ``model_list`` and ``bodies()``, the native request bodies it
received, so a test can read the history a follow-up actually carried.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from router.testing.anthropic import AnthropicUpstream
from router.testing.bedrock import BedrockFake
from router.testing.chat import ChatUpstream
from router.testing.gemini import GeminiUpstream

KEY = "sk-conv-do-not-leak-7f1"
AWS_KEY, AWS_SECRET = "AKIDCONVERSATIONS", "conv-secret"
KINDS = ("chat", "anthropic", "gemini", "bedrock")

Json = dict[str, Any]


@dataclass
class Fake:
    kind: str
    name: str
    server: Any
    group: str

    def deployment(self, group: str | None = None) -> Json:
        g = group or self.group
        s = self.server
        info = {"id": self.name}
        if self.kind == "chat":
            params = {"model": "hosted_vllm/llama", "api_base": f"{s.url}/v1", "api_key": KEY}
        elif self.kind == "anthropic":
            params = {"model": "anthropic/claude-sonnet-4-5", "api_base": s.url, "api_key": KEY}
        elif self.kind == "gemini":
            params = {"model": "gemini/gemini-2.5-flash", "api_base": s.url,
                      "api_key": s.api_key}
        else:
            params = {"model": "bedrock/us.anthropic.claude-sonnet-4-20250514-v1:0",
                      "aws_access_key_id": AWS_KEY, "aws_secret_access_key": AWS_SECRET,
                      "aws_region_name": s.region, "aws_bedrock_runtime_endpoint": s.url}
        return {"model_name": g, "litellm_params": params, "model_info": info}

    def bodies(self) -> list[Json]:
        s = self.server
        if self.kind == "chat":
            return [body for _, _, body in s.requests]
        if self.kind == "anthropic":
            return [r.json for r in s.requests]
        if self.kind == "gemini":
            return [r["body"] for r in s.requests]
        return [r.json for r in s.requests]


def texts(body: Any) -> list[str]:
    """Every text the native body carries, in order (message texts of any provider)."""
    found: list[str] = []

    def walk(value: Any, key: str | None) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, k)
        elif isinstance(value, list):
            for v in value:
                walk(v, key)
        elif isinstance(value, str) and key in ("text", "content"):
            found.append(value)

    for field in ("messages", "contents"):  # the conversation, not the system prompt
        if isinstance(body, dict) and field in body:
            walk([m for m in body[field]
                  if not (isinstance(m, dict) and m.get("role") in ("system", "developer"))],
                 None)
    return found


async def _start(kind: str, name: str) -> tuple[Any, Callable[[], Awaitable[None]]]:
    if kind == "chat":
        chat = ChatUpstream(name, api_key=KEY)
        await chat.__aenter__()
        return chat, lambda: chat.__aexit__(None, None, None)
    if kind == "anthropic":
        claude = AnthropicUpstream(name, api_key=KEY)
        await claude.__aenter__()
        return claude, lambda: claude.__aexit__(None, None, None)
    if kind == "gemini":
        gemini = GeminiUpstream(name)
        await gemini.__aenter__()
        return gemini, lambda: gemini.__aexit__(None, None, None)
    bedrock = BedrockFake(name, keys={AWS_KEY: AWS_SECRET})
    await bedrock.start()
    return bedrock, bedrock.stop


@pytest.fixture
async def fakes() -> AsyncIterator[Callable[..., Awaitable[Fake]]]:
    stops: list[Callable[[], Awaitable[None]]] = []

    async def start(kind: str, name: str | None = None, group: str = "m") -> Fake:
        server, stop = await _start(kind, name or kind)
        stops.append(stop)
        return Fake(kind, name or kind, server, group)

    yield start
    for stop in reversed(stops):
        await stop()


def pairs(items: list[str]) -> Iterator[tuple[str, str]]:
    return zip(items[::2], items[1::2], strict=False)
