"""Load figures tied to the request's lifetime (router/load.py).

Time is a ManualClock everywhere except in ``wait_for_release``, whose
timeout is real time by contract (only its outcome is asserted, never how
long it took).
"""

from __future__ import annotations

import asyncio
import math
import statistics
import threading

import pytest

from router.clock import ManualClock
from router.cost import TokenUsage
from router.errors import ServerError, UpstreamTimeoutError
from router.load import DeploymentLoad, LoadTracker, MinuteUsage, SharedFigures

TAU = 10.0


def _served(
    load: LoadTracker, clock: ManualClock, seconds: float, dep: str = "d1", *,
    output_tokens: int | None = None, total_tokens: int | None = None,
) -> None:
    """One request on ``dep`` that succeeds after ``seconds``."""
    handle = load.acquire(dep)
    clock.advance(seconds)
    handle.release(ok=True, output_tokens=output_tokens, total_tokens=total_tokens)


# --- in flight --------------------------------------------------------------------------


def test_acquire_and_release_count_in_flight() -> None:
    load = LoadTracker(ManualClock())
    assert load.in_flight("d1") == 0
    h1 = load.acquire("d1")
    h2 = load.acquire("d1")
    h3 = load.acquire("d2")
    assert (load.in_flight("d1"), load.in_flight("d2"), load.total_in_flight()) == (2, 1, 3)
    assert (h1.deployment_id, h3.deployment_id) == ("d1", "d2")
    h1.release()
    assert load.in_flight("d1") == 1
    h2.release(ok=False)
    h3.release(timed_out=True)
    assert (load.in_flight("d1"), load.in_flight("d2"), load.total_in_flight()) == (0, 0, 0)


def test_release_is_idempotent() -> None:
    load = LoadTracker(ManualClock())
    keep = load.acquire("d1")
    handle = load.acquire("d1")
    assert not handle.released
    handle.release()
    handle.release()
    handle.release(ok=False, total_tokens=100, timed_out=True)
    assert handle.released
    assert load.in_flight("d1") == 1
    assert load.usage("d1").tokens == 0  # the extra releases added nothing
    keep.release()
    assert load.in_flight("d1") == 0


async def test_a_cancelled_request_gives_its_slot_back_once() -> None:
    load = LoadTracker(ManualClock())
    started = asyncio.Event()

    async def request() -> None:
        handle = load.acquire("d1")
        try:
            started.set()
            await asyncio.Event().wait()  # never set: only cancellation ends it
        finally:
            handle.release(ok=False)
            handle.release(ok=False)

    task = asyncio.create_task(request())
    await started.wait()
    assert load.in_flight("d1") == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert load.in_flight("d1") == 0
    assert load.latency("d1") is None


