"""Lowest latency per output token, TTFT for streams (router/strategies/latency_based.py)."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence

import pytest

from router.clock import ManualClock
from router.deployment import Deployment
from router.errors import ConfigError
from router.load import LoadHandle, LoadTracker
from router.request import RouteRequest
from router.strategies.base import StrategyContext
from router.strategies.latency_based import LatencyBased
from router.strategies.sampling import EXACT_LIMIT
from tests.router.strategies.simulation import make_group

PLAIN = RouteRequest(model="g", params={})
STREAM = RouteRequest(model="g", params={}, stream=True)


def _tracker(per_token: dict[str, float], ttft: dict[str, float] | None = None) -> LoadTracker:
    """A tracker where each deployment has exactly the given figures (one sample each)."""
    clock = ManualClock()
    load = LoadTracker(clock)
    for dep, seconds_per_token in per_token.items():
        handle = load.acquire(dep)
        clock.advance(seconds_per_token * 100)
        handle.release(ok=True, output_tokens=100)
    for dep, seconds in (ttft or {}).items():
        handle = load.acquire(dep)
        clock.advance(seconds)
        handle.first_token()
        handle.release(ok=True)
    return load


def _picks(strategy: LatencyBased, group: Sequence[Deployment],
           request: RouteRequest = PLAIN, n: int = 1000) -> Counter[str]:
    return Counter(strategy.pick(group, request).id for _ in range(n))


def test_lowest_latency_per_token_wins() -> None:
    group = make_group({}, {}, {})
    load = _tracker({"d0": 0.03, "d1": 0.01, "d2": 0.02})
    assert set(_picks(LatencyBased(load, random.Random(0)), group)) == {"d1"}


def test_streams_use_time_to_first_token() -> None:
    group = make_group({}, {})
    load = _tracker({"d0": 0.01, "d1": 0.05}, ttft={"d0": 2.0, "d1": 0.3})
    strategy = LatencyBased(load, random.Random(0))
    assert set(_picks(strategy, group, PLAIN)) == {"d0"}
    assert set(_picks(strategy, group, STREAM)) == {"d1"}


def test_buffer_spreads_over_deployments_near_the_best() -> None:
    group = make_group({}, {}, {})
    load = _tracker({"d0": 0.010, "d1": 0.014, "d2": 0.016})
    picks = _picks(LatencyBased(load, random.Random(1), buffer=0.5), group, n=3000)
    assert set(picks) == {"d0", "d1"}  # 0.016 > 1.5 x 0.010
    assert picks["d0"] == pytest.approx(1500, abs=150)
    assert set(_picks(LatencyBased(load, random.Random(1), buffer=0.6), group)) == {
        "d0", "d1", "d2"}
    assert set(_picks(LatencyBased(load, random.Random(1)), group)) == {"d0"}


def test_buffer_comes_from_routing_strategy_args() -> None:
    group = make_group({}, {})
    load = _tracker({"d0": 0.010, "d1": 0.014})
    context = StrategyContext(random.Random(0), ManualClock(), load, {
        "lowest_latency_buffer": 0.5, "ttl": 3600})  # LiteLLM's other args are accepted
    assert set(_picks(LatencyBased.from_context(context), group)) == {"d0", "d1"}
    with pytest.raises(ConfigError, match="lowest_latency_buffer"):
        LatencyBased.from_context(StrategyContext(
            random.Random(0), ManualClock(), load, {"lowest_latency_buffer": -0.1}))


def test_an_unmeasured_deployment_is_tried_first_one_probe_at_a_time() -> None:
    group = make_group({}, {}, {})
    load = _tracker({"d0": 0.01, "d1": 0.02})
    strategy = LatencyBased(load, random.Random(0))
    assert strategy.pick(group, PLAIN).id == "d2"
    probe = load.acquire("d2")  # its first request is in flight: wait for the answer
    assert set(_picks(strategy, group)) == {"d0"}
    probe.release(ok=False)  # failed: still unmeasured, so it is tried again
    assert strategy.pick(group, PLAIN).id == "d2"


def test_with_nothing_measured_the_least_busy_probe_goes_next() -> None:
    group = make_group({}, {}, {})
    load = LoadTracker(ManualClock())
    held: list[LoadHandle] = [load.acquire(d) for d in ("d0", "d0", "d1", "d2", "d2")]
    assert set(_picks(LatencyBased(load, random.Random(0)), group)) == {"d1"}
    assert len(held) == 5


def test_large_groups_apply_the_rule_to_two_sampled_candidates() -> None:
    group = make_group(*({} for _ in range(4 * EXACT_LIMIT)))
    load = _tracker({d.id: 0.01 * (i + 1) for i, d in enumerate(group)})
    picks = _picks(LatencyBased(load, random.Random(3)), group, n=4000)
    # The slowest never wins its pair; the fastest wins every pair it is in.
    assert picks[group[-1].id] == 0
    assert picks[group[0].id] == pytest.approx(4000 * 2 / len(group), rel=0.3)
