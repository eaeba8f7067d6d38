"""Checks on a create request's body before it reaches the Router.

The Router forwards every parameter it does not consume, so the server's
job is narrow: the body must be a JSON object, the fields the Router or
the upstream read must have the right JSON types (``"input": 42`` is a 400
naming ``input``, not an upstream 500), and the Router's own keyword
arguments (``fallbacks``, ``extra_headers``, ``mock_response``, ...) are not
accepted from a caller: they would let a key send its request to model
groups it may not use, or add headers to the upstream call. Unknown fields
pass through untouched, as the Responses API grows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from router.proxy.errors import ApiError
from router.request import ROUTER_PARAMS
from router.types import parse_json

__all__ = ["CreateBody", "parse_create", "parse_json_object"]

_STR = (str,)
_BOOL = (bool,)
_OBJ = (dict,)
_LIST = (list,)
_NUM = (int, float)

#: Field -> accepted JSON types (``null`` is accepted for every optional field).
_TYPES: dict[str, tuple[type, ...]] = {
    "input": (str, list),
    "instructions": _STR,
    "previous_response_id": _STR,
    "stream": _BOOL,
    "store": _BOOL,
    "background": _BOOL,
    "parallel_tool_calls": _BOOL,
    "metadata": _OBJ,
    "tools": _LIST,
    "include": _LIST,
    "tool_choice": (str, dict),
    "reasoning": _OBJ,
    "text": _OBJ,
    "prompt": _OBJ,
    "stream_options": _OBJ,
    "max_output_tokens": (int,),
    "max_tool_calls": (int,),
    "top_logprobs": (int,),
    "temperature": _NUM,
    "top_p": _NUM,
    "user": _STR,
    "safety_identifier": _STR,
    "prompt_cache_key": _STR,
    "service_tier": _STR,
    "truncation": _STR,
    "conversation": (str, dict),
}

_JSON_NAMES = {str: "string", bool: "boolean", dict: "object", list: "array",
               int: "integer", float: "number"}

#: Fields this server does not take: the Router's keyword arguments. (A
#: ``conversation`` belongs to the key whose request first named it, see
#: :mod:`router.proxy.app`.)
_REFUSED = ROUTER_PARAMS


@dataclass(frozen=True, slots=True)
class CreateBody:
    """A checked create request: the model, whether to stream, the rest to forward."""

    model: str
    stream: bool
    params: dict[str, Any]


def _invalid(param: str | None, message: str, code: str | None = None) -> ApiError:
    return ApiError(400, message, "invalid_request_error", param, code)


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """``raw`` decoded as a JSON object; an :class:`ApiError` (400) otherwise."""
    try:
        body = parse_json(raw)
    except (ValueError, RecursionError):
        raise _invalid(None, "the request body is not valid JSON", "invalid_json") from None
    if not isinstance(body, dict):
        kind = _type_name(body)
        raise _invalid(None, f"the request body must be a JSON object, got {kind}")
    return body


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    return _JSON_NAMES.get(type(value), type(value).__name__)


def _check_type(name: str, value: Any, types: tuple[type, ...]) -> None:
    if value is None:
        return
    ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
    if not ok:
        wanted = " or ".join(_JSON_NAMES[t] for t in types)
        raise _invalid(name, f"{name}: expected {wanted}, got {_type_name(value)}",
                       "invalid_type")


def parse_create(body: dict[str, Any]) -> CreateBody:
    """Check a create body's known fields; raise :class:`ApiError` naming the bad one."""
    model = body.pop("model", None)
    if not isinstance(model, str) or not model:
        message = "model: required" if model is None else (
            f"model: expected a non-empty string, got {_type_name(model)}")
        raise _invalid("model", message, "missing_required_parameter"
                       if model is None else "invalid_type")
    refused = sorted(_REFUSED & body.keys())
    if refused:
        name = refused[0]
        raise _invalid(name, f"{name}: not accepted by this server", "unsupported_parameter")
    for name, types in _TYPES.items():
        if name in body:
            _check_type(name, body[name], types)
    stream = bool(body.pop("stream", False))
    return CreateBody(model, stream, body)
