"""LiteLLM's per-error-kind policies: ``retry_policy`` and ``allowed_fails_policy``.

Both are dicts keyed by LiteLLM's names (``RateLimitErrorRetries``,
``TimeoutErrorAllowedFails``, ...). :func:`policy_value` finds the entry for
an error by its most specific kind, so a ``ContentPolicyViolationError`` reads
``ContentPolicyViolationError...`` before ``BadRequestError...``.

An exhausted quota has no LiteLLM kind of its own and must not borrow its
base's (``RateLimitErrorRetries`` would retry it): no policy entry applies to
it, not even ``Default...``.
"""

from __future__ import annotations

from collections.abc import Mapping

from router.errors import (
    AuthenticationError,
    BadRequestError,
    ContentPolicyViolationError,
    NotFoundError,
    PermissionDeniedError,
    QuotaExhaustedError,
    RateLimitError,
    ServerError,
    ServiceUnavailableError,
    TimeoutError,
    UpstreamError,
)

__all__ = ["policy_value"]

#: (LiteLLM kind name, our class), most specific first.
_KINDS: tuple[tuple[str, type[UpstreamError]], ...] = (
    ("ContentPolicyViolationError", ContentPolicyViolationError),
    ("BadRequestError", BadRequestError),
    ("AuthenticationError", AuthenticationError),
    ("AuthenticationError", PermissionDeniedError),
    ("TimeoutError", TimeoutError),
    ("RateLimitError", RateLimitError),
    ("NotFoundError", NotFoundError),
    ("ServiceUnavailableError", ServiceUnavailableError),
    ("InternalServerError", ServerError),
)

#: Errors no policy entry describes (see the module docstring).
_NO_KIND: tuple[type[UpstreamError], ...] = (QuotaExhaustedError,)


def policy_value(policy: Mapping[str, int] | None, suffix: str, error: UpstreamError) -> int | None:
    """The policy's number for ``error`` (``suffix``: ``"Retries"`` or ``"AllowedFails"``).

    Falls back to ``Default<suffix>``; ``None`` when the policy says nothing
    (always for an exhausted quota).
    A 502 also reads LiteLLM's ``BadGatewayError<suffix>``.
    """
    if not policy or isinstance(error, _NO_KIND):
        return None
    if error.status == 502 and f"BadGatewayError{suffix}" in policy:
        return policy[f"BadGatewayError{suffix}"]
    for kind, cls in _KINDS:
        if isinstance(error, cls) and f"{kind}{suffix}" in policy:
            return policy[f"{kind}{suffix}"]
    return policy.get(f"Default{suffix}")