def test_counters_do_not_drift_across_threads() -> None:
    load = LoadTracker(ManualClock())

    def churn() -> None:
        for _ in range(5000):
            load.acquire("d1").release(total_tokens=1)

    threads = [threading.Thread(target=churn) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert load.in_flight("d1") == 0
    assert load.usage("d1") == MinuteUsage(requests=20000, tokens=20000)


# --- latency, per token, TTFT -----------------------------------------------------------


def test_latency_is_an_ewma_of_successes_only() -> None:
    clock = ManualClock()
    load = LoadTracker(clock)
    assert load.latency("d1") is None
    _served(load, clock, 2.0)
    assert load.latency("d1") == pytest.approx(2.0)
    handle = load.acquire("d1")
    clock.advance(1.0)
    handle.release(ok=True)
    assert load.latency("d1") == pytest.approx(2.0 + 0.3 * (1.0 - 2.0))

    failed = load.acquire("d1")
    clock.advance(60.0)
    failed.release(ok=False)
    assert load.latency("d1") == pytest.approx(1.7)
    handle.release(ok=True)  # a second release adds no sample
    assert load.latency("d1") == pytest.approx(1.7)


def test_failure_alone_records_no_latency() -> None:
    clock = ManualClock()
    load = LoadTracker(clock)
    handle = load.acquire("d1")
    clock.advance(3)
    handle.release(ok=False)
    snap = load.snapshot("d1")
    assert (snap.latency, snap.latency_per_token, snap.ttft, snap.peak_latency) == (
        None, None, None, None)


def test_latency_is_measured_from_acquire() -> None:
    clock = ManualClock()
    load = LoadTracker(clock)
    clock.advance(100)
    _served(load, clock, 0.5)
    assert load.latency("d1") == pytest.approx(0.5)


def test_alpha_is_configurable() -> None:
    clock = ManualClock()
    load = LoadTracker(clock, alpha=0.5)
    _served(load, clock, 2.0)
    _served(load, clock, 4.0)
    assert load.latency("d1") == pytest.approx(3.0)


def test_latency_per_output_token() -> None:
    clock = ManualClock()
    load = LoadTracker(clock)
    _served(load, clock, 2.0, output_tokens=100)
    assert load.latency_per_token("d1") == pytest.approx(0.02)
    _served(load, clock, 1.0, output_tokens=10)
    assert load.latency_per_token("d1") == pytest.approx(0.02 + 0.3 * (0.1 - 0.02))


def test_latency_per_token_without_a_token_count_is_the_latency() -> None:
    clock = ManualClock()
    load = LoadTracker(clock)
    _served(load, clock, 2.0)
    assert load.latency_per_token("d1") == pytest.approx(2.0)
    _served(load, clock, 2.0, dep="d2", output_tokens=0)
    assert load.latency_per_token("d2") == pytest.approx(2.0)


def test_ttft_is_marked_once_per_stream() -> None:
    clock = ManualClock()
    load = LoadTracker(clock)
    assert load.ttft("d1") is None
    handle = load.acquire("d1")
    clock.advance(0.4)
    handle.first_token()
    marked = clock.now()
    clock.advance(1.0)
    handle.first_token()  # later calls are no-ops
    assert load.ttft("d1") == pytest.approx(0.4)
    clock.advance(5.0)
    handle.release(ok=True, output_tokens=100)
    assert load.ttft("d1") == pytest.approx(0.4)
    assert load.latency("d1") == pytest.approx(6.4)
    # A stream's duration depends on its reader: it feeds neither per-token nor peak.
    assert load.latency_per_token("d1") is None
    assert load.peak_latency("d1", marked) == pytest.approx(0.4)

    second = load.acquire("d1")
    clock.advance(0.2)
    second.first_token()
    assert load.ttft("d1") == pytest.approx(0.4 + 0.3 * (0.2 - 0.4))


def test_first_token_after_release_is_ignored() -> None:
    clock = ManualClock()
    load = LoadTracker(clock)
    handle = load.acquire("d1")
    clock.advance(1.0)
    handle.release(ok=False)
    handle.first_token()
    assert load.ttft("d1") is None


# --- timeouts ---------------------------------------------------------------------------


def test_timeout_feeds_a_penalty_of_twice_the_ewma_when_that_is_larger() -> None:
    clock = ManualClock()
    load = LoadTracker(clock)
    _served(load, clock, 1.0)
    handle = load.acquire("d1")
    clock.advance(0.5)  # a short deadline: elapsed says little
    handle.release(ok=False, timed_out=True)
    assert load.latency("d1") == pytest.approx(1.0 + 0.3 * (2.0 - 1.0))
    assert load.in_flight("d1") == 0


def test_timeout_feeds_the_elapsed_time_when_that_is_larger() -> None:
    clock = ManualClock()
    load = LoadTracker(clock)
    _served(load, clock, 1.0)
    handle = load.acquire("d1")
    clock.advance(30.0)
    handle.release(timed_out=True)  # timed_out wins over the default ok=True
    assert load.latency("d1") == pytest.approx(1.0 + 0.3 * (30.0 - 1.0))
    assert load.peak_latency("d1") == pytest.approx(30.0)  # a peak: replaced at once
    assert load.ttft("d1") == pytest.approx(30.0)  # no first token came either


def test_timeout_of_a_fresh_deployment_is_its_elapsed_time() -> None:
    clock = ManualClock()
    load = LoadTracker(clock)
    handle = load.acquire("d1")
    clock.advance(7.0)
    handle.release(ok=False, timed_out=True)
    snap = load.snapshot("d1")
    assert (snap.latency, snap.latency_per_token, snap.ttft, snap.peak_latency) == (
        7.0, 7.0, 7.0, 7.0)


def test_stream_timing_out_after_its_first_token_keeps_its_ttft() -> None:
    clock = ManualClock()
    load = LoadTracker(clock)
    handle = load.acquire("d1")
    clock.advance(0.5)
    handle.first_token()
    clock.advance(20.0)
    handle.release(ok=False, timed_out=True)
    assert load.ttft("d1") == pytest.approx(0.5)
    assert load.latency("d1") == pytest.approx(20.5)


# --- peak EWMA and drain time -----------------------------------------------------------


def test_peak_jumps_up_at_once_and_decays_toward_lower_samples() -> None:
    clock = ManualClock()
    load = LoadTracker(clock, peak_decay=TAU)
    _served(load, clock, 1.0)
    assert load.peak_latency("d1") == pytest.approx(1.0)
    _served(load, clock, 3.0)
    assert load.peak_latency("d1") == pytest.approx(3.0)
    _served(load, clock, 1.0)  # 1 s later: e^-0.1 = 0.90, but at least alpha (0.3) of the way
    assert load.peak_latency("d1") == pytest.approx(1.0 + 2.0 * 0.7)


def test_peak_decays_by_elapsed_time_not_by_sample_count() -> None:
    clock = ManualClock()
    load = LoadTracker(clock, peak_decay=TAU)
    _served(load, clock, 3.0)
    clock.advance(2 * TAU)
    _served(load, clock, 1.0)  # 2 tau + 1 s after the previous sample
    assert load.peak_latency("d1") == pytest.approx(1.0 + 2.0 * math.exp(-(2 * TAU + 1) / TAU))


def test_idle_peak_reads_decayed_toward_zero_busy_does_not() -> None:
    clock = ManualClock()
    load = LoadTracker(clock, peak_decay=TAU)
    _served(load, clock, 2.0)
    clock.advance(TAU)
    assert load.peak_latency("d1") == pytest.approx(2.0 * math.exp(-1))
    later = clock.now() + TAU
    assert load.peak_latency("d1", later) == pytest.approx(2.0 * math.exp(-2))
    handle = load.acquire("d1")  # something in flight: it is being measured again
    assert load.peak_latency("d1") == pytest.approx(2.0)
    handle.release(ok=False)


def test_drain_time_moves_toward_latency_over_the_requests_in_flight_at_start() -> None:
    clock = ManualClock()
    load = LoadTracker(clock, peak_decay=TAU)
    handles = [load.acquire("d1") for _ in range(4)]
    clock.advance(2.0)
    for h in handles:
        h.release()
    # Samples 2/1 (the first: taken as is), then 2/2, 2/3, 2/4, each lower: alpha of the way.
    drain = 2.0
    for flight in (2, 3, 4):
        drain += 0.3 * (2.0 / flight - drain)
    assert load.drain_time("d1") == pytest.approx(drain)
    # None of them queued (2 s each): the service time stays 2 s.
    assert load.snapshot("d1").service_time == pytest.approx(2.0)


def test_a_one_off_slow_first_answer_is_not_taken_as_serial_for_long() -> None:
    """A first answer slowed by opening the connection must not make it look serial."""
    clock = ManualClock()
    load = LoadTracker(clock, peak_decay=TAU)
    _served(load, clock, 0.5)  # connection set-up: 10x the usual 0.05 s
    pipeline = [load.acquire("d1") for _ in range(4)]
    for _ in range(40):  # 4 at a time at 0.05 s each: 2 s of traffic
        clock.advance(0.0125)
        pipeline.pop(0).release()
        pipeline.append(load.acquire("d1"))
    assert load.drain_time("d1") == pytest.approx(0.0125, rel=0.05)
    assert load.peak_latency("d1") == pytest.approx(0.05, rel=0.05)
    for h in pipeline:
        h.release(ok=False)


def test_drain_time_learns_the_throughput_of_a_busy_deployment() -> None:
    clock = ManualClock()
    load = LoadTracker(clock, peak_decay=TAU)
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
    assert load.peak_latency("d1") == pytest.approx(2.0)
    assert load.drain_time("d1") == pytest.approx(0.5, rel=0.01)
    # 4 in flight at parallelism 4: 2 s x 5/4 (the queue) x 1.5 (the hedge, at its most)
    assert load.expected_latency("d1", clock.now()) == pytest.approx(2.0 * 1.25 * 1.5, rel=0.01)


def test_a_deployment_not_loaded_yet_is_tried_one_request_further() -> None:
    clock = ManualClock()
    load = LoadTracker(clock, peak_decay=TAU)
    _served(load, clock, 1.0)  # alone: drain 1 s, parallelism 1
    _served(load, clock, 1.0)  # alone again, not queued: parallelism nudged toward 2
    assert load.drain_time("d1") == pytest.approx(1.0 + 0.3 * (0.5 - 1.0))


def test_drain_time_counts_shared_in_flight_when_larger() -> None:
    clock = ManualClock()
    load = LoadTracker(clock)
    load.merge_shared({"d1": SharedFigures(in_flight=3, requests=0, tokens=0)})
    _served(load, clock, 2.0)
    assert load.drain_time("d1") == pytest.approx(0.5)  # 2 s / (3 others + itself)


def test_expected_latency() -> None:
    clock = ManualClock()
    load = LoadTracker(clock, peak_decay=TAU)
    assert load.expected_latency("d1", clock.now()) is None
    _served(load, clock, 1.0)  # peak 1, drain 1 (alone in flight): parallelism 1
    now = clock.now()
    assert load.expected_latency("d1", now) == pytest.approx(1.0)
    held = [load.acquire("d1") for _ in range(3)]
    # 3 ahead of it, one at a time: the queue (x 4) and the hedge at its most (x 1.5).
    assert load.expected_latency("d1", now) == pytest.approx(1.0 * 4 * 1.5)
    # A known capacity is a floor of the parallelism.
    assert load.expected_latency("d1", now, capacity=8) == pytest.approx(1.0 + 0.5 * 3 / 8)
    assert load.expected_latency("d1", now, capacity=2) == pytest.approx(2 * 1.5)
    for h in held:
        h.release(ok=False)
    assert load.expected_latency("d1", now + TAU) == pytest.approx(math.exp(-1))


def test_expected_latency_is_at_least_the_oldest_wait() -> None:
    clock = ManualClock()
    load = LoadTracker(clock, peak_decay=TAU)
    _served(load, clock, 1.0)
    held = load.acquire("d1")
    clock.advance(5.0)  # waited 5 s where 1 s is usual
    assert load.expected_latency("d1", clock.now()) == pytest.approx(5.0)
    held.release(ok=False)


def test_an_overtaken_slow_answer_moves_the_peak_by_alpha_only() -> None:
    """A late answer that a younger request beat says little about the deployment."""
    clock = ManualClock()
    load = LoadTracker(clock, peak_decay=TAU)
    _served(load, clock, 1.0)
    late = load.acquire("d1")  # its answer will be read late
    clock.advance(0.1)
    young = load.acquire("d1")  # started later, answered first, as usual
    clock.advance(1.0)
    young.release(ok=True)
    before = load.snapshot("d1")
    assert before.peak_latency is not None and before.peak_latency <= 1.0
    clock.advance(3.0)
    late.release(ok=True)  # 4.1 s, overtaken
    snap = load.snapshot("d1")
    peak = before.peak_latency
    assert snap.peak_latency == pytest.approx(peak + 0.3 * (4.1 - peak))  # not 4.1
    assert snap.service_time == before.service_time
    assert snap.drain_time == before.drain_time
    # The same slow answer, not overtaken (nobody younger answered), jumps at once.
    alone = load.acquire("d1")
    clock.advance(4.1)
    alone.release(ok=True)
    assert load.peak_latency("d1") == pytest.approx(4.1)


def test_an_overtaken_waiting_request_no_longer_bounds_the_cost() -> None:
    clock = ManualClock()
    load = LoadTracker(clock, peak_decay=TAU)
    _served(load, clock, 1.0)
    long = load.acquire("d1")  # a long answer
    clock.advance(0.5)
    young = load.acquire("d1")
    clock.advance(1.0)
    young.release(ok=True)  # started 0.5 s after the long one, answered in 1 s
    clock.advance(3.5)
    # The long one has waited 5 s, but a request started after it has
    # answered: its wait is its own, and the cost stays near the peak.
    assert load.expected_latency("d1", clock.now()) < 2.5
    clock.advance(100.0)  # however long it goes on
    assert load.expected_latency("d1", clock.now()) < 2.5
    later = load.acquire("d1")  # not overtaken: it bounds the cost as it waits
    clock.advance(6.0)
    assert load.expected_latency("d1", clock.now()) == pytest.approx(6.0)
    for h in (long, later):
        h.release(ok=False)


def test_a_request_started_at_the_same_instant_as_an_answered_one_still_waits() -> None:
    clock = ManualClock()
    load = LoadTracker(clock, peak_decay=TAU)
    _served(load, clock, 1.0)
    stuck, quick = load.acquire("d1"), load.acquire("d1")  # the same instant
    clock.advance(1.0)
    quick.release(ok=True)
    clock.advance(5.0)
    # Not overtaken (nobody started after it has answered): its 6 s bound the cost.
    assert load.expected_latency("d1", clock.now()) == pytest.approx(6.0)
    stuck.release(ok=False)


def _mixed(slow_every: int | None, rounds: int = 60) -> float:
    """Median cost, read after each pair of answers, of a 20 ms deployment where every
    ``slow_every``-th request takes 200 ms and is overtaken (one sent just after it
    answers first); ``None``: never."""
    clock = ManualClock()
    load = LoadTracker(clock, peak_decay=TAU)
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
        cost = load.expected_latency("d1", clock.now())
        assert cost is not None
        costs.append(cost)
    return statistics.median(costs[10:])


def test_overtaken_slow_answers_count_once_they_are_not_rare() -> None:
    """One late read in a while is the request's own; a fifth of the answers slow is the
    deployment's tail (a slow replica behind it) and shows in its cost at once."""
    clean = _mixed(None)
    assert _mixed(60) < 1.5 * clean  # once in 60 answers: damped
    assert _mixed(5) > 3 * clean  # every fifth: counted


# --- usage per minute -------------------------------------------------------------------


def test_usage_counts_requests_at_acquire_and_tokens_at_release() -> None:
    clock = ManualClock()
    load = LoadTracker(clock)
    assert load.usage("d1") == MinuteUsage(0, 0)
    handle = load.acquire("d1")
    assert load.usage("d1") == MinuteUsage(requests=1, tokens=0)
    handle.release(ok=True, output_tokens=30, total_tokens=130)
    assert load.usage("d1") == MinuteUsage(requests=1, tokens=130)
    other = load.acquire("d1")
    other.release(ok=False, output_tokens=20)  # usage known on a failure counts too
    assert load.usage("d1") == MinuteUsage(requests=2, tokens=150)


def test_usage_window_is_the_wall_clock_minute() -> None:
    clock = ManualClock(wall_start=1_800_000_030.0)  # half-way through a minute
    load = LoadTracker(clock)
    assert load.minute() == 1_800_000_030 // 60
    load.acquire("d1").release(total_tokens=10)
    clock.advance(29.0)
    assert load.usage("d1") == MinuteUsage(1, 10)
    handle = load.acquire("d1")
    assert load.usage("d1") == MinuteUsage(2, 10)
    clock.advance(1.0)  # the next minute starts
    assert load.usage("d1") == MinuteUsage(0, 0)
    handle.release(total_tokens=5)  # tokens count in the minute they are known
    assert load.usage("d1") == MinuteUsage(0, 5)
    assert load.snapshot("d1").minute == 1_800_000_030 // 60 + 1
    clock.advance(60.0)
    assert load.usage("d1") == MinuteUsage(0, 0)


def test_usage_with_an_explicit_minute() -> None:
    clock = ManualClock()
    load = LoadTracker(clock)
    load.acquire("d1").release(total_tokens=10)
    assert load.usage("d1", load.minute()) == MinuteUsage(1, 10)
    assert load.usage("d1", load.minute() + 1) == MinuteUsage(0, 0)


# --- shared figures ---------------------------------------------------------------------


def test_shared_figures_count_while_fresh() -> None:
    clock = ManualClock()
    load = LoadTracker(clock, shared_ttl=1.0)
    held = load.acquire("d1")
    load.acquire("d1").release(total_tokens=50)
    load.merge_shared({
        "d1": SharedFigures(in_flight=5, requests=9, tokens=20),
        "d2": SharedFigures(in_flight=2, requests=3, tokens=300),
    })
    assert load.in_flight("d1") == 5
    assert load.usage("d1") == MinuteUsage(requests=9, tokens=50)  # max of each, local tokens win
    assert (load.in_flight("d2"), load.usage("d2")) == (2, MinuteUsage(3, 300))
    snap = load.snapshot("d1")
    assert (snap.in_flight, snap.local_in_flight, snap.requests, snap.local_requests) == (
        5, 1, 9, 2)
    assert snap.shared == SharedFigures(5, 9, 20)
    assert load.total_in_flight() == 1  # this process's own

    clock.advance(1.0)  # stale now
    assert load.in_flight("d1") == 1
    assert load.usage("d1") == MinuteUsage(2, 50)
    assert (load.in_flight("d2"), load.usage("d2")) == (0, MinuteUsage(0, 0))
    assert load.snapshot("d1").shared is None
    held.release()


def test_a_newer_merge_refreshes_and_replaces() -> None:
    clock = ManualClock()
    load = LoadTracker(clock, shared_ttl=1.0)
    load.merge_shared({"d1": SharedFigures(in_flight=5, requests=5, tokens=5)})
    clock.advance(0.9)
    load.merge_shared({"d1": SharedFigures(in_flight=2, requests=6, tokens=6)})
    clock.advance(0.9)
    assert load.in_flight("d1") == 2
    assert load.usage("d1") == MinuteUsage(6, 6)


def test_shared_usage_of_a_previous_minute_is_not_this_minutes() -> None:
    clock = ManualClock(wall_start=1_800_000_059.5)
    load = LoadTracker(clock, shared_ttl=1.0)
    load.merge_shared({"d1": SharedFigures(in_flight=1, requests=100, tokens=1000)})
    assert load.usage("d1") == MinuteUsage(100, 1000)
    clock.advance(0.6)  # fresh, but the minute turned
    assert load.usage("d1") == MinuteUsage(0, 0)
    assert load.in_flight("d1") == 1


# --- snapshot and construction ----------------------------------------------------------


def test_snapshot_holds_every_figure() -> None:
    clock = ManualClock()
    load = LoadTracker(clock)
    assert load.snapshot("unknown") == DeploymentLoad(
        deployment_id="unknown", in_flight=0, local_in_flight=0, requests=0, tokens=0,
        local_requests=0, local_tokens=0, minute=load.minute(), latency=None,
        latency_per_token=None, ttft=None, peak_latency=None, drain_time=None,
        service_time=None, shared=None,
    )
    _served(load, clock, 2.0, output_tokens=50, total_tokens=80)
    held = load.acquire("d1")
    snap = load.snapshot("d1")
    assert snap == DeploymentLoad(
        deployment_id="d1", in_flight=1, local_in_flight=1, requests=2, tokens=80,
        local_requests=2, local_tokens=80, minute=load.minute(), latency=2.0,
        latency_per_token=0.04, ttft=None, peak_latency=2.0, drain_time=2.0,
        service_time=2.0, shared=None,
    )
    held.release(ok=False)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"peak_decay": 0}, "peak_decay must be > 0"),
    ({"alpha": 0}, "alpha must be in (0, 1]"),
    ({"alpha": 1.5}, "alpha must be in (0, 1]"),
    ({"shared_ttl": -1}, "shared_ttl must be >= 0"),
])
def test_bad_construction_is_named(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("]", r"\]")):
        LoadTracker(ManualClock(), **kwargs)


