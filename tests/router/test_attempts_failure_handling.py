"""The attempt loop's failure handling: retry budget, panic mode, success resets.

Uses the rig of ``test_attempts`` (real Cooldowns, LoadTracker, ManualClock,
a scripted call) with a retry budget and a panic mode.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from router.attempts import RETRY_AFTER_PENDING, Dispatcher
from router.budget import RetryBudgets
from router.config.models import PanicMode
from router.cooldown import CooldownEntry
from router.errors import (
    NoDeploymentAvailableError,
    QuotaExhaustedError,
    RateLimitError,
    ServerError,
)
from router.fallbacks import FallbackPlan
from router.retry import RetryPolicy
from tests.router.test_attempts import Rig, _5xx, _429, _req, _rig


def _with(rig: Rig, *, budgets: RetryBudgets | None = None, panic_mode: Any = "fail",
          num_retries: int = 2, fallbacks: FallbackPlan | None = None) -> Rig:
    rig.dispatcher = Dispatcher(
        table=rig.table, strategy=rig.strategy, checks=rig.checks, cooldowns=rig.cooldowns,
        load=rig.load, retry=RetryPolicy(num_retries), fallbacks=fallbacks or FallbackPlan(),
        clock=rig.clock, rng=random.Random(0), budgets=budgets, panic_mode=panic_mode,
    )
    return rig


# -- retry budget ---------------------------------------------------------------------------


async def test_an_exhausted_budget_stops_retries_and_says_so() -> None:
    rig = _rig({"g": 3})
    budgets = RetryBudgets(rig.clock, ratio=0.0, min_per_second=0.1, window=10.0)  # one retry
    _with(rig, budgets=budgets)
    first = rig.script({"g-0": [_5xx()]})
    served = await rig.dispatcher.run(_req(), first)
    assert first.calls == ["g-0", "g-1"]  # the one retry the budget had
    assert served.trail.notes == []

    second = rig.script({"g-0": [_5xx()], "g-1": [_5xx()]})
    with pytest.raises(ServerError) as info:
        await rig.dispatcher.run(_req(), second)
    assert second.calls == ["g-0"]
    assert info.value.trail is not None
    assert any("retry budget exhausted" in n for n in info.value.trail.notes)
    assert rig.load.total_in_flight() == 0


async def test_requests_earn_retries() -> None:
    rig = _rig({"g": 2})
    _with(rig, budgets=RetryBudgets(rig.clock, ratio=0.5, min_per_second=0.0, window=10.0))
    for _ in range(2):  # two successful requests earn one retry
        await rig.dispatcher.run(_req(), rig.script())
    script = rig.script({"g-0": [_5xx()]})
    served = await rig.dispatcher.run(_req(), script)  # deposits too: 1.5 available
    assert served.deployment.id == "g-1"


async def test_budgets_are_per_group() -> None:
    rig = _rig({"a": 2, "b": 2})
    _with(rig, budgets=RetryBudgets(rig.clock, ratio=0.0, min_per_second=0.1, window=10.0))
    await rig.dispatcher.run(_req("a"), rig.script({"a-0": [_5xx()]}))  # spends a's retry
    served = await rig.dispatcher.run(_req("b"), rig.script({"b-0": [_5xx()]}))
    assert served.deployment.id == "b-1"  # b's budget is its own


async def test_no_budget_means_num_retries_alone() -> None:
    rig = _rig({"g": 3})
    _with(rig, budgets=RetryBudgets(rig.clock, ratio=0.0, min_per_second=0.0, enabled=False))
    script = rig.script({"g-0": [_5xx()], "g-1": [_5xx()]})
    served = await rig.dispatcher.run(_req(), script)
    assert served.deployment.id == "g-2"


# -- success resets escalation --------------------------------------------------------------


async def test_a_success_resets_the_cooldown_count() -> None:
    rig = _rig({"g": 2}, allowed_fails=0)
    _with(rig)
    for _ in range(2):
        await rig.dispatcher.run(_req(), rig.script({"g-0": [_5xx()]}))
        entry = rig.cooldowns.get("g-0")
        assert entry is not None
        rig.clock.advance(entry.until - rig.clock.now() + 0.01)
    assert entry.times == 2
    served = await rig.dispatcher.run(_req(), rig.script())
    assert served.deployment.id == "g-0"
    await rig.dispatcher.run(_req(), rig.script({"g-0": [_5xx()]}))
    again = rig.cooldowns.get("g-0")
    assert again is not None and again.times == 1


# -- quota ------------------------------------------------------------------------------------


async def test_quota_is_not_retried_and_goes_to_the_fallbacks() -> None:
    rig = _rig({"g": 2, "other": 1})
    _with(rig, num_retries=3, fallbacks=FallbackPlan(fallbacks=[{"g": ["other"]}]))
    quota = QuotaExhaustedError("quota", status=429, code="insufficient_quota")
    script = rig.script({"g-0": [quota]})
    served = await rig.dispatcher.run(_req(), script)
    assert script.calls == ["g-0", "other-0"]
    assert served.deployment.id == "other-0"
    entry = rig.cooldowns.get("g-0")
    assert entry is not None and entry.until - entry.started == 12 * 5.0


# -- panic mode -----------------------------------------------------------------------------


def _all_cooled(rig: Rig) -> None:
    """Every deployment cools by the router's own rule (no Retry-After): 30 s and 10 s."""
    now, wall = rig.clock.now(), rig.clock.wall()
    for deployment_id, seconds in (("g-0", 30.0), ("g-1", 10.0)):
        rig.cooldowns.merge(CooldownEntry(
            deployment_id=deployment_id, until=now + seconds, until_wall=wall + seconds,
            reason="ServerError", status=500, times=1, started=now))


