"""Cooldowns take failing deployments out of rotation (router/cooldown.py)."""

from __future__ import annotations

import logging
import random
from typing import Any

import pytest

from router.clock import ManualClock
from router.config import DeploymentConfig
from router.cooldown import (
    DEFAULT_MAX_COOLDOWN_FACTOR,
    FAIL_WINDOW,
    QUOTA_COOLDOWN_FACTOR,
    RETRY_AFTER_CAP,
    CooldownEntry,
    Cooldowns,
)
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


def _cooldowns(clock: ManualClock, *, allowed_fails: int = 2, disabled: bool = False,
               **options: Any) -> Cooldowns:
    return Cooldowns(clock, allowed_fails=allowed_fails, cooldown_time=COOLDOWN,
                     disabled=disabled, **options)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=1000.0)


# -- immediate cooldowns ---------------------------------------------------------------


def test_rate_limit_uses_retry_after(clock: ManualClock) -> None:
    cd = _cooldowns(clock)
    entry = cd.record_failure("d1", RateLimitError("slow", status=429, retry_after=17.0))
    assert entry == CooldownEntry(
        deployment_id="d1", until=1017.0, until_wall=clock.wall() + 17.0,
        reason="RateLimitError", status=429, times=1, started=1000.0, probe=17.0,
    )
    assert cd.get("d1") == entry


def test_after_a_retry_after_one_probe_per_interval_until_a_success(clock: ManualClock) -> None:
    cd = _cooldowns(clock)
    cd.record_failure("d1", RateLimitError("slow", status=429, retry_after=2.0))
    assert cd.on_probation("d1") is None  # still cooling
    clock.advance(2.0)
    assert cd.available(_deployments("d1")) and cd.on_probation("d1") == 2.0
    probe = cd.start_probe("d1")
    assert probe is not None and probe.until == clock.now() + 2.0 and probe.probe == 2.0
    assert not cd.available(_deployments("d1"))  # the others wait while the probe is out
    assert cd.start_probe("d1") is None
    clock.advance(2.0)  # the probe hung: one more may go, one interval later
    assert cd.on_probation("d1") == 2.0 and cd.start_probe("d1") is not None
    cd.record_success("d1")  # the probe answered
    assert cd.available(_deployments("d1")) and cd.on_probation("d1") is None


def test_a_503_with_retry_after_cools_at_once_and_a_503_without_is_counted(
    clock: ManualClock,
) -> None:
    cd = _cooldowns(clock)
    promised = cd.record_failure(
        "d1", ServiceUnavailableError("busy", status=503, retry_after=3.0))
    assert promised is not None and promised.until == 1003.0 and promised.probe == 3.0
    assert cd.record_failure("d2", ServiceUnavailableError("busy", status=503)) is None
    quota = cd.record_failure("d3", QuotaExhaustedError("q", status=429, retry_after=1.0))
    assert quota is not None and quota.probe is None  # an exhausted quota: its long cooldown


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


# -- escalation, cap, jitter ---------------------------------------------------------------


def _fail_and_recover(cd: Cooldowns, clock: ManualClock, error: UpstreamError) -> CooldownEntry:
    """Cool ``d1`` with ``error``, then let that cooldown end."""
    entry = cd.record_failure("d1", error)
    assert entry is not None
    clock.advance(entry.until - clock.now() + 0.01)
    assert cd.get("d1") is None
    return entry


def test_repeated_cooldowns_grow_linearly_up_to_the_cap(clock: ManualClock) -> None:
    cd = _cooldowns(clock, allowed_fails=0, max_cooldown_time=3 * COOLDOWN)
    lengths = []
    for n in range(1, 6):
        entry = _fail_and_recover(cd, clock, ServerError("x"))
        assert entry.times == n
        lengths.append(entry.until - entry.started)
    assert lengths == [COOLDOWN, 2 * COOLDOWN, 3 * COOLDOWN, 3 * COOLDOWN, 3 * COOLDOWN]


