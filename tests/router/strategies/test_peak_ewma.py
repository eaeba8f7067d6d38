"""Peak-EWMA expected latency (router/strategies/peak_ewma.py)."""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Sequence
from typing import Any

import pytest

from router.clock import ManualClock
from router.deployment import Deployment
from router.errors import ConfigError
from router.load import LoadHandle, LoadTracker, SharedFigures
from router.request import RouteRequest
from router.strategies.base import StrategyContext
from router.strategies.peak_ewma import PeakEwma
from router.strategies.sampling import EXACT_LIMIT
from tests.router.strategies.simulation import Simulation, Upstream, build_strategy, make_group

REQUEST = RouteRequest(model="g", params={})
TAU = 10.0


class Bench:
    """A group, a tracker on a ManualClock and the strategy reading it."""

    def __init__(self, *params: dict[str, Any], seed: int = 0) -> None:
        self.group = make_group(*params)
        self.clock = ManualClock()
        self.load = LoadTracker(self.clock)
        self.strategy = PeakEwma(
            self.load, self.clock, random.Random(seed), decay_time=TAU, probe_time=math.inf,
            cold_answers=1)
        assert self.strategy.figures is not None
        self.figures = self.strategy.figures
        self.held: list[LoadHandle] = []

    def serve(self, **latencies: float) -> None:
        """One answer from each deployment after its latency, all at one instant.

        Each is alone in flight on its deployment; answering at one instant
        gives them the same idle decay afterwards, so only latencies differ.
        """
        end = self.clock.now() + max(latencies.values())
        handles = []
        for dep, seconds in sorted(latencies.items(), key=lambda kv: -kv[1]):
            self.clock.advance(end - seconds - self.clock.now())
            handles.append(self.load.acquire(dep))
        self.clock.advance(end - self.clock.now())
        for handle in handles:
            handle.release(ok=True)

    def hold(self, dep: str, n: int = 1) -> None:
        self.held += [self.load.acquire(dep) for _ in range(n)]

    def picks(self, n: int = 300, candidates: Sequence[Deployment] | None = None) -> Counter[str]:
        group = self.group if candidates is None else candidates
        return Counter(self.strategy.pick(group, REQUEST).id for _ in range(n))


def test_decay_time_is_the_strategys_own_setting() -> None:
    def build(args: dict[str, Any]) -> PeakEwma:
        context = StrategyContext(random.Random(0), ManualClock(), LoadTracker(ManualClock()), args)
        return PeakEwma.from_context(context)

    def decay(strategy: PeakEwma) -> float:
        assert strategy.figures is not None
        return strategy.figures.decay

    assert decay(build({})) == 10.0
    assert decay(build({"decay_time": 7})) == 7.0
    with pytest.raises(ConfigError, match="decay_time"):
        build({"decay_time": 0})


def test_the_lower_latency_wins() -> None:
    bench = Bench({}, {})
    bench.serve(d0=2.0, d1=1.0)
    assert set(bench.picks()) == {"d1"}


def test_requests_in_flight_count_against_a_deployment() -> None:
    bench = Bench({}, {})
    bench.serve(d0=1.0, d1=2.5)
    bench.hold("d0", 2)  # drain 1 s (it served alone) x (2 + 1) = 3 s > 2.5 s
    assert set(bench.picks()) == {"d1"}


def test_one_slow_answer_is_enough_to_move_away() -> None:
    bench = Bench({}, {})
    bench.serve(d0=1.0, d1=1.0)
    assert set(bench.picks(400)) == {"d0", "d1"}
    bench.serve(d0=4.0)
    assert set(bench.picks()) == {"d1"}


def test_a_slowed_deployment_is_probed_again_after_decaying() -> None:
    bench = Bench({}, {})
    bench.serve(d0=4.0, d1=1.0)
    bench.hold("d1")  # d1 busy, so measured: no idle decay
    # A stream being read: answered, so not a waiting request. Its first token
    # (a 0 s sample) pulls d1 to peak 0.7 = service = drain; with 1 in flight
    # it costs 0.7 x 2 (the queue) x 1.5 (the hedge) = 2.1.
    bench.held[-1].first_token()
    bench.clock.advance(0.5 * TAU)  # d0 idle: 4 e^-0.5 = 2.4 > 2.1
    assert set(bench.picks()) == {"d1"}
    bench.clock.advance(0.5 * TAU)  # 4 e^-1 = 1.5 < 2.1
    assert set(bench.picks()) == {"d0"}