# --- waiting for a release --------------------------------------------------------------


async def test_wait_for_release_wakes_on_a_listed_deployment() -> None:
    load = LoadTracker(ManualClock())
    handle = load.acquire("d1")
    waiter = asyncio.create_task(load.wait_for_release(["d1", "d3"], timeout=30))
    await asyncio.sleep(0)
    assert not waiter.done()
    handle.release(ok=False)
    assert await waiter is True


async def test_wait_for_release_ignores_other_deployments_and_times_out() -> None:
    load = LoadTracker(ManualClock())
    other = load.acquire("d2")
    waiter = asyncio.create_task(load.wait_for_release({"d1"}, timeout=0.05))
    await asyncio.sleep(0)
    other.release()
    assert await waiter is False


async def test_wait_for_release_without_time_to_wait() -> None:
    load = LoadTracker(ManualClock())
    assert await load.wait_for_release(["d1"], timeout=0) is False
    assert await load.wait_for_release(["d1"], timeout=-1) is False


async def test_wait_for_release_without_timeout_and_several_waiters() -> None:
    load = LoadTracker(ManualClock())
    handle = load.acquire("d1")
    waiters = [asyncio.create_task(load.wait_for_release(("d1",), timeout=None))
               for _ in range(3)]
    await asyncio.sleep(0)
    handle.release()
    assert await asyncio.gather(*waiters) == [True, True, True]
    # Served waiters are gone: a later release has nobody to wake.
    load.acquire("d1").release()


