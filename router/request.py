"""The request as the router sees it: what to forward, and how to route it.

:func:`build_request` splits the caller's keyword arguments once into the
parameters forwarded to the upstream untouched (every Responses API
parameter, known or not) and the few the router consumes itself (timeouts,
retries, fallbacks, extra headers...). The deadline is fixed here, once.

Every router parameter is checked here, once, before anything is sent, and a
bad one is an :class:`InvalidRequestError` naming it. Why so strict: a bad
parameter that reached the upstream would fail there, be blamed on the
deployment and count toward its cooldown, so one caller's mistake would cost
every other caller. Forwarded parameters are the upstream's to judge (a 400
cools nothing down), except ``input``'s type and what would make the body
unsendable.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, TypeGuard

from router.errors import InvalidRequestError
from router.headers import caller_header_problem

__all__ = [
    "ROUTER_PARAMS", "RouteRequest", "build_request", "check_query", "check_response_id",
]

#: Keyword arguments the router consumes; everything else goes upstream.
ROUTER_PARAMS = frozenset({
    "timeout", "num_retries", "fallbacks", "disable_fallbacks", "mock_response",
    "extra_headers", "extra_query", "extra_body", "stream_timeout", "conversation_failover",
    "response_owner",
})

# "." and ".." would be URL dot segments: /responses/.. is not a response.
_RESPONSE_ID = re.compile(r"(?!\.{1,2}\Z)[A-Za-z0-9_\-.:]{1,256}")


@dataclass(slots=True)
class RouteRequest:
    """One call to route. ``deadline`` is a ``time.monotonic()`` instant or ``None``.

    ``params`` holds the body parameters forwarded upstream (without
    ``model`` and ``stream``, which the provider sets per attempt).
    """

    model: str
    params: dict[str, Any]
    stream: bool = False
    deadline: float | None = None
    num_retries: int | None = None
    fallbacks: Sequence[str] | None = None
    disable_fallbacks: bool = False
    mock_response: str | None = None
    stream_timeout: float | None = None
    extra_headers: Mapping[str, str] | None = None
    extra_query: Mapping[str, Any] | None = None
    extra_body: Mapping[str, Any] | None = None
    #: ``timeout`` was given by this call and is shorter than the router's own:
    #: the deadline is the caller's choice, and a timeout it causes is not the
    #: deployment's fault.
    caller_timeout: bool = False
    #: ``conversation_failover`` given by this call (``None``: the router's setting).
    conversation_failover: bool | None = None
    #: The conversation this request continues, as the router keeps it
    #: (:class:`router.conversations.Continuation`), set before routing.
    continuation: Any = None
    #: The request's own input as the keeper measured it (once per request).
    kept_turn: Any = None
    #: Who owns the stored response (:meth:`router.Router.aresponse_owner`), or ``None``.
    response_owner: str | None = None

    @property
    def previous_response_id(self) -> str | None:
        """The ``previous_response_id`` the upstream will read.

        ``extra_body`` is merged into the body last, so its value, when it has
        one, is the one that counts (and the one to route by).
        """
        extra = self.extra_body
        if extra and "previous_response_id" in extra:
            value = extra["previous_response_id"]
        else:
            value = self.params.get("previous_response_id")
        return value if isinstance(value, str) else None

    @property
    def conversation_id(self) -> str | None:
        """The ``conversation`` the request names (``"conv_..."`` or ``{"id": ...}``)."""
        value = self.params.get("conversation")
        if value is None:  # the common case, without isinstance's walk of Mapping's ABC
            return None
        if isinstance(value, Mapping):
            value = value.get("id")
        return value if isinstance(value, str) else None

    def time_left(self, now: float) -> float | None:
        """Seconds until the deadline (may be <= 0), or ``None`` for no deadline."""
        return None if self.deadline is None else self.deadline - now


def build_request(
    model: str,
    params: dict[str, Any],
    *,
    stream: bool,
    default_timeout: float | None,
    now: float | None = None,
    groups: Container[str] | None = None,
) -> RouteRequest:
    """Split ``params`` into forwarded and router parameters (``params`` is consumed).

    ``groups``, when given, holds the model groups (and aliases) a per-call
    ``fallbacks`` may name. Raises :class:`InvalidRequestError` naming the
    first bad parameter.
    """
    if not isinstance(model, str) or not model:
        raise InvalidRequestError("model: a non-empty model group name is required")
    if stream is not True and stream is not False:
        raise InvalidRequestError(f"stream: expected True or False, got {_shown(stream)}")
    _check_input(params.get("input"))
    prev = params.get("previous_response_id")
    if prev is not None:
        check_response_id(prev, "previous_response_id")
    conversation = params.get("conversation")
    if conversation is not None:
        _check_conversation(conversation)
    start = time.monotonic() if now is None else now
    if ROUTER_PARAMS.isdisjoint(params):  # the common case: nothing to take out
        deadline = None if default_timeout is None else start + default_timeout
        return RouteRequest(model=model, params=params, stream=stream, deadline=deadline)
    given = params.pop("timeout", None)
    timeout = default_timeout if given is None else _positive(given, "timeout")
    return RouteRequest(
        model=model,
        params=params,
        stream=stream,
        deadline=None if timeout is None else start + timeout,
        num_retries=_optional_int(params.pop("num_retries", None), "num_retries"),
        fallbacks=_known(_fallback_list(params.pop("fallbacks", None)), groups),
        disable_fallbacks=_flag(params.pop("disable_fallbacks", False), "disable_fallbacks"),
        mock_response=_optional_text(params.pop("mock_response", None), "mock_response"),
        stream_timeout=_optional_positive(params.pop("stream_timeout", None), "stream_timeout"),
        extra_headers=_extra_headers(params.pop("extra_headers", None)),
        extra_query=_extra_query(params.pop("extra_query", None)),
        extra_body=_extra_body(params.pop("extra_body", None)),
        conversation_failover=_optional_flag(
            params.pop("conversation_failover", None), "conversation_failover"),
        response_owner=_owner(params.pop("response_owner", None)),
        caller_timeout=given is not None and (
            default_timeout is None or (timeout is not None and timeout < default_timeout)),
    )


def _shown(value: Any) -> str:
    """A short rendering of a bad value: a plain scalar's repr, else its type.

    Text longer than a word is not shown (a key pasted into the wrong
    parameter must not reach a log).
    """
    if value is None or isinstance(value, bool | int | float):
        return repr(value)[:60]
    if isinstance(value, str):
        return repr(value) if len(value) <= 16 else f"a string of {len(value)} characters"
    name = type(value).__name__
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"


def _is_mapping(value: Any) -> TypeGuard[Mapping[Any, Any]]:
    return type(value) is dict or isinstance(value, Mapping)  # the ABC check is the slow one


def _check_input(value: Any) -> None:
    if value is not None and not isinstance(value, str | list | tuple):
        raise InvalidRequestError(
            f"input: expected a string or a list of input items, got {_shown(value)}")


def _flag(value: Any, name: str) -> bool:
    if value is not True and value is not False:
        raise InvalidRequestError(f"{name}: expected True or False, got {_shown(value)}")
    return value


def _optional_flag(value: Any, name: str) -> bool | None:
    return None if value is None else _flag(value, name)


def _check_conversation(value: Any) -> None:
    """``conversation``: an id, or an object with one (OpenAI's two spellings)."""
    given = value.get("id") if isinstance(value, Mapping) else value
    where = "conversation.id" if isinstance(value, Mapping) else "conversation"
    if not isinstance(given, str) or not _RESPONSE_ID.fullmatch(given):
        raise InvalidRequestError(
            f"{where}: {repr(given)[:80]} is not a valid conversation id "
            "(1-256 characters of letters, digits, '_', '-', '.', ':')")


def _optional_text(value: Any, name: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise InvalidRequestError(f"{name}: expected a string, got {_shown(value)}")
    return value


def _owner(value: Any) -> str | None:
    """``response_owner``: a short printable name (a tenant, an API key's id; never the key
    itself, as it is stored beside each response id)."""
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise InvalidRequestError(
            f"response_owner: expected a non-empty string, got {_shown(value)}")
    if len(value) > 256 or not value.isprintable():
        raise InvalidRequestError(
            "response_owner: at most 256 printable characters (a name, not a key)")
    return value


def _optional_positive(value: Any, name: str) -> float | None:
    return None if value is None else _positive(value, name)


def _extra_headers(value: Any) -> Mapping[str, str] | None:
    """A caller's extra headers: well formed, and none the deployment owns (router.headers)."""
    if value is None:
        return None
    if not _is_mapping(value):
        raise InvalidRequestError(
            f"extra_headers: expected a mapping of header names to strings, got {_shown(value)}")
    for name, header_value in value.items():
        problem = caller_header_problem(name, header_value)
        if problem is not None:
            raise InvalidRequestError(f"extra_headers: {problem}")
    return value


#: Query parameters the deployment sets: Azure's api-version picks the API itself.
_OWN_QUERY = frozenset({"api-version"})


def _extra_query(value: Any) -> Mapping[str, Any] | None:
    return None if value is None else check_query(value, "extra_query")


def check_query(value: Any, where: str) -> Mapping[str, Any]:
    """Query parameters: names to strings, bools or numbers (or lists of them).

    ``where`` names the parameter in the :class:`InvalidRequestError` raised.
    """
    if not _is_mapping(value):
        raise InvalidRequestError(
            f"{where}: expected a mapping of parameter names to strings, got {_shown(value)}")
    for name, item in value.items():
        if not isinstance(name, str) or not name:
            raise InvalidRequestError(f"{where}: parameter name {_shown(name)} is not a string")
        if name.lower() in _OWN_QUERY:
            raise InvalidRequestError(
                f"{where}: {name!r} is refused: the deployment's configuration sets it")
        items = item if isinstance(item, list | tuple) else [item]
        if not all(_query_scalar(v) for v in items):
            raise InvalidRequestError(
                f"{where}: {name!r} must be a string, a bool or a finite number (or a list), "
                f"got {_shown(item)}")
    return value


def _query_scalar(value: Any) -> bool:
    # A bool is sent as true/false, as the OpenAI SDK does (include_obfuscation=false).
    return type(value) is str or (isinstance(value, int | float) and math.isfinite(value))


#: Body fields a caller sets through the parameters of the same name, never extra_body.
_OWN_BODY = MappingProxyType({
    "stream": "use the stream parameter (the router must know it to read the answer)",
    "model": "use the model parameter (the deployment's model is sent upstream)",
})


def _extra_body(value: Any) -> Mapping[str, Any] | None:
    """``extra_body`` as given, its ``previous_response_id`` checked like the parameter's."""
    if value is None:
        return None
    if not _is_mapping(value):
        raise InvalidRequestError(
            f"extra_body: expected a mapping of body fields, got {_shown(value)}")
    for name in value:
        if not isinstance(name, str):
            raise InvalidRequestError(f"extra_body: field name {_shown(name)} is not a string")
        if name in _OWN_BODY:
            raise InvalidRequestError(f"extra_body: {name!r} is refused: {_OWN_BODY[name]}")
    prev = value.get("previous_response_id")
    if prev is not None:
        check_response_id(prev, "extra_body.previous_response_id")
    return value


def check_response_id(value: object, where: str) -> str:
    """Reject a response id that no upstream could have made, before any I/O."""
    if not isinstance(value, str) or not _RESPONSE_ID.fullmatch(value):
        shown = repr(value)[:80]
        raise InvalidRequestError(
            f"{where}: {shown} is not a valid response id "
            "(1-256 characters of letters, digits, '_', '-', '.', ':')"
        )
    return value


def _positive(value: Any, name: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise InvalidRequestError(
            f"{name}: expected a positive number of seconds, got {_shown(value)}")
    return float(value)


def _optional_int(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidRequestError(f"{name}: expected a non-negative integer, got {_shown(value)}")
    return value


def _names(targets: Any) -> list[str]:
    """The model names of one LiteLLM fallback entry's value (a name or a list of names)."""
    if isinstance(targets, str):
        return [targets]
    if isinstance(targets, list | tuple) and all(isinstance(t, str) for t in targets):
        return list(targets)
    raise InvalidRequestError(f"fallbacks: expected model names, got {_shown(targets)}")


def _fallback_list(value: Any) -> list[str] | None:
    """Per-request ``fallbacks``: a list of model names, or LiteLLM's list of dicts."""
    if value is None:
        return None
    names: list[str] = []
    for item in value if isinstance(value, list | tuple) else [value]:
        if isinstance(item, str):
            names.append(item)
        elif isinstance(item, Mapping) and "model" in item:
            # LiteLLM's {"model": group, "messages": ...}: per-fallback parameters.
            raise InvalidRequestError(
                "fallbacks: per-fallback parameters ({'model': ..., ...}) are not supported; "
                "give model group names")
        elif isinstance(item, Mapping):
            for targets in item.values():
                names.extend(_names(targets))
        else:
            raise InvalidRequestError(f"fallbacks: expected model names, got {_shown(item)}")
    return names


def _known(names: list[str] | None, groups: Container[str] | None) -> list[str] | None:
    """``names``, each a model group (or alias) of ``groups`` when that is known."""
    if names and groups is not None:
        for name in names:
            if name not in groups:
                raise InvalidRequestError(f"fallbacks: unknown model group {name!r}")
    return names
