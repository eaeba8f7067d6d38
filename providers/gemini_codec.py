"""Gemini ``generateContent`` <-> the Responses API, for Google AI Studio and Vertex AI.

Both ``gemini/`` (AI Studio) and ``vertex_ai/`` (Gemini on Vertex) speak the
same ``GenerateContentRequest`` / ``GenerateContentResponse`` shapes; only the
URL and the auth differ, so one pure codec serves both providers.

What maps where:

* ``instructions`` and system / developer messages -> ``systemInstruction``;
  user turns -> ``role: user``, assistant turns -> ``role: model``; text,
  images (``inlineData`` for data URLs, ``fileData`` for URLs) and files;
* ``function_call`` / ``function_call_output`` items <-> ``functionCall`` /
  ``functionResponse`` parts. Gemini has no call ids, so the router makes
  stable ones from the response id and the part's position, and finds the
  function name of an output from the call with the same id in the input;
* Gemini 2.5 *thought signatures* ride in a ``reasoning`` item's
  ``encrypted_content`` placed just before the part they belong to, and are
  put back on the next part of the model turn when the conversation is
  replayed (Gemini rejects a replayed function call without its signature);
* ``tools`` -> ``functionDeclarations`` (JSON Schema as
  ``parametersJsonSchema``), built-in ``web_search`` -> ``googleSearch``;
  ``tool_choice`` -> ``toolConfig.functionCallingConfig``;
* ``text.format`` json_schema -> ``responseMimeType: application/json`` with
  ``responseJsonSchema``; ``reasoning.effort`` -> ``thinkingBudget``,
  ``reasoning.summary`` -> ``includeThoughts``; ``max_output_tokens``,
  ``temperature``, ``top_p`` -> ``generationConfig``;
* output: ``thought`` parts -> reasoning summaries, text -> a message,
  ``functionCall`` -> function calls, ``usageMetadata`` -> usage (cached and
  thinking tokens), ``finishReason`` / ``promptFeedback.blockReason`` ->
  ``status`` and ``incomplete_details``; Google Search grounding ->
  ``url_citation`` annotations and ``web_search_call`` items
  (:mod:`providers.gemini_grounding`).

Every other Responses parameter is refused through :meth:`Call.refuse`
(see :data:`HONOURED`), never silently ignored.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any

from providers.codec import Call, EncodeStep, NativeError, NativeRequest, run_steps
from providers.gemini_grounding import citations, search_queries
from providers.responses_input import function_tools, input_items, part_text
from providers.responses_shapes import (
    EventWriter,
    function_call_item,
    item_id,
    message_item,
    reasoning_item,
    response_object,
    usage,
    web_search_item,
)
from router.errors import InvalidRequestError, MalformedResponseError

__all__ = ["HONOURED", "GeminiCodec", "GeminiStreamDecoder", "native_error", "retry_delay"]

Json = dict[str, Any]

#: Responses parameters this codec translates (or that need no upstream field:
#: ``metadata``, ``user`` and ``store`` are echoed on the Response only).
HONOURED = frozenset({
    "input", "instructions", "tools", "tool_choice", "parallel_tool_calls", "text",
    "reasoning", "max_output_tokens", "temperature", "top_p", "metadata", "user", "store",
    "stream_options",
})

#: The query of a streamed call (``streamGenerateContent`` answers SSE only when asked).
_SSE: Mapping[str, str] = MappingProxyType({"alt": "sse"})

#: ``reasoning.effort`` -> ``thinkingBudget`` (tokens); ``minimal`` / ``none`` turn
#: thinking off where the model allows it.
THINKING_BUDGETS: Mapping[str, int] = {
    "none": 0, "minimal": 0, "low": 1024, "medium": 8192, "high": 24576,
}

_TOOL_MODES: Mapping[str, str] = {"auto": "AUTO", "none": "NONE", "required": "ANY"}

#: ``finishReason`` values that end a response as ``incomplete``, and why.
_INCOMPLETE: Mapping[str, str] = {
    "MAX_TOKENS": "max_output_tokens",
    "SAFETY": "content_filter", "RECITATION": "content_filter",
    "PROHIBITED_CONTENT": "content_filter", "BLOCKLIST": "content_filter",
    "SPII": "content_filter", "IMAGE_SAFETY": "content_filter",
    "LANGUAGE": "content_filter",
}

#: ``finishReason`` values that mean the model failed to produce an answer.
_FAILED = frozenset({"MALFORMED_FUNCTION_CALL", "UNEXPECTED_TOOL_CALL", "OTHER",
                     "TOO_MANY_TOOL_CALLS"})

#: Google RPC ``status`` -> (HTTP status to classify by, OpenAI error code).
_ERRORS: Mapping[str, tuple[int, str | None]] = {
    "RESOURCE_EXHAUSTED": (429, "rate_limit_exceeded"),
    "UNAVAILABLE": (503, "server_is_overloaded"),
    "UNAUTHENTICATED": (401, "invalid_api_key"),
    "PERMISSION_DENIED": (403, None),
    "NOT_FOUND": (404, "model_not_found"),
    "INTERNAL": (500, "server_error"),
    "DEADLINE_EXCEEDED": (504, "server_error"),
    "INVALID_ARGUMENT": (400, None),
    "FAILED_PRECONDITION": (400, None),
}

_MIME_BY_SUFFIX: Mapping[str, str] = {
    "png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "webp": "image/webp",
    "gif": "image/gif", "heic": "image/heic", "heif": "image/heif", "pdf": "application/pdf",
    "txt": "text/plain", "mp3": "audio/mpeg", "wav": "audio/wav", "mp4": "video/mp4",
}


class GeminiCodec:
    """Pure translation between Responses and Gemini's ``generateContent``."""

    name = "gemini"

    def __init__(self, name: str = "gemini") -> None:
        self.name = name

    def encode(self, call: Call) -> NativeRequest:
        params = call.params
        for param in params:
            if param not in HONOURED and params[param] is not None:
                call.refuse(param, "has no equivalent in Gemini's generateContent")
        system = _system_parts(params)
        value = params.get("input")
        if isinstance(value, str):  # the common case, without building the canonical items
            body: Json = {"contents": [{"role": "user", "parts": [{"text": value}]}]}
        else:
            body = {"contents": _contents(input_items(params), system)}
        if system:
            body["systemInstruction"] = {"parts": system}
        run_steps(call, body, _STEPS)
        if call.stream:
            return NativeRequest(f"/{call.model}:streamGenerateContent", body, query=_SSE)
        return NativeRequest(f"/{call.model}:generateContent", body)

    def decode(self, body: Mapping[str, Any], call: Call) -> Json:
        if not isinstance(body.get("candidates", []), list):
            raise MalformedResponseError("candidates: expected a list")
        candidate = _candidate(body)
        output = _output_items(call, candidate)
        used = _usage(body.get("usageMetadata"))
        reason = candidate.get("finishReason") if candidate else None
        blocked = _blocked(body)
        if blocked:
            return response_object(call, output, status="incomplete", usage=used,
                                   incomplete_reason="content_filter")
        if reason in _FAILED:
            return response_object(call, output, status="failed", usage=used,
                                   error={"code": "server_error",
                                          "message": _failure_message(candidate)})
        incomplete = _INCOMPLETE.get(reason) if isinstance(reason, str) else None
        return response_object(call, output, status="incomplete" if incomplete else "completed",
                               usage=used, incomplete_reason=incomplete)

    def decoder(self, call: Call) -> GeminiStreamDecoder:
        return GeminiStreamDecoder(call)

    def error(self, status: int, body: Any) -> NativeError:
        return native_error(status, body)


