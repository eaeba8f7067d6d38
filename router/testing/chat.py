"""A fake Chat Completions server (vLLM, Ollama, Groq, Azure AI, ...) on a real socket.

:class:`ChatUpstream` answers ``POST /v1/chat/completions`` (and Azure AI
Foundry's ``POST /models/chat/completions?api-version=...``) as the
OpenAI-compatible servers do, so the chat codec and provider are tested over
the wire, strictly:

* a body field Chat Completions does not define, a message of the wrong
  shape, an unknown role or part type is ``400`` with OpenAI's error body
  (``{"error": {"message", "type", "param", "code"}}``), or vLLM's flat
  ``{"object": "error", ...}`` with ``error_style="vllm"``;
* with ``api_key`` set, a missing or wrong ``Authorization: Bearer`` (or
  Azure's ``api-key``) is ``401 invalid_api_key``; with ``models`` set, an
  unknown model is ``404 model_not_found``;
* answers are ``chat.completion`` bodies or ``chat.completion.chunk`` SSE
  events ending in ``data: [DONE]``, usage chunk included when
  ``stream_options.include_usage`` asks.

What the model "says" is steered by the last user message, so tests can ask
for each behaviour: ``CALL name {json}`` calls a tool (when tools are given),
``THINK`` adds ``reasoning_content``, ``REFUSE`` refuses, ``FILTER`` ends with
``content_filter``, ``TOOLONG`` is a context-window error; otherwise the reply
is ``[name] echo: <text>``, cut at ``max_tokens`` words (``finish_reason``
``length``). A ``response_format`` of ``json_schema`` gets ``{"echo": text}``.

Faults for the tests (:attr:`ChatUpstream.faults`): a status error with an
optional ``retry-after``, an error chunk in the middle of a stream, a stream
cut before its end, a body that is not JSON, latency. Requests are recorded.
``python -m router.testing.chat --port 0`` runs one in its own process and
prints ``READY <url>``, for the benchmarks.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from aiohttp import web

__all__ = ["ChatFaults", "ChatUpstream", "main"]

Json = Any

_HOST = "127.0.0.1"

#: Top-level fields of OpenAI's Chat Completions create request.
_BODY_FIELDS = frozenset({
    "model", "messages", "audio", "frequency_penalty", "function_call", "functions",
    "logit_bias", "logprobs", "max_completion_tokens", "max_tokens", "metadata",
    "modalities", "n", "parallel_tool_calls", "prediction", "presence_penalty",
    "prompt_cache_key", "reasoning_effort", "response_format", "safety_identifier", "seed",
    "service_tier", "stop", "store", "stream", "stream_options", "temperature",
    "tool_choice", "tools", "top_logprobs", "top_p", "user", "verbosity", "web_search_options",
})
_ROLES = frozenset({"system", "developer", "user", "assistant", "tool"})
_USER_PARTS = frozenset({"text", "image_url", "input_audio", "file"})
_MESSAGE_FIELDS = {
    "system": {"role", "content", "name"}, "developer": {"role", "content", "name"},
    "user": {"role", "content", "name"},
    "assistant": {"role", "content", "name", "tool_calls", "refusal", "audio",
                  "function_call"},
    "tool": {"role", "content", "tool_call_id"},
}

_encode = json.JSONEncoder(separators=(",", ":"), check_circular=False).encode


class _Reject(Exception):
    def __init__(self, status: int, message: str, *, param: str | None = None,
                 code: str | None = None, kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.kind = (
            status, message, param, code, kind)


@dataclass(slots=True)
class ChatFaults:
    """Misbehaviour to inject; each ``*_times`` counts down to zero."""

    status: int = 0
    status_times: int = 0
    status_code: str | None = None
    retry_after: str | None = None
    stream_error_times: int = 0
    cut_times: int = 0
    garbage_times: int = 0
    latency: float = 0.0

    def fail(self, status: int, *, times: int = 1, code: str | None = None,
             retry_after: str | None = None) -> None:
        """Answer the next ``times`` requests with ``status`` (and ``retry-after``)."""
        self.status, self.status_times, self.status_code = status, times, code
        self.retry_after = retry_after

    def clear(self) -> None:
        self.status_times = self.stream_error_times = self.cut_times = self.garbage_times = 0
        self.latency = 0.0


@dataclass(slots=True)
class _Reply:
    text: str = ""
    reasoning: str = ""
    refusal: str = ""
    tool: tuple[str, str] | None = None
    finish: str = "stop"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    chunks: list[str] = field(default_factory=list)


class ChatUpstream:
    """One fake Chat Completions server on 127.0.0.1 (``async with``)."""

    def __init__(
        self,
        name: str = "chat",
        *,
        api_key: str | None = None,
        models: Sequence[str] | None = None,
        port: int = 0,
        stream_chunks: int = 4,
        error_style: str = "openai",
        record_requests: bool = True,
    ) -> None:
        self.name = name
        self.faults = ChatFaults()
        self.requests: list[tuple[str, Mapping[str, str], Json]] = []
        self.hits = 0
        self._api_key = api_key
        self._models = frozenset(models) if models else None
        self._port = port
        self._chunks = max(1, stream_chunks)
        self._style = error_style
        self._record = record_requests
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (append ``/v1`` for an ``api_base``)."""
        return f"http://{_HOST}:{self._port}"

    async def __aenter__(self) -> ChatUpstream:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._handle)
        app.router.add_post("/models/chat/completions", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, _HOST, self._port, reuse_address=True).start()
        self._port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- one request

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.hits += 1
        raw = await request.read()
        try:
            body: Json = json.loads(raw)
        except ValueError:
            body = None
        if self._record:
            self.requests.append((request.path_qs, dict(request.headers), body))
        try:
            self._authorise(request)
            if self.faults.latency:
                await asyncio.sleep(self.faults.latency)
            fault = self._status_fault()
            if fault is not None:
                return fault
            if self.faults.garbage_times:
                self.faults.garbage_times -= 1
                return web.Response(text="<html>bad gateway</html>", content_type="text/html")
            _check_body(body)
            if self._models is not None and body["model"] not in self._models:
                raise _Reject(404, f"The model `{body['model']}` does not exist",
                              param="model", code="model_not_found")
            reply = self._reply(body)
        except _Reject as exc:
            return self._error(exc)
        if body.get("stream"):
            return await self._stream(request, body, reply)
        return web.Response(body=_encode(_completion(body, reply)).encode(),
                            content_type="application/json")

    def _authorise(self, request: web.Request) -> None:
        if request.path.startswith("/models") and "api-version" not in request.query:
            raise _Reject(400, "Missing required query parameter: api-version",
                          param="api-version")
        if self._api_key is None:
            return
        bearer = request.headers.get("authorization", "")
        azure = request.path.startswith("/models") and \
            request.headers.get("api-key") == self._api_key
        if bearer != f"Bearer {self._api_key}" and not azure:
            raise _Reject(401, "Incorrect API key provided", code="invalid_api_key")

    def _status_fault(self) -> web.Response | None:
        f = self.faults
        if not f.status_times:
            return None
        f.status_times -= 1
        headers = {"retry-after": f.retry_after} if f.retry_after else {}
        exc = _Reject(f.status, f"injected HTTP {f.status}", code=f.status_code,
                      kind="server_error" if f.status >= 500 else "invalid_request_error")
        answer = self._error(exc)
        answer.headers.update(headers)
        return answer

    def _error(self, exc: _Reject) -> web.Response:
        if self._style == "vllm":
            body: Json = {"object": "error", "message": exc.message, "type": exc.kind,
                          "param": exc.param, "code": exc.status}
        else:
            body = {"error": {"message": exc.message, "type": exc.kind, "param": exc.param,
                              "code": exc.code}}
        return web.Response(status=exc.status, body=_encode(body).encode(),
                            content_type="application/json")

    def _reply(self, body: Json) -> _Reply:
        said = _last_user_text(body["messages"])
        prompt_tokens = sum(len(_message_text(m).split()) for m in body["messages"]) or 1
        reply = _Reply(prompt_tokens=prompt_tokens)
        words = said.split()
        if words and words[0] == "TOOLONG":
            raise _Reject(400, f"This model's maximum context length is 8 tokens. However, "
                          f"you requested {prompt_tokens + 100} tokens. Please reduce the "
                          "length of the messages.")
        if "THINK" in words:
            reply.reasoning = "Thinking it over."
        if words and words[0] == "CALL" and body.get("tools") and len(words) >= 2:
            reply.tool = (words[1], " ".join(words[2:]) or "{}")
            reply.finish = "tool_calls"
        elif words and words[0] == "REFUSE":
            reply.refusal = "I can't help with that."
        else:
            self._text(body, said, reply)
        if words and words[0] == "FILTER":
            reply.finish = "content_filter"
        reply.completion_tokens = len(reply.text.split()) + len(reply.reasoning.split()) + (
            len(reply.tool[1].split()) + 1 if reply.tool else 0) + len(reply.refusal.split())
        return reply

    def _text(self, body: Json, said: str, reply: _Reply) -> None:
        words = f"[{self.name}] echo: {said}".split()
        limit = body.get("max_tokens") or body.get("max_completion_tokens")
        if isinstance(limit, int) and len(words) > limit:
            words, reply.finish = words[:limit], "length"
        text = " ".join(words)
        fmt = body.get("response_format") or {}
        if fmt.get("type") in ("json_schema", "json_object"):
            text = _encode({"echo": said})
        reply.text = text
        reply.chunks = _split(text, self._chunks)

    async def _stream(self, request: web.Request, body: Json,
                      reply: _Reply) -> web.StreamResponse:
        answer = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await answer.prepare(request)
        chunks = list(_chunks(body, reply))
        cut = self.faults.cut_times > 0
        broken = self.faults.stream_error_times > 0
        if cut:
            self.faults.cut_times -= 1
        if broken:
            self.faults.stream_error_times -= 1
        for number, chunk in enumerate(chunks):
            if (cut or broken) and number == 2:
                if broken:
                    await answer.write(b'data: {"error":{"message":"the engine died",'
                                       b'"type":"server_error","code":"server_error"}}\n\n')
                    return answer
                if request.transport is not None:
                    request.transport.close()
                return answer
            await answer.write(b"data: " + _encode(chunk).encode() + b"\n\n")
        await answer.write(b"data: [DONE]\n\n")
        return answer