async def test_a_cancelled_waiter_is_forgotten() -> None:
    load = LoadTracker(ManualClock())
    waiter = asyncio.create_task(load.wait_for_release(["d1"], timeout=None))
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    load.acquire("d1").release()  # nothing left to wake, nothing raised


def test_waiter_on_another_threads_loop_is_woken() -> None:
    load = LoadTracker(ManualClock())
    handle = load.acquire("d1")
    registered = threading.Event()
    outcome: list[bool] = []

    async def wait() -> bool:
        task = asyncio.ensure_future(load.wait_for_release(["d1"], timeout=30))
        await asyncio.sleep(0)  # the task has registered its waiter
        registered.set()
        return await task

    thread = threading.Thread(target=lambda: outcome.append(asyncio.run(wait())))
    thread.start()
    assert registered.wait(30)
    handle.release()  # from this thread, which runs no loop at all
    thread.join(30)
    assert outcome == [True]


async def test_release_on_another_thread_wakes_a_waiter_on_this_loop() -> None:
    load = LoadTracker(ManualClock())
    handle = load.acquire("d1")
    waiter = asyncio.create_task(load.wait_for_release(["d1"], timeout=30))
    await asyncio.sleep(0)
    thread = threading.Thread(target=handle.release)
    thread.start()
    assert await waiter is True
    thread.join()
    assert load.in_flight("d1") == 0


