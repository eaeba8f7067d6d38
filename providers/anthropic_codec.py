"""The Anthropic Messages API as a Responses codec (pure: no I/O, no clock, no randomness).

Why a codec and not the ``anthropic`` SDK: the SDK brings its own HTTP client
and pydantic models per call; translating the JSON directly costs only the
dictionary work, and the router's pooled sender, timeouts and error table stay
the same as for every other upstream.

What translates (Responses -> ``POST /v1/messages``):

* ``instructions`` and ``system`` / ``developer`` messages -> ``system``;
  user and assistant messages -> alternating ``messages`` turns (consecutive
  items of one role are merged, as Anthropic requires); ``input_text`` ->
  ``text``, ``input_image`` (URL or data URL) -> ``image``, ``input_file``
  (PDF or plain-text data URL, or a URL) -> ``document``;
* ``function_call`` / ``function_call_output`` items -> ``tool_use`` /
  ``tool_result`` blocks; ``reasoning`` items that carry ``encrypted_content``
  (a thinking block's signature) -> ``thinking`` / ``redacted_thinking``
  blocks. Reasoning items without it (made by another provider) cannot be
  verified by Anthropic and are left out, as are earlier ``web_search_call``
  items (their findings live on in the assistant's text);
* function ``tools`` -> custom tools; ``web_search`` / ``web_search_preview``
  -> the ``web_search_20250305`` server tool; ``tool_choice`` auto / none /
  required (``any``) / a function (``tool``); ``parallel_tool_calls: false``
  -> ``disable_parallel_tool_use``;
* ``text.format`` json_schema -> ``output_config.format`` (Anthropic's native
  structured output, no forced tool);
* ``reasoning.effort`` -> ``thinking.budget_tokens`` by
  :data:`THINKING_BUDGETS` (``none``: no thinking);
* ``max_output_tokens`` -> ``max_tokens``, which Anthropic requires: when
  absent, :data:`DEFAULT_MAX_TOKENS` (LiteLLM's default), plus the thinking
  budget when thinking is on, so the answer keeps that much room;
* ``temperature``, ``top_p``, ``user`` / ``safety_identifier`` /
  ``metadata.user_id`` -> ``metadata.user_id``; other ``metadata`` is echoed
  on the Response, never sent (Anthropic's metadata has only ``user_id``);
  ``service_tier`` auto / default -> ``auto`` / ``standard_only``.

Every other Responses parameter is refused through :meth:`Call.refuse`
(:data:`HONOURED`, ``_ACCEPTED`` and ``_NEUTRAL`` say what is not). Prompt caching is
Anthropic's own: put ``cache_control`` in ``extra_body`` (per call or in the
deployment's ``litellm_params``); usage then reports cache reads and writes.

Back (Messages -> Responses): ``text`` -> message items; ``tool_use`` ->
``function_call`` items (``call_id`` is the ``toolu_...`` id); ``thinking``
-> reasoning items with the thinking text as summary and the signature as
``encrypted_content``; ``redacted_thinking`` -> a reasoning item whose
``encrypted_content`` is :data:`REDACTED_PREFIX` plus the data;
``server_tool_use`` web search -> ``web_search_call`` items, and the web
search citations of a text block -> ``url_citation`` annotations spanning
that block (document citations have no equivalent and are left out).
Usage: input tokens include cache reads (``cached_tokens``) and cache
writes (``cache_write_tokens``); ``output_tokens_details.thinking_tokens``
-> ``reasoning_tokens``. ``stop_reason`` ``max_tokens`` and
``model_context_window_exceeded`` -> incomplete (``max_output_tokens``),
``refusal`` -> incomplete (``content_filter``), the rest -> completed.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from typing import Any

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
    web_search_item,
)
from router.errors import InvalidRequestError, MalformedResponseError

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "HONOURED",
    "REDACTED_PREFIX",
    "THINKING_BUDGETS",
    "AnthropicCodec",
    "AnthropicStreamDecoder",
]

Json = dict[str, Any]

NAME = "anthropic"

#: ``max_tokens`` when the caller gives no ``max_output_tokens`` (LiteLLM's default).
DEFAULT_MAX_TOKENS = 4096

#: ``reasoning.effort`` -> ``thinking.budget_tokens``: LiteLLM's default budgets, so a
#: config moved from LiteLLM thinks as much as before (``minimal`` is raised to
#: Anthropic's minimum of 1024, as LiteLLM does).
THINKING_BUDGETS: Mapping[str, int] = {
    "minimal": 1024, "low": 1024, "medium": 2048, "high": 4096, "xhigh": 8192,
}

#: Marks a ``redacted_thinking`` block's data in a reasoning item's ``encrypted_content``
#: (a thinking signature is base64, so it never starts with it).
REDACTED_PREFIX = "redacted_thinking:"

_MIN_BUDGET = 1024
_MIN_THINKING_TOP_P = 0.95
_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
_WEB_SEARCH = frozenset({"web_search", "web_search_preview", "web_search_2025_08_26",
                         "web_search_preview_2025_03_11"})
_SERVICE_TIERS = {"auto": "auto", "default": "standard_only"}

#: Responses parameters echoed or consumed without a native field; accepted as they are.
_ACCEPTED = frozenset({"metadata", "store", "include"})
#: Values under which a parameter asks for nothing the provider lacks.
_NEUTRAL: Mapping[str, tuple[Any, ...]] = {
    "truncation": ("disabled", None), "background": (False, None),
    "top_logprobs": (0, None), "stream_options": (None,), "prompt_cache_key": (None,),
    "max_tool_calls": (None,), "prompt": (None,),
}


# -- encode -----------------------------------------------------------------------------


def _max_tokens(call: Call, body: Json, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidRequestError("max_output_tokens: expected a positive integer")
    body["max_tokens"] = value


def _sampling(name: str) -> Callable[[Call, Json, Any], None]:
    def put(call: Call, body: Json, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidRequestError(f"{name}: expected a number")
        body[name] = value
    return put


def _user(call: Call, body: Json, value: Any) -> None:
    if value is not None:
        body.setdefault("metadata", {})["user_id"] = str(value)


def _service_tier(call: Call, body: Json, value: Any) -> None:
    tier = _SERVICE_TIERS.get(value) if isinstance(value, str) else None
    if tier is None:
        call.refuse("service_tier", f"has no service tier {value!r} (only auto and default)")
        return
    body["service_tier"] = tier


def _text(call: Call, body: Json, value: Any) -> None:
    if not isinstance(value, Mapping):
        raise InvalidRequestError("text: expected an object")
    if value.get("verbosity") not in (None, "medium"):
        call.refuse("text.verbosity", "has no verbosity setting")
    fmt = value.get("format")
    kind = fmt.get("type") if isinstance(fmt, Mapping) else None
    if fmt is None or kind == "text":
        return
    if kind != "json_schema":
        call.refuse("text.format", f"has no {kind!r} output format (use json_schema)")
        return
    schema = fmt.get("schema")
    if not isinstance(schema, Mapping):
        raise InvalidRequestError("text.format.schema: expected a JSON schema object")
    body["output_config"] = {"format": {"type": "json_schema", "schema": schema}}


def _instructions(call: Call, body: Json, value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        raise InvalidRequestError("instructions: expected a string")
    if value:
        body.setdefault("system", []).insert(0, {"type": "text", "text": value})


def _ignore(call: Call, body: Json, value: Any) -> None:
    """Handled together with another parameter (see :meth:`AnthropicCodec.encode`)."""


#: Every Responses create parameter this codec honours, and how.
HONOURED: Mapping[str, Callable[[Call, Json, Any], None]] = {
    "input": _ignore, "tools": _ignore, "tool_choice": _ignore,
    "parallel_tool_calls": _ignore, "reasoning": _ignore,
    "max_output_tokens": _max_tokens, "temperature": _sampling("temperature"),
    "top_p": _sampling("top_p"), "user": _user, "safety_identifier": _user,
    "service_tier": _service_tier, "text": _text, "instructions": _instructions,
}


def _other_param(call: Call, name: str, value: Any) -> None:
    if name in _ACCEPTED:
        if name == "include":
            _include(call, value)
        return
    if value in _NEUTRAL.get(name, ()):
        return
    call.refuse(name, "has no equivalent of this parameter")


def _include(call: Call, value: Any) -> None:
    if not isinstance(value, list):
        raise InvalidRequestError("include: expected a list")
    for entry in value:
        if entry != "reasoning.encrypted_content":
            call.refuse(f"include[{entry!r}]", "cannot include this (thinking signatures are "
                        "always returned as reasoning.encrypted_content)")


def _metadata_user(call: Call, body: Json) -> None:
    metadata = call.params.get("metadata")
    if isinstance(metadata, Mapping) and isinstance(metadata.get("user_id"), str):
        body.setdefault("metadata", {}).setdefault("user_id", metadata["user_id"])


def _thinking(call: Call, body: Json) -> None:
    reasoning = call.params.get("reasoning")
    if reasoning is None:
        return
    if not isinstance(reasoning, Mapping):
        raise InvalidRequestError("reasoning: expected an object")
    if reasoning.get("generate_summary") is not None:
        call.refuse("reasoning.generate_summary", "has no such setting (use reasoning.summary)")
    effort = reasoning.get("effort")
    if effort is None or effort == "none":
        return
    budget = THINKING_BUDGETS.get(effort) if isinstance(effort, str) else None
    if budget is None:
        raise InvalidRequestError(
            f"reasoning.effort: expected one of none, {', '.join(THINKING_BUDGETS)}, "
            f"got {effort!r}")
    _fit_budget(call, body, budget)


def _fit_budget(call: Call, body: Json, budget: int) -> None:
    """Thinking needs ``1024 <= budget < max_tokens``; an explicit max_tokens caps the budget."""
    if "max_tokens" not in body:
        body["max_tokens"] = DEFAULT_MAX_TOKENS + budget
    elif body["max_tokens"] <= budget:
        budget = body["max_tokens"] - 1
    if budget < _MIN_BUDGET:
        call.refuse("reasoning.effort", f"needs max_output_tokens above {_MIN_BUDGET} to think "
                    f"(its smallest thinking budget is {_MIN_BUDGET} tokens)")
        return
    body["thinking"] = {"type": "enabled", "budget_tokens": budget}
    _thinking_limits(call, body)


def _thinking_limits(call: Call, body: Json) -> None:
    """What Anthropic documents as incompatible with thinking, refused before sending."""
    if body.get("temperature", 1) != 1:
        call.refuse("temperature", "cannot change temperature while thinking (reasoning)")
        del body["temperature"]
    if body.get("top_p", 1) < _MIN_THINKING_TOP_P:
        call.refuse("top_p", f"needs top_p of at least {_MIN_THINKING_TOP_P} while thinking")
        del body["top_p"]
    if body.get("tool_choice", {}).get("type") in ("any", "tool"):
        call.refuse("tool_choice", "cannot force a tool while thinking (only auto or none)")
        del body["tool_choice"]


# -- tools --------------------------------------------------------------------------------


def _tools(call: Call, body: Json) -> None:
    tools: list[Json] = []
    for i, tool in function_tools(call.params):
        kind = tool["type"]
        if kind == "function":
            tools.append(_function_tool(tool))
        elif kind in _WEB_SEARCH:
            tools.append(_web_search_tool(call, tool, i))
        else:
            call.refuse(f"tools[{i}]", f"has no equivalent of built-in tool {kind!r}")
    if tools:
        body["tools"] = tools
    _tool_choice(call, body, bool(tools))


def _function_tool(tool: Mapping[str, Any]) -> Json:
    native: Json = {"name": tool["name"],
                    "input_schema": tool.get("parameters") or {"type": "object", "properties": {}}}
    if tool.get("description"):
        native["description"] = tool["description"]
    if tool.get("strict"):
        native["strict"] = True
    return native


def _web_search_tool(call: Call, tool: Mapping[str, Any], i: int) -> Json:
    native: Json = {"type": "web_search_20250305", "name": "web_search"}
    if tool.get("search_context_size") not in (None, "medium"):
        call.refuse(f"tools[{i}].search_context_size", "has no search context size")
    filters = tool.get("filters")
    if isinstance(filters, Mapping) and filters.get("allowed_domains"):
        native["allowed_domains"] = list(filters["allowed_domains"])
    location = tool.get("user_location")
    if isinstance(location, Mapping):
        native["user_location"] = {"type": "approximate", **{
            k: location[k] for k in ("city", "region", "country", "timezone") if location.get(k)}}
    return native


def _tool_choice(call: Call, body: Json, has_tools: bool) -> None:
    choice = call.params.get("tool_choice")
    native = _native_choice(call, choice)
    if native is None:
        return
    if not has_tools:
        if native["type"] in ("any", "tool"):
            raise InvalidRequestError(f"tool_choice: {choice!r} needs tools")
        return
    if call.params.get("parallel_tool_calls") is False and native["type"] != "none":
        native["disable_parallel_tool_use"] = True
    body["tool_choice"] = native


def _native_choice(call: Call, choice: Any) -> Json | None:
    if choice is None:
        return {"type": "auto"} if call.params.get("parallel_tool_calls") is False else None
    if choice in ("auto", "none"):
        return {"type": choice}
    if choice == "required":
        return {"type": "any"}
    kind = choice.get("type") if isinstance(choice, Mapping) else None
    if kind == "function" and isinstance(choice.get("name"), str):
        return {"type": "tool", "name": choice["name"]}
    if kind in _WEB_SEARCH:
        return {"type": "tool", "name": "web_search"}
    call.refuse("tool_choice", f"has no equivalent of tool_choice {choice!r}")
    return None


#: The encoding steps after the parameters' own handlers, each with the parameters it reads.
_STEPS: tuple[EncodeStep, ...] = (
    (frozenset({"tools", "tool_choice", "parallel_tool_calls"}), _tools),
    (frozenset({"reasoning"}), _thinking),
    (frozenset({"metadata"}), _metadata_user),
)


# -- input ----------------------------------------------------------------------------------


class _Turns:
    """Anthropic's alternating turns, built item by item (one role's items merge)."""

    def __init__(self) -> None:
        self.system: list[Json] = []
        self.messages: list[Json] = []

    def add(self, role: str, blocks: list[Json]) -> None:
        if not blocks:
            return
        if self.messages and self.messages[-1]["role"] == role:
            self.messages[-1]["content"].extend(blocks)
        else:
            self.messages.append({"role": role, "content": blocks})


def _messages(call: Call) -> _Turns:
    turns = _Turns()
    value = call.params.get("input")
    if isinstance(value, str):  # the common case, without building the canonical items
        turns.messages.append({"role": "user", "content": [{"type": "text", "text": value}]})
        return turns
    for i, item in enumerate(input_items(call.params)):
        kind = item.get("type")
        where = f"input[{i}]"
        if kind == "message":
            _message(turns, item, where)
        elif kind == "function_call":
            turns.add("assistant", [_tool_use(item, where)])
        elif kind == "function_call_output":
            turns.add("user", [_tool_result(item, where)])
        elif kind == "reasoning":
            turns.add("assistant", _thinking_blocks(item))
        elif kind != "web_search_call":
            raise InvalidRequestError(f"{where}.type: {NAME} cannot take {kind!r} items")
    if not turns.messages:
        raise InvalidRequestError(f"input: {NAME} needs at least one user message")
    return turns


def _message(turns: _Turns, item: Mapping[str, Any], where: str) -> None:
    role = item["role"]
    content = item["content"]
    if role in ("system", "developer"):
        turns.system.extend(_text_block(p, f"{where}.content[{j}]") for j, p in enumerate(content))
    elif role == "assistant":
        turns.add("assistant", [_text_block(p, f"{where}.content[{j}]")
                                for j, p in enumerate(content)])
    else:
        turns.add("user", [_user_block(p, f"{where}.content[{j}]")
                           for j, p in enumerate(content)])


def _text_block(part: Mapping[str, Any], where: str) -> Json:
    text = part_text(part)
    if text is None:
        raise InvalidRequestError(f"{where}: expected a text part, got {part.get('type')!r}")
    return {"type": "text", "text": text}


def _user_block(part: Mapping[str, Any], where: str) -> Json:
    kind = part.get("type")
    if kind == "input_image":
        return _image(part, where)
    if kind == "input_file":
        return _document(part, where)
    return _text_block(part, where)


def _data_url(url: str, where: str) -> tuple[str, str]:
    """``(media type, base64 data)`` of a ``data:`` URL."""
    head, sep, data = url.partition(",")
    if not sep or not head.endswith(";base64"):
        raise InvalidRequestError(f"{where}: expected a base64 data URL")
    return head[5:-7], data


def _image(part: Mapping[str, Any], where: str) -> Json:
    url = part.get("image_url")
    if not isinstance(url, str):
        what = "file_id images (send image_url)" if part.get("file_id") else "a URL-less image"
        raise InvalidRequestError(f"{where}: {NAME} cannot take {what}")
    if not url.startswith("data:"):
        return {"type": "image", "source": {"type": "url", "url": url}}
    media, data = _data_url(url, f"{where}.image_url")
    if media not in _IMAGE_TYPES:
        raise InvalidRequestError(
            f"{where}.image_url: {NAME} takes {', '.join(sorted(_IMAGE_TYPES))}, not {media!r}")
    return {"type": "image", "source": {"type": "base64", "media_type": media, "data": data}}


def _document(part: Mapping[str, Any], where: str) -> Json:
    block: Json = {"type": "document", "source": _document_source(part, where)}
    if isinstance(part.get("filename"), str):
        block["title"] = part["filename"]
    return block


def _document_source(part: Mapping[str, Any], where: str) -> Json:
    if isinstance(part.get("file_url"), str):
        return {"type": "url", "url": part["file_url"]}
    data = part.get("file_data")
    if not isinstance(data, str):
        raise InvalidRequestError(f"{where}: {NAME} needs file_data or file_url (not file_id)")
    media, payload = _data_url(data, f"{where}.file_data")
    if media == "application/pdf":
        return {"type": "base64", "media_type": media, "data": payload}
    if media == "text/plain":
        try:
            text = base64.b64decode(payload, validate=True).decode("utf-8", "replace")
        except ValueError:
            raise InvalidRequestError(f"{where}.file_data: not valid base64") from None
        return {"type": "text", "media_type": media, "data": text}
    raise InvalidRequestError(f"{where}.file_data: {NAME} takes PDF or plain text, not {media!r}")


def _tool_use(item: Mapping[str, Any], where: str) -> Json:
    arguments = item.get("arguments") or "{}"
    try:
        value = json.loads(arguments)
    except (TypeError, ValueError):
        raise InvalidRequestError(f"{where}.arguments: expected JSON text") from None
    if not isinstance(value, dict):
        raise InvalidRequestError(f"{where}.arguments: expected a JSON object")
    if not isinstance(item.get("call_id"), str) or not isinstance(item.get("name"), str):
        raise InvalidRequestError(f"{where}: a function_call needs call_id and name")
    return {"type": "tool_use", "id": item["call_id"], "name": item["name"], "input": value}


def _tool_result(item: Mapping[str, Any], where: str) -> Json:
    if not isinstance(item.get("call_id"), str):
        raise InvalidRequestError(f"{where}.call_id: expected a string")
    output = item.get("output")
    content: Any
    if isinstance(output, str):
        content = output
    elif isinstance(output, list):
        content = [_user_block(p, f"{where}.output[{j}]") for j, p in enumerate(output)]
    else:
        raise InvalidRequestError(f"{where}.output: expected a string or a list of parts")
    return {"type": "tool_result", "tool_use_id": item["call_id"], "content": content}


def _thinking_blocks(item: Mapping[str, Any]) -> list[Json]:
    encrypted = item.get("encrypted_content")
    if not isinstance(encrypted, str) or not encrypted:
        return []
    if encrypted.startswith(REDACTED_PREFIX):
        return [{"type": "redacted_thinking", "data": encrypted[len(REDACTED_PREFIX):]}]
    summary = item.get("summary") or []
    text = "".join(s.get("text", "") for s in summary if isinstance(s, Mapping))
    return [{"type": "thinking", "thinking": text, "signature": encrypted}]


# -- decode ---------------------------------------------------------------------------------


def _usage(native: Mapping[str, Any]) -> Json:
    cached = native.get("cache_read_input_tokens") or 0
    written = native.get("cache_creation_input_tokens") or 0
    details = native.get("output_tokens_details") or {}
    return usage(
        (native.get("input_tokens") or 0) + cached + written, native.get("output_tokens") or 0,
        cached_tokens=cached, cache_write_tokens=written,
        reasoning_tokens=details.get("thinking_tokens") or 0,
    )


def _incomplete(stop_reason: Any) -> str | None:
    if stop_reason in ("max_tokens", "model_context_window_exceeded"):
        return "max_output_tokens"
    if stop_reason == "refusal":
        return "content_filter"
    return None


def _url_citation(citation: Mapping[str, Any], length: int) -> Json | None:
    """A web search citation of a whole text block as a ``url_citation`` annotation."""
    if citation.get("type") != "web_search_result_location":
        return None  # document citations have no Responses equivalent without file ids
    return {"type": "url_citation", "url": citation["url"],
            "title": citation.get("title") or citation["url"], "start_index": 0,
            "end_index": length}


def _annotations(block: Mapping[str, Any]) -> list[Json]:
    citations = block.get("citations")
    if not citations:  # the common block, without the generator's frames
        return []
    length = len(block["text"])
    cited = (_url_citation(c, length) for c in citations)
    return [c for c in cited if c is not None]


def _output_item(block: Mapping[str, Any], call: Call, index: int) -> Json | None:
    kind = block["type"]
    if kind == "text":
        return message_item(item_id(call, "message", index), block["text"],
                            annotations=_annotations(block))
    if kind == "tool_use":
        return function_call_item(item_id(call, "function_call", index), block["id"],
                                  block["name"], json.dumps(block["input"]))
    if kind == "thinking":
        text = block["thinking"]
        return reasoning_item(item_id(call, "reasoning", index), [text] if text else [],
                              encrypted=block["signature"])
    if kind == "redacted_thinking":
        return reasoning_item(item_id(call, "reasoning", index), [],
                              encrypted=REDACTED_PREFIX + block["data"])
    if kind == "server_tool_use" and block["name"] == "web_search":
        return web_search_item(item_id(call, "web_search_call", index),
                               str(block["input"].get("query", "")))
    return None  # results of server tools and blocks from features never asked for


def decode_message(body: Mapping[str, Any], call: Call) -> Json:
    """A Messages API ``message`` body as a Responses ``Response``."""
    if body.get("type") != "message" or not isinstance(body.get("content"), list):
        raise MalformedResponseError(f"the upstream's answer is not a {NAME} message")
    output: list[Json] = []
    for block in body["content"]:
        item = _output_item(block, call, len(output))
        if item is not None:
            output.append(item)
    reason = _incomplete(body.get("stop_reason"))
    return response_object(call, output, status="completed" if reason is None else "incomplete",
                           usage=_usage(body["usage"]), incomplete_reason=reason)


# -- errors -----------------------------------------------------------------------------------

#: Anthropic error type -> (status to classify by, OpenAI error code).
_ERRORS: Mapping[str, tuple[int, str | None]] = {
    "invalid_request_error": (400, "invalid_prompt"),
    "authentication_error": (401, "invalid_api_key"),
    "permission_error": (403, "permission_denied"),
    "not_found_error": (404, "model_not_found"),
    "request_too_large": (413, "request_too_large"),
    "billing_error": (402, "insufficient_quota"),
    "rate_limit_error": (429, "rate_limit_exceeded"),
    "api_error": (500, "server_error"),
    "timeout_error": (504, "timeout"),
    "overloaded_error": (503, "server_is_overloaded"),
}

#: Phrases of an ``invalid_request_error`` that mean the input does not fit the context window.
_TOO_LONG = ("prompt is too long", "exceed context limit", "context window")


def native_error(kind: str | None, message: str, status: int | None = None) -> NativeError:
    """An Anthropic error (type and message, and the HTTP status when there is one)."""
    mapped_status, code = _ERRORS.get(kind or "", (status or 500, kind))
    if kind == "invalid_request_error" and any(p in message.lower() for p in _TOO_LONG):
        code = "context_length_exceeded"
    if status is not None and kind not in _ERRORS:
        mapped_status = status
    return NativeError(mapped_status, message, code=code, type=kind)


def _body(call: Call) -> Json:
    turns = _messages(call)
    body: Json = {"model": call.model, "messages": turns.messages}
    if turns.system:
        body["system"] = turns.system
    for name, value in call.params.items():
        if value is None:  # an explicit null asks for the default
            continue
        handler = HONOURED.get(name)
        if handler is None:
            _other_param(call, name, value)
        else:
            handler(call, body, value)
    run_steps(call, body, _STEPS)
    body.setdefault("max_tokens", DEFAULT_MAX_TOKENS)
    return body


# -- the codec ----------------------------------------------------------------------------------


class AnthropicCodec:
    """Responses <-> Anthropic Messages (see the module docstring for what translates)."""

    name = NAME

    def encode(self, call: Call) -> NativeRequest:
        try:
            body = _body(call)
        except (TypeError, ValueError, AttributeError, KeyError) as exc:
            # a shape the checks above did not foresee; still the caller's request
            raise InvalidRequestError(
                f"the request cannot be translated for {NAME}: a parameter has an unexpected "
                f"shape ({type(exc).__name__})") from None
        if call.stream:
            body["stream"] = True
            return NativeRequest("/v1/messages", body, headers={"accept": "text/event-stream"})
        return NativeRequest("/v1/messages", body)

    def decode(self, body: Mapping[str, Any], call: Call) -> Json:
        return decode_message(body, call)

    def decoder(self, call: Call) -> AnthropicStreamDecoder:
        return AnthropicStreamDecoder(call)

    def error(self, status: int, body: Any) -> NativeError:
        err = body.get("error") if isinstance(body, Mapping) else None
        if not isinstance(err, Mapping):
            text = body if isinstance(body, str) else json.dumps(body)[:500]
            return NativeError(503 if status == 529 else status,
                               text or f"upstream answered HTTP {status}")
        message = err.get("message")
        kind = err.get("type")
        return native_error(kind if isinstance(kind, str) else None,
                            message if isinstance(message, str) else f"HTTP {status}",
                            503 if status == 529 else status)


# -- streams -------------------------------------------------------------------------------------


class AnthropicStreamDecoder:
    """One Messages stream (``message_start`` ... ``message_stop``) as Responses events.

    Content blocks are keyed by their ``index``; a tool call that streamed no
    arguments gets ``{}``; usage is taken from ``message_start`` and updated
    by ``message_delta`` (whose counts are cumulative).
    """

    def __init__(self, call: Call) -> None:
        self._writer = EventWriter(call)
        self._started = False
        self._usage: Json = {}
        self._stop_reason: str | None = None
        self._blocks: dict[int, str] = {}
        self._args_seen: set[int] = set()
        self._search: dict[int, list[str]] = {}
        self._citations: dict[int, list[Mapping[str, Any]]] = {}
        self._lengths: dict[int, int] = {}

    def feed(self, event: Mapping[str, Any]) -> list[Json]:
        kind = event["type"]
        handler = _HANDLERS.get(kind)
        if handler is None or self._writer.done:
            return []  # ping, and event types added after this codec was written
        return handler(self, event)

    def end(self) -> list[Json]:
        if self._writer.done:
            return []
        return self._writer.error(
            "server_error", f"the {NAME} stream ended before message_stop")

    def _start(self, event: Mapping[str, Any]) -> list[Json]:
        self._started = True
        self._usage.update(event["message"].get("usage") or {})
        return self._writer.start()

    def _block_start(self, event: Mapping[str, Any]) -> list[Json]:
        index: int = event["index"]
        block = event["content_block"]
        kind = block["type"]
        self._blocks[index] = kind
        w = self._writer
        if kind == "text":
            self._lengths[index] = len(block.get("text", ""))
            return w.text(block.get("text", ""), key=index)
        if kind == "tool_use":
            return w.function_call(index, call_id=block["id"], name=block["name"])
        if kind == "thinking":
            return w.reasoning(block.get("thinking", ""), key=index)
        if kind == "redacted_thinking":
            return w.reasoning_encrypted(REDACTED_PREFIX + block["data"], key=index)
        if kind == "server_tool_use" and block.get("name") == "web_search":
            self._search[index] = []
        return []

    def _block_delta(self, event: Mapping[str, Any]) -> list[Json]:
        index: int = event["index"]
        delta = event["delta"]
        kind = delta["type"]
        w = self._writer
        if kind == "text_delta":
            self._lengths[index] = self._lengths.get(index, 0) + len(delta["text"])
            return w.text(delta["text"], key=index)
        if kind == "input_json_delta":
            return self._json_delta(index, delta["partial_json"])
        if kind == "thinking_delta":
            return w.reasoning(delta["thinking"], key=index)
        if kind == "signature_delta":
            return w.reasoning_encrypted(delta["signature"], key=index)
        if kind == "citations_delta":
            self._citations.setdefault(index, []).append(delta["citation"])
        return []

    def _json_delta(self, index: int, partial: str) -> list[Json]:
        if index in self._search:
            self._search[index].append(partial)
            return []
        if partial:  # a tool without input streams one empty delta
            self._args_seen.add(index)
        return self._writer.arguments(index, partial)

    def _block_stop(self, event: Mapping[str, Any]) -> list[Json]:
        index: int = event["index"]
        kind = self._blocks.get(index)
        if index in self._search:
            return self._web_search(index)
        if kind == "tool_use" and index not in self._args_seen:
            return [*self._writer.arguments(index, "{}"), *self._writer.close()]
        if kind == "text" and index in self._citations:
            return [*self._cite(index), *self._writer.close()]
        if kind in ("text", "tool_use", "thinking", "redacted_thinking"):
            return self._writer.close()
        return []

    def _cite(self, index: int) -> list[Json]:
        """Citations arrive before their text; announced once its length is known."""
        events: list[Json] = []
        for citation in self._citations.pop(index):
            annotation = _url_citation(citation, self._lengths.get(index, 0))
            if annotation is not None:
                events += self._writer.annotate(annotation, key=index)
        return events

    def _web_search(self, index: int) -> list[Json]:
        raw = "".join(self._search.pop(index)) or "{}"
        query = json.loads(raw).get("query", "")
        return self._writer.web_search_call(index, str(query))

    def _delta(self, event: Mapping[str, Any]) -> list[Json]:
        self._stop_reason = event["delta"].get("stop_reason") or self._stop_reason
        self._usage.update({k: v for k, v in (event.get("usage") or {}).items() if v is not None})
        return []

    def _stop(self, event: Mapping[str, Any]) -> list[Json]:
        return self._writer.finish(usage=_usage(self._usage),
                                   incomplete_reason=_incomplete(self._stop_reason))

    def _error(self, event: Mapping[str, Any]) -> list[Json]:
        err = event.get("error") or {}
        message = err.get("message") or f"the {NAME} stream failed"
        native = native_error(err.get("type"), message)
        return self._writer.error(native.code, native.message)


_HANDLERS: Mapping[str, Callable[[AnthropicStreamDecoder, Mapping[str, Any]], list[Json]]] = {
    "message_start": AnthropicStreamDecoder._start,
    "content_block_start": AnthropicStreamDecoder._block_start,
    "content_block_delta": AnthropicStreamDecoder._block_delta,
    "content_block_stop": AnthropicStreamDecoder._block_stop,
    "message_delta": AnthropicStreamDecoder._delta,
    "message_stop": AnthropicStreamDecoder._stop,
    "error": AnthropicStreamDecoder._error,
}
