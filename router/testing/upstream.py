"""A fake OpenAI / Azure OpenAI Responses API deployment on a real socket.

:class:`Upstream` is an aiohttp server on ``127.0.0.1`` that answers the
Responses API the way one deployment (an OpenAI project or an Azure resource)
does: real TCP connections, real status codes and headers, real Server-Sent
Events. The test suite, the demo and the benchmarks point a router at a few of
them, because a router's hard parts (retries, cooldowns, stream failures,
affinity of stored responses) only show over a real wire.

What it serves, under three path shapes (``/v1``, Azure ``/openai/v1`` and
Azure legacy ``/openai`` with a required ``api-version`` query):

* ``POST /responses`` (plain, ``stream``, ``background``), ``GET``/``DELETE
  /responses/{id}``, ``POST /responses/{id}/cancel`` and ``GET
  /responses/{id}/input_items``; bodies validate as the official SDK's types.
* ``POST /conversations`` and ``GET /conversations/{id}``: a response may name
  only a conversation made here (else 404, as on OpenAI).
* Tools and options beyond text (image generation with partial images, MCP
  approvals, computer use, custom tools with grammars, ``prompt`` with no
  ``input``, ``include[]`` on retrieve) are answered as OpenAI does
  (:mod:`router.testing.features`).
* Response ids belong to the upstream that made them: a ``previous_response_id``
  from another upstream gets ``400 previous_response_not_found``, as on OpenAI.
* Every answer names who served it (``x-upstream``), through which path shape
  (``x-upstream-route``) and carries an ``x-request-id``; the text of each answer
  says ``[name] turn N: ...`` so a conversation's path can be read from it.

Misbehaviour is injected at run time through :attr:`Upstream.faults` (a
:class:`FaultPlan`), or over HTTP (``/__control/...``) for an upstream running
in another process (:class:`UpstreamProcess`, ``python -m router.testing``).
``latency`` and ``capacity`` model service time and a deployment's concurrency.

The request path is kept lean (ids from a counter, one ``json.dumps`` per
answer, no access log) so the server costs the benchmarks little.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import random
import secrets
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol

import httpx
from aiohttp import web

from router.testing.features import BadRequest, item_events, tool_output, with_includes
from router.testing.process import spawn, terminate
from router.testing.rate_limit import RequestBucket

__all__ = [
    "FaultPlan",
    "RecordedRequest",
    "RemoteFaultPlan",
    "Upstream",
    "UpstreamProcess",
]

#: A decoded JSON value.
Json = Any
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_HOST = "127.0.0.1"
#: How long down()/stop() wait for in-flight requests before cancelling them.
_SHUTDOWN_TIMEOUT = 1.0


# --------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the upstream received it.

    ``headers`` has lower-case keys; ``json`` is the decoded body, or ``None``
    when there was no body or it was not valid JSON. ``query`` keeps one value
    per name; ``query_string`` is the query as sent (repeated names, ``[]``).
    """

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Json
    query_string: str = ""


@dataclass(frozen=True, slots=True)
class _Shape:
    """One of the three URL layouts the upstream serves."""

    name: str  # reported in x-upstream-route
    prefix: str
    azure: bool  # Azure also accepts the api-key header
    needs_api_version: bool


_SHAPES = (
    _Shape("openai", "/v1", azure=False, needs_api_version=False),
    _Shape("azure-v1", "/openai/v1", azure=True, needs_api_version=False),
    _Shape("azure-legacy", "/openai", azure=True, needs_api_version=True),
)


@dataclass(slots=True)
class _Call:
    """A /responses* request in flight; faults may adjust the last two fields."""

    request: web.Request
    shape: _Shape
    body: Json
    headers: dict[str, str]  # carried by every answer to this request
    stream: bool
    closing: asyncio.Event  # set when the upstream goes down
    cut_after: int | None = None  # abort a stream after this many events
    failure: dict[str, str] | None = None  # answer a failed Response instead