def native_error(status: int, body: Any) -> NativeError:
    """A Google error body (``{"error": {code, message, status}}``, or a list of them)."""
    if isinstance(body, list) and body:
        body = body[0]
    err = body.get("error") if isinstance(body, Mapping) else None
    if not isinstance(err, Mapping):
        text = body if isinstance(body, str) else f"upstream answered HTTP {status}"
        return NativeError(status, text[:500] or f"upstream answered HTTP {status}")
    message = str(err.get("message") or f"upstream answered HTTP {status}")
    rpc = err.get("status") if isinstance(err.get("status"), str) else None
    mapped_status, code = _ERRORS.get(rpc or "", (status, None))
    lowered = message.lower()
    if rpc == "INVALID_ARGUMENT" and "maximum number of tokens" in lowered:
        code = "context_length_exceeded"
    elif rpc == "INVALID_ARGUMENT" and "api key not valid" in lowered:
        mapped_status, code = 401, "invalid_api_key"
    return NativeError(mapped_status, message, code=code or rpc, type=rpc)


def retry_delay(body: Any) -> float | None:
    """Seconds from a ``google.rpc.RetryInfo`` detail (``"retryDelay": "37s"``), if any.

    Google sends the wait in the error body rather than a ``Retry-After`` header.
    """
    if isinstance(body, list) and body:
        body = body[0]
    err = body.get("error") if isinstance(body, Mapping) else None
    details = err.get("details") if isinstance(err, Mapping) else None
    for detail in details if isinstance(details, list) else ():
        delay = detail.get("retryDelay") if isinstance(detail, Mapping) else None
        if isinstance(delay, str) and delay.endswith("s"):
            try:
                return max(0.0, float(delay[:-1]))
            except ValueError:
                return None
    return None


