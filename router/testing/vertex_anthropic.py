"""Claude on the fake Vertex AI: Anthropic's Messages API in Vertex's framing.

:class:`router.testing.gemini.GeminiUpstream` serves
``/v1/projects/{p}/locations/{l}/publishers/anthropic/models/{model}:rawPredict``
(and ``:streamRawPredict``) behind the same bearer tokens as its Gemini
routes, and hands each request to :class:`VertexClaude`. It checks what
Vertex changes from Anthropic's own API and then answers as
:class:`router.testing.anthropic.AnthropicUpstream` does, with the same
body checks, script, streams and faults. What Vertex changes:

* the model is in the URL, and a ``model`` field in the body is refused;
* ``anthropic_version`` is a required body field, ``vertex-2023-10-16``;
* ``:streamRawPredict`` streams and ``:rawPredict`` does not, so a body's
  ``stream`` must agree with the verb;
* another verb is Google's ``404 NOT_FOUND``.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from router.testing.anthropic import AnthropicUpstream, anthropic_error

__all__ = ["VERSION", "VertexClaude"]

#: The ``anthropic_version`` Vertex accepts.
VERSION = "vertex-2023-10-16"
_VERBS = {"rawPredict": False, "streamRawPredict": True}


class VertexClaude:
    """Answers Vertex's Claude calls for one fake (``name`` prefixes what it says)."""

    def __init__(self, name: str, stream_chunks: int) -> None:
        #: Anthropic's side: its ``faults`` apply to these calls too
        self.anthropic = AnthropicUpstream(name, record=False, stream_chunks=stream_chunks)
        #: every body received, as sent (before the checks)
        self.bodies: list[Any] = []

    async def handle(self, request: web.Request, model: str, verb: str) -> web.StreamResponse:
        if verb not in _VERBS:
            return web.json_response({"error": {
                "code": 404, "status": "NOT_FOUND",
                "message": f"Method {verb!r} not found for model {model}."}}, status=404)
        try:
            body = json.loads(await request.read())
        except ValueError:
            body = None
        self.bodies.append(body)
        problem = _problem(body, _VERBS[verb])
        if problem is not None:
            return anthropic_error("invalid_request_error", problem)
        assert isinstance(body, dict)
        messages = {k: v for k, v in body.items() if k != "anthropic_version"}
        return await self.anthropic.serve(request, {"model": model, **messages})


def _problem(body: Any, streams: bool) -> str | None:
    """What Vertex refuses in a Claude body before the model sees it, if anything."""
    if not isinstance(body, dict):
        return "There was an error parsing the body of your request"
    if "model" in body:
        return "model: Extra inputs are not permitted (the model is in the URL)"
    if body.get("anthropic_version") != VERSION:
        return f"anthropic_version: must be {VERSION!r}"
    if bool(body.get("stream")) != streams:
        return "stream: must be true for streamRawPredict and absent or false for rawPredict"
    return None
