"""Claude on Vertex AI: Anthropic's Messages API as Vertex serves it.

Vertex takes the Messages body with two changes (Anthropic's "Claude on
Vertex AI"). ``model`` is not in the body but in the URL
(``.../publishers/anthropic/models/{model}:rawPredict``, and
``:streamRawPredict`` for a stream). ``anthropic_version`` is a body field,
``vertex-2023-10-16``, not a header. Answers and streams are Anthropic's, so
everything else is :class:`providers.anthropic_codec.AnthropicCodec`. Errors
come in two shapes. The model's own refusals are Anthropic's. What Vertex
refuses before the model (a token, a quota, a model or region it does not
serve) is Google's ``{"error": {"code", "message", "status"}}``, so it is read
as the Gemini codec reads it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from providers.anthropic_codec import AnthropicCodec
from providers.codec import Call, NativeError, NativeRequest
from providers.gemini_codec import native_error as google_error

__all__ = ["VERTEX_ANTHROPIC_VERSION", "VertexAnthropicCodec", "is_claude"]

#: The ``anthropic_version`` body field Vertex requires.
VERTEX_ANTHROPIC_VERSION = "vertex-2023-10-16"


def is_claude(model: str) -> bool:
    """Whether a ``vertex_ai/`` model is one of Anthropic's (served as Messages, as LiteLLM
    tells them apart: ``claude`` in the name)."""
    return "claude" in model.lower()


class VertexAnthropicCodec(AnthropicCodec):
    """Responses <-> Anthropic Messages, in Vertex AI's framing (see the module docstring)."""

    name = "vertex_ai"

    def encode(self, call: Call) -> NativeRequest:
        native = super().encode(call)
        body = native.body
        del body["model"]
        body["anthropic_version"] = VERTEX_ANTHROPIC_VERSION
        verb = "streamRawPredict" if call.stream else "rawPredict"
        return NativeRequest(f"/{call.model}:{verb}", body, headers=native.headers)

    def error(self, status: int, body: Any) -> NativeError:
        err = body.get("error") if isinstance(body, Mapping) else None
        if isinstance(err, Mapping) and isinstance(err.get("status"), str):
            return google_error(status, body)
        if isinstance(body, list):  # Google sometimes wraps its error in a list
            return google_error(status, body)
        return super().error(status, body)