# -- request -------------------------------------------------------------------------------


def _system_parts(params: Mapping[str, Any]) -> list[Json]:
    instructions = params.get("instructions")
    if instructions is None:
        return []
    if not isinstance(instructions, str):
        raise InvalidRequestError("instructions: expected a string")
    return [{"text": instructions}]


def _contents(items: list[Json], system: list[Json]) -> list[Json]:
    """Gemini ``contents``: consecutive parts of the same role share one content."""
    contents: list[Json] = []
    names: dict[str, str] = {}
    signature: str | None = None
    for index, item in enumerate(items):
        where = f"input[{index}]"
        kind = item.get("type")
        if kind == "message" and item["role"] in ("system", "developer"):
            system.extend(_user_parts(item["content"], where))
            continue
        if kind == "reasoning":
            encrypted = item.get("encrypted_content")
            signature = encrypted if isinstance(encrypted, str) and encrypted else signature
            continue
        role, parts = _item_parts(item, where, names)
        if role == "model" and signature is not None and parts:
            parts[0] = {**parts[0], "thoughtSignature": signature}
            signature = None
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})
    return contents


def _item_parts(item: Json, where: str, names: dict[str, str]) -> tuple[str, list[Json]]:
    kind = item.get("type")
    if kind == "message":
        if item["role"] == "assistant":
            return "model", _model_parts(item["content"], where)
        return "user", _user_parts(item["content"], where)
    if kind == "function_call":
        name, call_id = item.get("name"), item.get("call_id")
        if not isinstance(name, str) or not isinstance(call_id, str):
            raise InvalidRequestError(f"{where}: a function_call needs a name and a call_id")
        names[call_id] = name
        return "model", [{"functionCall": {"name": name, "args": _arguments(item, where)}}]
    if kind == "function_call_output":
        call_id = item.get("call_id")
        name = names.get(call_id) if isinstance(call_id, str) else None
        if name is None:
            raise InvalidRequestError(
                f"{where}.call_id: {call_id!r} matches no function_call earlier in input; "
                "Gemini needs the function's name, so send the call with its output")
        response = {"name": name, "response": _function_output(item.get("output"), where)}
        return "user", [{"functionResponse": response}]
    raise InvalidRequestError(f"{where}.type: gemini cannot take input items of type {kind!r}")


def _arguments(item: Json, where: str) -> Json:
    raw = item.get("arguments") or "{}"
    try:
        args = json.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        args = None
    if not isinstance(args, dict):
        raise InvalidRequestError(f"{where}.arguments: expected a JSON object as text")
    return args