# -- request checks ------------------------------------------------------------------


def _check_body(body: Json) -> None:
    if not isinstance(body, dict):
        raise _Reject(400, "We could not parse the JSON body of your request.")
    for key in body:
        if key not in _BODY_FIELDS:
            raise _Reject(400, f"Unrecognized request argument supplied: {key}", param=key)
    if not isinstance(body.get("model"), str):
        raise _Reject(400, "you must provide a model parameter", param="model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _Reject(400, "'messages' must be a non-empty array", param="messages")
    for i, message in enumerate(messages):
        _check_message(message, f"messages[{i}]")
    tools = body.get("tools")
    if tools is not None:
        for i, tool in enumerate(tools):
            if tool.get("type") != "function" or not isinstance(
                    tool.get("function", {}).get("name"), str):
                raise _Reject(400, f"Invalid 'tools[{i}]': expected a function tool",
                              param=f"tools[{i}]")
    for key in ("tool_choice", "parallel_tool_calls"):
        if body.get(key) is not None and not tools:
            raise _Reject(400, f"Invalid value for '{key}': '{key}' is only allowed when "
                          "'tools' are specified.", param=key)
    if body.get("stream_options") is not None and not body.get("stream"):
        raise _Reject(400, "The 'stream_options' parameter is only allowed when 'stream' "
                      "is enabled.", param="stream_options")


def _check_message(message: Json, where: str) -> None:
    if not isinstance(message, dict) or message.get("role") not in _ROLES:
        raise _Reject(400, f"Invalid '{where}.role'", param=f"{where}.role")
    role = message["role"]
    extra = set(message) - _MESSAGE_FIELDS[role]
    if extra:
        raise _Reject(400, f"Unrecognized field(s) in '{where}': {sorted(extra)}", param=where)
    content = message.get("content")
    if role == "assistant" and content is None and message.get("tool_calls"):
        return
    if role == "tool" and not isinstance(message.get("tool_call_id"), str):
        raise _Reject(400, f"Missing '{where}.tool_call_id'", param=f"{where}.tool_call_id")
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise _Reject(400, f"Invalid '{where}.content'", param=f"{where}.content")
    allowed = _USER_PARTS if role == "user" else {"text"}
    for j, part in enumerate(content):
        if not isinstance(part, dict) or part.get("type") not in allowed:
            raise _Reject(400, f"Invalid '{where}.content[{j}].type'",
                          param=f"{where}.content[{j}].type")


def _message_text(message: Json) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if p.get("type") == "text")
    return ""


