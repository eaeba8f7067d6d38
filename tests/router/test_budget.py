"""The retry budget: retries as a share of recent requests (router/budget.py)."""

from __future__ import annotations

from typing import Any

import pytest

from router.budget import BUCKETS, RetryBudget, RetryBudgets, Unlimited
from router.clock import ManualClock


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=1000.0)


def _withdraw_all(budget: RetryBudget, limit: int = 10_000) -> int:
    """Withdraw until refused; how many were granted."""
    granted = 0
    while granted < limit and budget.withdraw():
        granted += 1
    return granted


def test_the_floor_allows_min_per_second_times_window_without_requests(clock: ManualClock) -> None:
    budget = RetryBudget(clock, ratio=0.2, min_per_second=10.0, window=10.0)
    assert budget.balance() == 100.0
    assert _withdraw_all(budget) == 100
    assert budget.withdraw() is False


def test_deposits_earn_ratio_retries(clock: ManualClock) -> None:
    budget = RetryBudget(clock, ratio=0.2, min_per_second=0.0, window=10.0)
    assert budget.withdraw() is False
    for _ in range(10):
        budget.deposit()
    assert budget.balance() == pytest.approx(2.0)
    assert _withdraw_all(budget) == 2
    for _ in range(5):
        budget.deposit()
    assert _withdraw_all(budget) == 1


def test_a_refused_withdrawal_takes_nothing(clock: ManualClock) -> None:
    budget = RetryBudget(clock, ratio=0.5, min_per_second=0.0, window=10.0)
    budget.deposit()
    assert budget.withdraw() is False  # 0.5 < 1
    budget.deposit()
    assert budget.withdraw() is True  # the refusal did not spend the half earned before


def test_float_ratios_do_not_lose_a_retry_to_rounding(clock: ManualClock) -> None:
    budget = RetryBudget(clock, ratio=0.1, min_per_second=0.0, window=10.0)
    for _ in range(10):
        budget.deposit()
    assert budget.withdraw() is True


def test_deposits_and_withdrawals_leave_the_window(clock: ManualClock) -> None:
    assert BUCKETS == 10
    budget = RetryBudget(clock, ratio=0.2, min_per_second=0.0, window=10.0)
    for _ in range(10):
        budget.deposit()  # bucket of t=1000
    assert budget.withdraw() is True  # 2 earned, 1 spent
    clock.advance(9.5)
    assert budget.balance() == pytest.approx(1.0)  # still inside the window
    clock.advance(0.5)  # t=1010: the bucket of t=1000 leaves
    assert budget.balance() == pytest.approx(0.0)
    assert budget.withdraw() is False


def test_the_window_slides_bucket_by_bucket(clock: ManualClock) -> None:
    budget = RetryBudget(clock, ratio=1.0, min_per_second=0.0, window=10.0)
    for _ in range(10):
        budget.deposit()  # 10 at t=1000
        clock.advance(1.0)
    # t=1010: deposits of t=1001..1009 remain
    assert budget.balance() == pytest.approx(9.0)
    clock.advance(3.0)
    assert budget.balance() == pytest.approx(6.0)


def test_a_long_silence_empties_everything(clock: ManualClock) -> None:
    budget = RetryBudget(clock, ratio=1.0, min_per_second=1.0, window=10.0)
    for _ in range(50):
        budget.deposit()
    assert _withdraw_all(budget) == 60
    clock.advance(1000.0)
    assert budget.balance() == pytest.approx(10.0)  # only the floor again


def test_an_outage_is_held_to_the_ratio(clock: ManualClock) -> None:
    # 100 requests a second for 10 s, every one failing and wanting two retries
    budget = RetryBudget(clock, ratio=0.2, min_per_second=1.0, window=10.0)
    retries = 0
    for _ in range(10):
        for _ in range(100):
            budget.deposit()
            retries += budget.withdraw() + budget.withdraw()
        clock.advance(1.0)
    assert retries <= 0.2 * 1000 + 1.0 * 10
    assert retries >= 0.2 * 1000  # and the budget is used, not wasted


@pytest.mark.parametrize(("options", "message"), [
    ({"ratio": -0.1}, "ratio"),
    ({"ratio": float("nan")}, "ratio"),
    ({"min_per_second": -1.0}, "min_per_second"),
    ({"window": 0.0}, "window"),
    ({"window": float("inf")}, "window"),
    ({"buckets": 0}, "buckets"),
])
def test_invalid_settings_are_refused(clock: ManualClock, options: dict[str, Any],
                                      message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RetryBudget(clock, **options)


# -- per group ------------------------------------------------------------------------------


def test_each_group_has_its_own_budget(clock: ManualClock) -> None:
    budgets = RetryBudgets(clock, ratio=0.0, min_per_second=0.1, window=10.0)
    a, b = budgets.for_group("a"), budgets.for_group("b")
    assert budgets.for_group("a") is a
    assert a.withdraw() is True
    assert a.withdraw() is False  # group a spent its one retry
    assert b.withdraw() is True  # group b's is untouched


def test_disabled_budgets_never_refuse(clock: ManualClock) -> None:
    budgets = RetryBudgets(clock, ratio=0.0, min_per_second=0.0, enabled=False)
    budget = budgets.for_group("a")
    assert isinstance(budget, Unlimited)
    budget.deposit()
    assert all(budget.withdraw() for _ in range(1000))


def test_budgets_validate_their_settings(clock: ManualClock) -> None:
    with pytest.raises(ValueError, match="window"):
        RetryBudgets(clock, window=-1.0)
