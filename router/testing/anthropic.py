"""A fake Anthropic Messages API (``POST /v1/messages``) on a real loopback socket.

The ``anthropic/`` provider is tested end to end against it, so it behaves
like the real API where a codec could go wrong:

* it checks ``x-api-key`` (``401 authentication_error``) and
  ``anthropic-version``, and refuses bodies the real API refuses (unknown
  fields, malformed blocks, unpaired ``tool_use`` / ``tool_result``, a
  thinking budget that does not fit ``max_tokens``: see
  :mod:`router.testing.anthropic_checks`) with ``400 invalid_request_error``;
* it answers with ``message`` bodies and SSE streams shaped as Anthropic
  documents them (``message_start``, ``content_block_*``, ``ping``,
  ``message_delta``, ``message_stop``), with thinking blocks and their
  signatures, tool calls, server-side web searches, prompt-caching usage and
  every stop reason the tests need;
* :attr:`AnthropicUpstream.faults` injects Anthropic's error answers
  (``overloaded_error`` 529, ``rate_limit_error`` 429 with ``retry-after``,
  ...), an ``error`` event or a cut connection mid-stream, malformed bodies and
  latency.

What the model "says" is scripted from the last user turn: it echoes the text
as ``[name] text``; mentions of a tool's name call that tool (with arguments
built from its schema); ``search`` runs the web search tool when offered;
``refuse`` refuses; ``redact`` returns redacted thinking; a ``tool_result``
is answered with ``tool said: ...``; a json_schema output format gets JSON of
that schema. Output tokens are words, so a small ``max_tokens`` truncates.

``python -m router.testing.anthropic --port 0`` runs one in its own process
and prints ``READY <url>``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import itertools
import json
import signal
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from router.testing.anthropic_checks import Invalid, check_request
from router.testing.process import spawn, terminate

__all__ = ["ERROR_STATUS", "AnthropicFaults", "AnthropicProcess", "AnthropicUpstream",
           "Recorded", "anthropic_error"]

Json = dict[str, Any]

_HOST = "127.0.0.1"
_VERSIONS = frozenset({"2023-06-01", "2023-01-01"})

#: Anthropic's error types and the status each comes with.
ERROR_STATUS: Mapping[str, int] = {
    "invalid_request_error": 400, "authentication_error": 401, "billing_error": 402,
    "permission_error": 403, "not_found_error": 404, "request_too_large": 413,
    "rate_limit_error": 429, "api_error": 500, "timeout_error": 504, "overloaded_error": 529,
}
_MESSAGES: Mapping[str, str] = {
    "invalid_request_error": "prompt is too long: 212745 tokens > 200000 maximum",
    "authentication_error": "invalid x-api-key",
    "billing_error": "Your credit balance is too low to access the Anthropic API.",
    "permission_error": "Your API key does not have permission to use the specified resource.",
    "not_found_error": "model: claude-unknown",
    "request_too_large": "Request exceeds the maximum allowed number of bytes.",
    "rate_limit_error": "Number of request tokens has exceeded your per-minute rate limit",
    "api_error": "Internal server error",
    "timeout_error": "Request timed out",
    "overloaded_error": "Overloaded",
}


def error_body(kind: str, message: str | None = None) -> Json:
    """Anthropic's error body for ``kind``."""
    return {"type": "error", "error": {"type": kind, "message": message or _MESSAGES[kind]},
            "request_id": "req_fake"}


@dataclass(frozen=True, slots=True)
class Recorded:
    """One request as the fake received it (header names lower-case)."""

    headers: dict[str, str]
    json: Any


@dataclass(slots=True)
class _Fault:
    kind: str  # "fail", "mid_stream", "cut", "malformed"
    times: int
    error: str = "overloaded_error"
    message: str | None = None
    retry_after: float | None = None
    after: int = 3