def _function_output(output: Any, where: str) -> Json:
    if isinstance(output, list):
        output = "".join(part_text(p) or "" for p in output if isinstance(p, Mapping))
    if not isinstance(output, str):
        raise InvalidRequestError(f"{where}.output: expected a string or a list of parts")
    try:
        parsed = json.loads(output)
    except ValueError:
        parsed = None
    return parsed if isinstance(parsed, dict) else {"output": output}


def _model_parts(content: list[Json], where: str) -> list[Json]:
    parts: list[Json] = []
    for j, part in enumerate(content):
        text = part_text(part)
        if text is None:
            raise InvalidRequestError(
                f"{where}.content[{j}]: an assistant turn holds only text parts")
        parts.append({"text": text})
    return parts


def _user_parts(content: list[Json], where: str) -> list[Json]:
    return [_user_part(part, f"{where}.content[{j}]") for j, part in enumerate(content)]


def _user_part(part: Json, where: str) -> Json:
    text = part_text(part)
    if text is not None:
        return {"text": text}
    kind = part.get("type")
    if kind == "input_image":
        url = part.get("image_url")
        if not isinstance(url, str):
            raise InvalidRequestError(
                f"{where}.image_url: gemini needs an image URL or data URL (file_id is "
                "not supported)")
        return _media(url, where)
    if kind == "input_file":
        data, url = part.get("file_data"), part.get("file_url")
        if isinstance(data, str):
            return _media(data if data.startswith("data:") else
                          f"data:{_guess_mime(part.get('filename'))};base64,{data}", where)
        if isinstance(url, str):
            return _media(url, where)
        raise InvalidRequestError(
            f"{where}: gemini needs file_data or file_url (file_id is not supported)")
    raise InvalidRequestError(f"{where}.type: gemini cannot take content parts of type {kind!r}")


def _media(url: str, where: str) -> Json:
    if url.startswith("data:"):
        head, sep, data = url[5:].partition(",")
        mime, _, encoding = head.partition(";")
        if not sep or encoding != "base64" or not mime:
            raise InvalidRequestError(f"{where}: expected a base64 data URL")
        return {"inlineData": {"mimeType": mime, "data": data}}
    return {"fileData": {"mimeType": _guess_mime(url), "fileUri": url}}


def _guess_mime(name: Any) -> str:
    if isinstance(name, str):
        suffix = name.rsplit("?", 1)[0].rsplit(".", 1)[-1].lower()
        return _MIME_BY_SUFFIX.get(suffix, "application/octet-stream")
    return "application/octet-stream"


def _encode_tools(call: Call, body: Json) -> None:
    declarations: list[Json] = []
    tools: list[Json] = []
    for index, tool in function_tools(call.params):
        if tool["type"] == "function":
            declarations.append(_declaration(tool))
        elif tool["type"] in ("web_search", "web_search_preview"):
            tools.append({"googleSearch": {}})
        else:
            call.refuse(f"tools[{index}]",
                        f"has no equivalent of built-in tool {tool['type']!r}")
    if declarations:
        tools.insert(0, {"functionDeclarations": declarations})
    if tools:
        body["tools"] = tools
    choice = _tool_config(call)
    if choice is not None:
        body["toolConfig"] = {"functionCallingConfig": choice}
    if call.params.get("parallel_tool_calls") is False:
        call.refuse("parallel_tool_calls", "cannot be told to make one call at a time")


def _declaration(tool: Json) -> Json:
    declaration: Json = {"name": tool["name"]}
    if tool.get("description"):
        declaration["description"] = tool["description"]
    if tool.get("parameters") is not None:
        declaration["parametersJsonSchema"] = tool["parameters"]
    return declaration


