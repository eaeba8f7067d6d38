"""A fake AWS Bedrock runtime (Converse and ConverseStream) on a real socket.

:class:`BedrockFake` is an aiohttp server on ``127.0.0.1`` that answers
``POST /model/{modelId}/converse`` and ``/converse-stream`` as Bedrock does,
and is as strict as Bedrock where the router can get it wrong:

* auth: every request must carry a valid SigV4 signature (service
  ``bedrock``, the fake's region), recomputed with botocore from the known
  secret over the received method, path, signed headers and body bytes. An
  unknown key, a wrong signature (wrong secret, a body altered after
  signing), a date more than five minutes off the fake's clock, or a
  missing session token are refused with Bedrock's exception names and 403;
* requests: the body is validated against botocore's ``bedrock-runtime``
  service model (unknown fields, missing or mistyped ones, unions with two
  members set), then against Converse's conversation rules (starts with a
  user turn, roles alternate, no blank text, tool blocks need a
  ``toolConfig``, tool results answer the previous turn's tool uses,
  replayed thinking keeps its signature); a refusal is a
  ``ValidationException`` (400) with the message in Bedrock's words;
* answers: Converse bodies and AWS event-stream frames (prelude, string
  headers, JSON payload with Bedrock's ``p`` padding, CRC-32s), encoded by
  :func:`event_message` and decodable by botocore's parser. The "model"
  echoes the last user text, calls the first (or the chosen) tool when tools
  are offered, thinks first when a thinking budget is set, answers JSON
  under ``outputConfig``, and stops at ``maxTokens`` words;
* faults (:attr:`BedrockFake.faults`): exception answers with any status and
  ``Retry-After``, exception frames mid-stream, cut streams, malformed
  bodies and frames, a forced stop reason, latency.

``python -m router.testing.bedrock --port 0`` runs one in its own process and
prints ``READY <url>`` (for benchmarks).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import calendar
import hashlib
import hmac
import itertools
import json
import re
import signal
import struct
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from aiohttp import web

if TYPE_CHECKING:
    from botocore.model import Shape

__all__ = ["BedrockFake", "BedrockFaults", "BedrockRequest", "event_message", "thinking_signature"]

Json = dict[str, Any]

_HOST = "127.0.0.1"
_SERVICE = "bedrock"
#: How far a request's X-Amz-Date may be from the fake's clock (AWS allows five minutes).
_SKEW_SECONDS = 300
_ERROR_NAMESPACE = "http://internal.amazon.com/coral/com.amazon.bedrock/"
_AUTH = re.compile(
    r"AWS4-HMAC-SHA256 Credential=([^/,\s]+)/(\d{8})/([^/,\s]+)/([^/,\s]+)/aws4_request,\s*"
    r"SignedHeaders=([a-z0-9;\-]+),\s*Signature=([0-9a-f]{64})")
#: Status of each exception the fake answers with (botocore's model, plus the auth ones).
_STATUS = {
    "ThrottlingException": 429, "ModelNotReadyException": 429, "ValidationException": 400,
    "AccessDeniedException": 403, "ResourceNotFoundException": 404,
    "ModelTimeoutException": 408, "ModelErrorException": 424,
    "InternalServerException": 500, "ServiceUnavailableException": 503,
    "UnrecognizedClientException": 403, "InvalidSignatureException": 403,
    "IncompleteSignatureException": 403, "MissingAuthenticationTokenException": 403,
}
_PADDING = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


# ------------------------------------------------------------------------ event stream


def event_message(headers: Mapping[str, str], payload: bytes) -> bytes:
    """One AWS event-stream message: prelude, string headers, payload, CRC-32s."""
    encoded = b"".join(_header(name, value) for name, value in headers.items())
    total = 12 + len(encoded) + len(payload) + 4
    prelude = struct.pack(">II", total, len(encoded))
    prelude += struct.pack(">I", binascii.crc32(prelude))
    body = prelude + encoded + payload
    return body + struct.pack(">I", binascii.crc32(body))


def _header(name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode(), value.encode()
    return (struct.pack(">B", len(raw_name)) + raw_name + b"\x07"
            + struct.pack(">H", len(raw_value)) + raw_value)


def _event(name: str, payload: Json, pad: int) -> bytes:
    # Bedrock pads every event payload with a "p" field of varying length.
    data = {**payload, "p": _PADDING[: 1 + pad % len(_PADDING)]}
    return event_message({":event-type": name, ":content-type": "application/json",
                          ":message-type": "event"}, json.dumps(data).encode())


def _exception(name: str, message: str) -> bytes:
    member = name[0].lower() + name[1:]
    return event_message({":exception-type": member, ":content-type": "application/json",
                          ":message-type": "exception"}, json.dumps({"message": message}).encode())


def thinking_signature(text: str) -> str:
    """The signature the fake gives (and later checks on) a thinking block's text."""
    return base64.b64encode(hashlib.sha256(b"fake-thinking:" + text.encode()).digest()).decode()


