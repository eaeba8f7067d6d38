"""The Responses API over Chat Completions: one codec for every OpenAI-compatible server.

vLLM, Ollama, llama.cpp, TGI, Groq, Together, DeepSeek, Mistral, Azure AI
Foundry and many more serve ``POST /chat/completions`` but not ``/responses``.
This codec turns a Responses ``create`` call into a Chat Completions request
and the answer (a ``chat.completion`` body, or a stream of
``chat.completion.chunk`` events) back into a Responses ``Response`` and its
stream events. It is pure (see :mod:`providers.codec`).

What maps, both ways:

* ``instructions`` and ``system`` / ``developer`` turns -> ``system``
  messages; ``input_text`` / ``input_image`` / ``input_file`` (inline data)
  parts -> ``text`` / ``image_url`` / ``file`` parts; ``function_call`` and
  ``function_call_output`` items -> assistant ``tool_calls`` and ``tool``
  messages. Reasoning items from earlier turns are not sent: Chat Completions
  takes no reasoning back (DeepSeek refuses ``reasoning_content`` in input).
* function ``tools``, ``tool_choice``, ``parallel_tool_calls``,
  ``text.format`` (``json_schema`` / ``json_object``) -> ``response_format``,
  ``reasoning.effort`` -> ``reasoning_effort``, ``max_output_tokens`` ->
  ``max_tokens``, ``temperature``, ``top_p``, ``user``. ``metadata`` and
  ``store`` are echoed on the Response, not sent.
* Answers: ``reasoning_content`` (or ``reasoning``) -> a reasoning item with
  summary text; ``content`` / ``refusal`` -> a message with an ``output_text`` /
  ``refusal`` part (streamed: a separate message for the refusal); ``tool_calls`` ->
  ``function_call`` items; ``finish_reason`` ``length`` / ``content_filter``
  -> ``incomplete``; usage with cached and reasoning tokens.

Every other parameter is refused through :meth:`providers.codec.Call.refuse`
(so ``drop_params`` can drop it): the table :data:`HONOURED` is the whole list
of what this codec reads.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from types import MappingProxyType
from typing import Any

from providers.codec import Call, EncodeStep, NativeError, NativeRequest, run_steps
from providers.responses_input import function_tools, input_items, part_text
from providers.responses_shapes import (
    EventWriter,
    function_call_item,
    item_id,
    reasoning_item,
    response_object,
    usage,
)
from router.errors import InvalidRequestError, MalformedResponseError

__all__ = ["HONOURED", "ChatCodec", "ChatStreamDecoder", "chat_usage"]

Json = dict[str, Any]

#: Responses create parameters this codec translates (or echoes); any other is refused.
HONOURED: frozenset[str] = frozenset({
    "input", "instructions", "tools", "tool_choice", "parallel_tool_calls", "text",
    "reasoning", "max_output_tokens", "temperature", "top_p", "metadata", "user", "store",
    "include", "truncation", "stream_options", "background",
})

#: Parameters whose value is harmless when it is the API's default.
_DEFAULTS_ONLY: Mapping[str, tuple[Any, ...]] = MappingProxyType({
    "include": (None, []), "truncation": (None, "disabled"), "background": (None, False),
})

_FINISH_INCOMPLETE: Mapping[str, str] = MappingProxyType(
    {"length": "max_output_tokens", "content_filter": "content_filter"})

_SYSTEM_ROLES = frozenset({"system", "developer"})

_CONTEXT_HINTS = ("context length", "context_length", "context window", "too many tokens",
                  "prompt is too long", "maximum context", "input is too long")


class ChatCodec:
    """Responses <-> Chat Completions (``POST {api_base}/chat/completions``)."""

    name = "chat"

    def encode(self, call: Call) -> NativeRequest:
        params = call.params
        _refuse_unknown(call)
        body: Json = {"model": call.model, "messages": _messages(call)}
        run_steps(call, body, _STEPS)
        if call.stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        if isinstance(params.get("user"), str):
            body["user"] = params["user"]
        return NativeRequest("/chat/completions", body)

    def decode(self, body: Mapping[str, Any], call: Call) -> Json:
        choices = body["choices"]
        if not isinstance(choices, list) or not choices:
            raise MalformedResponseError("the Chat Completions answer has no choices")
        choice = choices[0]
        message = choice["message"]
        output: list[Json] = []
        thought = _reasoning_text(message)
        if thought:
            output.append(reasoning_item(item_id(call, "reasoning", 0), [thought]))
        content, refusal = message.get("content"), message.get("refusal")
        if isinstance(content, list):  # a few servers answer with parts
            content = "".join(part_text(p) or "" for p in content)
        if content or refusal:
            output.append(_message(item_id(call, "message", len(output)), content, refusal))
        for index, tool_call in enumerate(message.get("tool_calls") or ()):
            function = tool_call["function"]
            output.append(function_call_item(
                item_id(call, "function_call", len(output)),
                tool_call.get("id") or _call_id(call, index), function["name"],
                function.get("arguments") or "{}"))
        reason = _FINISH_INCOMPLETE.get(choice.get("finish_reason"))
        return response_object(
            call, output, status="completed" if reason is None else "incomplete",
            usage=chat_usage(body.get("usage")), incomplete_reason=reason)

    def decoder(self, call: Call) -> ChatStreamDecoder:
        return ChatStreamDecoder(call)

    def error(self, status: int, body: Any) -> NativeError:
        return native_error(status, body)


# -- request ------------------------------------------------------------------------


def _refuse_unknown(call: Call) -> None:
    for name, value in call.params.items():
        if name not in HONOURED:
            call.refuse(name, "(a Chat Completions server) has no equivalent of it")
        elif name in _DEFAULTS_ONLY and value not in _DEFAULTS_ONLY[name]:
            call.refuse(name, f"(a Chat Completions server) cannot honour {name}={value!r}")


def _sampling(call: Call, body: Json) -> None:
    params = call.params
    for ours, theirs in (("temperature", "temperature"), ("top_p", "top_p"),
                         ("max_output_tokens", "max_tokens")):
        value = params.get(ours)
        if value is not None:
            body[theirs] = value


def _messages(call: Call) -> list[Json]:
    messages: list[Json] = []
    instructions = call.params.get("instructions")
    if isinstance(instructions, str) and instructions:
        messages.append({"role": "system", "content": instructions})
    elif instructions is not None and not isinstance(instructions, str):
        call.refuse("instructions", "takes instructions as a string only")
    given = call.params.get("input")
    if isinstance(given, str):  # the common one-turn call, without the canonical detour
        messages.append({"role": "user", "content": given})
        return messages
    for index, item in enumerate(input_items(call.params)):
        _add_item(call, messages, item, f"input[{index}]")
    return messages


def _add_item(call: Call, messages: list[Json], item: Json, where: str) -> None:
    kind = item["type"]
    if kind == "message":
        messages.append(_chat_message(call, item, where))
    elif kind == "function_call":
        tool_call = {"id": _string(item, "call_id", where), "type": "function",
                     "function": {"name": _string(item, "name", where),
                                  "arguments": _string(item, "arguments", where)}}
        last = messages[-1] if messages else None
        if last is not None and last["role"] == "assistant" and "tool_calls" in last:
            last["tool_calls"].append(tool_call)
        elif last is not None and last["role"] == "assistant" and not last.get("tool_calls"):
            last["tool_calls"] = [tool_call]
        else:
            messages.append({"role": "assistant", "content": None, "tool_calls": [tool_call]})
    elif kind == "function_call_output":
        messages.append({"role": "tool", "tool_call_id": _string(item, "call_id", where),
                         "content": _output_text(item.get("output"), where)})
    elif kind != "reasoning":  # reasoning cannot be handed back (see the module docstring)
        call.refuse(f"{where}.type", f"(a Chat Completions server) has no input item {kind!r}")


def _chat_message(call: Call, item: Json, where: str) -> Json:
    role = "system" if item["role"] in _SYSTEM_ROLES else item["role"]
    parts = [_part(call, part, f"{where}.content[{j}]") for j, part in enumerate(item["content"])]
    kept = [p for p in parts if p is not None]
    if role != "user" and any(p["type"] != "text" for p in kept):
        call.refuse(f"{where}.content", f"(a Chat Completions server) takes images and files "
                    f"in user messages only, not in {item['role']} messages")
        kept = [p for p in kept if p["type"] == "text"]
    if role != "user" or all(p["type"] == "text" for p in kept):
        # Plain strings are what every server accepts; parts only where they are needed.
        return {"role": role, "content": "".join(p.get("text", "") for p in kept)}
    return {"role": role, "content": kept}


def _part(call: Call, part: Json, where: str) -> Json | None:
    kind = part["type"]
    text = part_text(part)
    if text is not None:
        return {"type": "text", "text": text}
    if kind == "input_image":
        url = part.get("image_url")
        if not isinstance(url, str):
            call.refuse(f"{where}.file_id", "(a Chat Completions server) cannot read "
                        "uploaded files; send the image as image_url")
            return None
        image: Json = {"url": url}
        if part.get("detail") in ("low", "high"):
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    if kind == "input_file" and isinstance(part.get("file_data"), str):
        file: Json = {"file_data": part["file_data"]}
        if isinstance(part.get("filename"), str):
            file["filename"] = part["filename"]
        return {"type": "file", "file": file}
    call.refuse(where, f"(a Chat Completions server) cannot take a {kind!r} part "
                "(files only as inline file_data)")
    return None


def _output_text(output: Any, where: str) -> str:
    if isinstance(output, str):
        return output
    if isinstance(output, list):
        return "".join(part_text(p) or "" for p in output if isinstance(p, Mapping))
    raise InvalidRequestError(f"{where}.output: expected a string or a list of parts")


def _string(item: Mapping[str, Any], key: str, where: str) -> str:
    value = item.get(key)
    if not isinstance(value, str):
        raise InvalidRequestError(f"{where}.{key}: expected a string")
    return value


def _tools(call: Call, body: Json) -> None:
    tools: list[Json] = []
    for index, tool in function_tools(call.params):
        if tool["type"] != "function":
            call.refuse(f"tools[{index}]", f"(a Chat Completions server) has no built-in "
                        f"tool {tool['type']!r}")
            continue
        function: Json = {"name": tool["name"]}
        for key in ("description", "parameters", "strict"):
            if tool.get(key) is not None:
                function[key] = tool[key]
        tools.append({"type": "function", "function": function})
    if tools:
        body["tools"] = tools
        if call.params.get("parallel_tool_calls") is not None:
            body["parallel_tool_calls"] = call.params["parallel_tool_calls"]
    choice = call.params.get("tool_choice")
    if choice in ("auto", "none", "required"):
        if tools:  # servers refuse a tool_choice without tools
            body["tool_choice"] = choice
    elif isinstance(choice, Mapping) and choice.get("type") == "function":
        body["tool_choice"] = {"type": "function", "function": {"name": choice.get("name")}}
    elif choice is not None:
        call.refuse("tool_choice", "(a Chat Completions server) can only be told auto, none, "
                    "required or one function")


def _text_format(call: Call, body: Json) -> None:
    text = call.params.get("text")
    if text is None:
        return
    if not isinstance(text, Mapping):
        raise InvalidRequestError("text: expected an object")
    for key in text:
        if key != "format":
            call.refuse(f"text.{key}", "(a Chat Completions server) has no equivalent of it")
    fmt = text.get("format") or {"type": "text"}
    kind = fmt.get("type")
    if kind == "json_schema":
        schema: Json = {"name": fmt.get("name", "response"), "schema": fmt.get("schema", {})}
        for key in ("strict", "description"):
            if fmt.get(key) is not None:
                schema[key] = fmt[key]
        body["response_format"] = {"type": "json_schema", "json_schema": schema}
    elif kind == "json_object":
        body["response_format"] = {"type": "json_object"}
    elif kind != "text":
        call.refuse("text.format", f"(a Chat Completions server) has no format {kind!r}")


def _reasoning(call: Call, body: Json) -> None:
    reasoning = call.params.get("reasoning")
    if reasoning is None:
        return
    if not isinstance(reasoning, Mapping):
        raise InvalidRequestError("reasoning: expected an object")
    for key, value in reasoning.items():
        if key == "effort" and value is not None:
            body["reasoning_effort"] = value
        elif key not in ("effort", "summary", "generate_summary"):
            call.refuse(f"reasoning.{key}", "(a Chat Completions server) has no equivalent")
    # ``summary``: Chat Completions servers send their reasoning text unasked
    # (``reasoning_content``); it becomes the summary, so the request is honoured.


#: The encoding steps after the messages, each with the parameters it reads.
_STEPS: tuple[EncodeStep, ...] = (
    (frozenset({"temperature", "top_p", "max_output_tokens"}), _sampling),
    (frozenset({"tools", "tool_choice"}), _tools),
    (frozenset({"text"}), _text_format),
    (frozenset({"reasoning"}), _reasoning),
)


# -- answers ------------------------------------------------------------------------


def _reasoning_text(message: Mapping[str, Any]) -> str | None:
    text = message.get("reasoning_content")
    if text is None:
        text = message.get("reasoning")
    return text if isinstance(text, str) else None


def _message(item: str, content: str | None, refusal: str | None) -> Json:
    parts: list[Json] = []
    if content:
        parts.append({"type": "output_text", "text": content, "annotations": [], "logprobs": []})
    if refusal:
        parts.append({"type": "refusal", "refusal": refusal})
    return {"type": "message", "id": item, "status": "completed", "role": "assistant",
            "content": parts}


def _call_id(call: Call, index: int) -> str:
    """A call id for a tool call the server sent without one (some local servers do)."""
    return f"call_{call.response_id.removeprefix('resp_')}_{index}"


def chat_usage(data: Any) -> Json | None:
    """A Chat Completions ``usage`` object as Responses usage (``None`` when absent)."""
    if not isinstance(data, dict):  # a JSON object is a dict; Mapping's check costs a call
        return None
    prompt = data.get("prompt_tokens") or 0
    completion = data.get("completion_tokens") or 0
    prompt_details = data.get("prompt_tokens_details") or {}
    cached = prompt_details.get("cached_tokens") or data.get("prompt_cache_hit_tokens") or 0
    completion_details = data.get("completion_tokens_details") or {}
    return usage(prompt, completion, cached_tokens=cached,
                 reasoning_tokens=completion_details.get("reasoning_tokens") or 0)


def native_error(status: int, body: Any) -> NativeError:
    """A Chat Completions server's error answer normalised.

    Servers disagree on the shape: OpenAI's ``{"error": {...}}``, vLLM's flat
    ``{"object": "error", "message", "type", "code": 400}``, Ollama's
    ``{"error": "text"}``, or plain text. Context-window overflows are told by
    their message where the server gives no code.
    """
    fields: Mapping[str, Any] = {}
    if isinstance(body, Mapping):
        inner = body.get("error")
        fields = inner if isinstance(inner, Mapping) else body
        message = fields.get("message", inner if isinstance(inner, str) else None)
    else:
        message = body if isinstance(body, str) else None
    text = message if isinstance(message, str) and message else f"upstream answered HTTP {status}"
    code = fields.get("code")
    code = code if isinstance(code, str) else None
    kind = fields.get("type") if isinstance(fields.get("type"), str) else None
    lowered = text.lower()
    if code is None and status in (400, 413, 422) and any(h in lowered for h in _CONTEXT_HINTS):
        code = "context_length_exceeded"
    elif code is None and "content management policy" in lowered:
        code = "content_filter"
    param = fields.get("param") if isinstance(fields.get("param"), str) else None
    return NativeError(status, text, code=code, type=kind, param=param)


# -- streams ------------------------------------------------------------------------


class ChatStreamDecoder:
    """``chat.completion.chunk`` events -> Responses stream events, for one stream.

    Text, reasoning and tool-call deltas open output items in the order they
    arrive (tool calls keyed by their ``index``). The stream ends after the
    chunk carrying ``finish_reason`` and the usage chunk that follows it (asked
    for with ``stream_options.include_usage``), or when the upstream closes the
    stream after a ``finish_reason``; a stream cut before any ``finish_reason``
    ends without a terminal event, which the shared path reports as a broken
    connection.
    """

    def __init__(self, call: Call) -> None:
        self._call = call
        self._writer = EventWriter(call)
        self._started = False
        self._finish: str | None = None
        self._usage: Json | None = None
        self._last: Hashable = None
        self._opened = 0

    def feed(self, event: Mapping[str, Any]) -> list[Json]:
        out = [] if self._started else self._start()
        if event.get("error") is not None:
            error = native_error(500, event)
            return out + self._writer.error(error.code, error.message, error.param)
        usage = event.get("usage")
        if usage is not None:
            self._usage = chat_usage(usage)
        choices = event.get("choices")
        if choices:
            # One choice: the codec never asks for n > 1.
            out += self._choice(choices[0])
        elif self._finish is not None and self._usage is not None:
            out += self._end()
        return out

    def end(self) -> list[Json]:
        if self._writer.done or self._finish is None:
            return []
        return self._end()

    def _start(self) -> list[Json]:
        self._started = True
        return self._writer.start()

    def _choice(self, choice: Mapping[str, Any]) -> list[Json]:
        delta = choice.get("delta")
        out: list[Json] = []
        if delta:
            if "reasoning_content" in delta or "reasoning" in delta:
                thought = _reasoning_text(delta)
                if thought:
                    out += self._writer.reasoning(thought, self._key("reasoning"))
            content = delta.get("content")
            if content:
                out += self._writer.text(content, self._key("text"))
            refusal = delta.get("refusal")
            if refusal:
                out += self._writer.refusal(refusal, self._key("refusal"))
            tool_calls = delta.get("tool_calls")
            if tool_calls:
                for tool_call in tool_calls:
                    out += self._tool_call(tool_call)
        finish = choice.get("finish_reason")
        if finish:
            self._finish = finish
        return out

    def _key(self, kind: str) -> Hashable:
        """The item key for a ``kind`` delta: the open one, or a new one after another kind."""
        last = self._last
        if isinstance(last, tuple) and last[0] == kind:
            return last
        self._opened += 1
        self._last = (kind, self._opened)
        return self._last

    def _tool_call(self, tool_call: Mapping[str, Any]) -> list[Json]:
        key = ("tool", tool_call.get("index", 0))
        function = tool_call.get("function") or {}
        out: list[Json] = []
        if key != self._last:
            self._last = key
            call_id = tool_call.get("id") or _call_id(self._call, key[1])
            out += self._writer.function_call(key, call_id=call_id,
                                              name=function.get("name") or "")
        arguments = function.get("arguments")
        if arguments:
            out += self._writer.arguments(key, arguments)
        return out

    def _end(self) -> list[Json]:
        return self._writer.finish(usage=self._usage,
                                   incomplete_reason=_FINISH_INCOMPLETE.get(self._finish or ""))
