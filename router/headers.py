"""Rules for extra HTTP headers: a deployment's (config) and a caller's (per call).

Why: a header is sent as given, so a bad one fails on the wire or, worse,
at the upstream, where the failure is blamed on the deployment and counts
toward its cooldown. Every header must therefore be a well-formed HTTP field
(a token name; a text value with no CR, LF or NUL, which would split the
request). A *caller's* header may in addition not set what the deployment
owns: its credentials and account (a caller could otherwise replace a
deployment's key, get 401s and cool every deployment down for everyone) and
the request's framing, which the router sets itself.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

__all__ = ["CALLER_FORBIDDEN", "caller_header_problem", "header_problem"]

# RFC 9110 token characters.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")

#: Lower-case header names a caller may not set, and why.
CALLER_FORBIDDEN: Mapping[str, str] = MappingProxyType({
    **dict.fromkeys(
        ("authorization", "api-key", "x-api-key", "proxy-authorization", "cookie",
         "ocp-apim-subscription-key"),
        "the deployment's credentials are set by its configuration, never by a caller",
    ),
    **dict.fromkeys(
        ("openai-organization", "openai-project"),
        "the deployment's account is set by its configuration (it decides which "
        "deployment owns a stored response)",
    ),
    **dict.fromkeys(
        ("host", "content-length", "content-type", "transfer-encoding", "connection",
         "keep-alive", "te", "upgrade", "expect", "accept"),
        "the router frames the request itself",
    ),
})


def header_problem(name: Any, value: Any) -> str | None:
    """What is wrong with one header, or ``None``; the value is never quoted."""
    if not isinstance(name, str) or not _TOKEN.fullmatch(name):
        shown = repr(name)[:60] if isinstance(name, str) else type(name).__name__
        return f"header name {shown} is not a valid HTTP header name"
    if not isinstance(value, str):
        return f"header {name!r}: the value must be a string, got {type(value).__name__}"
    if "\r" in value or "\n" in value or "\x00" in value:
        return f"header {name!r}: the value contains CR, LF or NUL"
    return None


def caller_header_problem(name: Any, value: Any) -> str | None:
    """:func:`header_problem`, and the headers a caller may not set."""
    problem = header_problem(name, value)
    if problem is None:
        why = CALLER_FORBIDDEN.get(name.lower())
        if why is not None:
            return f"header {name!r} is refused: {why}"
    return problem
