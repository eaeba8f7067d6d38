"""The Responses ``input`` and ``tools`` in one canonical shape, for every codec.

The Responses API accepts a conversation in several spellings: a bare string;
items with or without ``"type": "message"``; message ``content`` as a string
or a list of parts; ``input_text`` in user turns and ``output_text`` in
replayed assistant turns. Codecs should not each handle every spelling, so
:func:`input_items` reduces ``input`` to a list of items where

* every message is ``{"type": "message", "role", "content": [parts]}`` with
  ``content`` a list of typed parts (a string becomes one ``input_text`` part,
  or ``output_text`` for an assistant turn);
* ``function_call``, ``function_call_output`` and ``reasoning`` items (and any
  other typed item) pass through as given.

Malformed input is an :class:`router.errors.InvalidRequestError` naming the
item (``input[2].content``), raised before any upstream call.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from router.errors import InvalidRequestError
from router.types import Record

__all__ = ["function_tools", "input_items", "part_text"]

Json = dict[str, Any]

_ROLES = frozenset({"user", "assistant", "system", "developer"})


def input_items(params: Mapping[str, Any]) -> list[Json]:
    """``params["input"]`` as canonical items (see the module docstring)."""
    value = params.get("input")
    if value is None:
        return []
    if isinstance(value, str):
        return [_message("user", [{"type": "input_text", "text": value}])]
    if not isinstance(value, list):
        raise InvalidRequestError(
            f"input: expected a string or a list of items, got {type(value).__name__}")
    return [_item(item, f"input[{i}]") for i, item in enumerate(value)]


def part_text(part: Mapping[str, Any]) -> str | None:
    """The text of an ``input_text`` / ``output_text`` / ``text`` part, else ``None``."""
    if part.get("type") in ("input_text", "output_text", "text", "refusal"):
        text = part.get("text", part.get("refusal"))
        return text if isinstance(text, str) else None
    return None


def function_tools(params: Mapping[str, Any]) -> list[tuple[int, Json]]:
    """The ``tools`` entries as ``(index, tool)`` pairs, each checked to be an object.

    Function tools keep their flat Responses shape (``{"type": "function",
    "name", "description", "parameters", "strict"}``); codecs decide what to do
    with the other types.
    """
    tools = params.get("tools")
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise InvalidRequestError(f"tools: expected a list, got {type(tools).__name__}")
    out: list[tuple[int, Json]] = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, Mapping) or not isinstance(tool.get("type"), str):
            raise InvalidRequestError(f"tools[{i}]: expected an object with a 'type'")
        if tool["type"] == "function" and not isinstance(tool.get("name"), str):
            raise InvalidRequestError(f"tools[{i}].name: a function tool needs a name")
        out.append((i, dict(tool)))
    return out


def _message(role: str, content: list[Json]) -> Json:
    return {"type": "message", "role": role, "content": content}


def _item(item: Any, where: str) -> Json:
    if isinstance(item, Record):  # an output item of a response the router returned
        item = item.raw
    if not isinstance(item, Mapping):
        raise InvalidRequestError(f"{where}: expected an object, got {type(item).__name__}")
    kind = item.get("type")
    if kind is None or kind == "message":
        return _canonical_message(item, where)
    if not isinstance(kind, str):
        raise InvalidRequestError(f"{where}.type: expected a string")
    return dict(item)


def _canonical_message(item: Mapping[str, Any], where: str) -> Json:
    role = item.get("role")
    if role not in _ROLES:
        raise InvalidRequestError(
            f"{where}.role: expected one of {', '.join(sorted(_ROLES))}, got {role!r}")
    content = item.get("content")
    if isinstance(content, str):
        kind = "output_text" if role == "assistant" else "input_text"
        return _message(role, [{"type": kind, "text": content}])
    if not isinstance(content, list):
        raise InvalidRequestError(f"{where}.content: expected a string or a list of parts")
    parts: list[Json] = []
    for j, part in enumerate(content):
        if not isinstance(part, Mapping) or not isinstance(part.get("type"), str):
            raise InvalidRequestError(f"{where}.content[{j}]: expected a part with a 'type'")
        parts.append(dict(part))
    return _message(role, parts)