def test_default_cap_is_ten_cooldown_times(clock: ManualClock) -> None:
    assert DEFAULT_MAX_COOLDOWN_FACTOR == 10.0
    cd = _cooldowns(clock, allowed_fails=0)
    lengths = [_fail_and_recover(cd, clock, AuthenticationError("no", status=401))
               for _ in range(12)]
    assert [e.until - e.started for e in lengths][-3:] == [10 * COOLDOWN] * 3


def test_a_success_starts_the_count_again(clock: ManualClock) -> None:
    cd = _cooldowns(clock, allowed_fails=0)
    _fail_and_recover(cd, clock, ServerError("x"))
    assert _fail_and_recover(cd, clock, ServerError("x")).times == 2
    cd.record_success("d1")
    entry = _fail_and_recover(cd, clock, ServerError("x"))
    assert entry.times == 1
    assert entry.until - entry.started == COOLDOWN


def test_success_elsewhere_does_not_reset(clock: ManualClock) -> None:
    cd = _cooldowns(clock, allowed_fails=0)
    _fail_and_recover(cd, clock, ServerError("x"))
    cd.record_success("d2")
    assert _fail_and_recover(cd, clock, ServerError("x")).times == 2


def test_record_success_with_nothing_cooling_is_a_no_op(clock: ManualClock) -> None:
    cd = _cooldowns(clock)
    cd.record_success("never-failed")
    assert cd.active() == []


def test_a_quiet_period_of_max_cooldown_time_starts_the_count_again(clock: ManualClock) -> None:
    cd = _cooldowns(clock, allowed_fails=0, max_cooldown_time=20.0)
    _fail_and_recover(cd, clock, ServerError("x"))
    clock.advance(19.0)  # within the quiet period: still consecutive
    assert _fail_and_recover(cd, clock, ServerError("x")).times == 2
    clock.advance(20.5)
    assert _fail_and_recover(cd, clock, ServerError("x")).times == 1


def test_failures_during_a_cooldown_do_not_escalate_it(clock: ManualClock) -> None:
    # ten requests in flight when the deployment died all fail at once
    cd = _cooldowns(clock, allowed_fails=0)
    first = cd.record_failure("d1", ServiceUnavailableError("down", status=503))
    for _ in range(9):
        clock.advance(0.1)
        later = cd.record_failure("d1", ServiceUnavailableError("down", status=503))
        assert later is not None and later.times == 1
    assert first is not None
    entry = cd.get("d1")
    assert entry is not None and entry.times == 1
    assert entry.started == first.started == 1000.0
    # the last failure extended it by one cooldown_time from its own moment, not ten
    assert entry.until == pytest.approx(1000.9 + COOLDOWN)


@pytest.mark.parametrize("seed", range(5))
def test_jitter_stays_within_its_fraction(clock: ManualClock, seed: int) -> None:
    cd = _cooldowns(clock, allowed_fails=0, jitter=0.1, rng=random.Random(seed),
                    max_cooldown_time=3 * COOLDOWN)
    lengths = [(e.times, e.until - e.started)
               for e in (_fail_and_recover(cd, clock, ServerError("x")) for _ in range(6))]
    for times, length in lengths:
        nominal = min(times, 3) * COOLDOWN
        assert nominal * 0.9 <= length <= nominal * 1.1
    assert len({round(length, 9) for _, length in lengths}) == len(lengths)  # not constant


def test_jitter_is_deterministic_with_a_seeded_rng() -> None:
    def run(seed: int) -> list[float]:
        clock = ManualClock()
        cd = _cooldowns(clock, allowed_fails=0, jitter=0.2, rng=random.Random(seed))
        return [_fail_and_recover(cd, clock, ServerError("x")).until for _ in range(4)]

    assert run(1) == run(1)
    assert run(1) != run(2)


