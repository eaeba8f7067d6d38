"""What the fake upstream answers for tools and options beyond plain text.

The router forwards every parameter untouched, so its tests need an upstream
that *uses* them the way OpenAI does, or a router that dropped or mangled one
would pass. This module holds those behaviours as pure functions over the
request body, so :mod:`router.testing.upstream` only calls them:

* ``image_generation`` tool: an ``image_generation_call`` item; streamed with
  ``partial_images`` (0-3) ``response.image_generation_call.partial_image``
  events before the final image.
* ``mcp`` tool: ``mcp_list_tools`` and an ``mcp_approval_request`` (unless
  ``require_approval`` is ``"never"``); a follow-up carrying an
  ``mcp_approval_response`` must name a request of the previous response (only
  the upstream that made it knows it) and gets an ``mcp_call``.
* ``computer_use_preview`` tool: ``truncation="auto"`` is required, as on
  OpenAI; a ``reasoning`` item (with a summary when ``reasoning.summary`` is
  set) and a ``computer_call``.
* ``custom`` tool: a ``custom_tool_call``; a ``grammar`` format must name a
  ``lark`` or ``regex`` syntax and a definition (a regex must compile).
* ``prompt`` with no ``input``: accepted, as OpenAI does.
* ``include`` on retrieve (``include[]=...``, the SDK's encoding): known
  values only; ``reasoning.encrypted_content`` and
  ``message.output_text.logprobs`` add those fields.

Every item and event has the shape of the official SDK's types (tests
validate them).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

__all__ = ["INCLUDABLE", "BadRequest", "item_events", "tool_output", "with_includes"]

Json = Any
NewId = Callable[[str], str]

#: The ``include`` values OpenAI knows.
INCLUDABLE = frozenset({
    "file_search_call.results", "web_search_call.results", "web_search_call.action.sources",
    "message.input_image.image_url", "computer_call_output.output.image_url",
    "code_interpreter_call.outputs", "reasoning.encrypted_content",
    "message.output_text.logprobs",
})

# A 1x1 PNG: the "image" every generation returns (partials too).
_PNG = base64.b64encode(bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)).decode()


class BadRequest(ValueError):
    """The request is invalid as OpenAI would say: ``param`` names the field."""

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param


def _tools(body: Mapping[str, Json], kind: str) -> list[Mapping[str, Json]]:
    tools = body.get("tools") or []
    return [t for t in tools if isinstance(t, Mapping) and t.get("type") == kind]


def _input_items(body: Mapping[str, Json], kind: str) -> list[Mapping[str, Json]]:
    inp = body.get("input")
    if not isinstance(inp, list):
        return []
    return [i for i in inp if isinstance(i, Mapping) and i.get("type") == kind]


def tool_output(
    body: Mapping[str, Json], previous: Mapping[str, Json] | None, new_id: NewId, text: str,
) -> list[Json] | None:
    """The output items a tool or option in ``body`` calls for, or ``None`` for plain text.

    ``previous`` is the stored response ``previous_response_id`` names.
    Raises :class:`BadRequest` for a body OpenAI would refuse.
    """
    approvals = _input_items(body, "mcp_approval_response")
    if approvals:
        return _mcp_calls(approvals, previous, new_id)
    for kind, answer in _ANSWERS:
        tools = _tools(body, kind)
        if tools:
            return answer(body, tools[0], new_id, text)
    return None


def _image(body: Mapping[str, Json], tool: Mapping[str, Json], new_id: NewId,
           text: str) -> list[Json]:
    partial = tool.get("partial_images", 0)
    if not isinstance(partial, int) or isinstance(partial, bool) or not 0 <= partial <= 3:
        raise BadRequest("partial_images must be an integer between 0 and 3.",
                         "tools[0].partial_images")
    return [{"type": "image_generation_call", "id": new_id("ig"), "status": "completed",
             "result": _PNG, "revised_prompt": text, "output_format": "png"}]


def _mcp(body: Mapping[str, Json], tool: Mapping[str, Json], new_id: NewId,
         text: str) -> list[Json]:
    label = tool.get("server_label")
    if not isinstance(label, str) or not (tool.get("server_url") or tool.get("connector_id")):
        raise BadRequest("An mcp tool needs a server_label and a server_url or connector_id.",
                         "tools[0]")
    listed = {"type": "mcp_list_tools", "id": new_id("mcpl"), "server_label": label,
              "tools": [{"name": "echo", "input_schema": {"type": "object"}}]}
    arguments = json.dumps({"text": text})
    if tool.get("require_approval", "always") == "never":
        return [listed, _call(label, arguments, None, new_id)]
    request = {"type": "mcp_approval_request", "id": new_id("mcpr"), "server_label": label,
               "name": "echo", "arguments": arguments}
    return [listed, request]


def _call(label: str, arguments: str, approval: str | None, new_id: NewId) -> Json:
    return {"type": "mcp_call", "id": new_id("mcp"), "server_label": label, "name": "echo",
            "arguments": arguments, "output": arguments, "error": None,
            "approval_request_id": approval, "status": "completed"}


def _mcp_calls(approvals: Sequence[Mapping[str, Json]], previous: Mapping[str, Json] | None,
               new_id: NewId) -> list[Json]:
    asked = {item.get("id"): item for item in (previous or {}).get("output") or []
             if isinstance(item, Mapping) and item.get("type") == "mcp_approval_request"}
    calls = []
    for answer in approvals:
        request = asked.get(answer.get("approval_request_id"))
        if request is None:
            raise BadRequest(
                f"No approval request with id '{answer.get('approval_request_id')}' in the "
                "previous response.", "input")
        if answer.get("approve") is True:
            calls.append(_call(request["server_label"], request["arguments"], request["id"],
                               new_id))
    return calls


def _computer(body: Mapping[str, Json], tool: Mapping[str, Json], new_id: NewId,
              text: str) -> list[Json]:
    if body.get("truncation") != "auto":
        raise BadRequest("The computer_use_preview tool requires truncation='auto'.",
                         "truncation")
    reasoning = body.get("reasoning") or {}
    summary = reasoning.get("summary") if isinstance(reasoning, Mapping) else None
    thought = {"type": "reasoning", "id": new_id("rs"), "summary": (
        [{"type": "summary_text", "text": f"Looking at the screen for: {text[:40]}"}]
        if summary else [])}
    call = {"type": "computer_call", "id": new_id("cu"), "call_id": new_id("call"),
            "action": {"type": "screenshot"}, "pending_safety_checks": [],
            "status": "completed"}
    return [thought, call]


def _custom(body: Mapping[str, Json], tool: Mapping[str, Json], new_id: NewId,
            text: str) -> list[Json]:
    fmt = tool.get("format") or {"type": "text"}
    if isinstance(fmt, Mapping) and fmt.get("type") == "grammar":
        _check_grammar(fmt)
    return [{"type": "custom_tool_call", "id": new_id("ctc"), "call_id": new_id("call"),
             "name": tool.get("name"), "input": text}]


def _check_grammar(fmt: Mapping[str, Json]) -> None:
    syntax, definition = fmt.get("syntax"), fmt.get("definition")
    if syntax not in ("lark", "regex") or not isinstance(definition, str) or not definition:
        raise BadRequest("A grammar format needs syntax 'lark' or 'regex' and a definition.",
                         "tools[0].format")
    if syntax == "regex":
        try:
            re.compile(definition)
        except re.error:
            raise BadRequest("Invalid regex grammar.", "tools[0].format.definition") from None


_ANSWERS: tuple[tuple[str, Callable[..., list[Json]]], ...] = (
    ("image_generation", _image),
    ("mcp", _mcp),
    ("computer_use_preview", _computer),
    ("custom", _custom),
)


# --------------------------------------------------------------------------- streaming


def item_events(item: Mapping[str, Json], index: int,
                body: Mapping[str, Json]) -> Iterator[Json]:
    """The stream events of one non-message output item, ``added`` to ``done``."""
    at = {"item_id": item["id"], "output_index": index}
    yield {"type": "response.output_item.added", "output_index": index,
           "item": _in_progress(item)}
    if item["type"] == "image_generation_call":
        yield from _image_events(at, body)
    elif item["type"] == "custom_tool_call":
        yield {"type": "response.custom_tool_call_input.delta", **at, "delta": item["input"]}
        yield {"type": "response.custom_tool_call_input.done", **at, "input": item["input"]}
    yield {"type": "response.output_item.done", "output_index": index, "item": item}


def _in_progress(item: Mapping[str, Json]) -> Json:
    if item["type"] == "image_generation_call":
        return {**item, "status": "in_progress", "result": None}
    if item["type"] == "custom_tool_call":
        return {**item, "input": ""}
    return item


def _image_events(at: Mapping[str, Json], body: Mapping[str, Json]) -> Iterator[Json]:
    partial = _tools(body, "image_generation")[0].get("partial_images", 0)
    yield {"type": "response.image_generation_call.in_progress", **at}
    yield {"type": "response.image_generation_call.generating", **at}
    for i in range(partial):
        yield {"type": "response.image_generation_call.partial_image", **at,
               "partial_image_index": i, "partial_image_b64": _PNG}
    yield {"type": "response.image_generation_call.completed", **at}


# --------------------------------------------------------------------------- retrieve


def with_includes(response: Mapping[str, Json], include: Sequence[str]) -> Json:
    """``response`` with the extra fields ``include`` asks for (a copy).

    Raises :class:`BadRequest` for a value OpenAI does not know.
    """
    for value in include:
        if value not in INCLUDABLE:
            raise BadRequest(f"Invalid value for include: '{value}'.", "include")
    output = [_included(item, include) for item in response.get("output") or []]
    return {**response, "output": output}


def _included(item: Json, include: Sequence[str]) -> Json:
    if not isinstance(item, Mapping):
        return item
    if item.get("type") == "reasoning" and "reasoning.encrypted_content" in include:
        return {**item, "encrypted_content": base64.b64encode(item["id"].encode()).decode()}
    if item.get("type") == "message" and "message.output_text.logprobs" in include:
        parts = [{**p, "logprobs": []} if p.get("type") == "output_text" else p
                 for p in item.get("content") or []]
        return {**item, "content": parts}
    return item