# ------------------------------------------------------------------------ records, faults


@dataclass(frozen=True, slots=True)
class BedrockRequest:
    """One request as received: the decoded model id, the operation and the JSON body."""

    model_id: str
    operation: str
    headers: dict[str, str]
    json: Any


class _Reject(Exception):
    """A Bedrock error answer, raised from anywhere in a handler."""

    def __init__(self, kind: str, message: str, *, status: int | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status = status or _STATUS.get(kind, 400)
        self.retry_after = retry_after


@dataclass(slots=True)
class _Fault:
    kind: str  # "fail", "stream_exception", "cut", "malformed", "stop"
    times: int
    exception: str = ""
    message: str = ""
    status: int | None = None
    retry_after: float | None = None
    after: int = 0


@dataclass(slots=True)
class BedrockFaults:
    """Misbehaviour armed for the next requests, taken in order (each ``times`` times)."""

    _armed: list[_Fault] = field(default_factory=list)

    def fail(self, exception: str, message: str | None = None, *, status: int | None = None,
             retry_after: float | None = None, times: int = 1) -> None:
        """Answer with ``exception`` (e.g. ``"ThrottlingException"``) instead of serving."""
        self._armed.append(_Fault("fail", times, exception, message or f"fake {exception}",
                                  status, retry_after))

    def stream_exception(self, exception: str, message: str | None = None, *,
                         after: int = 3, times: int = 1) -> None:
        """A stream sends ``after`` event frames, then an exception frame, and ends."""
        member = exception[0].lower() + exception[1:]
        self._armed.append(_Fault("stream_exception", times, member,
                                  message or f"fake {exception}", after=after))

    def cut_stream(self, *, after: int = 3, times: int = 1) -> None:
        """A stream sends ``after`` frames and half of the next, then ends."""
        self._armed.append(_Fault("cut", times, after=after))

    def malformed(self, *, after: int = 0, times: int = 1) -> None:
        """A 200 body that is not Converse's shape; a stream's frame ``after`` has a wrong CRC."""
        self._armed.append(_Fault("malformed", times, after=after))

    def stop_reason(self, reason: str, *, times: int = 1) -> None:
        """The next answers end with ``reason`` (e.g. ``"content_filtered"``)."""
        self._armed.append(_Fault("stop", times, message=reason))

    def clear(self) -> None:
        self._armed.clear()

    def take(self) -> _Fault | None:
        for fault in self._armed:
            if fault.times > 0:
                fault.times -= 1
                return fault
        return None


# ------------------------------------------------------------------------ the "model"


@dataclass(slots=True)
class _Reply:
    blocks: list[Json]
    stop: str
    input_tokens: int


def _words(text: str) -> int:
    return len(text.split())


def _texts(blocks: Sequence[Json]) -> list[str]:
    return [b["text"] for b in blocks if isinstance(b.get("text"), str)]


def _reply(name: str, model: str, body: Json, ids: Iterator[int]) -> _Reply:
    last = body["messages"][-1]["content"]
    said = " ".join(_texts(last))
    blocks: list[Json] = []
    extra = body.get("additionalModelRequestFields") or {}
    if (extra.get("thinking") or {}).get("type") == "enabled":
        thought = f"Thinking about: {said}"
        blocks.append({"reasoningContent": {"reasoningText": {
            "text": thought, "signature": thinking_signature(thought)}}})
    elif (extra.get("reasoningConfig") or {}).get("type") == "enabled":
        # Nova 2 thinks, but shows its reasoning only as [REDACTED], unsigned
        blocks.append({"reasoningContent": {"reasoningText": {"text": "[REDACTED]"}}})
    tools = (body.get("toolConfig") or {}).get("tools") or []
    results = [b["toolResult"] for b in last if "toolResult" in b]
    if tools and not results:
        chosen = (body["toolConfig"].get("toolChoice") or {}).get("tool", {}).get("name")
        tool = chosen or tools[0]["toolSpec"]["name"]
        blocks.append({"text": f"Calling {tool}."})
        blocks.append({"toolUse": {"toolUseId": f"tooluse_{next(ids)}", "name": tool,
                                   "input": {"query": said}}})
        return _Reply(blocks, "tool_use", _input_words(body))
    blocks.append({"text": _answer(name, body, said, results, last)})
    return _Reply(blocks, "end_turn", _input_words(body))


def _answer(name: str, body: Json, said: str, results: list[Json], last: list[Json]) -> str:
    if results:
        got = " ".join(t for r in results for t in _texts(r["content"]))
        return f"[{name}] the tool said: {got}"
    if body.get("outputConfig"):
        return json.dumps({"echo": said})
    media = sum(1 for b in last if "image" in b or "document" in b)
    return f"[{name}] {said}" + (f" (+{media} attachments)" if media else "")


def _input_words(body: Json) -> int:
    texts = _texts(body.get("system") or [])
    for message in body["messages"]:
        texts += _texts(message["content"])
    return sum(_words(t) for t in texts) + 1


def _truncate(reply: _Reply, max_tokens: int | None) -> _Reply:
    """Cut the answer's text at ``max_tokens`` words, as a token limit would."""
    if max_tokens is None:
        return reply
    out: list[Json] = []
    left = max_tokens
    for block in reply.blocks:
        if "text" in block:
            words = block["text"].split()
            if len(words) > left:
                out.append({"text": " ".join(words[:left])})
                return _Reply(out, "max_tokens", reply.input_tokens)
            left -= len(words)
        out.append(block)
    return reply


def _output_tokens(blocks: list[Json]) -> int:
    count = 0
    for block in blocks:
        if "text" in block:
            count += _words(block["text"])
        elif "toolUse" in block:
            count += 5
        elif "reasoningContent" in block:
            count += _words(block["reasoningContent"]["reasoningText"]["text"])
    return count


# ------------------------------------------------------------------------ validation


class _Validator:
    """Converse request rules: botocore's service model, then the conversation's own."""

    def __init__(self) -> None:
        from botocore.session import Session

        model = Session().get_service_model("bedrock-runtime")
        self._shapes: dict[str, Shape] = {}
        for op in ("Converse", "ConverseStream"):
            shape = model.operation_model(op).input_shape
            assert shape is not None
            self._shapes[op] = shape

    def check(self, operation: str, model_id: str, body: Json) -> None:
        from botocore.validate import ParamValidator

        report = ParamValidator().validate({"modelId": model_id, **body},
                                           self._shapes[operation])
        if report.has_errors():
            raise _Reject("ValidationException", report.generate_report())
        _conversation_rules(model_id, body)


def _conversation_rules(model: str, body: Json) -> None:
    messages = body.get("messages") or []
    if not messages or messages[0]["role"] != "user":
        raise _Reject("ValidationException", "A conversation must start with a user message. "
                      "Try again with a conversation that starts with a user message.")
    uses_tools = False
    previous: Json | None = None
    for i, message in enumerate(messages):
        if message["role"] not in ("user", "assistant"):
            raise _Reject("ValidationException", f"messages.{i}.role: unknown role")
        if previous is not None and previous["role"] == message["role"]:
            raise _Reject("ValidationException", "A conversation must alternate between user "
                          "and assistant roles. Make sure the conversation alternates between "
                          "user and assistant roles and try again.")
        for j, block in enumerate(message["content"]):
            _block_rules(block, f"messages.{i}.content.{j}", previous)
            uses_tools = uses_tools or "toolUse" in block or "toolResult" in block
        previous = message
    if uses_tools and not body.get("toolConfig"):
        raise _Reject("ValidationException", "The toolConfig field must be defined when using "
                      "toolUse and toolResult content blocks.")
    _inference_rules(model, body)


def _block_rules(block: Json, where: str, previous: Json | None) -> None:
    if "text" in block and not block["text"].strip():
        raise _Reject("ValidationException", f"The text field in the ContentBlock object at "
                      f"{where} is blank. Add text to the text field, and try again.")
    source = (block.get("image") or block.get("document") or {}).get("source") or {}
    if isinstance(source.get("bytes"), str):
        try:
            base64.b64decode(source["bytes"], validate=True)
        except binascii.Error:
            raise _Reject("ValidationException",
                          f"{where}: the bytes are not valid base64") from None
    if "toolResult" in block:
        asked = {b["toolUse"]["toolUseId"] for b in (previous or {}).get("content", [])
                 if "toolUse" in b}
        if block["toolResult"]["toolUseId"] not in asked:
            raise _Reject("ValidationException", f"{where}: the toolResult's toolUseId does "
                          "not match a toolUse block of the previous turn")
    thought = (block.get("reasoningContent") or {}).get("reasoningText")
    if thought is not None and thought.get("signature") != thinking_signature(thought["text"]):
        raise _Reject("ValidationException", f"{where}: Invalid `signature` in `thinking` block")


def _inference_rules(model: str, body: Json) -> None:
    _reasoning_rules(model, body.get("additionalModelRequestFields") or {})
    config = body.get("inferenceConfig") or {}
    for key in ("temperature", "topP"):
        value = config.get(key)
        if value is not None and not 0 <= value <= 1:
            raise _Reject("ValidationException", f"inferenceConfig.{key}: {value} is not "
                          "in [0, 1]")
    thinking = (body.get("additionalModelRequestFields") or {}).get("thinking") or {}
    budget = thinking.get("budget_tokens")
    if budget is not None:
        if budget < 1024:
            raise _Reject("ValidationException", "thinking.budget_tokens: must be >= 1024")
        if config.get("maxTokens", 4096) <= budget:
            raise _Reject("ValidationException", "`max_tokens` must be greater than "
                          "`thinking.budget_tokens`")


def _reasoning_rules(model: str, extra: Json) -> None:
    """Claude thinks by budget (``thinking``), Nova 2 by effort (``reasoningConfig``); a model
    given the other's field refuses it, as Bedrock does."""
    if "thinking" in extra and "anthropic.claude" not in model:
        raise _Reject("ValidationException", "The model returned the following errors: "
                      "extraneous key [thinking] is not permitted")
    config = extra.get("reasoningConfig")
    if config is None:
        return
    if "amazon.nova-2" not in model:
        raise _Reject("ValidationException", "The model returned the following errors: "
                      "extraneous key [reasoningConfig] is not permitted")
    if config.get("type") not in ("enabled", "disabled") or (
            config.get("type") == "enabled"
            and config.get("maxReasoningEffort") not in _NOVA_EFFORTS):
        raise _Reject("ValidationException", "reasoningConfig: type must be enabled or "
                      "disabled, and maxReasoningEffort one of low, medium, high")


_NOVA_EFFORTS = frozenset({"low", "medium", "high"})


# ------------------------------------------------------------------------ SigV4


@dataclass(frozen=True, slots=True)
class _Signed:
    key: str
    date: str
    region: str
    service: str
    headers: tuple[str, ...]
    signature: str


def _parse_auth(headers: Mapping[str, str]) -> _Signed:
    raw = headers.get("authorization")
    if raw is None:
        raise _Reject("MissingAuthenticationTokenException", "Missing Authentication Token")
    found = _AUTH.fullmatch(raw.strip())
    if found is None:
        raise _Reject("IncompleteSignatureException",
                      "Authorization header requires 'Credential', 'Signature' and "
                      "'SignedHeaders' parameters of the AWS4-HMAC-SHA256 scheme.")
    key, date, region, service, signed, signature = found.groups()
    return _Signed(key, date, region, service, tuple(signed.split(";")), signature)


class _Verifier:
    """Checks SigV4 as AWS does, recomputing the signature with botocore."""

    def __init__(self, keys: Mapping[str, tuple[str, str | None]], region: str,
                 clock: Callable[[], float]) -> None:
        self._keys = keys
        self._region = region
        self._clock = clock

    def check(self, request: web.Request, body: bytes) -> None:
        headers = {k.lower(): v for k, v in request.headers.items()}
        signed = _parse_auth(headers)
        known = self._keys.get(signed.key)
        if known is None:
            raise _Reject("UnrecognizedClientException",
                          "The security token included in the request is invalid.")
        secret, token = known
        if token is not None and headers.get("x-amz-security-token") != token:
            raise _Reject("UnrecognizedClientException",
                          "The security token included in the request is invalid.")
        self._scope(signed, headers)
        expected = _signature(request, headers, body, signed, secret, token)
        if not hmac.compare_digest(expected, signed.signature):
            raise _Reject("InvalidSignatureException",
                          "The request signature we calculated does not match the signature "
                          "you provided. Check your AWS Secret Access Key and signing method. "
                          "Consult the service documentation for details.")

    def _scope(self, signed: _Signed, headers: Mapping[str, str]) -> None:
        if signed.region != self._region or signed.service != _SERVICE:
            raise _Reject("InvalidSignatureException", f"Credential should be scoped to a valid "
                          f"region and to service '{_SERVICE}'.")
        if "host" not in signed.headers or "x-amz-date" not in signed.headers:
            raise _Reject("InvalidSignatureException",
                          "'Host' and 'X-Amz-Date' must be signed headers.")
        stamp = headers.get("x-amz-date", "")
        try:
            when = calendar.timegm(time.strptime(stamp, "%Y%m%dT%H%M%SZ"))
        except ValueError:
            raise _Reject("IncompleteSignatureException",
                          f"Date must be in ISO-8601 'basic format'. Got '{stamp}'.") from None
        now = self._clock()
        if abs(now - when) > _SKEW_SECONDS or stamp[:8] != signed.date:
            raise _Reject("InvalidSignatureException", f"Signature expired: {stamp} is now "
                          f"earlier or later than the server time by more than 5 min.")


def _signature(request: web.Request, headers: Mapping[str, str], body: bytes,
               signed: _Signed, secret: str, token: str | None) -> str:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    names = signed.headers
    missing = [h for h in names if h not in headers]
    if missing:
        raise _Reject("InvalidSignatureException", f"signed header {missing[0]!r} is missing")
    rebuilt = AWSRequest(method=request.method, url=f"http://{headers['host']}{request.raw_path}",
                         headers={h: headers[h] for h in names}, data=body)
    rebuilt.context["timestamp"] = headers["x-amz-date"]
    auth = SigV4Auth(Credentials(signed.key, secret, token), _SERVICE, signed.region)
    canonical = auth.canonical_request(rebuilt)
    return str(auth.signature(auth.string_to_sign(rebuilt, canonical), rebuilt))


# ------------------------------------------------------------------------ the server


class BedrockFake:
    """One fake Bedrock runtime endpoint on 127.0.0.1 (see the module docstring).

    ``keys`` maps access key id -> secret (``session_tokens`` optionally
    requires a token for a key); ``clock`` is the fake's Unix time (for the
    signature date check); ``models``, when given, are the only model ids
    served (others get ``ResourceNotFoundException``); ``context_words``
    bounds the input (beyond it: "Input is too long"). ``cache_read`` /
    ``cache_write`` are reported as cached input tokens on every answer.
    """

    def __init__(
        self,
        name: str = "bedrock",
        *,
        keys: Mapping[str, str] | None = None,
        session_tokens: Mapping[str, str] | None = None,
        region: str = "us-east-1",
        clock: Callable[[], float] = time.time,
        models: Sequence[str] | None = None,
        context_words: int = 10_000,
        latency: float = 0.0,
        stream_chunk_words: int = 2,
        record_requests: bool = True,
        port: int = 0,
    ) -> None:
        self.name = name
        self.region = region
        self.faults = BedrockFaults()
        self.requests: list[BedrockRequest] = []
        self.latency = latency
        self.cache_read = 0
        self.cache_write = 0
        self._tokens = dict(session_tokens or {})
        given = keys if keys is not None else {"AKIDFAKEBEDROCK": "fake-secret"}
        self._verifier = _Verifier({k: (s, self._tokens.get(k)) for k, s in given.items()},
                                   region, clock)
        self._validator = _Validator()
        self._models = frozenset(models) if models is not None else None
        self._context_words = context_words
        self._chunk = max(1, stream_chunk_words)
        self._record = record_requests
        self._ids = itertools.count(1)
        self._port = port
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        if not self._port:
            raise RuntimeError(f"bedrock fake {self.name!r} has not been started")
        return f"http://{_HOST}:{self._port}"

    async def start(self) -> None:
        app = web.Application(client_max_size=32 * 1024 * 1024)
        app.router.add_post("/model/{tail:.+}", self._handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, _HOST, self._port, reuse_address=True)
        await site.start()
        self._port = runner.addresses[0][1]
        self._runner = runner

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> BedrockFake:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.stop()

    # -- requests

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        try:
            operation, model, body = await self._accept(request)
            if self.latency:
                await asyncio.sleep(self.latency)
            fault = self.faults.take()
            if fault is not None and fault.kind == "fail":
                raise _Reject(fault.exception, fault.message, status=fault.status,
                              retry_after=fault.retry_after)
            reply = self._model(model, body, fault)
            if operation == "ConverseStream":
                return await self._stream(request, reply, fault)
            return self._plain(reply, fault)
        except _Reject as exc:
            return _error(exc)

    async def _accept(self, request: web.Request) -> tuple[str, str, Json]:
        raw = await request.read()
        self._verifier.check(request, raw)
        parts = request.raw_path.split("?")[0].split("/")
        if len(parts) != 4 or parts[3] not in ("converse", "converse-stream"):
            raise _Reject("UnknownOperationException", "unknown operation", status=404)
        operation = "Converse" if parts[3] == "converse" else "ConverseStream"
        model = unquote(parts[2])
        try:
            body = json.loads(raw)
        except ValueError:
            raise _Reject("ValidationException", "Malformed input request: the body is not "
                          "valid JSON") from None
        if not isinstance(body, dict):
            raise _Reject("ValidationException", "Malformed input request: expected an object")
        if self._record:
            self.requests.append(BedrockRequest(model, operation, dict(request.headers), body))
        self._validator.check(operation, model, body)
        if self._models is not None and model not in self._models:
            raise _Reject("ResourceNotFoundException", "Could not resolve the foundation "
                          "model from the provided model identifier.")
        if _input_words(body) > self._context_words:
            raise _Reject("ValidationException", "Input is too long for requested model.")
        return operation, model, body

    def _model(self, model: str, body: Json, fault: _Fault | None) -> _Reply:
        reply = _reply(self.name, model, body, self._ids)
        reply = _truncate(reply, (body.get("inferenceConfig") or {}).get("maxTokens"))
        if fault is not None and fault.kind == "stop":
            reply.stop = fault.message
        return reply

    def _usage(self, reply: _Reply) -> Json:
        out = _output_tokens(reply.blocks)
        used: Json = {"inputTokens": reply.input_tokens, "outputTokens": out,
                      "totalTokens": reply.input_tokens + out + self.cache_read
                      + self.cache_write}
        if self.cache_read or self.cache_write:
            used["cacheReadInputTokens"] = self.cache_read
            used["cacheWriteInputTokens"] = self.cache_write
        return used

    def _plain(self, reply: _Reply, fault: _Fault | None) -> web.Response:
        if fault is not None and fault.kind == "malformed":
            return web.json_response({"output": {}, "metrics": {"latencyMs": 1}},
                                     headers=_ids())
        body = {"output": {"message": {"role": "assistant", "content": reply.blocks}},
                "stopReason": reply.stop, "usage": self._usage(reply),
                "metrics": {"latencyMs": 1}}
        return web.json_response(body, headers=_ids())

    async def _stream(self, request: web.Request, reply: _Reply,
                      fault: _Fault | None) -> web.StreamResponse:
        frames = list(self._frames(reply))
        answer = web.StreamResponse(headers={
            "content-type": "application/vnd.amazon.eventstream", **_ids()})
        await answer.prepare(request)
        for i, frame in enumerate(frames):
            if fault is not None and i == fault.after and fault.kind != "stop":
                await answer.write(_broken(fault, frame))
                break
            await answer.write(frame)
        await answer.write_eof()
        return answer

    def _frames(self, reply: _Reply) -> Iterator[bytes]:
        pad = itertools.count(7)
        yield _event("messageStart", {"role": "assistant"}, next(pad))
        for index, block in enumerate(reply.blocks):
            for name, payload in _block_events(block, index, self._chunk):
                yield _event(name, payload, next(pad))
        yield _event("messageStop", {"stopReason": reply.stop}, next(pad))
        yield _event("metadata", {"usage": self._usage(reply), "metrics": {"latencyMs": 1}},
                     next(pad))


def _block_events(block: Json, index: int, chunk: int) -> Iterator[tuple[str, Json]]:
    at = {"contentBlockIndex": index}
    if "toolUse" in block:
        use = block["toolUse"]
        yield "contentBlockStart", {**at, "start": {"toolUse": {
            "toolUseId": use["toolUseId"], "name": use["name"]}}}
        text = json.dumps(use["input"])
        for piece in _pieces(text, 8):
            yield "contentBlockDelta", {**at, "delta": {"toolUse": {"input": piece}}}
    elif "reasoningContent" in block:
        thought = block["reasoningContent"]["reasoningText"]
        for piece in _word_pieces(thought["text"], chunk):
            yield "contentBlockDelta", {**at, "delta": {"reasoningContent": {"text": piece}}}
        if "signature" in thought:
            yield "contentBlockDelta", {**at, "delta": {"reasoningContent": {
                "signature": thought["signature"]}}}
    else:
        for piece in _word_pieces(block["text"], chunk):
            yield "contentBlockDelta", {**at, "delta": {"text": piece}}
    yield "contentBlockStop", at


def _pieces(text: str, size: int) -> Iterator[str]:
    for start in range(0, len(text), size):
        yield text[start:start + size]


def _word_pieces(text: str, words: int) -> Iterator[str]:
    split = text.split(" ")
    for start in range(0, len(split), words):
        piece = " ".join(split[start:start + words])
        yield piece if start + words >= len(split) else piece + " "


def _broken(fault: _Fault, frame: bytes) -> bytes:
    if fault.kind == "stream_exception":
        return _exception(fault.exception, fault.message)
    if fault.kind == "malformed":
        return frame[:-4] + struct.pack(">I", (binascii.crc32(frame[:-4]) + 1) & 0xFFFFFFFF)
    return frame[: len(frame) // 2]


def _ids() -> dict[str, str]:
    return {"x-amzn-requestid": hashlib.md5(str(time.time_ns()).encode()).hexdigest()}


def _error(exc: _Reject) -> web.Response:
    headers = {"x-amzn-errortype": f"{exc.kind}:{_ERROR_NAMESPACE}", **_ids()}
    if exc.retry_after is not None:
        headers["retry-after"] = f"{exc.retry_after:g}"
    return web.json_response({"message": exc.message}, status=exc.status, headers=headers)


# ------------------------------------------------------------------------ CLI


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m router.testing.bedrock",
                                     description=__doc__)
    parser.add_argument("--name", default="bedrock")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--access-key", default="AKIDFAKEBEDROCK")
    parser.add_argument("--secret-key", default="fake-secret")
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--stream-chunk-words", type=int, default=2)
    parser.add_argument("--no-record", action="store_true")
    return parser.parse_args(argv)


async def _serve(args: argparse.Namespace) -> None:
    fake = BedrockFake(args.name, keys={args.access_key: args.secret_key}, region=args.region,
                       port=args.port, latency=args.latency,
                       stream_chunk_words=args.stream_chunk_words,
                       record_requests=not args.no_record)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with fake:
        print(f"READY {fake.url}", flush=True)
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> None:
    asyncio.run(_serve(_parse(argv)))


if __name__ == "__main__":
    main()