# --- the handle held with async with (the attempt loop's way) ---------------------------


async def test_a_block_that_ends_releases_as_a_success_with_the_reported_usage() -> None:
    clock = ManualClock()
    load = LoadTracker(clock)
    async with load.acquire("d1") as handle:
        clock.advance(2.0)
        handle.report(TokenUsage(10, 30, 40))
        clock.advance(5.0)  # after the answer (recording ownership): not the deployment's
    assert handle.released and load.in_flight("d1") == 0
    assert load.latency("d1") == pytest.approx(2.0)
    assert load.usage("d1") == MinuteUsage(1, 40)


async def test_a_block_that_raises_a_timeout_is_a_penalty_sample() -> None:
    clock = ManualClock()
    load = LoadTracker(clock)
    with pytest.raises(UpstreamTimeoutError):
        async with load.acquire("d1"):
            clock.advance(3.0)
            raise UpstreamTimeoutError("no answer", deployment_id="d1")
    assert load.in_flight("d1") == 0
    assert load.latency("d1") == pytest.approx(3.0)  # the elapsed time, as a failure


async def test_a_block_that_raises_anything_else_records_no_latency() -> None:
    clock = ManualClock()
    load = LoadTracker(clock)
    with pytest.raises(ServerError):
        async with load.acquire("d1"):
            raise ServerError("boom", status=500)
    assert load.in_flight("d1") == 0 and load.latency("d1") is None


async def test_an_answer_reported_before_a_later_failure_still_counts_as_a_success() -> None:
    clock = ManualClock()
    load = LoadTracker(clock)
    with pytest.raises(RuntimeError):
        async with load.acquire("d1") as handle:
            clock.advance(1.0)
            handle.report(None)
            raise RuntimeError("the ownership store failed")
    assert load.latency("d1") == pytest.approx(1.0)


async def test_a_handed_over_handle_outlives_the_block_until_released_once() -> None:
    clock = ManualClock()
    load = LoadTracker(clock)
    released: list[int] = []
    async with load.acquire("d1") as handle:
        handle.on_release(released.append)
        kept = handle.hand_over()
    assert load.in_flight("d1") == 1 and not kept.released
    kept.release_with(TokenUsage(1, 2, 3))
    kept.release(ok=False)
    assert load.in_flight("d1") == 0 and released == [3]
    assert load.usage("d1").tokens == 3
