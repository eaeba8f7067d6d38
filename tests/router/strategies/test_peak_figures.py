"""The ``peak-ewma`` strategy's own figures (router/strategies/peak_figures.py), fed
by a load tracker's samples on a ManualClock."""

from __future__ import annotations

import math
import statistics

import pytest

from router.clock import ManualClock
from router.load import LoadTracker, SharedFigures
from router.strategies.peak_figures import PeakFigures

TAU = 10.0


def _served(load: LoadTracker, clock: ManualClock, seconds: float, dep: str = "d1") -> None:
    """One request on ``dep`` that succeeds after ``seconds``."""
    handle = load.acquire(dep)
    clock.advance(seconds)
    handle.release(ok=True)


def test_a_timeout_is_a_peak_sample_replaced_at_once() -> None:
    clock = ManualClock()
    load = LoadTracker(clock)
    peak = PeakFigures(load, decay=TAU, probe=math.inf, cold=1)
    handle = load.acquire("d1")
    clock.advance(7.0)
    handle.release(ok=False, timed_out=True)
    assert peak.peak_latency("d1") == pytest.approx(7.0)  # a fresh deployment: its elapsed time
    _served(load, clock, 1.0)
    handle = load.acquire("d1")
    clock.advance(30.0)
    handle.release(timed_out=True)
    assert peak.peak_latency("d1") == pytest.approx(30.0)  # a peak: replaced at once


def test_a_stream_sample_is_its_first_token() -> None:
    clock = ManualClock()
    load = LoadTracker(clock)
    peak = PeakFigures(load, decay=TAU, probe=math.inf, cold=1)
    handle = load.acquire("d1")
    clock.advance(0.5)
    handle.first_token()
    marked = clock.now()
    clock.advance(20.0)  # how fast the caller read: not the deployment's
    handle.release(ok=True)
    assert peak.peak_latency("d1", marked) == pytest.approx(0.5)


def test_other_failures_feed_nothing_and_a_bad_decay_is_named() -> None:
    clock = ManualClock()
    load = LoadTracker(clock)
    peak = PeakFigures(load, decay=TAU, probe=math.inf, cold=1)
    handle = load.acquire("d1")
    clock.advance(1.0)
    handle.release(ok=False)
    assert peak.peak_latency("d1") is None and peak.expected_latency("d1", 0.0) is None
    with pytest.raises(ValueError, match="decay must be > 0"):
        PeakFigures(load, decay=0)


# --- peak EWMA and drain time -----------------------------------------------------------


def test_peak_jumps_up_at_once_and_decays_toward_lower_samples() -> None:
    clock = ManualClock()
    load = LoadTracker(clock)
    peak = PeakFigures(load, decay=TAU, probe=math.inf, cold=1)
    _served(load, clock, 1.0)
    assert peak.peak_latency("d1") == pytest.approx(1.0)
    _served(load, clock, 3.0)
    assert peak.peak_latency("d1") == pytest.approx(3.0)
    _served(load, clock, 1.0)  # 1 s later: e^-0.1 = 0.90, but at least alpha (0.3) of the way
    assert peak.peak_latency("d1") == pytest.approx(1.0 + 2.0 * 0.7)


def test_peak_decays_by_elapsed_time_not_by_sample_count() -> None:
    clock = ManualClock()
    load = LoadTracker(clock)
    peak = PeakFigures(load, decay=TAU, probe=math.inf, cold=1)
    _served(load, clock, 3.0)
    clock.advance(2 * TAU)
    _served(load, clock, 1.0)  # 2 tau + 1 s after the previous sample
    assert peak.peak_latency("d1") == pytest.approx(1.0 + 2.0 * math.exp(-(2 * TAU + 1) / TAU))


def test_idle_peak_reads_decayed_toward_zero_busy_does_not() -> None:
    clock = ManualClock()
    load = LoadTracker(clock)
    peak = PeakFigures(load, decay=TAU, probe=math.inf, cold=1)
    _served(load, clock, 2.0)
    clock.advance(TAU)
    assert peak.peak_latency("d1") == pytest.approx(2.0 * math.exp(-1))
    later = clock.now() + TAU
    assert peak.peak_latency("d1", later) == pytest.approx(2.0 * math.exp(-2))
    handle = load.acquire("d1")  # something in flight: it is being measured again
    assert peak.peak_latency("d1") == pytest.approx(2.0)
    handle.release(ok=False)


