"""In-flight counts and latency tied to the request's lifetime (router/load.py)."""

from __future__ import annotations

import pytest

from router.clock import ManualClock
from router.load import LoadTracker


def test_acquire_and_release_count_in_flight() -> None:
    load = LoadTracker(ManualClock())
    assert load.in_flight("d1") == 0
    h1 = load.acquire("d1")
    h2 = load.acquire("d1")
    h3 = load.acquire("d2")
    assert (load.in_flight("d1"), load.in_flight("d2"), load.total_in_flight()) == (2, 1, 3)
    h1.release()
    assert load.in_flight("d1") == 1
    h2.release(ok=False)
    h3.release()
    assert (load.in_flight("d1"), load.in_flight("d2"), load.total_in_flight()) == (0, 0, 0)


def test_release_is_idempotent() -> None:
    load = LoadTracker(ManualClock())
    keep = load.acquire("d1")
    handle = load.acquire("d1")
    handle.release()
    handle.release()
    handle.release(ok=False)
    assert load.in_flight("d1") == 1
    keep.release()
    assert load.in_flight("d1") == 0


def test_latency_is_an_ewma_of_successes_only() -> None:
    clock = ManualClock()
    load = LoadTracker(clock)
    assert load.latency("d1") is None

    handle = load.acquire("d1")
    clock.advance(2.0)
    handle.release(ok=True)
    assert load.latency("d1") == pytest.approx(2.0)

    handle = load.acquire("d1")
    clock.advance(1.0)
    handle.release(ok=True)
    assert load.latency("d1") == pytest.approx(2.0 + 0.3 * (1.0 - 2.0))

    failed = load.acquire("d1")
    clock.advance(60.0)
    failed.release(ok=False)
    assert load.latency("d1") == pytest.approx(1.7)
    # a second release of a successful handle does not add a sample
    handle.release(ok=True)
    assert load.latency("d1") == pytest.approx(1.7)


def test_failure_alone_records_no_latency() -> None:
    clock = ManualClock()
    load = LoadTracker(clock)
    handle = load.acquire("d1")
    clock.advance(3)
    handle.release(ok=False)
    assert load.latency("d1") is None


def test_latency_is_measured_from_acquire() -> None:
    clock = ManualClock()
    load = LoadTracker(clock)
    clock.advance(100)
    handle = load.acquire("d1")
    clock.advance(0.5)
    handle.release()
    assert load.latency("d1") == pytest.approx(0.5)