def _last_user_text(messages: list[Json]) -> str:
    for message in reversed(messages):
        if message["role"] in ("user", "tool"):
            return _message_text(message)
    return ""


def _split(text: str, parts: int) -> list[str]:
    size = max(1, -(-len(text) // parts))
    return [text[i:i + size] for i in range(0, len(text), size)] or [""]


# -- answers -------------------------------------------------------------------------


def _usage(reply: _Reply) -> Json:
    return {"prompt_tokens": reply.prompt_tokens, "completion_tokens": reply.completion_tokens,
            "total_tokens": reply.prompt_tokens + reply.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": len(reply.reasoning.split())}}


def _completion(body: Json, reply: _Reply) -> Json:
    message: Json = {"role": "assistant", "content": reply.text or None}
    if reply.reasoning:
        message["reasoning_content"] = reply.reasoning
    if reply.refusal:
        message["refusal"] = reply.refusal
    if reply.tool:
        message["tool_calls"] = [{"id": "call_fake0", "type": "function",
                                  "function": {"name": reply.tool[0],
                                               "arguments": reply.tool[1]}}]
    return {"id": "chatcmpl-fake", "object": "chat.completion", "created": 0,
            "model": body["model"],
            "choices": [{"index": 0, "message": message, "logprobs": None,
                         "finish_reason": reply.finish}],
            "usage": _usage(reply)}


def _chunk(body: Json, delta: Json, finish: str | None = None) -> Json:
    return {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0,
            "model": body["model"],
            "choices": [{"index": 0, "delta": delta, "logprobs": None,
                         "finish_reason": finish}]}


def _chunks(body: Json, reply: _Reply) -> Iterator[Json]:
    yield _chunk(body, {"role": "assistant", "content": ""})
    if reply.reasoning:
        for piece in _split(reply.reasoning, 2):
            yield _chunk(body, {"reasoning_content": piece})
    for piece in reply.chunks:
        yield _chunk(body, {"content": piece})
    if reply.refusal:
        yield _chunk(body, {"refusal": reply.refusal})
    if reply.tool:
        name, arguments = reply.tool
        yield _chunk(body, {"tool_calls": [{"index": 0, "id": "call_fake0", "type": "function",
                                            "function": {"name": name, "arguments": ""}}]})
        for piece in _split(arguments, 2):
            yield _chunk(body, {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
    yield _chunk(body, {}, reply.finish)
    if (body.get("stream_options") or {}).get("include_usage"):
        yield {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0,
               "model": body["model"], "choices": [], "usage": _usage(reply)}


# -- its own process -----------------------------------------------------------------


async def _serve(args: argparse.Namespace) -> None:
    upstream = ChatUpstream(args.name, api_key=args.api_key, port=args.port,
                            stream_chunks=args.stream_chunks, record_requests=False)
    upstream.faults.latency = args.latency
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with upstream:
        print(f"READY {upstream.url}", flush=True)
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m router.testing.chat --port 0 [--name N --api-key K --stream-chunks 4
    --latency S]``."""
    parser = argparse.ArgumentParser(prog="python -m router.testing.chat")
    parser.add_argument("--name", default="chat")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--stream-chunks", type=int, default=4)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per answer")
    asyncio.run(_serve(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
