"""The request checks of the fake Anthropic Messages API (:mod:`router.testing.anthropic`).

The real API refuses unknown fields, malformed blocks and broken tool-call
pairings with ``400 invalid_request_error`` and a message naming the field
(``messages.1.content.0.tool_use_id: ...``). A fake that accepted anything
would let a codec bug through, so :func:`check_request` refuses what the
real API documents as invalid, with its own kind of message. The fields
accepted are the Messages API's (as the ``anthropic`` package types them).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["Invalid", "check_request"]

_TOP = frozenset({
    "model", "messages", "max_tokens", "system", "metadata", "stop_sequences", "stream",
    "temperature", "top_k", "top_p", "tools", "tool_choice", "thinking", "output_config",
    "service_tier", "cache_control", "container", "inference_geo", "speed", "diagnostics",
})

#: Allowed keys of each content block type, and the roles that may send it.
_BLOCKS: Mapping[str, tuple[frozenset[str], frozenset[str]]] = {
    "text": (frozenset({"text", "cache_control", "citations"}), frozenset({"user", "assistant"})),
    "image": (frozenset({"source", "cache_control"}), frozenset({"user"})),
    "document": (frozenset({"source", "title", "context", "citations", "cache_control"}),
                 frozenset({"user"})),
    "tool_use": (frozenset({"id", "name", "input", "cache_control"}), frozenset({"assistant"})),
    "tool_result": (frozenset({"tool_use_id", "content", "is_error", "cache_control"}),
                    frozenset({"user"})),
    "thinking": (frozenset({"thinking", "signature"}), frozenset({"assistant"})),
    "redacted_thinking": (frozenset({"data"}), frozenset({"assistant"})),
    "server_tool_use": (frozenset({"id", "name", "input", "cache_control"}),
                        frozenset({"assistant"})),
    "web_search_tool_result": (frozenset({"tool_use_id", "content", "cache_control"}),
                               frozenset({"assistant"})),
}

_SOURCES: Mapping[str, frozenset[str]] = {
    "base64": frozenset({"media_type", "data"}),
    "url": frozenset({"url"}),
    "text": frozenset({"media_type", "data"}),
}
_IMAGE_MEDIA = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")
_WEB_SEARCH_KEYS = frozenset({"type", "name", "max_uses", "allowed_domains", "blocked_domains",
                              "user_location", "cache_control"})
_CUSTOM_TOOL_KEYS = frozenset({"type", "name", "description", "input_schema", "cache_control",
                               "strict"})
_CHOICE_KEYS: Mapping[str, frozenset[str]] = {
    "auto": frozenset({"type", "disable_parallel_tool_use"}),
    "any": frozenset({"type", "disable_parallel_tool_use"}),
    "tool": frozenset({"type", "name", "disable_parallel_tool_use"}),
    "none": frozenset({"type"}),
}


class Invalid(Exception):
    """The request is invalid; ``str(self)`` is the message the API answers with."""


def _extra(obj: Mapping[str, Any], allowed: frozenset[str], where: str) -> None:
    for key in obj:
        if key not in allowed:
            raise Invalid(f"{where}{key}: Extra inputs are not permitted")


def _object(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise Invalid(f"{where}: Input should be an object")
    return value


def _number(body: Mapping[str, Any], key: str, low: float, high: float) -> None:
    value = body.get(key)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise Invalid(f"{key}: Input should be a number between {low} and {high}")


def check_request(body: Any) -> None:
    """Raise :class:`Invalid` for a body the Messages API would refuse."""
    body = _object(body, "body")
    _extra(body, _TOP, "")
    for key in ("model", "messages", "max_tokens"):
        if key not in body:
            raise Invalid(f"{key}: Field required")
    if not isinstance(body["model"], str) or not body["model"]:
        raise Invalid("model: Input should be a non-empty string")
    max_tokens = body["max_tokens"]
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise Invalid("max_tokens: Input should be an integer greater than 0")
    _number(body, "temperature", 0, 1)
    _number(body, "top_p", 0, 1)
    _system(body.get("system"))
    _messages(body["messages"])
    _metadata(body.get("metadata"))
    names = _tools(body.get("tools"))
    _tool_choice(body.get("tool_choice"), names)
    _thinking(body.get("thinking"), max_tokens)
    _thinking_limits(body)
    _output_config(body.get("output_config"))
    if body.get("service_tier") not in (None, "auto", "standard_only"):
        raise Invalid("service_tier: Input should be 'auto' or 'standard_only'")


def _system(system: Any) -> None:
    if system is None or isinstance(system, str):
        return
    if not isinstance(system, list):
        raise Invalid("system: Input should be a string or a list of text blocks")
    for i, block in enumerate(system):
        block = _object(block, f"system.{i}")
        if block.get("type") != "text" or not isinstance(block.get("text"), str):
            raise Invalid(f"system.{i}: Input should be a text block")
        _extra(block, frozenset({"type", "text", "cache_control", "citations"}), f"system.{i}.")


def _messages(messages: Any) -> None:
    if not isinstance(messages, list) or not messages:
        raise Invalid("messages: Input should be a non-empty list")
    pending: set[str] = set()
    for i, message in enumerate(messages):
        message = _object(message, f"messages.{i}")
        _extra(message, frozenset({"role", "content"}), f"messages.{i}.")
        role = message.get("role")
        if role not in ("user", "assistant"):
            raise Invalid(f"messages.{i}.role: Input should be 'user' or 'assistant'")
        blocks = _content(message.get("content"), role, f"messages.{i}.content")
        pending = _pair_tools(blocks, role, pending, i)
    if pending:
        raise Invalid("messages: `tool_use` ids were found without `tool_result` blocks "
                      f"immediately after: {', '.join(sorted(pending))}")


def _content(content: Any, role: str, where: str) -> list[Mapping[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list):
        raise Invalid(f"{where}: Input should be a string or a list of blocks")
    blocks = [_block(block, role, f"{where}.{j}") for j, block in enumerate(content)]
    return blocks


def _block(value: Any, role: str, where: str) -> Mapping[str, Any]:
    block = _object(value, where)
    kind = block.get("type")
    spec = _BLOCKS.get(kind) if isinstance(kind, str) else None
    if spec is None:
        raise Invalid(f"{where}.type: Input tag {kind!r} does not match any of the expected tags")
    allowed, roles = spec
    if role not in roles:
        raise Invalid(f"{where}: a {kind} block cannot be sent in a {role} message")
    _extra(block, allowed | {"type"}, f"{where}.")
    _BLOCK_CHECKS.get(str(kind), _no_check)(block, where)
    return block


def _no_check(block: Mapping[str, Any], where: str) -> None:
    return None


def _text(block: Mapping[str, Any], where: str) -> None:
    if not isinstance(block.get("text"), str):
        raise Invalid(f"{where}.text: Field required")


def _source(block: Mapping[str, Any], where: str, media: frozenset[str] | None) -> None:
    source = _object(block.get("source"), f"{where}.source")
    kind = str(source.get("type"))
    if kind not in _SOURCES:
        raise Invalid(f"{where}.source.type: Input tag {kind!r} does not match")
    _extra(source, _SOURCES[kind] | {"type"}, f"{where}.source.")
    if kind == "base64" and media is not None and source.get("media_type") not in media:
        raise Invalid(f"{where}.source.media_type: Input should be one of {sorted(media)}")
    if kind == "url" and not str(source.get("url", "")).startswith(("http://", "https://")):
        raise Invalid(f"{where}.source.url: Input should be an http(s) URL")


def _image(block: Mapping[str, Any], where: str) -> None:
    _source(block, where, _IMAGE_MEDIA)


def _document(block: Mapping[str, Any], where: str) -> None:
    _source(block, where, frozenset({"application/pdf"}))


def _tool_use(block: Mapping[str, Any], where: str) -> None:
    if not isinstance(block.get("id"), str) or not isinstance(block.get("name"), str):
        raise Invalid(f"{where}: id and name are required")
    if not isinstance(block.get("input"), Mapping):
        raise Invalid(f"{where}.input: Input should be an object")


def _tool_result(block: Mapping[str, Any], where: str) -> None:
    if not isinstance(block.get("tool_use_id"), str):
        raise Invalid(f"{where}.tool_use_id: Field required")
    content = block.get("content")
    if content is not None and not isinstance(content, str):
        _content(content, "user", f"{where}.content")


def _thinking_block(block: Mapping[str, Any], where: str) -> None:
    if not isinstance(block.get("signature"), str) or not block["signature"]:
        raise Invalid(f"{where}.signature: Field required")
    if not isinstance(block.get("thinking"), str):
        raise Invalid(f"{where}.thinking: Field required")


_BLOCK_CHECKS = {
    "text": _text, "image": _image, "document": _document, "tool_use": _tool_use,
    "tool_result": _tool_result, "thinking": _thinking_block,
}


def _pair_tools(
    blocks: list[Mapping[str, Any]], role: str, pending: set[str], index: int
) -> set[str]:
    """Every ``tool_use`` needs a ``tool_result`` in the very next (user) message."""
    if role == "assistant":
        if pending:
            raise Invalid(f"messages.{index}: `tool_use` ids were found without `tool_result` "
                          f"blocks immediately after: {', '.join(sorted(pending))}")
        return {b["id"] for b in blocks if b["type"] == "tool_use"}
    results = [b["tool_use_id"] for b in blocks if b["type"] == "tool_result"]
    for j, tool_use_id in enumerate(results):
        if tool_use_id not in pending:
            raise Invalid(f"messages.{index}.content.{j}: unexpected `tool_use_id` found in "
                          f"`tool_result` blocks: {tool_use_id}. Each `tool_result` block must "
                          "have a corresponding `tool_use` block in the previous message.")
    return pending - set(results)


def _metadata(metadata: Any) -> None:
    if metadata is None:
        return
    _extra(_object(metadata, "metadata"), frozenset({"user_id"}), "metadata.")


def _tools(tools: Any) -> set[str]:
    if tools is None:
        return set()
    if not isinstance(tools, list):
        raise Invalid("tools: Input should be a list")
    names: set[str] = set()
    for i, tool in enumerate(tools):
        tool = _object(tool, f"tools.{i}")
        kind = tool.get("type", "custom")
        if kind == "web_search_20250305":
            _extra(tool, _WEB_SEARCH_KEYS, f"tools.{i}.")
            if tool.get("name") != "web_search":
                raise Invalid(f"tools.{i}.name: Input should be 'web_search'")
        elif kind == "custom":
            _custom_tool(tool, f"tools.{i}")
        else:
            raise Invalid(f"tools.{i}.type: Input tag {kind!r} does not match any expected tag")
        if tool["name"] in names:
            raise Invalid(f"tools: Tool names must be unique ({tool['name']!r})")
        names.add(tool["name"])
    return names


def _custom_tool(tool: Mapping[str, Any], where: str) -> None:
    _extra(tool, _CUSTOM_TOOL_KEYS, f"{where}.")
    if not isinstance(tool.get("name"), str) or not _TOOL_NAME.match(tool["name"]):
        raise Invalid(f"{where}.name: String should match pattern '^[a-zA-Z0-9_-]{{1,128}}$'")
    schema = tool.get("input_schema")
    if not isinstance(schema, Mapping) or schema.get("type") != "object":
        raise Invalid(f"{where}.input_schema.type: Input should be 'object'")


def _tool_choice(choice: Any, names: set[str]) -> None:
    if choice is None:
        return
    choice = _object(choice, "tool_choice")
    kind = choice.get("type")
    if kind not in _CHOICE_KEYS:
        raise Invalid(f"tool_choice.type: Input tag {kind!r} does not match any expected tag")
    _extra(choice, _CHOICE_KEYS[kind], "tool_choice.")
    if kind == "tool" and choice.get("name") not in names:
        raise Invalid(f"tool_choice.name: no tool named {choice.get('name')!r} in tools")
    if kind in ("any", "tool") and not names:
        raise Invalid("tool_choice: tool_choice may only be specified while providing tools")


def _thinking(thinking: Any, max_tokens: int) -> None:
    if thinking is None:
        return
    thinking = _object(thinking, "thinking")
    kind = thinking.get("type")
    if kind == "enabled":
        _extra(thinking, frozenset({"type", "budget_tokens", "display"}), "thinking.")
        budget = thinking.get("budget_tokens")
        if not isinstance(budget, int) or budget < 1024:
            raise Invalid("thinking.enabled.budget_tokens: Input should be greater than or "
                          "equal to 1024")
        if budget >= max_tokens:
            raise Invalid("`max_tokens` must be greater than `thinking.budget_tokens`")
    elif kind in ("disabled", "adaptive"):
        _extra(thinking, frozenset({"type", "display"}), "thinking.")
    else:
        raise Invalid(f"thinking.type: Input tag {kind!r} does not match any expected tag")


def _thinking_limits(body: Mapping[str, Any]) -> None:
    if (body.get("thinking") or {}).get("type") != "enabled":
        return
    if body.get("temperature", 1) != 1:
        raise Invalid("temperature may only be set to 1 when thinking is enabled")
    if body.get("top_p", 1) < 0.95:
        raise Invalid("top_p must be greater than or equal to 0.95 when thinking is enabled")
    if (body.get("tool_choice") or {}).get("type") in ("any", "tool"):
        raise Invalid("Thinking may not be enabled when tool_choice forces tool use.")


def _output_config(config: Any) -> None:
    if config is None:
        return
    config = _object(config, "output_config")
    _extra(config, frozenset({"format", "effort"}), "output_config.")
    fmt = config.get("format")
    if fmt is None:
        return
    fmt = _object(fmt, "output_config.format")
    _extra(fmt, frozenset({"type", "schema"}), "output_config.format.")
    if fmt.get("type") != "json_schema" or not isinstance(fmt.get("schema"), Mapping):
        raise Invalid("output_config.format: Input should be a json_schema format with a schema")