def test_retry_after_is_exact_not_escalated_nor_jittered(clock: ManualClock) -> None:
    cd = _cooldowns(clock, allowed_fails=0, jitter=0.5, rng=random.Random(3))
    _fail_and_recover(cd, clock, ServerError("x"))
    _fail_and_recover(cd, clock, ServerError("x"))
    entry = _fail_and_recover(cd, clock, RateLimitError("x", status=429, retry_after=2.0))
    assert entry.until - entry.started == 2.0
    assert entry.times == 3  # it still counts toward the streak
    after = _fail_and_recover(cd, clock, RateLimitError("x", status=429))
    assert after.times == 4
    assert 4 * COOLDOWN * 0.5 <= after.until - after.started <= 4 * COOLDOWN * 1.5


def test_retry_after_is_capped(clock: ManualClock) -> None:
    assert RETRY_AFTER_CAP == 3600.0
    cd = _cooldowns(clock)
    entry = cd.record_failure("d1", RateLimitError("x", status=429, retry_after=1e9))
    assert entry is not None and entry.until == 1000.0 + RETRY_AFTER_CAP


def test_quota_is_long_and_never_shorter_than_the_cap(clock: ManualClock) -> None:
    cd = _cooldowns(clock, max_cooldown_time=100 * COOLDOWN)
    entry = cd.record_failure("d1", QuotaExhaustedError("quota", status=429))
    assert entry is not None and entry.until == 1000.0 + 100 * COOLDOWN
    assert entry.reason == "QuotaExhaustedError" and entry.status == 429


def test_quota_is_not_escalated(clock: ManualClock) -> None:
    cd = _cooldowns(clock)
    first = _fail_and_recover(cd, clock, QuotaExhaustedError("q", status=429))
    second = _fail_and_recover(cd, clock, QuotaExhaustedError("q", status=429))
    assert second.times == 2
    assert first.until - first.started == second.until - second.started == 12 * COOLDOWN


def test_zero_cooldown_time_never_cools(clock: ManualClock) -> None:
    cd = Cooldowns(clock, allowed_fails=0, cooldown_time=0.0)
    assert cd.record_failure("d1", ServerError("x")) is None
    assert cd.record_failure("d1", AuthenticationError("x", status=401)) is None
    assert cd.active() == []