class _Reject(Exception):
    """An OpenAI-style error answer, raised from anywhere in a handler."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        type: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"error": {"message": message, "type": type, "param": param, "code": code}}


#: One encoder for every answer (json.dumps with options would build one per call).
_encode = json.JSONEncoder(separators=(",", ":"), check_circular=False).encode


def _dumps(obj: Json) -> bytes:
    return _encode(obj).encode()


def _json(call: _Call, obj: Json, status: int = 200) -> web.Response:
    return web.Response(
        status=status, body=_dumps(obj), content_type="application/json", headers=call.headers
    )


def _drop(request: web.Request) -> None:
    """Close the connection under a request: the client sees a broken read."""
    if request.transport is not None:
        request.transport.close()


# --------------------------------------------------------------------------- faults


class _Answer(Protocol):
    """An injected behaviour: answer in its own way, or adjust the call (None)."""

    async def apply(self, call: _Call) -> web.StreamResponse | None: ...


_DEFAULT_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("invalid_request_error", "Incorrect API key provided"),
    403: ("permission_error", "You are not allowed to access this resource."),
    404: ("invalid_request_error", "The model does not exist or you do not have access to it."),
    408: ("timeout", "Request timed out."),
    429: ("rate_limit_exceeded", "Rate limit reached. Please try again later."),
    500: ("server_error", "The server had an error while processing your request."),
    502: ("server_error", "Bad gateway."),
    503: ("server_error", "The server is overloaded or not ready yet."),
    504: ("server_error", "Gateway timeout."),
}


@dataclass(frozen=True, slots=True)
class _Fail:
    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...]

    async def apply(self, call: _Call) -> web.StreamResponse | None:
        return web.Response(
            status=self.status,
            body=self.body,
            content_type="application/json",
            headers={**call.headers, **dict(self.headers)},
        )


class _Hang:
    async def apply(self, call: _Call) -> web.StreamResponse | None:
        await call.closing.wait()
        _drop(call.request)
        return web.Response(status=503, headers=call.headers)  # never reaches the client


@dataclass(frozen=True, slots=True)
class _CutStream:
    after_events: int

    async def apply(self, call: _Call) -> web.StreamResponse | None:
        call.cut_after = self.after_events
        return None


class _Malformed:
    async def apply(self, call: _Call) -> web.StreamResponse | None:
        if not call.stream:
            return web.Response(
                body=b'{"id": "resp_broken", "object": "respo',
                content_type="application/json",
                headers=call.headers,
            )
        resp = web.StreamResponse(headers={**call.headers, "content-type": "text/event-stream"})
        await resp.prepare(call.request)
        await resp.write(b"event: response.created\ndata: {this is not json\n\n")
        await resp.write_eof()
        return resp


@dataclass(frozen=True, slots=True)
class _FailedResponse:
    code: str
    message: str

    async def apply(self, call: _Call) -> web.StreamResponse | None:
        call.failure = {"code": self.code, "message": self.message}
        return None


@dataclass(slots=True)
class _Armed:
    """An answer with its trigger: the next ``times`` requests, each with ``rate``."""

    answer: _Answer
    times: int | None
    rate: float | None
    rng: random.Random

    def fires(self) -> bool:
        if self.rate is not None and self.rng.random() >= self.rate:
            return False
        if self.times is not None:
            self.times -= 1
        return True


class FaultPlan:
    """What an :class:`Upstream` does wrong, changeable while it runs.

    ``delay`` (set by :meth:`slow`) is added to every /responses* answer. At
    most one other fault is armed at a time; arming one replaces the previous.
    Each takes ``times`` (only the next N requests; ``None``: until
    :meth:`clear`) and ``rate`` (the probability that a request is hit, drawn
    from a ``random.Random(seed)`` owned by the fault, so runs repeat).
    """

    def __init__(self) -> None:
        self.delay = 0.0
        self._armed: _Armed | None = None

    @property
    def active(self) -> bool:
        """Whether an answer-changing fault is armed."""
        return self._armed is not None

    def fail(
        self,
        status: int,
        *,
        code: str | None = None,
        message: str | None = None,
        type: str | None = None,
        times: int | None = None,
        rate: float | None = None,
        retry_after: float | None = None,
        retry_after_ms: int | None = None,
        headers: Mapping[str, str] | None = None,
        seed: int = 0,
    ) -> None:
        """Answer ``status`` with an OpenAI error body.

        ``message`` and ``type`` default to what OpenAI sends for that status;
        ``retry_after`` / ``retry_after_ms`` add those headers; ``headers`` adds
        any others (e.g. ``x-ratelimit-remaining-requests``).
        """
        default_type, default_message = _DEFAULT_ERRORS.get(status, ("api_error", "Error."))
        error = {
            "message": message or default_message,
            "type": type or default_type,
            "param": None,
            "code": code,
        }
        extra = dict(headers or {})
        if retry_after is not None:
            extra["retry-after"] = f"{retry_after:g}"
        if retry_after_ms is not None:
            extra["retry-after-ms"] = str(retry_after_ms)
        fault = _Fail(status, _dumps({"error": error}), tuple(extra.items()))
        self._arm(fault, times, rate, seed)

    def slow(self, seconds: float) -> None:
        """Add ``seconds`` before every answer (before the first byte of a stream)."""
        self.delay = seconds

    def hang(self, *, times: int | None = None, rate: float | None = None, seed: int = 0) -> None:
        """Never answer: hold the request until the client gives up or the upstream stops."""
        self._arm(_Hang(), times, rate, seed)

    def cut_stream(
        self,
        after_events: int,
        *,
        times: int | None = None,
        rate: float | None = None,
        seed: int = 0,
    ) -> None:
        """Send ``after_events`` SSE events, then close the connection mid-stream.

        Only streaming creates are affected; other requests are served normally.
        """
        self._arm(_CutStream(after_events), times, rate, seed)

    def malformed(
        self, *, times: int | None = None, rate: float | None = None, seed: int = 0
    ) -> None:
        """Answer 200 with a body that is not JSON (an SSE event with non-JSON data)."""
        self._arm(_Malformed(), times, rate, seed)

    def failed_response(
        self,
        code: str = "server_error",
        message: str = "The model failed to generate a response.",
        *,
        times: int | None = None,
        rate: float | None = None,
        seed: int = 0,
    ) -> None:
        """Answer creates with a 200 Response whose status is ``failed``."""
        self._arm(_FailedResponse(code, message), times, rate, seed)

    def clear(self) -> None:
        """Back to normal service."""
        self.delay = 0.0
        self._armed = None

    def take(self) -> _Answer | None:
        """The fault that hits this request, if any (counts it against ``times``)."""
        armed = self._armed
        if armed is None or not armed.fires():
            return None
        if armed.times is not None and armed.times <= 0:
            self._armed = None
        return armed.answer

    def _arm(self, answer: _Answer, times: int | None, rate: float | None, seed: int) -> None:
        if times is not None and times <= 0:
            raise ValueError("times must be positive (or None for 'until cleared')")
        if rate is not None and not 0.0 <= rate <= 1.0:
            raise ValueError("rate must be within [0, 1]")
        self._armed = _Armed(answer, times, rate, random.Random(seed))


#: FaultPlan methods the control endpoint may call.
_CONTROL_ACTIONS = frozenset(
    {"fail", "slow", "hang", "cut_stream", "malformed", "failed_response", "clear"}
)


# --------------------------------------------------------------------------- response shapes


class _Ids:
    """Unique ids: a random per-upstream prefix and a counter (cheaper than uuid4)."""

    def __init__(self) -> None:
        self._prefix = secrets.token_hex(8)
        self._count = itertools.count(1)

    def new(self, kind: str) -> str:
        return f"{kind}_{self._prefix}{next(self._count):016x}"


def _part_texts(content: Json) -> Iterator[str]:
    if isinstance(content, str):
        yield content
    elif isinstance(content, list):
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                yield part["text"]


def _texts(inp: Json) -> Iterator[str]:
    """Every text in a request's ``input`` (a string or a list of items)."""
    if isinstance(inp, str):
        yield inp
        return
    for item in inp:
        if isinstance(item, dict):
            yield from _part_texts(item.get("content"))
            if isinstance(item.get("output"), str):
                yield item["output"]


