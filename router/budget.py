"""Retry budgets: retries as a share of recent requests, so an outage cannot become a retry storm.

Why a budget and not ``num_retries`` alone: with ``num_retries=2`` a full
outage triples the load on the upstreams (every request makes three attempts)
exactly when they are weakest. A budget, in the style of Finagle's
``RetryBudget`` and tower's ``TpsBudget``, lets retries be at most a share of
the traffic::

    retries allowed in the last `window` seconds
        = ratio x requests in the last `window` seconds + min_per_second x window

``ratio`` (``retry_budget_ratio``, default 0.2) bounds the extra load an
outage adds to 20%; the floor (``retry_budget_min_per_second``, default 10/s)
lets a quiet service still retry its occasional failure. When the budget is
spent a retry is not taken and the caller gets the error (the dispatcher notes
"retry budget exhausted" in the trail).

Who pays: each request *deposits* once in every group it enters; each retry
inside a group *withdraws* one. A fallback to another group is not a retry: it
is a new request to that group (it deposits there) and the fallback chain is
already bounded by ``max_fallbacks``.

Scope: one budget per model group (tower keeps one per service, and a group
is our service), so one group's outage spends only its own budget and never
stops the retries of healthy groups. Set ``retry_budget: false`` to have no
budget at all (``num_retries`` alone bounds retries).

The window slides in ``BUCKETS`` time buckets of ``window / BUCKETS`` seconds
(so it covers between ``window - window/BUCKETS`` and ``window`` seconds of
history); every call is O(1): at most ``BUCKETS`` stale buckets are cleared,
with running sums kept.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from router.clock import Clock

__all__ = ["BUCKETS", "Budget", "RetryBudget", "RetryBudgets", "Unlimited"]

BUCKETS = 10
_EPSILON = 1e-9  # ratio x deposits is a float sum: 0.1 x 10 must allow one retry


class Budget(Protocol):
    """A retry budget: requests ``deposit``, retries ``withdraw`` (False: do not retry)."""

    def deposit(self) -> None: ...

    def withdraw(self) -> bool: ...


class Unlimited:
    """The budget of ``retry_budget: false``: every retry may go."""

    def deposit(self) -> None:
        return None

    def withdraw(self) -> bool:
        return True


class RetryBudget:
    """A sliding-window retry budget for one model group (see the module docstring)."""

    def __init__(
        self,
        clock: Clock,
        *,
        ratio: float = 0.2,
        min_per_second: float = 10.0,
        window: float = 10.0,
        buckets: int = BUCKETS,
    ) -> None:
        _validate(ratio, min_per_second, window, buckets)
        self._clock = clock
        self._ratio = ratio
        self._reserve = min_per_second * window
        self._width = window / buckets
        self._deposits = [0] * buckets
        self._withdrawals = [0] * buckets
        self._deposited = 0  # sums over the buckets
        self._withdrawn = 0
        self._bucket = self._index()

    def deposit(self) -> None:
        """A request entered the group."""
        slot = self._advance()
        self._deposits[slot] += 1
        self._deposited += 1

    def withdraw(self) -> bool:
        """Take one retry; ``False`` (and nothing taken) when the budget is spent."""
        slot = self._advance()
        if self._available() < 1.0 - _EPSILON:
            return False
        self._withdrawals[slot] += 1
        self._withdrawn += 1
        return True

    def balance(self) -> float:
        """Retries the budget would allow now (may be fractional)."""
        self._advance()
        return self._available()

    def _available(self) -> float:
        return self._ratio * self._deposited + self._reserve - self._withdrawn

    def _index(self) -> int:
        return int(self._clock.now() // self._width)

    def _advance(self) -> int:
        """Clear the buckets that left the window; the current bucket's slot."""
        index = self._index()
        size = len(self._deposits)
        gap = index - self._bucket
        if gap >= size:
            self._deposits = [0] * size
            self._withdrawals = [0] * size
            self._deposited = self._withdrawn = 0
        else:
            for step in range(1, gap + 1):
                self._clear((self._bucket + step) % size)
        self._bucket = max(self._bucket, index)
        return self._bucket % size

    def _clear(self, slot: int) -> None:
        self._deposited -= self._deposits[slot]
        self._withdrawn -= self._withdrawals[slot]
        self._deposits[slot] = self._withdrawals[slot] = 0


class RetryBudgets:
    """The budgets of one router: one :class:`RetryBudget` per model group, made on first use.

    ``enabled=False`` gives every group an :class:`Unlimited` budget.
    """

    def __init__(
        self,
        clock: Clock,
        *,
        ratio: float = 0.2,
        min_per_second: float = 10.0,
        window: float = 10.0,
        enabled: bool = True,
    ) -> None:
        _validate(ratio, min_per_second, window, BUCKETS)
        self._clock = clock
        self._ratio = ratio
        self._min_per_second = min_per_second
        self._window = window
        self._enabled = enabled
        self._unlimited = Unlimited()
        self._budgets: dict[str, RetryBudget] = {}

    def for_group(self, group: str) -> Budget:
        """The budget of model group ``group``."""
        if not self._enabled:
            return self._unlimited
        found = self._budgets.get(group)
        if found is None:
            found = self._budgets[group] = RetryBudget(
                self._clock, ratio=self._ratio, min_per_second=self._min_per_second,
                window=self._window,
            )
        return found


def _validate(ratio: float, min_per_second: float, window: float, buckets: int) -> None:
    problems = [f"{name} must be {rule}, not {value}" for name, value, ok, rule in (
        ("retry budget ratio", ratio, ratio >= 0, ">= 0"),
        ("retry budget min_per_second", min_per_second, min_per_second >= 0, ">= 0"),
        ("retry budget window", window, 0 < window < math.inf, "> 0 and finite"),
        ("retry budget buckets", buckets, buckets >= 1, ">= 1"),
    ) if not ok]
    if problems:
        raise ValueError("; ".join(problems))