def test_drain_time_moves_toward_latency_over_the_requests_in_flight_at_start() -> None:
    clock = ManualClock()
    load = LoadTracker(clock)
    peak = PeakFigures(load, decay=TAU, probe=math.inf, cold=1)
    handles = [load.acquire("d1") for _ in range(4)]
    clock.advance(2.0)
    for h in handles:
        h.release()
    # Samples 2/1 (the first: taken as is), then 2/2, 2/3, 2/4, each lower: alpha of the way.
    drain = 2.0
    for flight in (2, 3, 4):
        drain += 0.3 * (2.0 / flight - drain)
    assert peak.drain_time("d1") == pytest.approx(drain)
    # None of them queued (2 s each): the service time stays 2 s.
    assert peak.service_time("d1") == pytest.approx(2.0)


def test_a_one_off_slow_first_answer_is_not_taken_as_serial_for_long() -> None:
    """A first answer slowed by opening the connection must not make it look serial."""
    clock = ManualClock()
    load = LoadTracker(clock)
    peak = PeakFigures(load, decay=TAU, probe=math.inf, cold=1)
    _served(load, clock, 0.5)  # connection set-up: 10x the usual 0.05 s
    pipeline = [load.acquire("d1") for _ in range(4)]
    for _ in range(40):  # 4 at a time at 0.05 s each: 2 s of traffic
        clock.advance(0.0125)
        pipeline.pop(0).release()
        pipeline.append(load.acquire("d1"))
    assert peak.drain_time("d1") == pytest.approx(0.0125, rel=0.05)
    assert peak.peak_latency("d1") == pytest.approx(0.05, rel=0.05)
    for h in pipeline:
        h.release(ok=False)


def test_drain_time_learns_the_throughput_of_a_busy_deployment() -> None:
    clock = ManualClock()
    load = LoadTracker(clock)
    peak = PeakFigures(load, decay=TAU, probe=math.inf, cold=1)
    # Every 0.5 s one request ends and one starts; each takes 2 s, so each
    # starts with three others in flight: 4 at a time, 0.5 s per request.
    pipeline = []
    for _ in range(4):
        pipeline.append(load.acquire("d1"))
        clock.advance(0.5)
    for _ in range(20 * int(TAU)):  # 10 decay times
        pipeline.pop(0).release()
        pipeline.append(load.acquire("d1"))
        clock.advance(0.5)
    assert peak.peak_latency("d1") == pytest.approx(2.0)
    assert peak.drain_time("d1") == pytest.approx(0.5, rel=0.01)
    # 4 in flight at parallelism 4: 2 s x 5/4 (the queue) x 1.5 (the hedge, at its most)
    assert peak.expected_latency("d1", clock.now()) == pytest.approx(2.0 * 1.25 * 1.5, rel=0.01)


def test_a_deployment_not_loaded_yet_is_tried_one_request_further() -> None:
    clock = ManualClock()
    load = LoadTracker(clock)
    peak = PeakFigures(load, decay=TAU, probe=math.inf, cold=1)
    _served(load, clock, 1.0)  # alone: drain 1 s, parallelism 1
    _served(load, clock, 1.0)  # alone again, not queued: parallelism nudged toward 2
    assert peak.drain_time("d1") == pytest.approx(1.0 + 0.3 * (0.5 - 1.0))


def test_drain_time_counts_shared_in_flight_when_larger() -> None:
    clock = ManualClock()
    load = LoadTracker(clock)
    peak = PeakFigures(load, decay=TAU, probe=math.inf, cold=1)
    load.merge_shared({"d1": SharedFigures(in_flight=3, requests=0, tokens=0)})
    _served(load, clock, 2.0)
    assert peak.drain_time("d1") == pytest.approx(0.5)  # 2 s / (3 others + itself)


def test_expected_latency() -> None:
    clock = ManualClock()
    load = LoadTracker(clock)
    peak = PeakFigures(load, decay=TAU, probe=math.inf, cold=1)
    assert peak.expected_latency("d1", clock.now()) is None
    _served(load, clock, 1.0)  # peak 1, drain 1 (alone in flight): parallelism 1
    now = clock.now()
    assert peak.expected_latency("d1", now) == pytest.approx(1.0)
    held = [load.acquire("d1") for _ in range(3)]
    # 3 ahead of it, one at a time: the queue (x 4) and the hedge at its most (x 1.5).
    assert peak.expected_latency("d1", now) == pytest.approx(1.0 * 4 * 1.5)
    # A known capacity is a floor of the parallelism.
    assert peak.expected_latency("d1", now, capacity=8) == pytest.approx(1.0 + 0.5 * 3 / 8)
    assert peak.expected_latency("d1", now, capacity=2) == pytest.approx(2 * 1.5)
    for h in held:
        h.release(ok=False)
    assert peak.expected_latency("d1", now + TAU) == pytest.approx(math.exp(-1))


