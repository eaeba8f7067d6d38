"""The circuit breaker shared by the Redis-backed components (router/state/breaker.py)."""

from __future__ import annotations

import logging

import pytest

from router.clock import ManualClock
from router.state.breaker import Breaker

LOG = logging.getLogger("router.test_breaker")


def test_opens_for_the_interval_and_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    clock = ManualClock()
    breaker = Breaker(clock, 5.0, what="the store", log=LOG)
    assert breaker.allows() and not breaker.degraded
    with caplog.at_level(logging.WARNING, logger=LOG.name):
        breaker.trip(ConnectionError("x"))
        breaker.trip(ConnectionError("y"))
    assert [r.getMessage() for r in caplog.records] == [
        "the store failed (ConnectionError); using local state, retrying every 5s"]
    assert not breaker.allows()
    clock.advance(5.0)
    assert breaker.allows() and breaker.degraded  # may probe; still degraded until a success


def test_only_a_call_begun_after_the_last_failure_closes_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    breaker = Breaker(ManualClock(), 5.0, what="the store", log=LOG)
    before = breaker.epoch  # a call starts...
    breaker.trip(TimeoutError())  # ...another one fails meanwhile
    breaker.succeeded(before)  # the first one's late success proves nothing
    assert breaker.degraded
    after = breaker.epoch
    with caplog.at_level(logging.WARNING, logger=LOG.name):
        breaker.succeeded(after)
    assert not breaker.degraded
    assert caplog.records[-1].getMessage() == "the store answers again"