def _tool_config(call: Call) -> Json | None:
    choice = call.params.get("tool_choice")
    if choice is None:
        return None
    if isinstance(choice, str) and choice in _TOOL_MODES:
        return {"mode": _TOOL_MODES[choice]}
    if isinstance(choice, Mapping) and choice.get("type") == "function":
        return {"mode": "ANY", "allowedFunctionNames": [choice.get("name")]}
    if isinstance(choice, Mapping) and choice.get("type") == "allowed_tools":
        names = [t.get("name") for t in choice.get("tools", []) if isinstance(t, Mapping)]
        mode = "ANY" if choice.get("mode") == "required" else "AUTO"
        return {"mode": mode, "allowedFunctionNames": names}
    call.refuse("tool_choice", f"cannot force tool choice {choice!r}")
    return None


def _generation_config(call: Call, body: Json) -> None:
    params = call.params
    config: Json = {}
    for ours, theirs in (("max_output_tokens", "maxOutputTokens"),
                         ("temperature", "temperature"), ("top_p", "topP")):
        if params.get(ours) is not None:
            config[theirs] = params[ours]
    _text_format(call, config)
    thinking = _thinking(call)
    if thinking:
        config["thinkingConfig"] = thinking
    if config:
        body["generationConfig"] = config


def _text_format(call: Call, config: Json) -> None:
    text = call.params.get("text")
    if text is None:
        return
    if not isinstance(text, Mapping):
        raise InvalidRequestError("text: expected an object")
    if text.get("verbosity") is not None:
        call.refuse("text.verbosity", "has no verbosity setting")
    fmt = text.get("format") or {"type": "text"}
    kind = fmt.get("type") if isinstance(fmt, Mapping) else None
    if kind == "json_schema":
        if not isinstance(fmt.get("schema"), Mapping):
            raise InvalidRequestError("text.format.schema: expected a JSON Schema object")
        config["responseMimeType"] = "application/json"
        config["responseJsonSchema"] = fmt["schema"]
    elif kind == "json_object":
        config["responseMimeType"] = "application/json"
    elif kind != "text":
        raise InvalidRequestError(f"text.format.type: unknown format {kind!r}")


def _thinking(call: Call) -> Json:
    reasoning = call.params.get("reasoning")
    if reasoning is None:
        return {}
    if not isinstance(reasoning, Mapping):
        raise InvalidRequestError("reasoning: expected an object")
    thinking: Json = {}
    effort = reasoning.get("effort")
    if effort is not None:
        if effort not in THINKING_BUDGETS:
            raise InvalidRequestError(f"reasoning.effort: unknown effort {effort!r}")
        thinking["thinkingBudget"] = THINKING_BUDGETS[effort]
    summary = reasoning.get("summary", reasoning.get("generate_summary"))
    if summary is not None:
        thinking["includeThoughts"] = True
    return thinking


#: The encoding steps after the contents, each with the parameters it reads.
_STEPS: tuple[EncodeStep, ...] = (
    (frozenset({"tools", "tool_choice", "parallel_tool_calls"}), _encode_tools),
    (frozenset({"max_output_tokens", "temperature", "top_p", "text", "reasoning"}),
     _generation_config),
)


# -- response ------------------------------------------------------------------------------


def _candidate(body: Mapping[str, Any]) -> Json:
    candidates = body.get("candidates") or []
    if not candidates:
        return {}
    first = candidates[0]
    if not isinstance(first, dict):
        raise MalformedResponseError("candidates[0]: expected an object")
    return first


def _blocked(body: Mapping[str, Any]) -> bool:
    feedback = body.get("promptFeedback")
    # dict, not Mapping: a JSON object is parsed as one, and Mapping's check is a Python call
    return isinstance(feedback, dict) and bool(feedback.get("blockReason"))


def _failure_message(candidate: Mapping[str, Any]) -> str:
    detail = candidate.get("finishMessage")
    reason = candidate.get("finishReason")
    return f"gemini ended with {reason}" + (f": {detail}" if isinstance(detail, str) else "")


def _parts(candidate: Mapping[str, Any]) -> list[Json]:
    content = candidate.get("content")
    parts = content.get("parts") if content else None
    if parts is None:
        return []
    if not isinstance(parts, list):
        raise MalformedResponseError("candidates[0].content.parts: expected a list")
    return parts