def test_shown_parallelism_makes_a_busy_fast_deployment_still_cheap() -> None:
    bench = Bench({}, {})
    # d0 serves 4 at a time at 1 s each, for many decay times: drain 0.25 s.
    pipeline = [bench.load.acquire("d0") for _ in range(4)]
    steps = 40 * int(TAU) * 4
    for step in range(steps):
        if step == steps - 12:  # d1 answers one request in 3 s, ending with the loop
            slow = bench.load.acquire("d1")
        bench.clock.advance(0.25)
        pipeline.pop(0).release()
        pipeline.append(bench.load.acquire("d0"))
    slow.release(ok=True)  # d1: idle now, 3x slower
    # d0 has 4 in flight at parallelism 4: 1 x 5/4 x 1.5 = 1.9 s beats 3 s.
    assert set(bench.picks()) == {"d0"}
    for h in pipeline:
        h.release(ok=False)


def test_a_request_waiting_longer_than_usual_shows_a_slowdown_at_once() -> None:
    bench = Bench({}, {})
    bench.serve(d0=1.0, d1=1.5)
    bench.hold("d0")  # d0's next request has not answered yet...
    assert set(bench.picks()) == {"d1"}  # d0 costs 1 x 2 x 1.5 = 3 > 1.5
    bench.held.pop().release(ok=True)
    bench.clock.advance(0.1)
    assert set(bench.picks()) == {"d0"}
    bench.hold("d1")
    bench.hold("d0")
    bench.clock.advance(2.5)  # ...d0's request has waited 2.5 s, d1's too; d0 usually 1 s
    bench.held[0].release(ok=True)  # d1 answers (its sample: 2.5 s)
    # d0 has no slow sample yet, but its waiting request says >= 2.5 s (x 2 in flight)
    costs = {d: bench.figures.expected_latency(d, bench.clock.now()) for d in ("d0", "d1")}
    assert costs["d0"] is not None and costs["d0"] >= 2.5
    for handle in bench.held:
        handle.release(ok=False)


def test_an_unknown_deployment_is_treated_as_serial() -> None:
    bench = Bench({}, {})
    bench.serve(d0=1.0, d1=3.0)  # alone in flight: drain = latency
    bench.hold("d0", 3)  # 1 x 4 x 1.5 = 6 s > 3 s
    assert set(bench.picks()) == {"d1"}


def test_max_parallel_requests_is_a_floor_of_the_parallelism() -> None:
    bench = Bench({"max_parallel_requests": 8}, {})
    bench.serve(d0=1.0, d1=3.0)
    bench.hold("d0", 3)  # 1 x (1 + 0.5 x 3/8) = 1.2 s < 3 s
    assert set(bench.picks()) == {"d0"}
    bench.hold("d0", 24)  # 1 x 28/8 x 1.5 = 5.25 s > 3 s
    assert set(bench.picks()) == {"d1"}


def test_an_unmeasured_deployment_is_probed_then_stands_in_for_the_median() -> None:
    bench = Bench({}, {}, {}, {}, seed=3)
    bench.serve(d0=1.0, d1=3.0, d2=3.0)
    assert set(bench.picks()) == {"d3"}  # nothing sent there yet: probed first
    bench.hold("d3")  # the probe is out: it stands in at the median, 3 s, as a serial one: x 2
    assert set(bench.picks()) == {"d0"}
    bench.hold("d0", 3)  # d0: 1 x 4 x 1.5 = 6 s; the median of (6, 3, 3) is 3 s
    picks = bench.picks(3000)
    assert set(picks) == {"d1", "d2"}  # both at 3 s; d3 at 6 s
    assert picks["d1"] == pytest.approx(1500, abs=150)


def test_with_nothing_measured_it_is_least_busy() -> None:
    bench = Bench({}, {}, {})
    bench.hold("d0", 2)
    bench.hold("d2", 1)
    assert set(bench.picks()) == {"d1"}


def test_shared_in_flight_counts() -> None:
    bench = Bench({}, {})
    bench.serve(d0=1.0, d1=2.5)
    bench.load.merge_shared({"d0": SharedFigures(in_flight=3, requests=3, tokens=0)})
    assert set(bench.picks()) == {"d1"}
    bench.clock.advance(2)
    assert set(bench.picks(50)) == {"d0"}


def test_large_groups_use_two_random_choices() -> None:
    params: list[dict[str, Any]] = [{} for _ in range(4 * EXACT_LIMIT)]
    bench = Bench(*params, seed=5)
    bench.serve(**{d.id: 0.1 * (i + 1) for i, d in enumerate(bench.group)})
    picks = bench.picks(4000)
    assert picks[bench.group[-1].id] == 0  # loses every pair
    share = 2 / len(bench.group)  # wins every pair it is drawn in
    assert picks[bench.group[0].id] / 4000 == pytest.approx(share, rel=0.3)
    # A pair with an unmeasured member compares by in-flight on the other's figures.
    fresh = make_group(*params)[:2]
    assert bench.strategy.pick(fresh, REQUEST) in fresh


