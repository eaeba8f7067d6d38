"""Checks of Chat Completions requests and answers against the ``openai`` SDK's own types.

The SDK's request types are TypedDicts, which pydantic validates without
rejecting unknown keys, so key sets are compared to their annotations too.
"""

from __future__ import annotations

from typing import Any

from openai.types.chat import (
    ChatCompletion,
    ChatCompletionAssistantMessageParam,
    ChatCompletionChunk,
    ChatCompletionContentPartParam,
    ChatCompletionFunctionToolParam,
    ChatCompletionMessageParam,
    ChatCompletionSystemMessageParam,
    ChatCompletionToolMessageParam,
    ChatCompletionUserMessageParam,
)
from openai.types.chat import completion_create_params as create
from pydantic import TypeAdapter

_MESSAGE: TypeAdapter[Any] = TypeAdapter(ChatCompletionMessageParam)
_PART: TypeAdapter[Any] = TypeAdapter(ChatCompletionContentPartParam)
_TOOL: TypeAdapter[Any] = TypeAdapter(ChatCompletionFunctionToolParam)
_FORMAT: TypeAdapter[Any] = TypeAdapter(create.ResponseFormat)
_BODY_KEYS = set(create.CompletionCreateParamsBase.__annotations__) | {"stream"}
_ROLE_KEYS = {
    "system": set(ChatCompletionSystemMessageParam.__annotations__),
    "user": set(ChatCompletionUserMessageParam.__annotations__),
    "assistant": set(ChatCompletionAssistantMessageParam.__annotations__),
    "tool": set(ChatCompletionToolMessageParam.__annotations__),
}


def check_request(body: dict[str, Any]) -> None:
    """Raise unless ``body`` is a Chat Completions create request the SDK would send."""
    assert set(body) <= _BODY_KEYS, set(body) - _BODY_KEYS
    for message in body["messages"]:
        assert set(message) <= _ROLE_KEYS[message["role"]], message
        _MESSAGE.validate_python(message)
        if isinstance(message.get("content"), list):
            for part in message["content"]:
                _PART.validate_python(part)
    for tool in body.get("tools", ()):
        _TOOL.validate_python(tool)
    if "response_format" in body:
        _FORMAT.validate_python(body["response_format"])


def check_completion(body: dict[str, Any]) -> None:
    ChatCompletion.model_validate(body, strict=False)


def check_chunk(body: dict[str, Any]) -> None:
    ChatCompletionChunk.model_validate(body, strict=False)