def _all_asked_to_wait(rig: Rig) -> None:
    """Every deployment answered 429 with a Retry-After: 30 s and 10 s."""
    rig.cooldowns.record_failure("g-0", _429(retry_after=30.0))
    rig.cooldowns.record_failure("g-1", _429(retry_after=10.0))


@pytest.mark.parametrize("mode", ["fail", "soonest"])
async def test_a_retry_after_is_kept_whatever_the_panic_mode(mode: PanicMode) -> None:
    rig = _with(_rig({"g": 2}), panic_mode=mode)
    _all_asked_to_wait(rig)
    script = rig.script()
    with pytest.raises(RateLimitError) as info:
        await rig.dispatcher.run(_req(), script)
    assert info.value.retry_after == pytest.approx(10.0)
    assert info.value.deployment_id == "g-1" and info.value.code == RETRY_AFTER_PENDING
    assert script.calls == []


async def test_panic_wait_waits_for_a_retry_after_then_probes_once() -> None:
    rig = _with(_rig({"g": 2}), panic_mode="wait")
    _all_asked_to_wait(rig)
    script = rig.script()
    served = await rig.dispatcher.run(_req(timeout=60.0), script)
    assert rig.clock.slept == [pytest.approx(10.0)] and script.calls == ["g-1"]
    assert rig.cooldowns.on_probation("g-1") is None  # the probe answered: probation over
    assert any("Retry-After" in n for n in served.trail.notes)


async def test_panic_fail_raises_at_once() -> None:
    rig = _with(_rig({"g": 2}), panic_mode="fail")
    _all_cooled(rig)
    script = rig.script()
    with pytest.raises(NoDeploymentAvailableError) as info:
        await rig.dispatcher.run(_req(), script)
    assert info.value.reason == "all_cooled_down"
    assert script.calls == []


async def test_panic_soonest_sends_to_the_first_to_recover() -> None:
    rig = _with(_rig({"g": 2}), panic_mode="soonest")
    _all_cooled(rig)
    script = rig.script()
    served = await rig.dispatcher.run(_req(), script)
    assert script.calls == ["g-1"]
    assert rig.clock.slept == []
    assert any("first to recover" in n for n in served.trail.notes)


async def test_panic_wait_waits_within_the_deadline() -> None:
    rig = _with(_rig({"g": 2}), panic_mode="wait")
    _all_cooled(rig)
    script = rig.script()
    served = await rig.dispatcher.run(_req(timeout=60.0), script)
    assert rig.clock.slept == [pytest.approx(10.0)]
    assert script.calls == ["g-1"]
    assert any("waited" in n for n in served.trail.notes)


async def test_panic_wait_fails_at_once_past_the_deadline() -> None:
    rig = _with(_rig({"g": 2}), panic_mode="wait")
    _all_cooled(rig)
    script = rig.script()
    with pytest.raises(NoDeploymentAvailableError) as info:
        await rig.dispatcher.run(_req(timeout=5.0), script)
    assert info.value.reason == "all_cooled_down"
    assert rig.clock.slept == []
    assert script.calls == []


async def test_panic_does_not_override_a_failure_in_this_request() -> None:
    rig = _with(_rig({"g": 2}, allowed_fails=0), panic_mode="soonest")
    last = _429()
    script = rig.script({"g-0": [_429()], "g-1": [last]})
    with pytest.raises(type(last)) as info:
        await rig.dispatcher.run(_req(), script)
    assert info.value is last
    assert script.calls == ["g-0", "g-1"]
