"""Load figures tied to the request's lifetime (router/load.py).

Time is a ManualClock everywhere except in ``wait_for_release``, whose
timeout is real time by contract (only its outcome is asserted, never how
long it took).
"""

from __future__ import annotations

import asyncio
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
    assert (snap.latency, snap.latency_per_token, snap.ttft) == (None, None, None)


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
    clock.advance(1.0)
    handle.first_token()  # later calls are no-ops
    assert load.ttft("d1") == pytest.approx(0.4)
    clock.advance(5.0)
    handle.release(ok=True, output_tokens=100)
    assert load.ttft("d1") == pytest.approx(0.4)
    assert load.latency("d1") == pytest.approx(6.4)
    # A stream's duration depends on its reader: it feeds no per-token figure.
    assert load.latency_per_token("d1") is None

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
    assert load.ttft("d1") == pytest.approx(30.0)  # no first token came either


def test_timeout_of_a_fresh_deployment_is_its_elapsed_time() -> None:
    clock = ManualClock()
    load = LoadTracker(clock)
    handle = load.acquire("d1")
    clock.advance(7.0)
    handle.release(ok=False, timed_out=True)
    snap = load.snapshot("d1")
    assert (snap.latency, snap.latency_per_token, snap.ttft) == (7.0, 7.0, 7.0)


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
        latency_per_token=None, ttft=None, shared=None,
    )
    _served(load, clock, 2.0, output_tokens=50, total_tokens=80)
    held = load.acquire("d1")
    snap = load.snapshot("d1")
    assert snap == DeploymentLoad(
        deployment_id="d1", in_flight=1, local_in_flight=1, requests=2, tokens=80,
        local_requests=2, local_tokens=80, minute=load.minute(), latency=2.0,
        latency_per_token=0.04, ttft=None, shared=None,
    )
    held.release(ok=False)


@pytest.mark.parametrize(("kwargs", "message"), [
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
