"""A fake Gemini API (Google AI Studio and Vertex AI) on a real loopback socket.

:class:`GeminiUpstream` answers ``generateContent`` and
``streamGenerateContent?alt=sse`` under both URL shapes:

* AI Studio: ``/v1beta/models/{model}:{verb}``, key in ``x-goog-api-key``
  (a wrong key is ``400 INVALID_ARGUMENT "API key not valid"``, as Google
  answers);
* Vertex: ``/v1/projects/{p}/locations/{l}/publishers/google/models/{model}:{verb}``
  with ``Authorization: Bearer`` a token this fake issued and that has not
  expired (else ``401 UNAUTHENTICATED``). Claude on Vertex
  (``.../publishers/anthropic/models/{model}:rawPredict``) is answered behind
  the same tokens by :mod:`router.testing.vertex_anthropic`. Tokens come from ``POST /token``,
  which takes a service account's JWT assertion (the ``token_uri`` of a test
  service-account JSON points here), checks it as Google does (signed with
  the key of an account given to :meth:`GeminiUpstream.trust`, audience,
  scope, times: :mod:`router.testing.google_jwt`) and counts how often it
  is hit.

It is strict like the real API: unknown fields anywhere the fake knows the
shape are ``400 INVALID_ARGUMENT`` naming the field; a replayed
``functionCall`` part without its ``thoughtSignature`` is refused as Gemini
2.5+ refuses it. Answers echo the last user text (``[name] echo: ...``);
with function declarations and a user turn last, the model calls the first
function (with a thought signature); with ``googleSearch`` on, an answer
to a text holding ``search`` is grounded (queries, two web sources,
supports in UTF-8 byte offsets, in the last chunk of a stream). Faults
(:class:`GeminiFaults`): error statuses with a ``RetryInfo`` delay, an
error in the middle of a stream, a stream cut before its finishing chunk, a
finish reason, latency.

``python -m router.testing.gemini --port 0`` runs one in its own process and
prints ``READY <url>``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import secrets
import signal
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from router.testing.google_jwt import BAD_SIGNATURE, GOOGLE_TOKEN_URI, TrustedAccounts
from router.testing.vertex_anthropic import VertexClaude

__all__ = ["GeminiFaults", "GeminiUpstream"]

Json = dict[str, Any]

_REQUEST_FIELDS = frozenset({"contents", "systemInstruction", "tools", "toolConfig",
                             "generationConfig", "safetySettings", "cachedContent", "labels"})
_CONTENT_FIELDS = frozenset({"role", "parts"})
_PART_FIELDS = frozenset({"text", "inlineData", "fileData", "functionCall", "functionResponse",
                          "thought", "thoughtSignature", "executableCode",
                          "codeExecutionResult", "videoMetadata"})
_GENERATION_FIELDS = frozenset({
    "maxOutputTokens", "temperature", "topP", "topK", "candidateCount", "stopSequences",
    "responseMimeType", "responseSchema", "responseJsonSchema", "thinkingConfig", "seed",
    "presencePenalty", "frequencyPenalty", "responseLogprobs", "logprobs",
    "responseModalities", "mediaResolution", "speechConfig"})
_TOOL_FIELDS = frozenset({"functionDeclarations", "googleSearch", "googleSearchRetrieval",
                          "codeExecution", "urlContext"})
_DECLARATION_FIELDS = frozenset({"name", "description", "parameters", "parametersJsonSchema",
                                 "response", "responseJsonSchema", "behavior"})
_HTTP = {"INVALID_ARGUMENT": 400, "UNAUTHENTICATED": 401, "PERMISSION_DENIED": 403,
         "NOT_FOUND": 404, "RESOURCE_EXHAUSTED": 429, "INTERNAL": 500, "UNAVAILABLE": 503,
         "DEADLINE_EXCEEDED": 504}


class _Refusal(Exception):
    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(slots=True)
class GeminiFaults:
    """Misbehaviour to inject; each ``errors`` entry is used once, in order.

    ``errors`` holds ``(rpc_status, message, retry_after_seconds or None)``;
    ``stream_error`` sends an error chunk after the first text chunk;
    ``cut_stream`` closes a stream before its finishing chunk;
    ``finish_reason`` replaces ``STOP``; ``latency`` delays every answer.
    """

    errors: list[tuple[str, str, float | None]] = field(default_factory=list)
    stream_error: tuple[str, str] | None = None
    cut_stream: bool = False
    finish_reason: str = "STOP"
    block_reason: str | None = None
    latency: float = 0.0


class GeminiUpstream:
    """One fake Gemini deployment; an async context manager serving on ``url``."""

    def __init__(self, name: str = "gemini", *, api_key: str = "gemini-key", port: int = 0,
                 token_ttl: float = 3600.0, stream_chunks: int = 2) -> None:
        self.name = name
        self.stream_chunks = max(1, stream_chunks)
        self.api_key = api_key
        self.token_ttl = token_ttl
        self.faults = GeminiFaults()
        self.requests: list[Json] = []
        self.token_fetches = 0
        self._tokens: dict[str, float] = {}
        self._accounts = TrustedAccounts()
        self._port = port
        self._runner: web.AppRunner | None = None
        self.url = ""
        #: Claude on this fake Vertex (its ``anthropic.faults``, the ``bodies`` it got)
        self.claude = VertexClaude(name, self.stream_chunks)

    async def __aenter__(self) -> GeminiUpstream:
        app = web.Application()
        app.router.add_post("/v1beta/models/{call}", self._studio)
        app.router.add_post(
            "/v1/projects/{project}/locations/{location}/publishers/google/models/{call}",
            self._vertex)
        app.router.add_post(
            "/v1/projects/{project}/locations/{location}/publishers/anthropic/models/{call}",
            self._vertex_claude)
        app.router.add_post("/token", self._token)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self._port)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # -- auth -----------------------------------------------------------------------------

    def revoke(self) -> None:
        """Forget every token issued (as when Google revokes them): Vertex calls are 401."""
        self._tokens.clear()

    def trust(self, account: Mapping[str, Any]) -> None:
        """Issue tokens to ``account`` (a service-account JSON, as parsed, with its key)."""
        self._accounts.trust(account)

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        assertion = form.get("assertion")
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return web.json_response({"error": "unsupported_grant_type",
                                      "error_description": "Invalid grant_type: "}, status=400)
        problem = self._accounts.problem(assertion, (GOOGLE_TOKEN_URI, f"{self.url}/token"),
                                         time.time()) \
            if isinstance(assertion, str) else BAD_SIGNATURE
        if problem is not None:
            return web.json_response({"error": "invalid_grant", "error_description": problem},
                                     status=400)
        self.token_fetches += 1
        return web.json_response({"access_token": self.issue(),
                                  "expires_in": int(self.token_ttl), "token_type": "Bearer"})

    def issue(self) -> str:
        """A new bearer token, valid for ``token_ttl`` (``/token`` gives these; a test of the
        API's own refusals may take one directly)."""
        token = f"ya29.fake-{secrets.token_hex(8)}"
        self._tokens[token] = time.time() + self.token_ttl
        return token

    async def _studio(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("x-goog-api-key") != self.api_key or "key" in request.query:
            return _error("INVALID_ARGUMENT",
                          "API key not valid. Please pass a valid API key.")
        return await self._serve(request)

    async def _vertex(self, request: web.Request) -> web.StreamResponse:
        return self._unauthenticated(request) or await self._serve(request)

    async def _vertex_claude(self, request: web.Request) -> web.StreamResponse:
        model, _, verb = request.match_info["call"].partition(":")
        return self._unauthenticated(request) or await self.claude.handle(request, model, verb)

    def _unauthenticated(self, request: web.Request) -> web.Response | None:
        """Vertex's 401 unless the bearer token is one this fake issued and still valid."""
        auth = request.headers.get("authorization", "")
        token = auth.removeprefix("Bearer ")
        if not auth.startswith("Bearer ") or self._tokens.get(token, 0.0) < time.time():
            return _error("UNAUTHENTICATED", "Request had invalid authentication credentials. "
                          "Expected OAuth 2 access token.")
        return None

    # -- generateContent ------------------------------------------------------------------

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        model, _, verb = request.match_info["call"].partition(":")
        try:
            body = await request.json()
            _check_request(body)
        except ValueError:
            return _error("INVALID_ARGUMENT", "Invalid JSON payload received.")
        except _Refusal as refusal:
            return _error(refusal.status, str(refusal))
        self.requests.append({"model": model, "verb": verb, "body": body,
                              "headers": dict(request.headers), "query": dict(request.query)})
        if self.faults.latency:
            await asyncio.sleep(self.faults.latency)
        if self.faults.errors:
            status, message, retry_after = self.faults.errors.pop(0)
            return _error(status, message, retry_after)
        parts = self._answer(body)
        grounding = _grounding(body, parts)
        if verb == "streamGenerateContent" and request.query.get("alt") == "sse":
            return await self._stream(request, model, parts, grounding)
        if verb != "generateContent":
            return _error("NOT_FOUND", f"Method {verb!r} not found for model {model}.")
        return web.json_response(self._reply(model, parts, final=True, grounding=grounding))

    def _answer(self, body: Json) -> list[Json]:
        last = body["contents"][-1] if body["contents"] else {"parts": []}
        declarations = [d for tool in body.get("tools", [])
                        for d in tool.get("functionDeclarations", [])]
        replied = any("functionResponse" in p for p in last["parts"])
        if declarations and not replied and body.get("toolConfig", {}).get(
                "functionCallingConfig", {}).get("mode") != "NONE":
            return [{"functionCall": {"name": declarations[0]["name"], "args": {"q": "x"}},
                     "thoughtSignature": base64.b64encode(b"sig-" + secrets.token_bytes(4))
                     .decode()}]
        text = " ".join(p["text"] for p in last["parts"] if isinstance(p.get("text"), str))
        thinking = body.get("generationConfig", {}).get("thinkingConfig", {})
        parts: list[Json] = []
        if thinking.get("includeThoughts"):
            parts.append({"text": "thinking about it", "thought": True})
        parts.append({"text": f"[{self.name}] echo: {text}"})
        return parts

    def _reply(self, model: str, parts: list[Json], *, final: bool,
               grounding: Json | None = None) -> Json:
        reply: Json = {"modelVersion": model, "responseId": secrets.token_hex(6)}
        if self.faults.block_reason and final:
            reply["promptFeedback"] = {"blockReason": self.faults.block_reason}
            return reply
        candidate: Json = {"content": {"role": "model", "parts": parts}, "index": 0}
        if final and grounding is not None:
            candidate["groundingMetadata"] = grounding
        if final:
            candidate["finishReason"] = self.faults.finish_reason
            reply["usageMetadata"] = {"promptTokenCount": 7, "candidatesTokenCount": 5,
                                      "thoughtsTokenCount": 2, "cachedContentTokenCount": 3,
                                      "totalTokenCount": 14}
        reply["candidates"] = [candidate]
        return reply

    async def _stream(self, request: web.Request, model: str, parts: list[Json],
                      grounding: Json | None) -> web.StreamResponse:
        answer = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await answer.prepare(request)
        chunks = [[part] for part in parts]
        text = parts[-1].get("text", "")
        if self.stream_chunks > 1 and len(text) > 4 and "thought" not in parts[-1]:
            # the first piece is 4 characters, the rest split evenly
            rest, n = text[4:], self.stream_chunks - 1
            size = -(-len(rest) // n)
            pieces = [text[:4]] + [rest[i:i + size] for i in range(0, len(rest), size)]
            chunks[-1:] = [[{"text": piece}] for piece in pieces]
        for i, chunk in enumerate(chunks):
            last = i == len(chunks) - 1
            if last and self.faults.cut_stream:
                break
            if i == 1 and self.faults.stream_error:
                status, message = self.faults.stream_error
                data = {"error": {"code": _HTTP[status], "message": message, "status": status}}
                await answer.write(f"data: {json.dumps(data)}\r\n\r\n".encode())
                break
            reply = self._reply(model, chunk, final=last, grounding=grounding)
            await answer.write(f"data: {json.dumps(reply)}\r\n\r\n".encode())
        await answer.write_eof()
        return answer


def _grounding(body: Json, parts: list[Json]) -> Json | None:
    """Google Search grounding for an answer to ``search ...`` when ``googleSearch`` is on:
    the query, two web sources, and two supports (byte offsets, as Gemini counts them)."""
    if not any("googleSearch" in tool for tool in body.get("tools", [])):
        return None
    text = parts[-1].get("text")
    if not isinstance(text, str) or "search" not in text or parts[-1].get("thought"):
        return None
    raw = text.encode()
    cut = raw.index(b"echo:") + len(b"echo:")
    part = {"partIndex": len(parts) - 1} if len(parts) > 1 else {}
    return {
        "webSearchQueries": [text.split("echo: ", 1)[1]],
        "searchEntryPoint": {"renderedContent": "<div>Google Search suggestions</div>"},
        "groundingChunks": [{"web": {"uri": "https://example.com/a", "title": "example.com"}},
                            {"web": {"uri": "https://example.org/b", "title": "example.org"}}],
        "groundingSupports": [
            {"segment": {**part, "startIndex": 0, "endIndex": cut,
                         "text": raw[:cut].decode()},
             "groundingChunkIndices": [0], "confidenceScores": [0.9]},
            {"segment": {**part, "startIndex": cut + 1, "endIndex": len(raw),
                         "text": raw[cut + 1:].decode()},
             "groundingChunkIndices": [0, 1], "confidenceScores": [0.8, 0.7]},
        ],
    }


def _error(status: str, message: str, retry_after: float | None = None) -> web.Response:
    """Google's error body; the wait is a ``RetryInfo`` detail, as Google sends it (no header)."""
    code = _HTTP[status]
    error: Json = {"code": code, "message": message, "status": status}
    if retry_after is not None:
        error["details"] = [{"@type": "type.googleapis.com/google.rpc.RetryInfo",
                             "retryDelay": f"{retry_after:g}s"}]
    return web.json_response({"error": error}, status=code)


def _unknown(obj: Any, allowed: frozenset[str], where: str) -> None:
    if not isinstance(obj, Mapping):
        raise _Refusal("INVALID_ARGUMENT",
                       f"Invalid value at '{where}': expected an object")
    for name in obj:
        if name not in allowed:
            raise _Refusal("INVALID_ARGUMENT", f'Invalid JSON payload received. Unknown name '
                           f'"{name}" at \'{where}\': Cannot find field.')


def _check_request(body: Any) -> None:
    _unknown(body, _REQUEST_FIELDS, "request")
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        raise _Refusal("INVALID_ARGUMENT", "* GenerateContentRequest.contents: contents is "
                       "not specified")
    for i, content in enumerate(contents):
        _check_content(content, f"contents[{i}]")
    if "systemInstruction" in body:
        _check_content(body["systemInstruction"], "system_instruction")
    _unknown(body.get("generationConfig", {}), _GENERATION_FIELDS, "generation_config")
    for i, tool in enumerate(body.get("tools", [])):
        _unknown(tool, _TOOL_FIELDS, f"tools[{i}]")
        for j, declaration in enumerate(tool.get("functionDeclarations", [])):
            _unknown(declaration, _DECLARATION_FIELDS,
                     f"tools[{i}].function_declarations[{j}]")


def _check_content(content: Any, where: str) -> None:
    _unknown(content, _CONTENT_FIELDS, where)
    if content.get("role", "user") not in ("user", "model"):
        raise _Refusal("INVALID_ARGUMENT", f"Please use a valid role: user, model. ({where})")
    parts = content.get("parts")
    if not isinstance(parts, list) or not parts:
        raise _Refusal("INVALID_ARGUMENT", f"* {where}.parts: contents.parts must not be empty")
    for j, part in enumerate(parts):
        _unknown(part, _PART_FIELDS, f"{where}.parts[{j}]")
        if "functionCall" in part and content.get("role") == "model" and \
                not part.get("thoughtSignature") and not any(
                    "functionCall" in p for p in parts[:j]):
            raise _Refusal("INVALID_ARGUMENT", f"Function call is missing a thought_signature "
                           f"in functionCall parts. ({where}.parts[{j}])")


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m router.testing.gemini")
    parser.add_argument("--name", default="gemini")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--api-key", default="gemini-key")
    parser.add_argument("--stream-chunks", type=int, default=2, help="text chunks per stream")
    parser.add_argument("--trust", action="append", default=[], metavar="SA_JSON",
                        type=_account,
                        help="a service-account JSON file whose assertions get tokens "
                             "(repeatable)")
    return parser.parse_args(argv)


def _account(path: str) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


async def _main(argv: Sequence[str] | None = None) -> None:
    args = _parse(argv)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with GeminiUpstream(args.name, api_key=args.api_key, port=args.port,
                              stream_chunks=args.stream_chunks) as upstream:
        for account in args.trust:
            upstream.trust(account)
        print(f"READY {upstream.url}", flush=True)
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(_main())
