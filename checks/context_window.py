"""The context-window check: skip deployments too small for the request's input.

LiteLLM runs it under ``enable_pre_call_checks=True``: a deployment whose
``model_info.max_input_tokens`` is below the request's input size is
dropped; deployments that do not declare the figure are kept. The input
size is an estimate (:func:`router.tokens.estimate_input_tokens`; it errs
low, so a borderline deployment is kept and the upstream has the last word).

When this check leaves no candidate, it raises
:class:`router.errors.ContextWindowExceededError` instead of returning an
empty list: that error's fallback kind is ``"context_window"``, so the
attempt loop goes on to the group's ``context_window_fallbacks`` (larger
models), exactly as when an upstream answers ``context_length_exceeded``.

A request with ``truncation="auto"`` lets the upstream drop input items to
fit, so every deployment can take it and the check keeps them all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from checks.base import CheckContext
from router.errors import ContextWindowExceededError
from router.tokens import estimate_input_tokens

if TYPE_CHECKING:
    from router.deployment import Deployment
    from router.request import RouteRequest

__all__ = ["ContextWindowCheck"]


class ContextWindowCheck:
    """Drops deployments whose ``max_input_tokens`` is below the estimated input."""

    name = "context_window_check"

    @classmethod
    def from_context(cls, context: CheckContext) -> ContextWindowCheck:
        return cls()

    async def filter(
        self, candidates: list[Deployment], request: RouteRequest
    ) -> list[Deployment]:
        limits = [(d, d.config.model_info.max_input_tokens) for d in candidates]
        if all(m is None for _, m in limits) or request.params.get("truncation") == "auto":
            return candidates
        needed = estimate_input_tokens(request.params)
        kept = [d for d, m in limits if m is None or m >= needed]
        if not kept:
            raise _too_long(needed, limits)
        return kept


def _too_long(
    needed: int, limits: list[tuple[Deployment, int | None]]
) -> ContextWindowExceededError:
    group = limits[0][0].model_name
    sizes = ", ".join(f"{d.id}: {m}" for d, m in limits)
    return ContextWindowExceededError(
        f"the input (about {needed} tokens, estimated) exceeds the max_input_tokens of "
        f"every deployment of {group!r} that could serve it ({sizes})",
        model_group=group,
    )