def _routing_quality(name: str, seed: int, capacity: int = 4) -> tuple[float, float]:
    """benchmarks/routing_quality.py's workload, simulated: (p99, share).

    ``capacity``: requests each upstream serves at once (4: the
    capacity-limited workload; 10,000: the unlimited one).

    As on a real machine, each upstream's first answers are slowed by
    opening connections (50 ms more for the first 6) and 1 % of answers are
    read 50 ms late (a busy event loop): the noise that made an earlier
    peak-ewma (peak EWMAs of latency and of latency / in-flight) take the
    fast deployments for serial ones for a whole decay time.
    ``share``: of the requests sent after the slow-down, those sent to it.
    """
    requests = 1500
    warm = {"warmup": 0.05, "warmup_requests": 6}
    upstreams = [
        Upstream(0.020, capacity=capacity, **warm), Upstream(0.080, capacity=capacity, **warm),
        Upstream(0.020, capacity=capacity, slow_factor=10, slow_after=requests // 2, **warm),
        Upstream(0.020, capacity=capacity, fail_rate=0.05, **warm),
    ]
    result = Simulation(
        lambda load, clock: build_strategy(name, load, clock, 1), upstreams,
        concurrency=24, seed=seed, stall_rate=0.01, stall=0.05,
    ).run(requests)
    switched = upstreams[2].slow_at
    assert switched is not None
    later = [d for t, d in result.picks if t >= switched]
    return result.percentile(0.99), later.count("d2") / len(later)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_meets_the_routing_quality_targets_in_the_simulated_model(seed: int) -> None:
    """The discrete-event model (no cooldowns, no retry cap, instant failures)."""
    p99 = {name: _routing_quality(name, seed)[0] for name in (
        "simple-shuffle", "least-busy", "latency-based-routing", "cost-based-routing",
        "usage-based-routing")}
    mine, degraded_share = _routing_quality("peak-ewma", seed)
    assert mine < min(p99.values()), (mine, p99)
    assert mine <= p99["simple-shuffle"] / 2
    assert degraded_share <= 0.05


def test_meets_the_unlimited_capacity_target_in_the_median_seed() -> None:
    """Unlimited capacity: p99 within 1.2x of the best other strategy's, in the median seed.

    Not in every seed: the first requests sent to the slowed deployment
    after its slow-down cannot be told apart for one service time (20 ms,
    ~8 requests when spread over the three fast deployments), and that is
    about the 1 % tail. latency-based-routing wins the seeds where it has
    piled nearly everything onto another fast deployment (p99 ~74 ms here,
    against ~150 ms for peak-ewma in seeds 1 and 3) and loses those where it
    piled onto the slowed one (~180-210 ms).
    """
    others = ("simple-shuffle", "least-busy", "latency-based-routing", "cost-based-routing",
              "usage-based-routing")
    ratios = []
    for seed in range(1, 6):
        best = min(_routing_quality(name, seed, capacity=10_000)[0] for name in others)
        ratios.append(_routing_quality("peak-ewma", seed, capacity=10_000)[0] / best)
    assert sorted(ratios)[len(ratios) // 2] <= 1.2, ratios


def _lock_in_run(name: str, seed: int) -> tuple[Counter[str], list[str], float]:
    """Issue 16's lock-in: four speeds, 2 slots each, concurrency = total capacity.

    Every deployment opens connections on its first two answers (200 ms
    more), and the 40 ms one slows to 160 ms after 300 picks. Returns the
    picks per deployment, the picks after the slow-down and the p50.
    """
    warm = {"warmup": 0.2, "warmup_requests": 2, "capacity": 2}
    upstreams = [
        Upstream(0.02, **warm), Upstream(0.04, slow_after=300, **warm),  # type: ignore[arg-type]
        Upstream(0.08, **warm), Upstream(0.16, **warm),  # type: ignore[arg-type]
    ]
    result = Simulation(
        lambda load, clock: build_strategy(name, load, clock, seed), upstreams,
        concurrency=8, seed=seed,
    ).run(600)
    switched = upstreams[1].slow_at
    assert switched is not None
    return result.counts(), [d for t, d in result.picks if t >= switched], result.percentile(0.5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cold_starts_do_not_lock_traffic_in(seed: int) -> None:
    """Before the fix the cold answers branded d1-d3: 2 picks each, d0 queued (p50 80 ms)."""
    counts, later, p50 = _lock_in_run("peak-ewma", seed)
    assert all(counts[f"d{i}"] >= 3 for i in range(4)), counts  # every one keeps some traffic
    assert counts["d2"] >= 30, counts  # the 80 ms one is used, not just probed
    assert later.count("d1") / len(later) <= 0.25
    assert p50 < 0.07