def _measure(inp: Json) -> tuple[str, int]:
    """The last input text and the input's word count (our token count)."""
    last, words = "", 0
    for text in _texts(inp):
        last = text
        words += len(text.split())
    return last, max(words, 1)


def _usage(input_tokens: int, output_tokens: int) -> dict[str, Json]:
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": input_tokens + output_tokens,
    }


def _input_of(body: dict[str, Json]) -> Json:
    """The request's ``input``; a prompt-only request (``prompt`` and no input) has none."""
    inp = body.get("input")
    if inp is None:
        prompt = body.get("prompt") or {}
        return [{"role": "user", "content": f"prompt {prompt.get('id')}"}] if prompt else []
    return inp


def _conversation(value: Json) -> Json:
    return {"id": value} if isinstance(value, str) else value


def _echo(body: dict[str, Json]) -> dict[str, Json]:
    """The request parameters a Response reports back, with OpenAI's defaults."""
    get = body.get
    return {
        "instructions": get("instructions"),
        "metadata": get("metadata") or {},
        "temperature": get("temperature", 1.0),
        "top_p": get("top_p", 1.0),
        "parallel_tool_calls": get("parallel_tool_calls", True),
        "tool_choice": get("tool_choice", "auto"),
        "tools": get("tools") or [],
        "previous_response_id": get("previous_response_id"),
        "conversation": _conversation(get("conversation")),
        "store": get("store", True),
        "background": get("background", False),
        "text": get("text") or {"format": {"type": "text"}},
        "reasoning": get("reasoning") or {"effort": None, "summary": None},
        "max_output_tokens": get("max_output_tokens"),
        "max_tool_calls": get("max_tool_calls"),
        "truncation": get("truncation", "disabled"),
        "user": get("user"),
        "service_tier": get("service_tier", "default"),
        "prompt": get("prompt"),
        "prompt_cache_key": get("prompt_cache_key"),
        "safety_identifier": get("safety_identifier"),
        "top_logprobs": get("top_logprobs", 0),
    }


def _pending(final: dict[str, Json], status: str) -> dict[str, Json]:
    """``final`` as it looks before it is done."""
    return {**final, "status": status, "output": [], "usage": None, "completed_at": None}


def _failed(final: dict[str, Json], error: dict[str, str]) -> dict[str, Json]:
    return {**_pending(final, "failed"), "error": error}


def _text_part(role: Json, text: str) -> dict[str, Json]:
    if role == "assistant":
        return {"type": "output_text", "text": text, "annotations": []}
    return {"type": "input_text", "text": text}


def _input_item(item: Json, ids: _Ids) -> Json:
    """One input item as OpenAI lists it: typed, with an id, message content as parts."""
    if isinstance(item, str):
        item = {"role": "user", "content": item}
    if not isinstance(item, dict):
        return item
    out = dict(item)
    kind = out.setdefault("type", "message")
    if kind == "message":
        if isinstance(out.get("content"), str):
            out["content"] = [_text_part(out.get("role"), out["content"])]
        out.setdefault("status", "completed")
    out.setdefault("id", ids.new("msg" if kind == "message" else "item"))
    return out


def _input_items(inp: Json, ids: _Ids) -> list[Json]:
    """A request's ``input`` as stored items, each with an id."""
    return [_input_item(item, ids) for item in ([inp] if isinstance(inp, str) else inp)]


