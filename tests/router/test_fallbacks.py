"""Which groups to try after a group failed (router/fallbacks.py)."""

from __future__ import annotations

from typing import Any

import pytest

from router.errors import (
    AuthenticationError,
    BadRequestError,
    ContentPolicyViolationError,
    ContextWindowExceededError,
    PreviousResponseNotFoundError,
    QuotaExhaustedError,
    RateLimitError,
    RouterError,
    ServerError,
    UnknownModelError,
)
from router.fallbacks import FallbackPlan
from router.request import RouteRequest


def _req(model: str = "a", **kwargs: Any) -> RouteRequest:
    return RouteRequest(model=model, params={}, **kwargs)


RATE = RateLimitError("x", status=429)
WINDOW = ContextWindowExceededError("x", status=400, code="context_length_exceeded")
POLICY = ContentPolicyViolationError("x", status=400, code="content_filter")


@pytest.mark.parametrize("error", [
    RATE, ServerError("x"), AuthenticationError("x"), QuotaExhaustedError("x"),
], ids=lambda e: type(e).__name__)
def test_generic_fallbacks(error: RouterError) -> None:
    plan = FallbackPlan(fallbacks=[{"a": ["b", "c"]}, {"x": ["y"]}])
    assert plan.groups_after(_req("a"), error) == ["b", "c"]
    assert plan.groups_after(_req("x"), error) == ["y"]
    assert plan.groups_after(_req("other"), error) == []


def test_entries_for_one_group_are_merged_in_order() -> None:
    plan = FallbackPlan(fallbacks=[{"a": ["b"]}, {"a": ["c"]}])
    assert plan.groups_after(_req("a"), RATE) == ["b", "c"]


def test_default_fallbacks_when_the_group_has_none() -> None:
    plan = FallbackPlan(fallbacks=[{"a": ["b"]}], default_fallbacks=["d1", "d2"])
    assert plan.groups_after(_req("a"), RATE) == ["b"]
    assert plan.groups_after(_req("z"), RATE) == ["d1", "d2"]


def test_context_window_list() -> None:
    plan = FallbackPlan(
        fallbacks=[{"a": ["b"]}, {"q": ["r"]}],
        context_window_fallbacks=[{"a": ["big"]}],
        default_fallbacks=["dflt"],
    )
    assert plan.groups_after(_req("a"), WINDOW) == ["big"]
    # a group without a context-window entry uses the generic list, then the default
    assert plan.groups_after(_req("q"), WINDOW) == ["r"]
    assert plan.groups_after(_req("z"), WINDOW) == ["dflt"]
    # the context-window list is not used for other errors
    assert plan.groups_after(_req("a"), RATE) == ["b"]


def test_content_policy_list() -> None:
    plan = FallbackPlan(
        fallbacks=[{"a": ["b"]}],
        content_policy_fallbacks=[{"a": ["lenient"]}],
        context_window_fallbacks=[{"a": ["big"]}],
    )
    assert plan.groups_after(_req("a"), POLICY) == ["lenient"]
    assert plan.groups_after(_req("a"), WINDOW) == ["big"]
    assert plan.groups_after(_req("a"), RATE) == ["b"]


def test_content_policy_falls_back_to_generic() -> None:
    plan = FallbackPlan(fallbacks=[{"a": ["b"]}], content_policy_fallbacks=[{"x": ["y"]}])
    assert plan.groups_after(_req("a"), POLICY) == ["b"]


def test_specific_list_only_no_generic() -> None:
    plan = FallbackPlan(context_window_fallbacks=[{"a": ["big"]}])
    assert plan.groups_after(_req("a"), RATE) == []
    assert plan.groups_after(_req("a"), WINDOW) == ["big"]


def test_per_request_list_replaces_the_configuration() -> None:
    plan = FallbackPlan(fallbacks=[{"a": ["b"]}], context_window_fallbacks=[{"a": ["big"]}],
                        default_fallbacks=["d"])
    assert plan.groups_after(_req("a", fallbacks=["x", "y"]), RATE) == ["x", "y"]
    assert plan.groups_after(_req("a", fallbacks=["x"]), WINDOW) == ["x"]
    # an explicit empty list means "none for this request"
    assert plan.groups_after(_req("a", fallbacks=[]), RATE) == []


def test_disable_fallbacks() -> None:
    plan = FallbackPlan(fallbacks=[{"a": ["b"]}], default_fallbacks=["d"])
    assert plan.groups_after(_req("a", disable_fallbacks=True), RATE) == []
    assert plan.groups_after(_req("a", disable_fallbacks=True, fallbacks=["x"]), RATE) == []


def test_max_fallbacks_caps_the_plan() -> None:
    plan = FallbackPlan(fallbacks=[{"a": ["b", "c", "d", "e"]}], max_fallbacks=2)
    assert plan.groups_after(_req("a"), RATE) == ["b", "c"]
    assert plan.groups_after(_req("a", fallbacks=["p", "q", "r"]), RATE) == ["p", "q"]
    assert FallbackPlan(fallbacks=[{"a": ["b"]}], max_fallbacks=0).groups_after(
        _req("a"), RATE) == []


def test_default_max_fallbacks_is_five() -> None:
    plan = FallbackPlan(default_fallbacks=[f"g{i}" for i in range(8)])
    assert plan.groups_after(_req("a"), RATE) == ["g0", "g1", "g2", "g3", "g4"]


def test_dedupe_and_self_exclusion_before_the_cap() -> None:
    plan = FallbackPlan(fallbacks=[{"a": ["a", "b", "b", "a", "c", "b", "d"]}], max_fallbacks=3)
    assert plan.groups_after(_req("a"), RATE) == ["b", "c", "d"]
    assert plan.groups_after(_req("a", fallbacks=["a", "x", "x"]), RATE) == ["x"]


@pytest.mark.parametrize("error", [
    BadRequestError("x", status=400),
    PreviousResponseNotFoundError("x", status=400),
    UnknownModelError("x", ["a"]),
], ids=lambda e: type(e).__name__)
def test_error_without_fallback_kind_gets_none(error: RouterError) -> None:
    plan = FallbackPlan(fallbacks=[{"a": ["b"]}], default_fallbacks=["d"])
    assert error.fallback is None
    assert plan.groups_after(_req("a"), error) == []
    assert plan.groups_after(_req("a", fallbacks=["x"]), error) == []