@pytest.mark.parametrize(("options", "message"), [
    ({"max_cooldown_time": 1.0}, "max_cooldown_time"),
    ({"jitter": 1.0}, "jitter"),
    ({"jitter": -0.1}, "jitter"),
])
def test_invalid_options_are_refused(clock: ManualClock, options: dict[str, Any],
                                     message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _cooldowns(clock, **options)


# -- what an entry says -----------------------------------------------------------------------


def test_entry_carries_wall_time_reason_status_times_and_start(clock: ManualClock) -> None:
    cd = _cooldowns(clock, allowed_fails=0)
    clock.advance(2.0)
    entry = cd.record_failure("d1", ServiceUnavailableError("down", status=503))
    assert entry is not None
    assert entry.deployment_id == "d1"
    assert entry.until == 1002.0 + COOLDOWN
    assert entry.until_wall == clock.wall() + COOLDOWN
    assert (entry.reason, entry.status, entry.times) == ("ServiceUnavailableError", 503, 1)
    assert entry.started == 1002.0
    assert entry.origin is None


def test_an_extension_keeps_the_start_and_the_count(clock: ManualClock) -> None:
    cd = _cooldowns(clock)
    cd.record_failure("d1", RateLimitError("x", status=429, retry_after=5.0))
    clock.advance(1)
    longer = cd.record_failure("d1", RateLimitError("x", status=429, retry_after=50.0))
    assert longer is not None
    assert (longer.started, longer.times, longer.until) == (1000.0, 1, 1051.0)


def test_transport_errors_have_no_status(clock: ManualClock) -> None:
    cd = _cooldowns(clock, allowed_fails=0)
    entry = cd.record_failure("d1", ConnectionError("cut"))
    assert entry is not None and entry.status is None and entry.reason == "ConnectionError"


# -- soonest (panic mode) ----------------------------------------------------------------------


def test_soonest_names_the_first_to_recover_among_the_given(clock: ManualClock) -> None:
    cd = _cooldowns(clock)
    ds = _deployments("a", "b", "c")
    assert cd.soonest(ds) is None
    cd.record_failure("a", RateLimitError("x", status=429, retry_after=30.0))
    cd.record_failure("b", RateLimitError("x", status=429, retry_after=10.0))
    cd.record_failure("other", RateLimitError("x", status=429, retry_after=1.0))
    soonest = cd.soonest(ds)
    assert soonest is not None and soonest.deployment_id == "b"
    clock.advance(10.5)
    soonest = cd.soonest(ds)
    assert soonest is not None and soonest.deployment_id == "a"
    clock.advance(20)
    assert cd.soonest(ds) is None


# -- listeners -----------------------------------------------------------------------------------


def test_on_cooldown_sees_new_and_extended_cooldowns_only(clock: ManualClock) -> None:
    seen: list[CooldownEntry] = []
    cd = _cooldowns(clock, allowed_fails=1, on_cooldown=seen.append)
    cd.record_failure("d1", ServerError("x"))  # counted, below allowed_fails
    assert seen == []
    first = cd.record_failure("d1", RateLimitError("x", status=429, retry_after=10.0))
    same = cd.record_failure("d1", RateLimitError("x", status=429, retry_after=3.0))
    longer = cd.record_failure("d1", RateLimitError("x", status=429, retry_after=20.0))
    cd.record_failure("d1", BadRequestError("bad", status=400))
    assert seen == [first, longer]
    assert same == first


def test_a_failing_listener_is_logged_and_does_not_stop_the_others(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[str] = []

    def broken(entry: CooldownEntry) -> None:
        raise RuntimeError("listener bug")

    cd = _cooldowns(clock, on_cooldown=broken)
    cd.listen(lambda e: seen.append(e.deployment_id))
    with caplog.at_level(logging.ERROR, logger="router.cooldown"):
        entry = cd.record_failure("d1", RateLimitError("x", status=429))
    assert entry is not None and cd.get("d1") == entry
    assert seen == ["d1"]
    assert "listener" in caplog.text


# -- merging cooldowns recorded elsewhere ---------------------------------------------------------


def _remote(deployment_id: str, until: float, *, times: int = 1) -> CooldownEntry:
    return CooldownEntry(deployment_id=deployment_id, until=until, until_wall=until + 1e9,
                         reason="ServerError", status=500, times=times, started=until - 5,
                         origin="router-b")


def test_merge_applies_and_extends_but_never_shortens(clock: ManualClock) -> None:
    seen: list[CooldownEntry] = []
    cd = _cooldowns(clock, on_cooldown=seen.append)
    ds = _deployments("d1", "d2")
    applied = cd.merge(_remote("d1", 1010.0))
    assert applied is not None and cd.get("d1") == applied
    assert [d.id for d in cd.available(ds)] == ["d2"]
    assert cd.merge(_remote("d1", 1005.0)) is None
    longer = cd.merge(_remote("d1", 1020.0))
    assert longer is not None and cd.get("d1") == longer
    assert seen == [applied, longer]
    assert all(e.origin == "router-b" for e in seen)


def test_merge_ignores_ended_entries_and_does_not_shorten_local_ones(clock: ManualClock) -> None:
    cd = _cooldowns(clock)
    assert cd.merge(_remote("d1", 999.0)) is None
    local = cd.record_failure("d1", RateLimitError("x", status=429, retry_after=60.0))
    assert cd.merge(_remote("d1", 1030.0)) is None
    assert cd.get("d1") == local


def test_merged_count_carries_into_local_escalation(clock: ManualClock) -> None:
    cd = _cooldowns(clock, allowed_fails=0)
    cd.merge(_remote("d1", 1001.0, times=4))
    clock.advance(1.5)
    entry = cd.record_failure("d1", ServerError("x"))
    assert entry is not None and entry.times == 5


def test_disabled_ignores_merges(clock: ManualClock) -> None:
    cd = _cooldowns(clock, disabled=True)
    assert cd.merge(_remote("d1", 1010.0)) is None
    assert cd.active() == []