def _split(text: str, chunks: int) -> list[str]:
    size = max(1, -(-len(text) // chunks))
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def _completed_events(
    final: dict[str, Json], chunks: int, body: dict[str, Json]
) -> list[dict[str, Json]]:
    pending = _pending(final, "in_progress")
    events: list[dict[str, Json]] = [
        {"type": "response.created", "response": pending},
        {"type": "response.in_progress", "response": pending},
    ]
    for index, item in enumerate(final["output"]):
        if item["type"] == "message":
            events.extend(_message_events(item, index, chunks))
        else:
            events.extend(item_events(item, index, body))
    events.append({"type": "response.completed", "response": final})
    return events


def _message_events(item: dict[str, Json], index: int, chunks: int) -> list[dict[str, Json]]:
    part = item["content"][0]
    at = {"item_id": item["id"], "output_index": index, "content_index": 0}
    return [
        {
            "type": "response.output_item.added",
            "output_index": index,
            "item": {**item, "status": "in_progress", "content": []},
        },
        {"type": "response.content_part.added", **at, "part": {**part, "text": ""}},
        *(
            {"type": "response.output_text.delta", **at, "delta": delta, "logprobs": []}
            for delta in _split(part["text"], chunks)
        ),
        {"type": "response.output_text.done", **at, "text": part["text"], "logprobs": []},
        {"type": "response.content_part.done", **at, "part": part},
        {"type": "response.output_item.done", "output_index": index, "item": item},
    ]


def _failed_events(final: dict[str, Json]) -> list[dict[str, Json]]:
    pending = {**final, "status": "in_progress", "error": None}
    return [
        {"type": "response.created", "response": pending},
        {"type": "response.in_progress", "response": pending},
        {"type": "response.failed", "response": final},
    ]


def _sse(events: list[dict[str, Json]]) -> Iterator[bytes]:
    for seq, event in enumerate(events):
        event["sequence_number"] = seq
        yield b"event: %s\ndata: %s\n\n" % (event["type"].encode(), _dumps(event))


def _page(items: list[Json], query: Mapping[str, str]) -> dict[str, Json]:
    """One page of input items, after OpenAI's ``limit``/``order``/``after``/``before``."""
    try:
        limit = int(query.get("limit", "20"))
    except ValueError:
        limit = 0
    if not 1 <= limit <= 100:
        raise _Reject(400, "limit must be an integer between 1 and 100.", param="limit")
    order = query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise _Reject(400, "order must be 'asc' or 'desc'.", param="order")
    seq = items if order == "asc" else items[::-1]
    ids = [item.get("id") for item in seq]
    start = _cursor(ids, query, "after") + 1 if "after" in query else 0
    end = _cursor(ids, query, "before") if "before" in query else len(seq)
    window = seq[start:end]
    data = window[:limit]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0].get("id") if data else None,
        "last_id": data[-1].get("id") if data else None,
        "has_more": len(window) > limit,
    }


def _cursor(ids: list[Json], query: Mapping[str, str], name: str) -> int:
    try:
        return ids.index(query[name])
    except ValueError:
        raise _Reject(400, f"No input item with id '{query[name]}'.", param=name) from None


# --------------------------------------------------------------------------- the server