def test_expected_latency_is_at_least_the_oldest_wait() -> None:
    clock = ManualClock()
    load = LoadTracker(clock)
    peak = PeakFigures(load, decay=TAU, probe=math.inf, cold=1)
    _served(load, clock, 1.0)
    held = load.acquire("d1")
    clock.advance(5.0)  # waited 5 s where 1 s is usual
    assert peak.expected_latency("d1", clock.now()) == pytest.approx(5.0)
    held.release(ok=False)


def test_an_overtaken_slow_answer_moves_the_peak_by_alpha_only() -> None:
    """A late answer that a younger request beat says little about the deployment."""
    clock = ManualClock()
    load = LoadTracker(clock)
    peak = PeakFigures(load, decay=TAU, probe=math.inf, cold=1)
    _served(load, clock, 1.0)
    late = load.acquire("d1")  # its answer will be read late
    clock.advance(0.1)
    young = load.acquire("d1")  # started later, answered first, as usual
    clock.advance(1.0)
    young.release(ok=True)
    before = peak.peak_latency("d1")
    service, drain = peak.service_time("d1"), peak.drain_time("d1")
    assert before is not None and before <= 1.0
    clock.advance(3.0)
    late.release(ok=True)  # 4.1 s, overtaken
    assert peak.peak_latency("d1") == pytest.approx(before + 0.3 * (4.1 - before))  # not 4.1
    assert (peak.service_time("d1"), peak.drain_time("d1")) == (service, drain)
    # The same slow answer, not overtaken (nobody younger answered), jumps at once.
    alone = load.acquire("d1")
    clock.advance(4.1)
    alone.release(ok=True)
    assert peak.peak_latency("d1") == pytest.approx(4.1)


def test_an_overtaken_waiting_request_no_longer_bounds_the_cost() -> None:
    clock = ManualClock()
    load = LoadTracker(clock)
    peak = PeakFigures(load, decay=TAU, probe=math.inf, cold=1)
    _served(load, clock, 1.0)
    long = load.acquire("d1")  # a long answer
    clock.advance(0.5)
    young = load.acquire("d1")
    clock.advance(1.0)
    young.release(ok=True)  # started 0.5 s after the long one, answered in 1 s
    clock.advance(3.5)
    # The long one has waited 5 s, but a request started after it has
    # answered: its wait is its own, and the cost stays near the peak.
    assert peak.expected_latency("d1", clock.now()) < 2.5
    clock.advance(100.0)  # however long it goes on
    assert peak.expected_latency("d1", clock.now()) < 2.5
    later = load.acquire("d1")  # not overtaken: it bounds the cost as it waits
    clock.advance(6.0)
    assert peak.expected_latency("d1", clock.now()) == pytest.approx(6.0)
    for h in (long, later):
        h.release(ok=False)


def test_a_request_started_at_the_same_instant_as_an_answered_one_still_waits() -> None:
    clock = ManualClock()
    load = LoadTracker(clock)
    peak = PeakFigures(load, decay=TAU, probe=math.inf, cold=1)
    _served(load, clock, 1.0)
    stuck, quick = load.acquire("d1"), load.acquire("d1")  # the same instant
    clock.advance(1.0)
    quick.release(ok=True)
    clock.advance(5.0)
    # Not overtaken (nobody started after it has answered): its 6 s bound the cost.
    assert peak.expected_latency("d1", clock.now()) == pytest.approx(6.0)
    stuck.release(ok=False)


def _mixed(slow_every: int | None, rounds: int = 60) -> float:
    """Median cost, read after each pair of answers, of a 20 ms deployment where every
    ``slow_every``-th request takes 200 ms and is overtaken (one sent just after it
    answers first); ``None``: never."""
    clock = ManualClock()
    load = LoadTracker(clock)
    peak = PeakFigures(load, decay=TAU, probe=math.inf, cold=1)
    costs = []
    for i in range(rounds):
        first = load.acquire("d1")
        clock.advance(0.001)
        second = load.acquire("d1")
        clock.advance(0.020)
        second.release(ok=True)
        if slow_every is not None and i % slow_every == 0:
            clock.advance(0.180)
        first.release(ok=True)
        clock.advance(0.010)
        cost = peak.expected_latency("d1", clock.now())
        assert cost is not None
        costs.append(cost)
    return statistics.median(costs[10:])


