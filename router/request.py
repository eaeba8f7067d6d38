"""The request as the router sees it: what to forward, and how to route it.

:func:`build_request` splits the caller's keyword arguments once into the
parameters forwarded to the upstream untouched (every Responses API
parameter, known or not) and the few the router consumes itself (timeouts,
retries, fallbacks, extra headers...). The deadline is fixed here, once.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from router.errors import InvalidRequestError

__all__ = ["ROUTER_PARAMS", "RouteRequest", "build_request", "check_response_id"]

#: Keyword arguments the router consumes; everything else goes upstream.
ROUTER_PARAMS = frozenset({
    "timeout", "num_retries", "fallbacks", "disable_fallbacks", "mock_response",
    "extra_headers", "extra_query", "extra_body", "stream_timeout",
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
) -> RouteRequest:
    """Split ``params`` into forwarded and router parameters (``params`` is consumed)."""
    if not isinstance(model, str) or not model:
        raise InvalidRequestError("model: a non-empty model group name is required")
    prev = params.get("previous_response_id")
    if prev is not None:
        check_response_id(prev, "previous_response_id")
    start = time.monotonic() if now is None else now
    if ROUTER_PARAMS.isdisjoint(params):  # the common case: nothing to take out
        deadline = None if default_timeout is None else start + default_timeout
        return RouteRequest(model=model, params=params, stream=stream, deadline=deadline)
    timeout = params.pop("timeout", None)
    timeout = default_timeout if timeout is None else _positive(timeout, "timeout")
    extra_body = _extra_body(params.pop("extra_body", None))
    return RouteRequest(
        model=model,
        params=params,
        stream=stream,
        deadline=None if timeout is None else start + timeout,
        num_retries=_optional_int(params.pop("num_retries", None), "num_retries"),
        fallbacks=_fallback_list(params.pop("fallbacks", None)),
        disable_fallbacks=bool(params.pop("disable_fallbacks", False)),
        mock_response=params.pop("mock_response", None),
        stream_timeout=params.pop("stream_timeout", None),
        extra_headers=params.pop("extra_headers", None),
        extra_query=params.pop("extra_query", None),
        extra_body=extra_body,
    )


def _extra_body(value: Any) -> Mapping[str, Any] | None:
    """``extra_body`` as given, its ``previous_response_id`` checked like the parameter's."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InvalidRequestError(
            f"extra_body: expected a mapping of body fields, got {type(value).__name__}"
        )
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
        raise InvalidRequestError(f"{name}: expected a positive number of seconds, got {value!r}")
    return float(value)


def _optional_int(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidRequestError(f"{name}: expected a non-negative integer, got {value!r}")
    return value


def _names(targets: Any) -> list[str]:
    """The model names of one LiteLLM fallback entry's value (a name or a list of names)."""
    if isinstance(targets, str):
        return [targets]
    if isinstance(targets, list | tuple) and all(isinstance(t, str) for t in targets):
        return list(targets)
    raise InvalidRequestError(f"fallbacks: expected model names, got {targets!r}")


def _fallback_list(value: Any) -> list[str] | None:
    """Per-request ``fallbacks``: a list of model names, or LiteLLM's list of dicts."""
    if value is None:
        return None
    names: list[str] = []
    for item in value if isinstance(value, list | tuple) else [value]:
        if isinstance(item, str):
            names.append(item)
        elif isinstance(item, Mapping):
            for targets in item.values():
                names.extend(_names(targets))
        else:
            raise InvalidRequestError(f"fallbacks: expected model names, got {item!r}")
    return names
