"""Cooldowns take failing deployments out of rotation (router/cooldown.py)."""

from __future__ import annotations

import pytest

from router.clock import ManualClock
from router.config import DeploymentConfig
from router.cooldown import FAIL_WINDOW, QUOTA_COOLDOWN_FACTOR, CooldownEntry, Cooldowns
from router.deployment import Deployment
from router.errors import (
    AuthenticationError,
    BadRequestError,
    ConnectionError,
    ContextWindowExceededError,
    NotFoundError,
    PermissionDeniedError,
    QuotaExhaustedError,
    RateLimitError,
    ServerError,
    ServiceUnavailableError,
    TimeoutError,
    UpstreamError,
)
from router.table import DeploymentTable

# isort: split
from providers.mock import MockProvider

COOLDOWN = 5.0


def _deployments(*ids: str) -> tuple[Deployment, ...]:
    configs = [
        DeploymentConfig.model_validate({
            "model_name": "g", "litellm_params": {"model": f"mock/{i}"}, "model_info": {"id": i},
        })
        for i in ids
    ]
    return DeploymentTable(configs, {"mock": MockProvider()}).group("g")


def _cooldowns(clock: ManualClock, *, allowed_fails: int = 2, disabled: bool = False) -> Cooldowns:
    return Cooldowns(clock, allowed_fails=allowed_fails, cooldown_time=COOLDOWN,
                     disabled=disabled)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=1000.0)


# -- immediate cooldowns ---------------------------------------------------------------


def test_rate_limit_uses_retry_after(clock: ManualClock) -> None:
    cd = _cooldowns(clock)
    entry = cd.record_failure("d1", RateLimitError("slow", status=429, retry_after=17.0))
    assert entry == CooldownEntry("d1", 1017.0, "RateLimitError")
    assert cd.get("d1") == entry


def test_rate_limit_without_retry_after_uses_cooldown_time(clock: ManualClock) -> None:
    cd = _cooldowns(clock)
    entry = cd.record_failure("d1", RateLimitError("slow", status=429))
    assert entry is not None and entry.until == 1000.0 + COOLDOWN


def test_quota_cools_for_twelve_times(clock: ManualClock) -> None:
    assert QUOTA_COOLDOWN_FACTOR == 12.0
    cd = _cooldowns(clock)
    entry = cd.record_failure("d1", QuotaExhaustedError("quota", status=429, retry_after=1.0))
    assert entry is not None
    assert entry.until == 1000.0 + 12 * COOLDOWN
    assert entry.reason == "QuotaExhaustedError"


@pytest.mark.parametrize("error", [
    AuthenticationError("no", status=401),
    PermissionDeniedError("no", status=403),
    NotFoundError("no", status=404),
], ids=["401", "403", "404"])
def test_auth_permission_not_found_cool_at_once(clock: ManualClock, error: UpstreamError) -> None:
    cd = _cooldowns(clock, allowed_fails=100)
    entry = cd.record_failure("d1", error)
    assert entry is not None and entry.until == 1000.0 + COOLDOWN
    assert entry.reason == type(error).__name__


# -- counted failures --------------------------------------------------------------------


@pytest.mark.parametrize("error", [
    ServerError("boom", status=500),
    ServiceUnavailableError("down", status=503),
    TimeoutError("slow"),
    ConnectionError("cut"),
], ids=lambda e: type(e).__name__)
def test_counted_failures_cool_after_allowed_fails(
    clock: ManualClock, error: UpstreamError
) -> None:
    cd = _cooldowns(clock, allowed_fails=2)
    assert cd.record_failure("d1", error) is None
    clock.advance(1)
    assert cd.record_failure("d1", error) is None
    assert cd.get("d1") is None
    clock.advance(1)
    entry = cd.record_failure("d1", error)
    assert entry is not None and entry.until == 1002.0 + COOLDOWN
    assert cd.get("d1") == entry


def test_allowed_fails_zero_cools_on_first_failure(clock: ManualClock) -> None:
    cd = _cooldowns(clock, allowed_fails=0)
    assert cd.record_failure("d1", ServerError("boom", status=500)) is not None


