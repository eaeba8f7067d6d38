"""The circuit breaker shared by the Redis-backed components (router/state/breaker.py)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import pytest

from router.clock import ManualClock
from router.state.breaker import Breaker, Held

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


# --------------------------------------------------------------------------- guard


async def _hang() -> str:
    await asyncio.Event().wait()  # a frozen Redis: never answers
    return "never"


async def test_a_trip_releases_every_waiting_call_at_once() -> None:
    """Five calls hang on a frozen store; one fails: all five fall back together,
    long before their own deadline (an hour here)."""
    breaker = Breaker(ManualClock(), 5.0, what="the store", log=LOG, deadline=3600.0)
    waiting = [asyncio.create_task(breaker.guard(_hang, "fallback")) for _ in range(5)]
    await asyncio.sleep(0)
    assert not any(t.done() for t in waiting)

    async def refused() -> str:
        raise ConnectionError("refused")

    assert await breaker.guard(refused, "fallback") == "fallback"
    done, pending = await asyncio.wait(waiting, timeout=5.0)
    assert pending == set()
    assert [t.result() for t in done] == ["fallback"] * 5
    assert breaker.degraded


async def test_the_deadline_bounds_a_call_and_trips() -> None:
    breaker = Breaker(ManualClock(), 5.0, what="the store", log=LOG, deadline=0.01)
    assert await breaker.guard(_hang, "fallback") == "fallback"
    assert breaker.degraded and not breaker.allows()


async def test_half_open_lets_one_probe_through_at_a_time() -> None:
    clock = ManualClock()
    breaker = Breaker(clock, 5.0, what="the store", log=LOG, deadline=3600.0)
    breaker.trip(ConnectionError("down"))
    clock.advance(5.0)
    gate = asyncio.Event()
    calls = 0

    async def slow_ok() -> str:
        nonlocal calls
        calls += 1
        await gate.wait()
        return "redis"

    probe = asyncio.create_task(breaker.guard(slow_ok, "fallback"))
    await asyncio.sleep(0)
    # while the probe is out, the others use the fallback without touching the store
    assert [await breaker.guard(slow_ok, "fallback") for _ in range(3)] == ["fallback"] * 3
    assert calls == 1
    gate.set()
    assert await probe == "redis"
    assert not breaker.degraded
    assert await breaker.guard(slow_ok, "fallback") == "redis"  # closed: everyone goes


def test_a_trip_on_one_event_loop_releases_the_waiters_of_another() -> None:
    """The sync twins run their own loop in a thread; one Redis, one breaker for both."""
    breaker = Breaker(ManualClock(), 5.0, what="the store", log=LOG, deadline=3600.0)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        waiting = asyncio.run_coroutine_threadsafe(breaker.guard(_hang, "fallback"), loop)
        deadline = time.monotonic() + 5.0
        while not breaker._waiting and time.monotonic() < deadline:
            time.sleep(0.01)  # until the other loop's call is waiting

        async def fail_here() -> None:
            async def refused() -> str:
                raise ConnectionError("refused")
            assert await breaker.guard(refused, "fallback") == "fallback"

        asyncio.run(fail_here())
        assert waiting.result(timeout=5.0) == "fallback"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5.0)
        loop.close()


async def test_a_caller_cancelled_during_a_guarded_call_stays_cancelled() -> None:
    breaker = Breaker(ManualClock(), 5.0, what="the store", log=LOG, deadline=3600.0)
    call = asyncio.create_task(breaker.guard(_hang, "fallback"))
    await asyncio.sleep(0)
    call.cancel()  # the request itself is cancelled: not a Redis failure
    with pytest.raises(asyncio.CancelledError):
        await call
    assert not breaker.degraded and breaker._waiting == {}


async def test_a_hold_below_the_deadline_is_not_a_failure() -> None:
    breaker = Breaker(ManualClock(), 5.0, what="the store", log=LOG, deadline=3600.0)
    with pytest.raises(Held):
        await breaker.guard(_hang, "fallback", hold=0.01)
    assert not breaker.degraded
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]