@dataclass(slots=True)
class AnthropicFaults:
    """Misbehaviour for the next requests, applied in the order armed.

    Each fault is used by ``times`` requests, then the next one armed applies.
    """

    latency: float = 0.0
    _queue: list[_Fault] = field(default_factory=list)

    def fail(self, error: str, *, times: int = 1, message: str | None = None,
             retry_after: float | None = None) -> None:
        """Answer with Anthropic's error ``error`` (a type in :data:`ERROR_STATUS`)."""
        if error not in ERROR_STATUS:
            raise ValueError(f"unknown Anthropic error type {error!r}")
        self._queue.append(_Fault("fail", times, error, message, retry_after))

    def mid_stream(self, error: str = "overloaded_error", *, after: int = 3,
                   times: int = 1) -> None:
        """Send an ``error`` event after ``after`` stream events (plain calls fail at once)."""
        self._queue.append(_Fault("mid_stream", times, error, after=after))

    def cut_stream(self, *, after: int = 3, times: int = 1) -> None:
        """Close the connection after ``after`` stream events."""
        self._queue.append(_Fault("cut", times, after=after))

    def malformed(self, *, after: int = 3, times: int = 1) -> None:
        """Answer 200 with a body that is not a message (a stream: after ``after`` events,
        one without its fields)."""
        self._queue.append(_Fault("malformed", times, after=after))

    def clear(self) -> None:
        self._queue.clear()
        self.latency = 0.0

    def take(self) -> _Fault | None:
        if not self._queue:
            return None
        fault = self._queue[0]
        fault.times -= 1
        if fault.times <= 0:
            self._queue.pop(0)
        return fault


# -- what the model says ----------------------------------------------------------------


def _words(value: Any) -> int:
    if isinstance(value, str):
        return len(value.split())
    if isinstance(value, list):
        return sum(_words(v) for v in value)
    if isinstance(value, Mapping):
        return sum(_words(v) for k, v in value.items() if k in ("text", "content", "input"))
    return 0


def _last_user(messages: list[Json]) -> tuple[str, list[Json]]:
    """The text and the tool results of the last user turn."""
    content = messages[-1]["content"] if messages[-1]["role"] == "user" else ""
    if isinstance(content, str):
        return content, []
    texts = [b["text"] for b in content if b["type"] == "text"]
    results = [b for b in content if b["type"] == "tool_result"]
    return " ".join(texts), results


def example(schema: Mapping[str, Any]) -> Any:
    """A value of the JSON ``schema`` (every property filled in)."""
    kind = schema.get("type")
    if "enum" in schema:
        return schema["enum"][0]
    if kind == "object":
        return {k: example(v) for k, v in (schema.get("properties") or {}).items()}
    if kind == "array":
        return [example(schema.get("items") or {"type": "string"})]
    return {"integer": 1, "number": 1.5, "boolean": True, "null": None}.get(str(kind), "x")


def _signature(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32] + "=="


@dataclass(slots=True)
class _Reply:
    blocks: list[Json]
    stop_reason: str
    thinking_tokens: int = 0