def test_failures_are_counted_per_deployment(clock: ManualClock) -> None:
    cd = _cooldowns(clock, allowed_fails=1)
    assert cd.record_failure("d1", ServerError("x")) is None
    assert cd.record_failure("d2", ServerError("x")) is None
    assert cd.record_failure("d1", ServerError("x")) is not None
    assert cd.get("d2") is None


def test_failures_outside_the_window_do_not_count(clock: ManualClock) -> None:
    assert FAIL_WINDOW == 60.0
    cd = _cooldowns(clock, allowed_fails=2)
    assert cd.record_failure("d1", ServerError("x")) is None  # t=1000
    clock.advance(30)
    assert cd.record_failure("d1", ServerError("x")) is None  # t=1030
    clock.advance(30.5)
    # the first failure left the window: two in the window, not three
    assert cd.record_failure("d1", ServerError("x")) is None  # t=1060.5
    clock.advance(1)
    assert cd.record_failure("d1", ServerError("x")) is not None  # 1030, 1060.5, 1061.5


@pytest.mark.parametrize("error", [
    BadRequestError("bad", status=400),
    ContextWindowExceededError("long", status=400, code="context_length_exceeded"),
], ids=lambda e: type(e).__name__)
def test_non_cooling_errors_are_ignored(clock: ManualClock, error: UpstreamError) -> None:
    cd = _cooldowns(clock, allowed_fails=0)
    for _ in range(10):
        assert cd.record_failure("d1", error) is None
    assert cd.active() == []


def test_disabled_never_cools(clock: ManualClock) -> None:
    cd = _cooldowns(clock, allowed_fails=0, disabled=True)
    assert cd.record_failure("d1", RateLimitError("x", status=429)) is None
    assert cd.record_failure("d1", ServerError("x")) is None
    ds = _deployments("d1", "d2")
    assert cd.available(ds) is ds
    assert cd.active() == []


# -- extension -------------------------------------------------------------------------


def test_a_longer_cooldown_extends_a_shorter_never_shortens(clock: ManualClock) -> None:
    cd = _cooldowns(clock)
    cd.record_failure("d1", RateLimitError("x", status=429, retry_after=10.0))
    longer = cd.record_failure("d1", RateLimitError("x", status=429, retry_after=30.0))
    assert longer is not None and longer.until == 1030.0
    shorter = cd.record_failure("d1", RateLimitError("x", status=429, retry_after=2.0))
    assert shorter == longer
    assert cd.get("d1") == longer
    clock.advance(10)
    # a new cooldown ending before the current one does not shorten it either
    cd.record_failure("d1", AuthenticationError("x", status=401))
    assert cd.get("d1") == longer


# -- availability and expiry --------------------------------------------------------------


def test_available_returns_the_same_object_when_nothing_cools(clock: ManualClock) -> None:
    cd = _cooldowns(clock)
    ds = _deployments("d1", "d2")
    assert cd.available(ds) is ds


def test_available_drops_cooling_deployments(clock: ManualClock) -> None:
    cd = _cooldowns(clock)
    ds = _deployments("d1", "d2", "d3")
    cd.record_failure("d2", RateLimitError("x", status=429))
    assert [d.id for d in cd.available(ds)] == ["d1", "d3"]


def test_cooldown_expires_when_time_passes(clock: ManualClock) -> None:
    cd = _cooldowns(clock)
    ds = _deployments("d1", "d2")
    cd.record_failure("d1", RateLimitError("x", status=429, retry_after=10.0))
    clock.advance(9.9)
    assert [d.id for d in cd.available(ds)] == ["d2"]
    assert cd.get("d1") is not None
    clock.advance(0.2)
    assert cd.available(ds) is ds
    assert cd.get("d1") is None
    assert cd.active() == []


def test_active_is_sorted_by_recovery(clock: ManualClock) -> None:
    cd = _cooldowns(clock)
    cd.record_failure("late", RateLimitError("x", status=429, retry_after=30.0))
    cd.record_failure("soon", RateLimitError("x", status=429, retry_after=3.0))
    cd.record_failure("mid", RateLimitError("x", status=429, retry_after=10.0))
    assert [e.deployment_id for e in cd.active()] == ["soon", "mid", "late"]
    clock.advance(5)
    assert [e.deployment_id for e in cd.active()] == ["mid", "late"]