def _output_items(call: Call, candidate: Mapping[str, Any]) -> list[Json]:
    """Output items from one candidate's parts, consecutive text parts merged; then its
    grounding (:mod:`providers.gemini_grounding`): citations, and the searches run."""
    output: list[Json] = []
    texts: list[str] = []
    length = 0  # of the texts joined so far
    kind = ""
    grounded = "groundingMetadata" in candidate
    placed: dict[int, tuple[str, int]] = {}  # text part -> its text, its offset in its message
    message_of: dict[int, int] = {}  # text part -> where its message goes in output
    for i, part in enumerate(_parts(candidate)):
        signature = part.get("thoughtSignature")
        part_kind = _part_kind(part)
        if part_kind != kind or part_kind == "call" or signature:
            _flush(call, output, kind, texts)
            kind, texts, length = part_kind, [], 0
        if isinstance(signature, str) and signature:
            output.append(reasoning_item(item_id(call, "reasoning", len(output)), [],
                                         encrypted=signature))
        if part_kind == "call":
            output.append(_call_item(call, part["functionCall"], len(output)))
        elif part_kind:
            text = part["text"]
            if grounded and part_kind == "text":
                placed[i] = (text, length)
                message_of[i] = len(output)
            texts.append(text)
            length += len(text)
    _flush(call, output, kind, texts)
    if grounded:
        _ground(call, candidate, output, placed, message_of)
    return output


def _ground(call: Call, candidate: Mapping[str, Any], output: list[Json],
            placed: Mapping[int, tuple[str, int]], message_of: Mapping[int, int]) -> None:
    for part, annotation in citations(candidate, placed):
        output[message_of[part]]["content"][0]["annotations"].append(annotation)
    for query in search_queries(candidate):
        output.append(web_search_item(item_id(call, "web_search_call", len(output)), query))


def _part_kind(part: Mapping[str, Any]) -> str:
    if "functionCall" in part:
        return "call"
    if isinstance(part.get("text"), str):
        return "thought" if part.get("thought") else "text"
    return ""


def _flush(call: Call, output: list[Json], kind: str, texts: list[str]) -> None:
    if not texts:
        return
    index = len(output)
    if kind == "thought":
        output.append(reasoning_item(item_id(call, "reasoning", index), ["".join(texts)]))
    else:
        output.append(message_item(item_id(call, "message", index), "".join(texts)))


def _call_item(call: Call, function: Mapping[str, Any], index: int) -> Json:
    name = function["name"]
    if not isinstance(name, str):
        raise MalformedResponseError("functionCall.name: expected a string")
    return function_call_item(item_id(call, "function_call", index), call_id(call, index), name,
                              json.dumps(function.get("args") or {}))


def call_id(call: Call, index: int) -> str:
    """A stable call id for the function call at output ``index`` (Gemini makes none)."""
    return f"call_{call.response_id.removeprefix('resp_')}_{index}"


def _usage(meta: Any) -> Json | None:
    if not isinstance(meta, dict):  # a JSON object (see _blocked)
        return None
    prompt = int(meta.get("promptTokenCount", 0)) + int(meta.get("toolUsePromptTokenCount", 0))
    thoughts = int(meta.get("thoughtsTokenCount", 0))
    return usage(prompt, int(meta.get("candidatesTokenCount", 0)) + thoughts,
                 cached_tokens=int(meta.get("cachedContentTokenCount", 0)),
                 reasoning_tokens=thoughts)


# -- stream --------------------------------------------------------------------------------


class _EveryPart(Mapping[int, tuple[str, int]]):
    """Every part index -> one text and offset (a stream's grounding counts from the start
    of the text it streamed, whatever part a segment names)."""

    def __init__(self, placed: tuple[str, int]) -> None:
        self._placed = placed

    def __getitem__(self, part: int) -> tuple[str, int]:
        return self._placed

    def __iter__(self) -> Iterator[int]:
        return iter((0,))

    def __len__(self) -> int:
        return 1