class _Script:
    """Builds the model's reply to one checked request body."""

    def __init__(self, name: str, ids: Iterator[int]) -> None:
        self._name = name
        self._ids = ids

    def reply(self, body: Json) -> _Reply:
        text, results = _last_user(body["messages"])
        blocks = self._thinking(body, text)
        thinking_tokens = sum(_words(b.get("thinking", "")) for b in blocks)
        blocks += self._answer(body, text, results)
        stop = "end_turn"
        if any(b["type"] == "tool_use" for b in blocks):
            stop = "tool_use"
        elif "refuse" in text:
            stop = "refusal"
        return self._truncate(_Reply(blocks, stop, thinking_tokens), body["max_tokens"])

    def _thinking(self, body: Json, text: str) -> list[Json]:
        if (body.get("thinking") or {}).get("type") != "enabled":
            return []
        if "redact" in text:
            return [{"type": "redacted_thinking", "data": "EnRedacted" + _signature(text)}]
        thought = f"The user wrote: {text}"
        return [{"type": "thinking", "thinking": thought, "signature": _signature(thought)}]

    def _answer(self, body: Json, text: str, results: list[Json]) -> list[Json]:
        if results:
            said = "; ".join(str(r.get("content")) for r in results)
            return [{"type": "text", "text": f"tool said: {said}"}]
        if "refuse" in text:
            return [{"type": "text", "text": "I can't help with that."}]
        calls = self._tool_calls(body, text)
        if calls:
            return calls
        tools = {t["name"] for t in body.get("tools") or ()}
        if "web_search" in tools and "search" in text:
            return self._search(text)
        fmt = (body.get("output_config") or {}).get("format")
        if fmt is not None:
            return [{"type": "text", "text": json.dumps(example(fmt["schema"]))}]
        return [{"type": "text", "text": f"[{self._name}] {text}"}]

    def _tool_calls(self, body: Json, text: str) -> list[Json]:
        tools = [t for t in body.get("tools") or () if "input_schema" in t]
        choice = body.get("tool_choice") or {"type": "auto"}
        if choice["type"] == "none":
            return []
        if choice["type"] == "tool":
            chosen = [t for t in tools if t["name"] == choice["name"]]
        else:
            chosen = [t for t in tools if t["name"] in text] or (
                tools[:1] if choice["type"] == "any" else [])
        if choice.get("disable_parallel_tool_use"):
            chosen = chosen[:1]
        return [{"type": "tool_use", "id": f"toolu_{next(self._ids):024x}", "name": t["name"],
                 "input": example(t["input_schema"])} for t in chosen]

    def _search(self, text: str) -> list[Json]:
        use_id = f"srvtoolu_{next(self._ids):024x}"
        result = {"type": "web_search_result", "url": "https://example.com/", "title": "Example",
                  "encrypted_content": "EqgfCioIARgBIiQ", "page_age": None}
        return [
            {"type": "server_tool_use", "id": use_id, "name": "web_search",
             "input": {"query": text}},
            {"type": "web_search_tool_result", "tool_use_id": use_id, "content": [result]},
            {"type": "text", "text": "Found it.", "citations": [{
                "type": "web_search_result_location", "url": result["url"],
                "title": result["title"], "cited_text": "Example Domain",
                "encrypted_index": "Eo8BCioIAhgB"}]},
        ]

    @staticmethod
    def _truncate(reply: _Reply, max_tokens: int) -> _Reply:
        room = max_tokens - reply.thinking_tokens
        for block in reply.blocks:
            if block["type"] == "text" and len(block["text"].split()) > room:
                block["text"] = " ".join(block["text"].split()[:max(room, 0)])
                reply.stop_reason = "max_tokens"
        return reply


# -- the server --------------------------------------------------------------------------------