class Upstream:
    """One fake deployment (an OpenAI project or an Azure resource) on 127.0.0.1.

    Use as ``async with Upstream("east") as east: ... east.url ...``. Request
    records (:attr:`requests`, :attr:`hits`) and stored responses are plain
    attributes, for tests to read. ``latency`` is the service time of each
    answer; with ``capacity``, at most that many requests are in service at
    once and the rest queue. Background responses move ``queued`` ->
    ``in_progress`` -> ``completed`` over ``background_delay`` seconds.
    ``record_requests=False`` keeps :attr:`requests` empty (long benchmarks).
    ``prompt_cache=(ttl, miss_seconds)`` models a prompt cache (see
    :attr:`cache_hits`, :attr:`cache_misses`, and ``/__control/stats``).
    ``jitter`` spreads each service time uniformly over ``latency x (1 +- jitter)``
    (seeded by ``seed``, so runs repeat).
    ``rate_limit=(limit, window)`` limits creates to ``limit`` per ``window``
    seconds, shown in OpenAI's ``x-ratelimit-*`` headers unless
    ``rate_limit_headers=False`` (:mod:`router.testing.rate_limit`; refusals
    in :attr:`rate_limited`).
    """

    def __init__(
        self,
        name: str = "upstream",
        *,
        api_key: str | None = None,
        port: int = 0,
        latency: float = 0.0,
        capacity: int | None = None,
        extra_fields: Mapping[str, Json] | None = None,
        stream_chunks: int = 4,
        background_delay: float = 0.2,
        record_requests: bool = True,
        prompt_cache: tuple[float, float] | None = None,
        rate_limit: tuple[int, float] | None = None,
        rate_limit_headers: bool = True,
        jitter: float = 0.0,
        seed: int = 0,
    ) -> None:
        if not 0 <= jitter < 1:
            raise ValueError(f"jitter is a share of the latency in [0, 1), got {jitter!r}")
        self.name = name
        self.faults = FaultPlan()
        self._jitter = jitter
        self._seed = seed
        self._rng = random.Random(seed)
        self._bucket = None if rate_limit is None else RequestBucket(
            *rate_limit, headers=rate_limit_headers)
        #: ``(ttl, miss_seconds)``: a prompt cache per ``prompt_cache_key`` (else the first
        #: 1,024 characters of ``instructions``); a hit reports the input as cached
        #: tokens, a miss takes ``miss_seconds`` more (the prefill the cache saves).
        self._prompt_cache = prompt_cache
        self._cached: dict[str, float] = {}
        self.cache_hits = 0
        self.cache_misses = 0
        self.requests: list[RecordedRequest] = []
        self.hits = 0
        self.stored: dict[str, dict[str, Json]] = {}
        self._api_key = api_key
        self._port = port
        self._latency = latency
        self._capacity = capacity
        self._extra = dict(extra_fields or {})
        self._chunks = max(1, stream_chunks)
        self._background_delay = background_delay
        self._record = record_requests
        self._ids = _Ids()
        self._turns: dict[str, int] = {}
        #: OpenAI Conversations made here (``POST /conversations``), by id.
        self.conversations: dict[str, dict[str, Json]] = {}
        self._conversation_turns: dict[str, int] = {}
        self._inputs: dict[str, Json] = {}  # raw input, normalised on first listing
        self._items: dict[str, list[Json]] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._slots: asyncio.Semaphore | None = None
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None

    # -- lifecycle

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``; the port is fixed by the first :meth:`start`."""
        if not self._port:
            raise RuntimeError(f"upstream {self.name!r} has not been started")
        return f"http://{_HOST}:{self._port}"

    @property
    def port(self) -> int:
        return self._port

    async def start(self) -> None:
        self._slots = asyncio.Semaphore(self._capacity) if self._capacity else None
        await self.up()

    async def stop(self) -> None:
        """Stop serving and cancel pending background work."""
        await self.down()
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def down(self) -> None:
        """Stop listening: new connections are refused, open ones are closed."""
        if self._runner is None:
            return
        self._closing.set()
        runner, self._runner = self._runner, None
        await runner.cleanup()

    async def up(self) -> None:
        """Listen again, on the same port as before."""
        if self._runner is not None:
            return
        self._closing = asyncio.Event()
        runner = web.AppRunner(self._app(), access_log=None, shutdown_timeout=_SHUTDOWN_TIMEOUT)
        await runner.setup()
        try:
            await web.TCPSite(runner, _HOST, self._port, reuse_address=True).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._port = runner.addresses[0][1]
        self._runner = runner

    def reset(self) -> None:
        """Clear faults, recorded requests, hits and the prompt cache; stored responses stay."""
        self.faults.clear()
        self.requests.clear()
        self.hits = 0
        self._cached.clear()
        self.cache_hits = self.cache_misses = 0
        if self._bucket is not None:
            self._bucket.reset()
        self._rng = random.Random(self._seed)

    @property
    def rate_limited(self) -> int:
        """Creates answered 429 by the ``rate_limit`` (since the last :meth:`reset`)."""
        return 0 if self._bucket is None else self._bucket.refused

    async def __aenter__(self) -> Upstream:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def __repr__(self) -> str:
        return f"Upstream({self.name!r}, port={self._port})"

    # -- routing

    def _app(self) -> web.Application:
        app = web.Application()
        ops: tuple[tuple[str, str, Callable[[_Call], Awaitable[web.StreamResponse]]], ...] = (
            ("POST", "/responses", self._create),
            ("GET", "/responses/{id}", self._retrieve),
            ("DELETE", "/responses/{id}", self._delete),
            ("POST", "/responses/{id}/cancel", self._cancel),
            ("GET", "/responses/{id}/input_items", self._list_input_items),
            ("POST", "/conversations", self._create_conversation),
            ("GET", "/conversations/{id}", self._get_conversation),
        )
        for shape in _SHAPES:
            for method, path, op in ops:
                app.router.add_route(method, shape.prefix + path, self._endpoint(shape, op))
        app.router.add_post("/__control/fault", self._control_fault)
        app.router.add_post("/__control/reset", self._control_reset)
        app.router.add_get("/__control/stats", self._control_stats)
        app.router.add_route("*", "/{tail:.*}", self._unknown_path)
        return app

    def _endpoint(
        self, shape: _Shape, op: Callable[[_Call], Awaitable[web.StreamResponse]]
    ) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            try:
                call = await self._admit(request, shape)
            except ConnectionError:  # the client left while sending its body
                return web.Response(status=400)
            try:
                self._check_access(call)
                return await self._serve(call, op)
            except _Reject as reject:
                return _json(call, reject.body, reject.status)

        return handle

    async def _admit(self, request: web.Request, shape: _Shape) -> _Call:
        body = await self._record_request(request)
        self.hits += 1
        headers = {
            "x-upstream": self.name,
            "x-request-id": self._ids.new("req"),
            "x-upstream-route": shape.name,
        }
        stream = isinstance(body, dict) and body.get("stream") is True
        return _Call(request, shape, body, headers, stream, self._closing)

    async def _record_request(self, request: web.Request) -> Json:
        body: Json = None
        if request.body_exists:
            try:
                body = json.loads(await request.read())
            except ValueError:
                body = None
        if self._record:
            headers = {k.lower(): v for k, v in request.headers.items()}
            self.requests.append(RecordedRequest(
                request.method, request.path, dict(request.query), headers, body,
                request.query_string,
            ))
        return body

    def _check_access(self, call: _Call) -> None:
        """Azure's missing-api-version 404 first, then the key check."""
        if call.shape.needs_api_version and "api-version" not in call.request.query:
            raise _Reject(404, "Resource not found", code="404")
        key = self._api_key
        if key is None:
            return
        headers = call.request.headers
        if headers.get("Authorization") == f"Bearer {key}":
            return
        if call.shape.azure and headers.get("api-key") == key:
            return
        raise _Reject(401, "Incorrect API key provided", code="invalid_api_key")

    async def _serve(
        self, call: _Call, op: Callable[[_Call], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        bucket = self._bucket
        if bucket is not None and op == self._create and not bucket.take(call.headers):
            raise _Reject(429, "Rate limit reached for requests", code="rate_limit_exceeded",
                          type="requests")
        answer = self.faults.take()
        await self._service_time()
        if answer is not None:
            early = await answer.apply(call)
            if early is not None:
                return early
        return await op(call)

    async def _service_time(self) -> None:
        seconds = self._latency + self.faults.delay
        if self._jitter:
            seconds *= 1 + self._jitter * (2 * self._rng.random() - 1)
        if self._slots is not None:
            async with self._slots:
                await asyncio.sleep(seconds)
        elif seconds > 0:
            await asyncio.sleep(seconds)

    # -- operations

    async def _create(self, call: _Call) -> web.StreamResponse:
        body = _check_create(call.body)
        turn = self._turn_after(body)
        final = self._build(body, turn)
        if self._prompt_cache is not None:
            await self._through_cache(body, final)
        if call.failure is not None:
            final = _failed(final, call.failure)
        self._store(final, body, turn)
        if body.get("background") is True and not call.stream:
            return _json(call, self._start_background(final))
        if call.stream:
            return await self._stream(call, final)
        return _json(call, final)

    async def _through_cache(self, body: dict[str, Json], final: dict[str, Json]) -> None:
        """A hit reports the input as cached; a miss costs the prefill time."""
        assert self._prompt_cache is not None
        ttl, miss = self._prompt_cache
        key = body.get("prompt_cache_key") or str(body.get("instructions") or "")[:1024]
        if not key:
            return
        now = time.monotonic()
        if now - self._cached.get(key, -math.inf) <= ttl:
            self.cache_hits += 1
            usage = final["usage"]
            usage["input_tokens_details"]["cached_tokens"] = usage["input_tokens"]
        else:
            self.cache_misses += 1
            if miss > 0:
                await asyncio.sleep(miss)
        self._cached[key] = now

    def _turn_after(self, body: dict[str, Json]) -> int:
        previous = body.get("previous_response_id")
        if previous is None:
            conversation = _conversation(body.get("conversation"))
            if conversation is None:
                return 1
            cid = conversation.get("id") if isinstance(conversation, dict) else None
            if cid not in self.conversations:
                raise _Reject(404, f"Conversation with id '{cid}' not found.",
                              param="conversation")
            return self._conversation_turns.get(cid, 0) + 1
        if body.get("conversation") is not None:
            raise _Reject(
                400,
                "Mutually exclusive parameters: Ensure you are only providing one of: "
                "'previous_response_id' or 'conversation'.",
                code="mutually_exclusive_parameters",
            )
        if previous not in self.stored:
            raise _Reject(
                400,
                f"Previous response with id '{previous}' not found.",
                param="previous_response_id",
                code="previous_response_not_found",
            )
        return self._turns.get(previous, 1) + 1

    def _build(self, body: dict[str, Json], turn: int) -> dict[str, Json]:
        last, input_tokens = _measure(_input_of(body))
        text = f"[{self.name}] turn {turn}: {last[:40]}"
        now = int(time.time())
        output = self._tool_output(body, last) or [{
            "id": self._ids.new("msg"),
            "type": "message",
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": text, "annotations": []}],
        }]
        response: dict[str, Json] = {
            "id": self._ids.new("resp"),
            "object": "response",
            "created_at": now,
            "status": "completed",
            "completed_at": now,
            "error": None,
            "incomplete_details": None,
            "model": body["model"],
            "output": output,
            "usage": _usage(input_tokens, len(text.split())),
            **_echo(body),
        }
        if self._extra:
            response.update(self._extra)
        return response

    def _tool_output(self, body: dict[str, Json], last: str) -> list[Json] | None:
        previous = self.stored.get(body.get("previous_response_id") or "")
        try:
            return tool_output(body, previous, self._ids.new, last)
        except BadRequest as exc:
            raise _Reject(400, str(exc), param=exc.param) from None

    def _store(self, final: dict[str, Json], body: dict[str, Json], turn: int) -> None:
        if final["store"] is False:
            return
        rid = final["id"]
        self.stored[rid] = final
        self._turns[rid] = turn
        conversation = final.get("conversation")
        if isinstance(conversation, dict):
            self._conversation_turns[conversation["id"]] = turn
        self._inputs[rid] = _input_of(body)

    def _start_background(self, final: dict[str, Json]) -> dict[str, Json]:
        rid = final["id"]
        queued = _pending(final, "queued")
        self.stored[rid] = queued
        self._tasks[rid] = asyncio.create_task(self._run_background(rid, final))
        return queued

    async def _run_background(self, rid: str, final: dict[str, Json]) -> None:
        half = self._background_delay / 2
        await asyncio.sleep(half)
        if rid in self.stored:
            self.stored[rid]["status"] = "in_progress"
        await asyncio.sleep(half)
        if rid in self.stored:
            self.stored[rid] = final
        self._tasks.pop(rid, None)

    async def _stream(self, call: _Call, final: dict[str, Json]) -> web.StreamResponse:
        events = (
            _failed_events(final)
            if final["status"] == "failed"
            else _completed_events(final, self._chunks, call.body)
        )
        headers = {**call.headers, "content-type": "text/event-stream", "cache-control": "no-cache"}
        resp = web.StreamResponse(headers=headers)
        await resp.prepare(call.request)
        for sent, chunk in enumerate(_sse(events)):
            if sent == call.cut_after:
                _drop(call.request)
                return resp
            await resp.write(chunk)
        await resp.write_eof()
        return resp

    def _lookup(self, call: _Call) -> tuple[str, dict[str, Json]]:
        rid = call.request.match_info["id"]
        stored = self.stored.get(rid)
        if stored is None:
            raise _Reject(404, f"Response with id '{rid}' not found.")
        return rid, stored

    async def _retrieve(self, call: _Call) -> web.StreamResponse:
        stored = self._lookup(call)[1]
        query = call.request.query
        include = query.getall("include[]", []) + query.getall("include", [])
        if not include:
            return _json(call, stored)
        try:
            return _json(call, with_includes(stored, include))
        except BadRequest as exc:
            raise _Reject(400, str(exc), param=exc.param) from None

    async def _delete(self, call: _Call) -> web.StreamResponse:
        rid, _ = self._lookup(call)
        for table in (self.stored, self._turns, self._inputs, self._items):
            table.pop(rid, None)
        task = self._tasks.pop(rid, None)
        if task is not None:
            task.cancel()
        return _json(call, {"id": rid, "object": "response.deleted", "deleted": True})

    async def _cancel(self, call: _Call) -> web.StreamResponse:
        rid, stored = self._lookup(call)
        if stored.get("background") is not True:
            raise _Reject(400, "Only responses created with background=true can be cancelled")
        task = self._tasks.pop(rid, None)
        if task is not None:
            task.cancel()
            stored["status"] = "cancelled"
        elif stored.get("status") != "cancelled":
            raise _Reject(400, f"Cannot cancel a response with status '{stored.get('status')}'.")
        return _json(call, stored)

    async def _create_conversation(self, call: _Call) -> web.StreamResponse:
        body = call.body if isinstance(call.body, dict) else {}
        cid = self._ids.new("conv")
        conversation: dict[str, Json] = {"id": cid, "object": "conversation",
                                         "created_at": int(time.time()),
                                         "metadata": body.get("metadata") or {}}
        self.conversations[cid] = conversation
        return _json(call, conversation)

    async def _get_conversation(self, call: _Call) -> web.StreamResponse:
        cid = call.request.match_info["id"]
        found = self.conversations.get(cid)
        if found is None:
            raise _Reject(404, f"Conversation with id '{cid}' not found.")
        return _json(call, found)

    async def _list_input_items(self, call: _Call) -> web.StreamResponse:
        rid, _ = self._lookup(call)
        items = self._items.get(rid)
        if items is None:
            items = self._items[rid] = _input_items(self._inputs.get(rid, []), self._ids)
        return _json(call, _page(items, call.request.query))

    # -- control (for an upstream in another process) and stray paths

    async def _control_fault(self, request: web.Request) -> web.Response:
        try:
            spec = await request.json()
            action = spec.pop("action")
            if action not in _CONTROL_ACTIONS:
                raise ValueError(f"unknown action {action!r}")
            getattr(self.faults, action)(**spec)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            return web.json_response({"ok": False, "error": str(exc)}, status=400)
        return web.json_response({"ok": True})

    async def _control_reset(self, request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"ok": True})

    async def _control_stats(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "name": self.name,
                "hits": self.hits,
                "stored": len(self.stored),
                "requests": len(self.requests),
                "cache_hits": self.cache_hits,
                "cache_misses": self.cache_misses,
                "rate_limited": self.rate_limited,
            }
        )

    async def _unknown_path(self, request: web.Request) -> web.Response:
        await self._record_request(request)
        error = {
            "message": f"Unknown path: {request.method} {request.path}",
            "type": "invalid_request_error",
            "param": None,
            "code": "unknown_url",
        }
        headers = {"x-upstream": self.name, "x-request-id": self._ids.new("req")}
        return web.json_response({"error": error}, status=404, headers=headers)


