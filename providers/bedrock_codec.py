"""The Responses API over AWS Bedrock's Converse and ConverseStream, as a pure codec.

Converse is Bedrock's one conversational API for every model it hosts
(Claude, Nova, Llama, Mistral, ...), so one codec serves them all:

* request: ``instructions`` and system/developer turns become ``system``;
  messages become ``messages`` (consecutive items of one role are merged,
  as Converse wants turns to alternate), with ``text``, ``image`` and
  ``document`` blocks from data URLs (or ``s3://`` locations; Bedrock cannot
  fetch web URLs, so those are refused); ``function_call`` /
  ``function_call_output`` items become ``toolUse`` / ``toolResult`` blocks;
  reasoning items that carry their signature (``encrypted_content``) become
  ``reasoningContent``. Function tools become ``toolConfig``, ``text.format``
  json_schema becomes ``outputConfig.textFormat``, ``reasoning.effort``
  becomes a Claude thinking budget, or a Nova 2 ``maxReasoningEffort``
  (low, medium, high), in ``additionalModelRequestFields``; Nova 2 shows
  its reasoning only as ``[REDACTED]``, unsigned, so it is never replayed;
* answer: ``output.message.content`` becomes message, function_call and
  reasoning items; ``stopReason`` becomes ``status`` / ``incomplete_details``;
  ``usage`` keeps cache reads and writes (Bedrock's ``inputTokens`` excludes
  them, the Responses ``input_tokens`` includes them);
* stream: ``messageStart``, ``contentBlockStart`` / ``Delta`` / ``Stop``,
  ``messageStop`` and ``metadata`` (usage, after the stop) drive an
  :class:`providers.responses_shapes.EventWriter`; exception frames become
  stream ``error`` events.

Every Responses parameter is listed in :data:`PARAMETERS` with where it goes;
anything else is refused through :meth:`providers.codec.Call.refuse`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any
from urllib.parse import quote

from providers.codec import Call, EncodeStep, NativeError, NativeRequest, run_steps
from providers.responses_input import function_tools, input_items, part_text
from providers.responses_shapes import (
    EventWriter,
    function_call_item,
    item_id,
    message_item,
    reasoning_item,
    response_object,
    usage,
)
from router.errors import InvalidRequestError, MalformedResponseError, ServerError

__all__ = ["NOVA_EFFORTS", "PARAMETERS", "THINKING_BUDGETS", "BedrockCodec", "model_id"]

Json = dict[str, Any]

#: Every Responses create parameter the codec accepts, and where it goes in Converse.
PARAMETERS: Mapping[str, str] = {
    "input": "messages (and system, for system / developer turns)",
    "instructions": "system",
    "tools": "toolConfig.tools (function tools only)",
    "tool_choice": "toolConfig.toolChoice (auto / any / tool; 'none' sends no tools)",
    "parallel_tool_calls": "true only (Converse cannot forbid parallel calls)",
    "text": "outputConfig.textFormat (format json_schema; text is the default)",
    "reasoning": "additionalModelRequestFields.thinking (Claude 3.7 and later) or "
                 ".reasoningConfig (Nova 2)",
    "max_output_tokens": "inferenceConfig.maxTokens",
    "temperature": "inferenceConfig.temperature",
    "top_p": "inferenceConfig.topP",
    "metadata": "requestMetadata",
    "user": "requestMetadata.user",
    "safety_identifier": "requestMetadata.safety_identifier",
    "service_tier": "serviceTier (default, flex, priority)",
    "include": "reasoning.encrypted_content only (signatures are always returned)",
    "store": "nothing: Bedrock stores no responses",
    "truncation": "'disabled' only",
    "background": "false only",
    "stream_options": "nothing to set",
    "prompt_cache_key": "nothing to set (a routing hint, echoed on the response)",
}

#: ``reasoning.effort`` -> Claude thinking budget (tokens), LiteLLM's figures.
THINKING_BUDGETS: Mapping[str, int] = {
    "minimal": 1024, "low": 1024, "medium": 2048, "high": 4096, "xhigh": 8192,
}
#: Output tokens left for the answer when thinking is on and max_output_tokens is unset.
_ANSWER_TOKENS = 4096
_MIN_BUDGET = 1024

#: Claude models that think: 3.7 Sonnet and every Claude 4 and later.
_THINKING_CLAUDE = re.compile(r"anthropic\.claude-(3-7|(opus|sonnet|haiku)-[4-9]|[4-9])")
#: Nova models that think (by effort, ``reasoningConfig``): Nova 2.
_THINKING_NOVA = re.compile(r"amazon\.nova-2-")
#: ``reasoning.effort`` -> Nova 2's ``maxReasoningEffort`` (it has three levels).
NOVA_EFFORTS: Mapping[str, str] = {
    "minimal": "low", "low": "low", "medium": "medium", "high": "high", "xhigh": "high",
}

_IMAGE_FORMATS = {"png": "png", "jpeg": "jpeg", "jpg": "jpeg", "gif": "gif", "webp": "webp"}
_DOC_FORMATS = {
    "pdf": "pdf", "csv": "csv", "doc": "doc", "docx": "docx", "xls": "xls", "xlsx": "xlsx",
    "html": "html", "htm": "html", "txt": "txt", "md": "md", "markdown": "md",
    "plain": "txt", "msword": "doc",
    "vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "vnd.ms-excel": "xls",
    "vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
}
_DATA_URL = re.compile(r"data:([\w.+-]+)/([\w.+-]+)(?:;[^,]*)?;base64,(.*)", re.DOTALL)
#: Bedrock document names: letters, digits, single spaces, hyphens, parentheses, brackets.
_NAME_JUNK = re.compile(r"[^A-Za-z0-9\-()\[\] ]+")
_REDACTED = "bedrock-redacted:"

#: Converse stopReason -> Responses incomplete reason (None: completed).
_STOPS: Mapping[str, str | None] = {
    "end_turn": None, "tool_use": None, "stop_sequence": None,
    "max_tokens": "max_output_tokens", "model_context_window_exceeded": "max_output_tokens",
    "guardrail_intervened": "content_filter", "content_filtered": "content_filter",
}
_MALFORMED_STOPS = frozenset({"malformed_model_output", "malformed_tool_use"})

#: Bedrock exception -> (HTTP status to classify by, OpenAI-style code).
_ERRORS: Mapping[str, tuple[int, str | None]] = {
    "ThrottlingException": (429, "rate_limit_exceeded"),
    "ModelNotReadyException": (503, "server_is_overloaded"),
    "ServiceUnavailableException": (503, "server_is_overloaded"),
    "InternalServerException": (500, "server_error"),
    "ModelErrorException": (500, "server_error"),
    "ModelStreamErrorException": (500, "server_error"),
    "ModelTimeoutException": (408, None),
    "AccessDeniedException": (403, None),
    "ResourceNotFoundException": (404, "model_not_found"),
    "ValidationException": (400, None),
    "UnrecognizedClientException": (401, "invalid_api_key"),
    "InvalidSignatureException": (401, "invalid_api_key"),
    "IncompleteSignatureException": (401, "invalid_api_key"),
    "MissingAuthenticationTokenException": (401, "invalid_api_key"),
    "InvalidClientTokenId": (401, "invalid_api_key"),
    "ExpiredTokenException": (401, "invalid_api_key"),
}
#: Request paths kept per codec (one per model and mode; a deployment has one model).
_PATHS_KEPT = 256
_ACCEPT: Mapping[str, str] = MappingProxyType({"accept": "application/json"})
_STREAM_ACCEPT: Mapping[str, str] = MappingProxyType(
    {"accept": "application/vnd.amazon.eventstream"})
#: Converse takes no query; one empty mapping serves every request.
_NO_QUERY: Mapping[str, str] = MappingProxyType({})
_CONTEXT_HINTS = ("input is too long", "too many input tokens", "prompt is too long",
                  "context window", "context length", "maximum context")


def model_id(model: str) -> str:
    """The Bedrock model id of a LiteLLM ``bedrock/`` model (``converse/`` and ``invoke/`` cut)."""
    for route in ("converse/", "invoke/"):
        if model.startswith(route):
            return model[len(route):]
    return model


class BedrockCodec:
    """Responses <-> Bedrock Converse (see the module docstring)."""

    name = "bedrock"

    def __init__(self) -> None:
        #: (model, stream) -> the request path (the model id quoted once, not per request)
        self._paths: dict[tuple[str, bool], str] = {}

    def encode(self, call: Call) -> NativeRequest:
        params = call.params
        for name, value in params.items():
            if name not in PARAMETERS and value is not None:
                call.refuse(name, "has no equivalent in the Converse API")
        system, messages = _conversation(call)
        body: Json = {"messages": messages}
        if system:
            body["system"] = system
        if not params.keys().isdisjoint(_STEP_PARAMETERS):
            run_steps(call, body, _STEPS)
        return NativeRequest(self._path(call.model, call.stream), body, _NO_QUERY,
                             _STREAM_ACCEPT if call.stream else _ACCEPT)

    def _path(self, model: str, stream: bool) -> str:
        found = self._paths.get((model, stream))
        if found is None:
            if len(self._paths) >= _PATHS_KEPT:
                self._paths.clear()
            # The model id is percent-encoded except ':' (ARNs hold '/' and ':'): aiohttp
            # would decode a '%3A' before sending and httpx would not, and SigV4 signs the
            # exact path.
            op = "converse-stream" if stream else "converse"
            found = self._paths[model, stream] = f"/model/{quote(model_id(model), safe=':')}/{op}"
        return found

    def decode(self, body: Mapping[str, Any], call: Call) -> Json:
        stop = body["stopReason"]
        if stop in _MALFORMED_STOPS:
            raise ServerError(f"the model's output was malformed (Bedrock stopReason {stop})",
                              code="server_error")
        output = _output_items(call, body["output"]["message"]["content"])
        incomplete = _incomplete(stop)
        return response_object(
            call, output, status="completed" if incomplete is None else "incomplete",
            usage=_usage(body["usage"]), incomplete_reason=incomplete)

    def decoder(self, call: Call) -> ConverseStreamDecoder:
        return ConverseStreamDecoder(call)

    def error(self, status: int, body: Any) -> NativeError:
        kind, message = _error_fields(body)
        native_status, code = _ERRORS.get(kind, (status, None))
        if kind == "ValidationException" and _too_long(message):
            code = "context_length_exceeded"
        return NativeError(native_status, message or f"Bedrock answered HTTP {status}",
                           code=code, type=kind or None)


# -- request: the conversation ---------------------------------------------------------


class _Turns:
    """Converse messages being built: a block of the same role as the last joins it."""

    def __init__(self) -> None:
        self.messages: list[Json] = []

    def add(self, role: str, *blocks: Json) -> None:
        if not blocks:
            return
        if self.messages and self.messages[-1]["role"] == role:
            self.messages[-1]["content"].extend(blocks)
        else:
            self.messages.append({"role": role, "content": list(blocks)})


def _conversation(call: Call) -> tuple[list[Json], list[Json]]:
    """``(system, messages)`` from ``instructions`` and ``input``."""
    system: list[Json] = []
    instructions = call.params.get("instructions")
    if isinstance(instructions, str) and instructions:
        system.append({"text": instructions})
    elif instructions is not None and not isinstance(instructions, str):
        call.refuse("instructions", "takes instructions as a string only")
    value = call.params.get("input")
    if isinstance(value, str):  # the common case, without building the canonical items
        return system, ([{"role": "user", "content": [{"text": value}]}] if value else [])
    turns = _Turns()
    for i, item in enumerate(input_items(call.params)):
        where = f"input[{i}]"
        kind = item["type"]
        if kind == "message":
            _message(call, item, where, system, turns)
        elif kind == "function_call":
            turns.add("assistant", _tool_use(item, where))
        elif kind == "function_call_output":
            turns.add("user", _tool_result(call, item, where))
        elif kind == "reasoning":
            block = _reasoning_block(item)
            if block is not None:
                turns.add("assistant", block)
        else:
            call.refuse(where, f"has no equivalent of input item type {kind!r}")
    return system, turns.messages


def _message(call: Call, item: Json, where: str, system: list[Json], turns: _Turns) -> None:
    role = item["role"]
    parts = item["content"]
    if role in ("system", "developer"):
        for j, part in enumerate(parts):
            text = part_text(part)
            if text is None:
                call.refuse(f"{where}.content[{j}]", "takes only text in system turns")
            elif text:
                system.append({"text": text})
        return
    blocks = [_block(call, part, f"{where}.content[{j}]") for j, part in enumerate(parts)]
    turns.add(role, *(b for b in blocks if b is not None))


def _block(call: Call, part: Json, where: str) -> Json | None:
    """One content part as a Converse content block (``None``: nothing to send)."""
    text = part_text(part)
    if text is not None:
        return {"text": text} if text else None
    kind = part["type"]
    if kind == "input_image":
        return _image(call, part, where)
    if kind == "input_file":
        return _document(call, part, where)
    call.refuse(where, f"has no equivalent of content part type {kind!r}")
    return None


def _image(call: Call, part: Json, where: str) -> Json | None:
    url = part.get("image_url")
    if not isinstance(url, str):
        call.refuse(f"{where}.file_id", "cannot read uploaded files; send a data: URL")
        return None
    found = _DATA_URL.fullmatch(url)
    if found is not None:
        fmt = _IMAGE_FORMATS.get(found.group(2).lower())
        if fmt is None:
            raise InvalidRequestError(
                f"{where}.image_url: image/{found.group(2)} is not an image format Bedrock "
                "reads (png, jpeg, gif, webp)")
        return {"image": {"format": fmt, "source": {"bytes": found.group(3)}}}
    if url.startswith("s3://"):
        fmt = _IMAGE_FORMATS.get(url.rpartition(".")[2].lower())
        if fmt is None:
            raise InvalidRequestError(
                f"{where}.image_url: cannot tell the image format of an s3:// URL from its "
                "extension (png, jpeg, jpg, gif, webp)")
        return {"image": {"format": fmt, "source": {"s3Location": {"uri": url}}}}
    call.refuse(f"{where}.image_url",
                "cannot fetch images from web URLs; send a data: URL (base64) or an s3:// URL")
    return None


def _document(call: Call, part: Json, where: str) -> Json | None:
    given = part.get("filename")
    filename = given if isinstance(given, str) and given else "document"
    data, url = part.get("file_data"), part.get("file_url")
    if isinstance(data, str):
        found = _DATA_URL.fullmatch(data)
        mime = found.group(2).lower() if found else ""
        source: Json = {"bytes": found.group(3) if found else data}
    elif isinstance(url, str) and url.startswith("s3://"):
        mime, source = "", {"s3Location": {"uri": url}}
    else:
        call.refuse(f"{where}.file_id" if part.get("file_id") else f"{where}.file_url",
                    "reads documents only from file_data (base64) or an s3:// file_url")
        return None
    stem, _, ext = filename.rpartition(".")
    fmt = _DOC_FORMATS.get(mime) or _DOC_FORMATS.get(ext.lower())
    if fmt is None:
        raise InvalidRequestError(
            f"{where}: cannot tell the document format from filename {filename!r}; Bedrock "
            "reads pdf, csv, doc, docx, xls, xlsx, html, txt and md")
    name = " ".join(_NAME_JUNK.sub(" ", stem or filename).split())[:200] or "document"
    return {"document": {"format": fmt, "name": name, "source": source}}


def _tool_use(item: Json, where: str) -> Json:
    arguments = item.get("arguments")
    try:
        value = json.loads(arguments) if isinstance(arguments, str) and arguments else {}
    except ValueError:
        raise InvalidRequestError(f"{where}.arguments: not valid JSON") from None
    if not isinstance(value, dict):
        raise InvalidRequestError(f"{where}.arguments: Bedrock takes a JSON object")
    for key in ("call_id", "name"):
        if not isinstance(item.get(key), str):
            raise InvalidRequestError(f"{where}.{key}: expected a string")
    return {"toolUse": {"toolUseId": item["call_id"], "name": item["name"], "input": value}}


def _tool_result(call: Call, item: Json, where: str) -> Json:
    output = item.get("output")
    if not isinstance(item.get("call_id"), str):
        raise InvalidRequestError(f"{where}.call_id: expected a string")
    content: list[Json]
    if isinstance(output, str):
        content = [{"text": output}] if output else []
    elif isinstance(output, list):
        content = []
        for j, part in enumerate(output):
            if not isinstance(part, Mapping) or not isinstance(part.get("type"), str):
                raise InvalidRequestError(f"{where}.output[{j}]: expected a part with a 'type'")
            block = _block(call, dict(part), f"{where}.output[{j}]")
            if block is not None:
                content.append(block)
    else:
        raise InvalidRequestError(f"{where}.output: expected a string or a list of parts")
    return {"toolResult": {"toolUseId": item["call_id"], "content": content}}


def _reasoning_block(item: Json) -> Json | None:
    """A reasoning item replayed; without its signature Bedrock cannot take it back."""
    encrypted = item.get("encrypted_content")
    if not isinstance(encrypted, str) or not encrypted:
        return None
    if encrypted.startswith(_REDACTED):
        return {"reasoningContent": {"redactedContent": encrypted[len(_REDACTED):]}}
    summary = item.get("summary") or []
    text = "".join(s.get("text", "") for s in summary if isinstance(s, Mapping))
    return {"reasoningContent": {"reasoningText": {"text": text, "signature": encrypted}}}


# -- request: tools, inference settings, output format, metadata ---------------------------


def _tools(call: Call, body: Json) -> None:
    specs: list[Json] = []
    for i, tool in function_tools(call.params):
        if tool["type"] != "function":
            call.refuse(f"tools[{i}]", f"has no equivalent of built-in tool {tool['type']!r}")
            continue
        spec: Json = {"name": tool["name"],
                      "inputSchema": {"json": tool.get("parameters") or
                                      {"type": "object", "properties": {}}}}
        if tool.get("description"):
            spec["description"] = tool["description"]
        specs.append({"toolSpec": spec})
    choice = _tool_choice(call, specs, body["messages"])
    if specs and choice is not None:
        body["toolConfig"] = {"tools": specs, "toolChoice": choice}


def _tool_choice(call: Call, specs: list[Json], messages: list[Json]) -> Json | None:
    """The Converse toolChoice; ``None`` for ``"none"`` (the tools are then left out)."""
    choice = call.params.get("tool_choice")
    if choice is None or choice == "auto":
        return {"auto": {}}
    if choice == "required":
        return {"any": {}}
    if isinstance(choice, Mapping) and choice.get("type") == "function":
        return {"tool": {"name": choice.get("name")}}
    if choice == "none":
        if specs and _has_tool_blocks(messages):
            call.refuse("tool_choice", "cannot forbid tool calls ('none') in a conversation "
                        "that holds tool calls")
            return {"auto": {}}
        return None
    call.refuse("tool_choice", f"has no equivalent of tool_choice {choice!r}")
    return {"auto": {}}


def _has_tool_blocks(messages: list[Json]) -> bool:
    return any("toolUse" in b or "toolResult" in b for m in messages for b in m["content"])


def _inference(call: Call, body: Json) -> None:
    params = call.params
    config: Json = {}
    for name, native in (("max_output_tokens", "maxTokens"), ("temperature", "temperature"),
                         ("top_p", "topP")):
        if params.get(name) is not None:
            config[native] = params[name]
    for name in ("temperature", "top_p"):
        value = params.get(name)
        if isinstance(value, int | float) and not 0 <= value <= 1:
            raise InvalidRequestError(f"{name}: Bedrock takes values from 0 to 1, got {value}")
    effort = _effort(call)
    if effort is not None and _THINKING_NOVA.search(call.model):
        body["additionalModelRequestFields"] = {"reasoningConfig": {
            "type": "enabled", "maxReasoningEffort": NOVA_EFFORTS[effort]}}
    elif effort is not None:
        budget = _thinking_budget(call, effort, config.get("maxTokens"))
        if budget is not None:
            body["additionalModelRequestFields"] = {
                "thinking": {"type": "enabled", "budget_tokens": budget}}
            config.setdefault("maxTokens", budget + _ANSWER_TOKENS)
    if config:
        body["inferenceConfig"] = config


def _effort(call: Call) -> str | None:
    """``reasoning.effort`` when it asks for thinking (``None`` for none or no reasoning)."""
    reasoning = call.params.get("reasoning")
    if reasoning is None:
        return None
    if not isinstance(reasoning, Mapping):
        raise InvalidRequestError("reasoning: expected an object")
    effort = reasoning.get("effort")
    if effort is None or effort == "none":
        return None
    if effort not in THINKING_BUDGETS:
        raise InvalidRequestError(f"reasoning.effort: unknown effort {effort!r}")
    return str(effort)


def _thinking_budget(call: Call, effort: str, max_tokens: int | None) -> int | None:
    budget = THINKING_BUDGETS[effort]
    if not _THINKING_CLAUDE.search(call.model):
        call.refuse("reasoning.effort", "thinks only on Claude 3.7 and later "
                    "(anthropic.claude-*: a thinking budget) and Nova 2 "
                    "(amazon.nova-2-*: a reasoning effort) through Converse")
        return None
    if max_tokens is not None:
        budget = min(budget, max_tokens - 1)
        if budget < _MIN_BUDGET:
            raise InvalidRequestError(
                f"max_output_tokens: Claude's thinking needs more than {_MIN_BUDGET} output "
                "tokens (the smallest thinking budget); raise it or drop reasoning.effort")
    return budget


def _output(call: Call, body: Json) -> None:
    text = call.params.get("text")
    if text is None:
        return
    if not isinstance(text, Mapping):
        raise InvalidRequestError("text: expected an object")
    if text.get("verbosity") is not None:
        call.refuse("text.verbosity", "has no verbosity setting")
    fmt = text.get("format") or {"type": "text"}
    kind = fmt.get("type") if isinstance(fmt, Mapping) else None
    if kind == "text":
        return
    if kind != "json_schema":
        call.refuse("text.format", f"has no equivalent of format {kind!r} (use json_schema)")
        return
    schema: Json = {"schema": json.dumps(fmt.get("schema") or {})}
    for key in ("name", "description"):
        if isinstance(fmt.get(key), str):
            schema[key] = fmt[key]
    body["outputConfig"] = {"textFormat": {"type": "json_schema",
                                           "structure": {"jsonSchema": schema}}}


def _metadata(call: Call, body: Json) -> None:
    params = call.params
    metadata = params.get("metadata")
    found: dict[str, str] = {}
    if isinstance(metadata, Mapping):
        found.update({str(k): str(v) for k, v in metadata.items()})
    elif metadata is not None:
        raise InvalidRequestError("metadata: expected an object of strings")
    for name in ("user", "safety_identifier"):
        if isinstance(params.get(name), str):
            found.setdefault(name, params[name])
    if found:
        body["requestMetadata"] = found
    tier = params.get("service_tier")
    if tier in ("flex", "priority"):
        body["serviceTier"] = {"type": tier}
    elif tier not in (None, "auto", "default"):
        call.refuse("service_tier", f"has no service tier {tier!r}")


def _flags(call: Call, body: Json) -> None:
    """Parameters that are honoured by leaving them as they are, or refused."""
    params = call.params
    if params.get("parallel_tool_calls") is False:
        call.refuse("parallel_tool_calls", "cannot forbid parallel tool calls")
    if params.get("truncation") not in (None, "disabled"):
        call.refuse("truncation", "cannot truncate the conversation for you")
    if params.get("background"):
        call.refuse("background", "has no background mode")
    include = params.get("include") or []
    if not isinstance(include, list):
        raise InvalidRequestError("include: expected a list")
    for value in include:
        if value != "reasoning.encrypted_content":
            call.refuse("include", f"cannot include {value!r}")


#: The encoding steps after the conversation, each with the parameters it reads.
_STEPS: tuple[EncodeStep, ...] = (
    (frozenset({"tools", "tool_choice"}), _tools),
    (frozenset({"max_output_tokens", "temperature", "top_p", "reasoning"}), _inference),
    (frozenset({"text"}), _output),
    (frozenset({"metadata", "user", "safety_identifier", "service_tier"}), _metadata),
    (frozenset({"parallel_tool_calls", "truncation", "background", "include"}), _flags),
)
#: Every parameter a step reads: a call giving none of them (a bare input) skips the steps.
_STEP_PARAMETERS: frozenset[str] = frozenset().union(*(names for names, _ in _STEPS))


# -- answer -----------------------------------------------------------------------------


def _output_items(call: Call, content: Any) -> list[Json]:
    if not isinstance(content, list):
        raise MalformedResponseError("Bedrock's output.message.content is not a list of blocks")
    output: list[Json] = []
    for block in content:
        if not isinstance(block, dict):
            raise MalformedResponseError(
                "Bedrock's output.message.content is not a list of blocks")
        item = _output_item(call, block, len(output))
        if item is not None:
            output.append(item)
    return output


def _output_item(call: Call, block: Mapping[str, Any], index: int) -> Json | None:
    if "text" in block:
        return message_item(item_id(call, "message", index), block["text"])
    if "toolUse" in block:
        use = block["toolUse"]
        return function_call_item(item_id(call, "function_call", index), use["toolUseId"],
                                  use["name"], json.dumps(use["input"]))
    if "reasoningContent" in block:
        content = block["reasoningContent"]
        rid = item_id(call, "reasoning", index)
        if "redactedContent" in content:
            return reasoning_item(rid, [], encrypted=_REDACTED + content["redactedContent"])
        text = content["reasoningText"]
        return reasoning_item(rid, [text["text"]] if text["text"] else [],
                              encrypted=text.get("signature"))
    if "citationsContent" in block:
        parts = block["citationsContent"].get("content", [])
        return message_item(item_id(call, "message", index),
                            "".join(p.get("text", "") for p in parts))
    return None


def _incomplete(stop: Any) -> str | None:
    if stop not in _STOPS:
        raise MalformedResponseError(f"unknown Bedrock stopReason {stop!r}")
    return _STOPS[stop]


def _usage(native: Mapping[str, Any]) -> Json:
    read = native.get("cacheReadInputTokens") or 0
    write = native.get("cacheWriteInputTokens") or 0
    return usage(native["inputTokens"] + read + write, native["outputTokens"],
                 cached_tokens=read, cache_write_tokens=write)


# -- errors -----------------------------------------------------------------------------


def _error_fields(body: Any) -> tuple[str, str]:
    """``(exception name, message)`` of a Bedrock error body (JSON or text)."""
    if not isinstance(body, Mapping):
        return "", str(body or "")[:500]
    raw = body.get("__type") or body.get("code") or ""
    kind = str(raw).partition(":")[0].rpartition("#")[2]
    message = body.get("message", body.get("Message"))
    return kind, message if isinstance(message, str) else ""


def _too_long(message: str) -> bool:
    lowered = message.lower()
    return any(hint in lowered for hint in _CONTEXT_HINTS)


# -- stream -----------------------------------------------------------------------------

#: Exception frames of ConverseStream -> OpenAI-style error code.
_STREAM_ERRORS: Mapping[str, str | None] = {
    "throttlingException": "rate_limit_exceeded",
    "serviceUnavailableException": "server_is_overloaded",
    "internalServerException": "server_error",
    "modelStreamErrorException": "server_error",
    "modelTimeoutException": "server_error",
    "validationException": "invalid_request_error",
}


class ConverseStreamDecoder:
    """ConverseStream events (``{name: payload}``) -> Responses events, for one stream."""

    def __init__(self, call: Call) -> None:
        self._call = call
        self._writer = EventWriter(call)
        self._started = False
        self._stop: str | None = None

    def feed(self, event: Mapping[str, Any]) -> list[Json]:
        out: list[Json] = []
        for name, payload in event.items():
            if self._writer.done:
                break
            handler = _HANDLERS.get(name)
            if handler is not None:
                out += handler(self, payload)
            elif name in _STREAM_ERRORS or name == ":error":
                out += self._error(name, payload)
        return out

    def end(self) -> list[Json]:
        if self._writer.done:
            return []
        if self._stop is not None:
            return self._finish(None)
        return self._writer.error(None, "Bedrock closed the stream before its messageStop")

    def _open(self) -> list[Json]:
        if self._started:
            return []
        self._started = True
        return self._writer.start()

    def _message_start(self, payload: Mapping[str, Any]) -> list[Json]:
        return self._open()

    def _block_start(self, payload: Mapping[str, Any]) -> list[Json]:
        start = payload["start"]
        if "toolUse" not in start:
            return self._open()
        use = start["toolUse"]
        return self._open() + self._writer.function_call(
            payload["contentBlockIndex"], call_id=use["toolUseId"], name=use["name"])

    def _block_delta(self, payload: Mapping[str, Any]) -> list[Json]:
        key, delta = payload["contentBlockIndex"], payload["delta"]
        out = self._open()
        if "text" in delta:
            out += self._writer.text(delta["text"], key)
        elif "toolUse" in delta:
            out += self._writer.arguments(key, delta["toolUse"]["input"])
        elif "reasoningContent" in delta:
            out += self._reasoning(key, delta["reasoningContent"])
        return out

    def _reasoning(self, key: int, delta: Mapping[str, Any]) -> list[Json]:
        if "text" in delta:
            return self._writer.reasoning(delta["text"], key)
        if "signature" in delta:
            return self._writer.reasoning_encrypted(delta["signature"], key)
        if "redactedContent" in delta:
            return self._writer.reasoning_encrypted(_REDACTED + delta["redactedContent"], key)
        return []

    def _block_stop(self, payload: Mapping[str, Any]) -> list[Json]:
        return self._writer.close()

    def _message_stop(self, payload: Mapping[str, Any]) -> list[Json]:
        self._stop = payload["stopReason"]
        return self._open()

    def _metadata(self, payload: Mapping[str, Any]) -> list[Json]:
        native = payload.get("usage")
        return self._finish(None if native is None else _usage(native))

    def _finish(self, used: Json | None) -> list[Json]:
        out = self._open()
        if self._stop in _MALFORMED_STOPS:
            return out + self._writer.fail(
                "server_error", f"the model's output was malformed (stopReason {self._stop})",
                usage=used)
        return out + self._writer.finish(usage=used, incomplete_reason=_incomplete(self._stop))

    def _error(self, name: str, payload: Any) -> list[Json]:
        fields = payload if isinstance(payload, Mapping) else {}
        message = fields.get("message") if isinstance(fields.get("message"), str) else None
        code = _STREAM_ERRORS.get(name) if name != ":error" else None
        if code == "invalid_request_error" and message and _too_long(message):
            code = "context_length_exceeded"
        return self._writer.error(code, message or f"Bedrock sent {name} in the stream")


#: ConverseStream event name -> its handler. Kept off the decoder: a table of the decoder's
#: bound methods would be a reference cycle, left to the garbage collector once per stream.
_HANDLERS: Mapping[str, Callable[[ConverseStreamDecoder, Mapping[str, Any]], list[Json]]] = {
    "messageStart": ConverseStreamDecoder._message_start,
    "contentBlockStart": ConverseStreamDecoder._block_start,
    "contentBlockDelta": ConverseStreamDecoder._block_delta,
    "contentBlockStop": ConverseStreamDecoder._block_stop,
    "messageStop": ConverseStreamDecoder._message_stop,
    "metadata": ConverseStreamDecoder._metadata,
}