class GeminiStreamDecoder:
    """One ``streamGenerateContent?alt=sse`` stream as Responses events.

    Each SSE chunk is a whole ``GenerateContentResponse`` holding the next
    parts. The stream has no end marker of its own: the chunk with a
    ``finishReason`` is the last one with content, and the events that end
    the Responses stream are written when the upstream closes (:meth:`end`),
    so a usage-only trailing chunk is still counted.
    """

    def __init__(self, call: Call) -> None:
        self._call = call
        self._writer = EventWriter(call)
        self._started = False
        self._kind = ""
        self._block = 0
        self._key: tuple[str, int] = ("", 0)
        self._reason: str | None = None
        self._blocked = False
        self._usage: Json | None = None
        self._streamed: dict[tuple[str, int], list[str]] = {}  # text block -> its text

    def feed(self, event: Mapping[str, Any]) -> list[Json]:
        # The hot path of every stream: one dict lookup per field actually present.
        if self._started:
            events: list[Json] = []
        else:
            self._started = True
            events = self._writer.start()
        if "error" in event:
            error = native_error(200, dict(event))
            return events + self._writer.error(error.code, error.message)
        if "usageMetadata" in event:
            self._usage = _usage(event["usageMetadata"]) or self._usage
        if "promptFeedback" in event:
            self._blocked = self._blocked or _blocked(event)
        candidates = event.get("candidates")
        if candidates:
            candidate = candidates[0]
            for part in _parts(candidate):
                events += self._part(part)
            if "groundingMetadata" in candidate:
                events += self._ground(candidate)
            reason = candidate.get("finishReason")
            if isinstance(reason, str):
                self._reason = reason
        return events

    def end(self) -> list[Json]:
        writer = self._writer
        if writer.done:
            return []
        if self._reason is None and not self._blocked:
            return writer.error("server_error", "gemini closed the stream before it finished")
        if self._blocked:
            return writer.finish(usage=self._usage, incomplete_reason="content_filter")
        if self._reason in _FAILED:
            return writer.fail("server_error", f"gemini ended with {self._reason}",
                               usage=self._usage)
        reason = _INCOMPLETE.get(self._reason or "")
        return writer.finish(usage=self._usage, incomplete_reason=reason)

    def _part(self, part: Mapping[str, Any]) -> list[Json]:
        writer = self._writer
        kind = _part_kind(part)
        signature = part.get("thoughtSignature")
        if kind != self._kind or kind == "call" or signature:
            self._kind = kind
            self._block += 1
            self._key = (kind, self._block)
        if kind == "text" and not signature:
            self._streamed.setdefault(self._key, []).append(part["text"])
            return writer.text(part["text"], key=self._key)
        events: list[Json] = []
        if isinstance(signature, str) and signature:
            events += writer.reasoning_encrypted(signature, key=("sig", self._block))
        if kind == "call":
            events += self._function_call(part["functionCall"])
        elif kind == "thought":
            events += writer.reasoning(part["text"], key=self._key)
        elif kind == "text":
            self._streamed.setdefault(self._key, []).append(part["text"])
            events += writer.text(part["text"], key=self._key)
        return events

    def _ground(self, candidate: Mapping[str, Any]) -> list[Json]:
        """Citations on the text still open (segments count from its start: a stream's
        parts arrive in pieces), then the searches, as ``web_search_call`` items."""
        events: list[Json] = []
        text = self._streamed.get(self._key) if self._kind == "text" else None
        if text is not None:
            whole = "".join(text)
            for _, annotation in citations(candidate, _EveryPart((whole, 0))):
                events += self._writer.annotate(annotation, key=self._key)
        for i, query in enumerate(search_queries(candidate)):
            events += self._writer.web_search_call(("search", self._block, i), query)
        return events

    def _function_call(self, function: Mapping[str, Any]) -> list[Json]:
        name = function["name"]
        if not isinstance(name, str):
            raise MalformedResponseError("functionCall.name: expected a string")
        key = self._key
        index = self._writer.next_index
        events = self._writer.function_call(key, call_id=call_id(self._call, index), name=name)
        return events + self._writer.arguments(key, json.dumps(function.get("args") or {}))