class AnthropicUpstream:
    """One fake Anthropic API on ``127.0.0.1``; an async context manager."""

    def __init__(self, name: str = "anthropic", *, api_key: str = "test-key", port: int = 0,
                 latency: float = 0.0, record: bool = True, stream_chunks: int = 3) -> None:
        self.name = name
        self.stream_chunks = stream_chunks
        self.api_key = api_key
        self.faults = AnthropicFaults(latency=latency)
        self.requests: list[Recorded] = []
        self._record = record
        self._port = port
        self._ids = itertools.count(1)
        self._script = _Script(name, self._ids)
        self._cached: set[str] = set()
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (the provider's ``api_base``)."""
        return f"http://{_HOST}:{self._port}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/messages", self._messages)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, _HOST, self._port)
        await site.start()
        self._port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> AnthropicUpstream:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def __repr__(self) -> str:
        return f"AnthropicUpstream({self.name!r}, {self.url!r})"

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if self._record:
            self.requests.append(Recorded({k.lower(): v for k, v in request.headers.items()},
                                          body))
        refusal = self._unauthorised(request)
        if refusal is not None:
            return refusal
        return await self.serve(request, body)

    async def serve(self, request: web.Request, body: Any) -> web.StreamResponse:
        """Answer a Messages ``body`` whose caller is already authenticated: the body's
        checks, then the faults, then the scripted answer (Vertex AI's Claude routes in
        :mod:`router.testing.gemini` answer through here too)."""
        refusal = self._refusal(body)
        if refusal is not None:
            return refusal
        if self.faults.latency:
            await asyncio.sleep(self.faults.latency)
        fault = self.faults.take()
        if fault is not None and (fault.kind == "fail" or not body.get("stream")):
            return _fault_answer(request, fault)
        return await self._answer(request, body, fault)

    def _unauthorised(self, request: web.Request) -> web.Response | None:
        if request.headers.get("x-api-key") != self.api_key:
            return anthropic_error("authentication_error")
        if request.headers.get("anthropic-version") not in _VERSIONS:
            return anthropic_error("invalid_request_error",
                          "anthropic-version: header is required and must be a known version")
        return None

    def _refusal(self, body: Any) -> web.Response | None:
        if body is None:
            return anthropic_error("invalid_request_error",
                          "There was an error parsing the body of your request")
        try:
            check_request(body)
        except Invalid as exc:
            return anthropic_error("invalid_request_error", str(exc))
        if "unknown" in body["model"]:
            return anthropic_error("not_found_error", f"model: {body['model']}")
        return None

    async def _answer(self, request: web.Request, body: Json,
                      fault: _Fault | None) -> web.StreamResponse:
        reply = self._script.reply(body)
        message = {
            "id": f"msg_{next(self._ids):024x}", "type": "message", "role": "assistant",
            "model": body["model"], "content": reply.blocks, "stop_reason": reply.stop_reason,
            "stop_sequence": None, "usage": self._usage(body, reply),
        }
        if not body.get("stream"):
            return web.json_response(message)
        return await _stream(request, message, fault, self.stream_chunks)

    def _usage(self, body: Json, reply: _Reply) -> Json:
        prompt = _words(body.get("system")) + _words(body["messages"])
        output = sum(_words(b.get("text", "")) + _words(b.get("input", {})) for b in reply.blocks)
        usage: Json = {"input_tokens": prompt, "output_tokens": output + reply.thinking_tokens,
                       "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
        if reply.thinking_tokens:
            usage["output_tokens_details"] = {"thinking_tokens": reply.thinking_tokens}
        if body.get("cache_control") is not None:
            key = json.dumps([body.get("system"), body["messages"][:1]], sort_keys=True)
            cached = _words(body.get("system")) + _words(body["messages"][:1])
            usage["input_tokens"] = prompt - cached
            field_name = "cache_read_input_tokens" if key in self._cached else \
                "cache_creation_input_tokens"
            usage[field_name] = cached
            self._cached.add(key)
        return usage


def anthropic_error(kind: str, message: str | None = None,
                    headers: Mapping[str, str] | None = None) -> web.Response:
    """Anthropic's error answer of ``kind`` (its status, and its body's shape)."""
    return web.json_response(error_body(kind, message), status=ERROR_STATUS[kind],
                             headers=headers)



def _fault_answer(request: web.Request, fault: _Fault) -> web.Response:
    """A fault on a plain call: a malformed body, a dropped connection, or an error."""
    if fault.kind == "malformed":
        return web.json_response({"type": "message", "content": "not a list"})
    if fault.kind == "cut" and request.transport is not None:
        request.transport.close()
    headers = {"retry-after": f"{fault.retry_after:g}"} if fault.retry_after is not None else None
    return anthropic_error(fault.error, fault.message, headers)


# -- streams -------------------------------------------------------------------------------------


def _chunks(text: str, parts: int = 3) -> list[str]:
    size = max(1, -(-len(text) // parts))
    return [text[i:i + size] for i in range(0, len(text), size)] or [""]


def _block_events(index: int, block: Json, chunks: int) -> Iterator[Json]:
    kind = block["type"]
    start: Json = dict(block)
    deltas: list[Json] = []
    if kind == "text":
        start["text"] = ""
        start.pop("citations", None)
        deltas = [{"type": "citations_delta", "citation": c} for c in block.get("citations") or ()]
        deltas += [{"type": "text_delta", "text": c} for c in _chunks(block["text"], chunks)]
    elif kind in ("tool_use", "server_tool_use"):
        start["input"] = {}
        raw = json.dumps(block["input"]) if block["input"] else ""
        deltas = [{"type": "input_json_delta", "partial_json": c} for c in _chunks(raw, 2)]
    elif kind == "thinking":
        start.update(thinking="", signature="")
        deltas = [{"type": "thinking_delta", "thinking": c}
                  for c in _chunks(block["thinking"], chunks)]
        deltas.append({"type": "signature_delta", "signature": block["signature"]})
    yield {"type": "content_block_start", "index": index, "content_block": start}
    for delta in deltas:
        yield {"type": "content_block_delta", "index": index, "delta": delta}
    yield {"type": "content_block_stop", "index": index}


def stream_events(message: Json, chunks: int = 3) -> Iterator[Json]:
    """The SSE events of ``message``, as the Messages API streams it (text and thinking
    in ``chunks`` deltas each)."""
    usage = message["usage"]
    start_usage = {**usage, "output_tokens": 1}
    start_usage.pop("output_tokens_details", None)
    yield {"type": "message_start", "message": {
        **message, "content": [], "stop_reason": None, "usage": start_usage}}
    for index, block in enumerate(message["content"]):
        yield from _block_events(index, block, chunks)
        if index == 0:
            yield {"type": "ping"}
    yield {"type": "message_delta",
           "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
           "usage": usage}
    yield {"type": "message_stop"}


def _frame(event: Json) -> bytes:
    return f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()


async def _stream(request: web.Request, message: Json, fault: _Fault | None,
                  chunks: int) -> web.StreamResponse:
    answer = web.StreamResponse(headers={"content-type": "text/event-stream",
                                         "cache-control": "no-cache"})
    await answer.prepare(request)
    for sent, event in enumerate(stream_events(message, chunks)):
        if fault is not None and sent == fault.after:
            await _misbehave(request, answer, fault)
            return answer
        await answer.write(_frame(event))
    await answer.write_eof()
    return answer


async def _misbehave(request: web.Request, answer: web.StreamResponse, fault: _Fault) -> None:
    if fault.kind == "cut":
        if request.transport is not None:
            request.transport.close()
    elif fault.kind == "malformed":
        await answer.write(b'event: content_block_delta\ndata: {"type": "content_block_delta"}\n\n')
    else:
        await answer.write(_frame(error_body(fault.error)))


# -- its own process -------------------------------------------------------------------------------


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m router.testing.anthropic")
    parser.add_argument("--name", default="anthropic")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--api-key", default="test-key")
    parser.add_argument("--latency", type=float, default=0.0, help="service time, seconds")
    parser.add_argument("--stream-chunks", type=int, default=3, help="text deltas per block")
    return parser.parse_args(argv)


async def _serve(args: argparse.Namespace) -> None:
    upstream = AnthropicUpstream(args.name, api_key=args.api_key, port=args.port,
                                 latency=args.latency, record=False,
                                 stream_chunks=args.stream_chunks)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with upstream:
        print(f"READY {upstream.url}", flush=True)
        await stop.wait()


class AnthropicProcess:
    """An :class:`AnthropicUpstream` in its own OS process, for benchmarks and sync tests.

    A context manager; entering blocks until the child prints ``READY <url>``.
    """

    def __init__(self, name: str = "anthropic", *, api_key: str = "test-key",
                 latency: float = 0.0, stream_chunks: int = 3,
                 startup_timeout: float = 15.0) -> None:
        self._argv = ["--name", name, "--api-key", api_key, "--latency", str(latency),
                      "--stream-chunks", str(stream_chunks)]
        self._startup_timeout = startup_timeout
        self._proc: subprocess.Popen[str] | None = None
        self.url = ""

    def __enter__(self) -> AnthropicProcess:
        self._proc, self.url = spawn("router.testing.anthropic", self._argv,
                                     self._startup_timeout)
        return self

    def __exit__(self, *exc: object) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            terminate(proc)


def main(argv: Sequence[str] | None = None) -> None:
    asyncio.run(_serve(_parse(argv)))


if __name__ == "__main__":
    main()