def _check_create(body: Json) -> dict[str, Json]:
    """The create body, or a 400 naming the offending parameter."""
    if not isinstance(body, dict):
        raise _Reject(400, "We could not parse the JSON body of your request.")
    if not isinstance(body.get("model"), str):
        raise _Reject(
            400,
            "Missing required parameter: 'model'.",
            param="model",
            code="missing_required_parameter",
        )
    # A stored prompt may stand for the whole input, as on OpenAI.
    prompt_only = body.get("input") is None and isinstance(body.get("prompt"), dict)
    if not prompt_only and not isinstance(body.get("input"), str | list):
        raise _Reject(
            400,
            "Invalid 'input': expected a string or an array of input items.",
            param="input",
            code="invalid_type",
        )
    if body.get("background") is True and body.get("store", True) is False:
        raise _Reject(400, "Background mode requires store=true.", param="background")
    return body


# --------------------------------------------------------------------------- another process


class RemoteFaultPlan:
    """:class:`FaultPlan`'s methods, sent to an upstream over its control endpoint."""

    def __init__(self, client: httpx.Client) -> None:
        self._client = client

    def fail(
        self,
        status: int,
        *,
        code: str | None = None,
        message: str | None = None,
        type: str | None = None,
        times: int | None = None,
        rate: float | None = None,
        retry_after: float | None = None,
        retry_after_ms: int | None = None,
        headers: Mapping[str, str] | None = None,
        seed: int = 0,
    ) -> None:
        self._send(
            "fail",
            status=status,
            code=code,
            message=message,
            type=type,
            times=times,
            rate=rate,
            retry_after=retry_after,
            retry_after_ms=retry_after_ms,
            headers=dict(headers) if headers else None,
            seed=seed,
        )

    def slow(self, seconds: float) -> None:
        self._send("slow", seconds=seconds)

    def hang(self, *, times: int | None = None, rate: float | None = None, seed: int = 0) -> None:
        self._send("hang", times=times, rate=rate, seed=seed)

    def cut_stream(
        self,
        after_events: int,
        *,
        times: int | None = None,
        rate: float | None = None,
        seed: int = 0,
    ) -> None:
        self._send("cut_stream", after_events=after_events, times=times, rate=rate, seed=seed)

    def malformed(
        self, *, times: int | None = None, rate: float | None = None, seed: int = 0
    ) -> None:
        self._send("malformed", times=times, rate=rate, seed=seed)

    def failed_response(
        self,
        code: str = "server_error",
        message: str = "The model failed to generate a response.",
        *,
        times: int | None = None,
        rate: float | None = None,
        seed: int = 0,
    ) -> None:
        self._send("failed_response", code=code, message=message, times=times, rate=rate, seed=seed)

    def clear(self) -> None:
        self._send("clear")

    def _send(self, action: str, **params: Json) -> None:
        reply = self._client.post("/__control/fault", json={"action": action, **params})
        if reply.status_code != 200:
            raise ValueError(f"control action {action!r} refused: {reply.text}")


