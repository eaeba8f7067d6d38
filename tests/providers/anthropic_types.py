"""Check a Messages API request body against the ``anthropic`` package's request types.

pydantic validates the SDK's ``TypedDict`` params loosely (extra keys are
ignored, ``Iterable`` fields are checked lazily), so this walks the types
itself: every key must be a field of its ``TypedDict``, every required field
present, every ``Literal`` matched, and a union must have one member that
fits. It is what "the request is a valid ``MessageCreateParams``" means in
the anthropic codec's tests.
"""

from __future__ import annotations

import collections.abc
import types
import typing
from typing import Annotated, Any, Literal, Union, get_args, get_origin, get_type_hints

import typing_extensions
from anthropic.types.message_create_params import (
    MessageCreateParamsNonStreaming,
    MessageCreateParamsStreaming,
)

__all__ = ["check_params"]

_SEQUENCES = {list, collections.abc.Iterable, collections.abc.Sequence, typing.Iterable,
              typing.Sequence, typing.List}  # noqa: UP006
_SCALARS: dict[type, tuple[type, ...]] = {int: (int,), float: (int, float), str: (str,),
                                          bool: (bool,)}


class Mismatch(AssertionError):
    """The body does not fit the type; the message names where."""


#: Sampling fields the 2.x SDK types no longer list: under ``anthropic-version: 2023-06-01``
#: (what the provider sends) the API still takes them for models that sample, and
#: answers 400 for those that do not; the codec passes them on when asked.
_SAMPLING = {"temperature": (int, float), "top_p": (int, float)}


def check_params(body: dict[str, Any]) -> None:
    """Raise :class:`Mismatch` unless ``body`` is a valid ``MessageCreateParams``."""
    tp = MessageCreateParamsStreaming if body.get("stream") else MessageCreateParamsNonStreaming
    rest = dict(body)
    for key, kinds in _SAMPLING.items():
        if key in rest and not isinstance(rest.pop(key), kinds):
            raise Mismatch(f"body.{key}: expected a number")
    _check(tp, rest, "body")


def _check(tp: Any, value: Any, where: str) -> None:
    if tp is Any or tp is object:
        return
    if typing_extensions.is_typeddict(tp):
        _typed_dict(tp, value, where)
        return
    tp = _unwrap(tp)
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        _union(get_args(tp), value, where)
    elif origin is Literal:
        if value not in get_args(tp):
            raise Mismatch(f"{where}: {value!r} is not one of {get_args(tp)}")
    elif origin in _SEQUENCES or tp in _SEQUENCES:
        _sequence(tp, value, where)
    elif origin in (dict, collections.abc.Mapping) or tp is dict:
        if not isinstance(value, dict):
            raise Mismatch(f"{where}: expected an object")
    elif tp is type(None):
        if value is not None:
            raise Mismatch(f"{where}: expected null")
    elif tp in _SCALARS:
        if isinstance(value, bool) != (tp is bool) or not isinstance(value, _SCALARS[tp]):
            raise Mismatch(f"{where}: expected {tp.__name__}, got {value!r}")
    elif isinstance(tp, type) and not isinstance(value, tp):
        # e.g. the SDK's response models, which it also accepts as input blocks
        raise Mismatch(f"{where}: expected a {tp.__name__}")


def _typed_dict(tp: Any, value: Any, where: str) -> None:
    if not isinstance(value, dict):
        raise Mismatch(f"{where}: expected an object for {tp.__name__}")
    hints = get_type_hints(tp, include_extras=True)
    for key in value:
        if key not in hints:
            raise Mismatch(f"{where}.{key}: not a field of {tp.__name__}")
    for key, hint in hints.items():
        if get_origin(hint) in _REQUIRED and key not in value:
            raise Mismatch(f"{where}.{key}: required by {tp.__name__}")
    for key, item in value.items():
        _check(_unwrap(hints[key]), item, f"{where}.{key}")


_REQUIRED = (typing_extensions.Required, typing.Required)
_WRAPPERS = (*_REQUIRED, typing_extensions.NotRequired, typing.NotRequired, Annotated)


def _unwrap(hint: Any) -> Any:
    """The type inside ``Required[...]`` / ``NotRequired[...]`` / ``Annotated[...]``."""
    while get_origin(hint) in _WRAPPERS:
        hint = get_args(hint)[0]
    return hint


def _union(members: tuple[Any, ...], value: Any, where: str) -> None:
    errors: list[str] = []
    for member in members:
        try:
            _check(member, value, where)
            return
        except Mismatch as exc:
            errors.append(str(exc))
    # the member that got furthest into the value says best what is wrong with it
    raise Mismatch(max(errors, key=lambda e: len(e.partition(":")[0])))


def _sequence(tp: Any, value: Any, where: str) -> None:
    if not isinstance(value, list):
        raise Mismatch(f"{where}: expected a list")
    (item_type,) = get_args(tp) or (Any,)
    for i, item in enumerate(value):
        _check(item_type, item, f"{where}[{i}]")
