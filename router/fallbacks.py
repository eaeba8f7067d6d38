"""Which model groups to try after a group has failed, and in what order.

Three lists, as LiteLLM names them: ``context_window_fallbacks`` for a
:class:`ContextWindowExceededError`, ``content_policy_fallbacks`` for a
:class:`ContentPolicyViolationError`, and ``fallbacks`` (then
``default_fallbacks``) for every other error whose class allows a fallback.
The specific lists fall back to the generic one when they name nothing for
the group. A request may replace the list (``fallbacks=[...]``) or turn
fallbacks off (``disable_fallbacks=True``). At most ``max_fallbacks`` groups
are tried.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from router.errors import RouterError
from router.request import RouteRequest

__all__ = ["FallbackPlan"]


def _merge(entries: Sequence[Mapping[str, Sequence[str]]]) -> dict[str, tuple[str, ...]]:
    merged: dict[str, tuple[str, ...]] = {}
    for entry in entries:
        for group, targets in entry.items():
            merged[group] = merged.get(group, ()) + tuple(targets)
    return merged


class FallbackPlan:
    """The router's fallback settings, merged once at construction."""

    def __init__(
        self,
        *,
        fallbacks: Sequence[Mapping[str, Sequence[str]]] = (),
        default_fallbacks: Sequence[str] = (),
        context_window_fallbacks: Sequence[Mapping[str, Sequence[str]]] = (),
        content_policy_fallbacks: Sequence[Mapping[str, Sequence[str]]] = (),
        max_fallbacks: int = 5,
    ) -> None:
        self._by_kind = {
            "default": _merge(fallbacks),
            "context_window": _merge(context_window_fallbacks),
            "content_policy": _merge(content_policy_fallbacks),
        }
        self._default = tuple(default_fallbacks)
        self._max = max_fallbacks

    def groups_after(self, request: RouteRequest, error: RouterError) -> list[str]:
        """The groups to try, in order, after ``request.model`` failed with ``error``."""
        kind = error.fallback
        if request.disable_fallbacks or kind is None:
            return []
        if request.fallbacks is not None:
            targets: Sequence[str] = request.fallbacks
        else:
            targets = self._targets(request.model, kind)
        seen = {request.model}
        plan = [g for g in targets if not (g in seen or seen.add(g))]  # type: ignore[func-returns-value]
        return plan[: self._max]

    def _targets(self, group: str, kind: str) -> Sequence[str]:
        specific = self._by_kind[kind].get(group)
        if specific:
            return specific
        return self._by_kind["default"].get(group) or self._default