class UpstreamProcess:
    """An :class:`Upstream` in its own OS process (``python -m router.testing``).

    For benchmarks, where the fake must not share the router's event loop.
    :meth:`start` blocks until the child prints ``READY <url>``. Faults are
    set through :attr:`faults`, which mirrors :class:`FaultPlan` over HTTP.
    """

    def __init__(
        self,
        name: str = "upstream",
        *,
        api_key: str | None = None,
        port: int = 0,
        latency: float = 0.0,
        capacity: int | None = None,
        extra_fields: Mapping[str, Json] | None = None,
        stream_chunks: int = 4,
        background_delay: float = 0.2,
        record_requests: bool = True,
        startup_timeout: float = 15.0,
        prompt_cache: tuple[float, float] | None = None,
        rate_limit: tuple[int, float] | None = None,
        rate_limit_headers: bool = True,
        jitter: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.name = name
        self._argv = _cli_args(
            name=name,
            api_key=api_key,
            port=port,
            latency=latency,
            capacity=capacity,
            extra_fields=extra_fields,
            stream_chunks=stream_chunks,
            background_delay=background_delay,
            record_requests=record_requests,
            prompt_cache=prompt_cache,
            rate_limit=rate_limit,
            rate_limit_headers=rate_limit_headers,
            jitter=jitter,
            seed=seed,
        )
        self._startup_timeout = startup_timeout
        self._proc: subprocess.Popen[str] | None = None
        self._client: httpx.Client | None = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError(f"upstream process {self.name!r} has not been started")
        return self._url

    @property
    def faults(self) -> RemoteFaultPlan:
        return RemoteFaultPlan(self._control())

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self) -> None:
        """Spawn the child and wait until it listens."""
        if self._proc is not None:
            return
        self._proc, self._url = spawn("router.testing", self._argv, self._startup_timeout)
        self._client = httpx.Client(base_url=self._url, timeout=10.0)

    def stop(self) -> None:
        """Terminate the child (kill it if it does not exit within 5 s)."""
        proc, self._proc = self._proc, None
        if self._client is not None:
            self._client.close()
            self._client = None
        if proc is not None:
            terminate(proc)

    def stats(self) -> dict[str, Json]:
        """``{"name", "hits", "stored", "requests", "cache_hits", "cache_misses",
        "rate_limited"}`` from the child."""
        reply = self._control().get("/__control/stats")
        reply.raise_for_status()
        stats: dict[str, Json] = reply.json()
        return stats

    def reset(self) -> None:
        self._control().post("/__control/reset").raise_for_status()

    def _control(self) -> httpx.Client:
        if self._client is None:
            raise RuntimeError(f"upstream process {self.name!r} has not been started")
        return self._client

    def __enter__(self) -> UpstreamProcess:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> UpstreamProcess:
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)