def test_overtaken_slow_answers_count_once_they_are_not_rare() -> None:
    """One late read in a while is the request's own; a fifth of the answers slow is the
    deployment's tail (a slow replica behind it) and shows in its cost at once."""
    clean = _mixed(None)
    assert _mixed(60) < 1.5 * clean  # once in 60 answers: damped
    assert _mixed(5) > 3 * clean  # every fifth: counted




def test_cold_answers_keep_the_lowest_and_are_probed_one_at_a_time() -> None:
    clock = ManualClock()
    load = LoadTracker(clock)
    peak = PeakFigures(load, decay=TAU, probe=math.inf, cold=3)
    _served(load, clock, 2.0)  # a connection being opened
    assert peak.expected_latency("d1", clock.now()) == 0.0  # cold and idle: probe it
    held = load.acquire("d1")
    assert peak.expected_latency("d1", clock.now()) is None  # the probe is out: stand-in
    clock.advance(0.3)
    held.release(ok=True)
    _served(load, clock, 0.1)
    assert peak.peak_latency("d1") == pytest.approx(0.1)  # the lowest, not the worst
    assert peak.expected_latency("d1", clock.now()) == pytest.approx(0.1)  # 3 answers: settled
    _served(load, clock, 1.0)
    assert peak.peak_latency("d1") == pytest.approx(1.0)  # settled: a peak again


@pytest.mark.parametrize("overtaken", [False, True])
def test_a_burst_sent_before_the_first_answer_is_cold_however_late_it_answers(
    overtaken: bool,
) -> None:
    """A burst at start opens a connection per request; the slowest of those answers
    come after several quick ones and must not brand the deployment as slow, also when
    they were sent first (so the quick ones overtook them)."""
    clock = ManualClock()
    load = LoadTracker(clock)
    peak = PeakFigures(load, decay=TAU, probe=math.inf, cold=3)
    slow = [load.acquire("d1") for _ in range(2)] if overtaken else []
    clock.advance(0.001 if overtaken else 0.0)
    quick = [load.acquire("d1") for _ in range(4)]
    slow = slow or [load.acquire("d1") for _ in range(2)]
    for handle in quick:  # four answer quickly: already more than ``cold``
        clock.advance(0.025)
        handle.release(ok=True)
    clock.advance(0.4)
    for handle in slow:  # the two that opened connections, 0.5 s after the burst
        handle.release(ok=True)
    assert peak.peak_latency("d1") == pytest.approx(0.025)
    for _ in range(3):
        _served(load, clock, 0.5)  # sent after the first answer: it is slow now
    assert peak.peak_latency("d1") == pytest.approx(0.5)


def test_with_one_cold_answer_a_late_burst_answer_counts() -> None:
    clock = ManualClock()
    load = LoadTracker(clock)
    peak = PeakFigures(load, decay=TAU, probe=math.inf, cold=1)
    quick, late = load.acquire("d1"), load.acquire("d1")
    clock.advance(0.025)
    quick.release(ok=True)
    clock.advance(0.475)
    late.release(ok=True)
    # It counts, less its queue: sent second to a deployment learned serial.
    assert peak.peak_latency("d1") == pytest.approx(0.5 / 2)


def test_an_idle_deployment_is_probed_after_probe_seconds_without_a_request() -> None:
    clock = ManualClock()
    load = LoadTracker(clock)
    peak = PeakFigures(load, decay=TAU, probe=3.0, cold=1)
    _served(load, clock, 1.0)  # sent 1 s ago
    clock.advance(1.9)
    assert peak.expected_latency("d1", clock.now()) == pytest.approx(math.exp(-0.19))
    clock.advance(0.1)
    assert peak.expected_latency("d1", clock.now()) == 0.0
    held = load.acquire("d1")  # one probe out: its figures count again
    # one request there, learned serial (1 s alone): queued behind it, plus the hedge
    assert peak.expected_latency("d1", clock.now()) == pytest.approx(1.0 * 2 * 1.5)
    held.release(ok=True)
    with pytest.raises(ValueError, match="probe"):
        PeakFigures(load, decay=TAU, probe=0.0)


def test_parallelism_is_never_below_one() -> None:
    # A slow-down seen with two in flight raised the drain time above the
    # service time; taken as a parallelism below 1 it froze the service time.
    clock = ManualClock()
    load = LoadTracker(clock)
    peak = PeakFigures(load, decay=TAU, probe=math.inf, cold=1)
    _served(load, clock, 0.1)
    for _ in range(30):
        first, second = load.acquire("d1"), load.acquire("d1")
        clock.advance(1.0)
        first.release(ok=True)
        second.release(ok=True)
    for _ in range(30):
        _served(load, clock, 1.0)
    service = peak.service_time("d1")
    assert service is not None and service > 0.9