def _cli_args(
    *,
    name: str,
    api_key: str | None,
    port: int,
    latency: float,
    capacity: int | None,
    extra_fields: Mapping[str, Json] | None,
    stream_chunks: int,
    background_delay: float,
    record_requests: bool,
    prompt_cache: tuple[float, float] | None = None,
    rate_limit: tuple[int, float] | None = None,
    rate_limit_headers: bool = True,
    jitter: float = 0.0,
    seed: int = 0,
) -> list[str]:
    """The ``python -m router.testing`` arguments for these settings."""
    argv = [
        "--name",
        name,
        "--port",
        str(port),
        "--latency",
        repr(latency),
        "--stream-chunks",
        str(stream_chunks),
        "--background-delay",
        repr(background_delay),
    ]
    if api_key is not None:
        argv += ["--api-key", api_key]
    if capacity is not None:
        argv += ["--capacity", str(capacity)]
    if extra_fields:
        argv += ["--extra-fields", json.dumps(dict(extra_fields))]
    if not record_requests:
        argv.append("--no-record")
    if prompt_cache is not None:
        argv += ["--prompt-cache", f"{prompt_cache[0]!r},{prompt_cache[1]!r}"]
    if rate_limit is not None:
        argv += ["--rate-limit", f"{rate_limit[0]},{rate_limit[1]!r}"]
        if not rate_limit_headers:
            argv.append("--hide-rate-limit")
    if jitter:
        argv += ["--jitter", repr(jitter), "--seed", str(seed)]
    return argv
