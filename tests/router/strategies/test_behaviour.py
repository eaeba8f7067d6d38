"""One behavioural suite run against every registered strategy.

Each property is a test parametrized over :func:`strategy_registry` names.
A strategy that does not have a property by design is marked
``xfail(strict=True)`` with the reason, so ``pytest -rxX`` prints the table
of who does what, and a strategy that starts to have a property it was not
expected to have fails loudly (strict) until the table is updated.

The dynamic properties (avoid a slow deployment, react to a slow-down,
spread under traffic) run the discrete-event simulation in
``simulation.py``: closed-loop clients, upstreams of capacity 4 that queue,
a ManualClock; seeded, so each outcome is fixed.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from typing import Any

import pytest

from router.clock import ManualClock
from router.deployment import Deployment
from router.load import LoadHandle, LoadTracker
from router.request import RouteRequest
from router.strategies.base import (
    BUILTIN_STRATEGIES,
    Strategy,
    StrategyContext,
    strategy_registry,
)
from router.strategies.sampling import EXACT_LIMIT
from tests.router.strategies.simulation import Simulation, Upstream, build_strategy, make_group

REQUEST = RouteRequest(model="g", params={})
STREAM = RouteRequest(model="g", params={}, stream=True)
S = 0.05  # a fast upstream's service time: 50 ms (the peak decay time is 10 s)
PICKS = 4000

_SHUFFLE = "weighted random: reads no load figure"
_IN_FLIGHT_ONLY = "sees a slow deployment only through its in-flight count"
_TOKENS = "ranks by tokens used this minute: a slow deployment uses fewer, so it attracts traffic"

#: Strategy name -> why it lacks the property (the others are expected to have it).
LACKS: dict[str, dict[str, str]] = {
    "spreads_under_traffic": {
        "latency-based-routing":
            "herds onto the single lowest EWMA (LiteLLM's behaviour with lowest_latency_buffer=0)",
    },
    "avoids_slow": {
        "simple-shuffle": _SHUFFLE,
        "least-busy": _IN_FLIGHT_ONLY,
        "cost-based-routing": "prices tie, then " + _IN_FLIGHT_ONLY,
        "usage-based-routing": _TOKENS,
        "usage-based-routing-v2": _TOKENS,
    },
    "reacts_to_slowdown": {
        "simple-shuffle": _SHUFFLE,
        "least-busy": _IN_FLIGHT_ONLY,
        "cost-based-routing": "prices tie, then " + _IN_FLIGHT_ONLY,
        "usage-based-routing": _TOKENS,
        "usage-based-routing-v2": _TOKENS,
    },
    "avoids_busy": {
        "simple-shuffle": _SHUFFLE,
        "latency-based-routing": "ranks by measured latency only, not by requests in flight",
    },
    "respects_weights": {
        name: "has no weights: weight/rpm/tpm as weights are simple-shuffle's"
        for name in BUILTIN_STRATEGIES if name != "simple-shuffle"
    },
}


def strategies(prop: str) -> list[Any]:
    """Every registered strategy, marked xfail where it lacks ``prop``."""
    return [
        pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=LACKS[prop][name]))
        if name in LACKS.get(prop, {}) else name
        for name in strategy_registry().names()
    ]


def test_every_registered_strategy_is_in_the_suite() -> None:
    assert sorted(BUILTIN_STRATEGIES) == strategy_registry().names()
    for lacking in LACKS.values():
        assert set(lacking) <= set(BUILTIN_STRATEGIES)


# --- helpers ----------------------------------------------------------------------------


def _setup(name: str, group: Sequence[Deployment], seed: int = 1) -> tuple[
        Strategy, LoadTracker, ManualClock]:
    clock = ManualClock()
    load = LoadTracker(clock)
    return build_strategy(name, load, clock, seed), load, clock


def _prime(load: LoadTracker, clock: ManualClock, group: Sequence[Deployment],
           seconds: float = S) -> None:
    """Give every deployment the same measured history (one answer each, same instant)."""
    handles = [load.acquire(d.id) for d in group]
    clock.advance(seconds)
    for h in handles:
        h.release(ok=True, output_tokens=100, total_tokens=150)
    stream_handles = [load.acquire(d.id) for d in group]
    clock.advance(seconds / 4)
    for h in stream_handles:
        h.first_token()
        h.release(ok=True)


def _shares(strategy: Strategy, candidates: Sequence[Deployment], picks: int = PICKS,
            request: RouteRequest = REQUEST) -> dict[str, float]:
    counts = Counter(strategy.pick(candidates, request).id for _ in range(picks))
    return {d.id: counts[d.id] / picks for d in candidates}


def _assert_even(shares: dict[str, float], picks: int = PICKS) -> None:
    expected = 1 / len(shares)
    # Over 4 standard deviations of a binomial share at this many picks.
    tolerance = 4.5 * (expected * (1 - expected) / picks) ** 0.5
    for key, share in shares.items():
        assert share == pytest.approx(expected, abs=tolerance), (key, shares)


# --- spreading --------------------------------------------------------------------------


@pytest.mark.parametrize("name", strategies("spreads_evenly"))
@pytest.mark.parametrize("size", [4, 3 * EXACT_LIMIT])
def test_spreads_evenly_over_identical_idle_deployments(name: str, size: int) -> None:
    group = make_group(*({} for _ in range(size)))
    strategy = _setup(name, group)[0]
    _assert_even(_shares(strategy, group, picks=PICKS * size // 4), PICKS * size // 4)


@pytest.mark.parametrize("name", strategies("spreads_evenly"))
@pytest.mark.parametrize("request_", [REQUEST, STREAM], ids=["plain", "stream"])
def test_spreads_evenly_over_identically_measured_deployments(
    name: str, request_: RouteRequest
) -> None:
    group = make_group({}, {}, {}, {})
    strategy, load, clock = _setup(name, group)
    _prime(load, clock, group)
    _assert_even(_shares(strategy, group, request=request_))


@pytest.mark.parametrize("name", strategies("spreads_under_traffic"))
def test_spreads_evenly_under_traffic(name: str) -> None:
    result = Simulation(
        lambda load, clock: build_strategy(name, load, clock, 3),
        [Upstream(S) for _ in range(4)], concurrency=8, seed=3,
    ).run(PICKS)
    _assert_even({d: result.share(d) for d in ("d0", "d1", "d2", "d3")})


# --- avoiding -------------------------------------------------------------------------


@pytest.mark.parametrize("name", strategies("avoids_slow"))
def test_avoids_a_slow_deployment(name: str) -> None:
    result = Simulation(
        lambda load, clock: build_strategy(name, load, clock, 3),
        [Upstream(S), Upstream(S), Upstream(S), Upstream(4 * S)], concurrency=4, seed=3,
    ).run(2000)
    assert result.share("d3") <= 0.05, result.counts()  # uniform would be 0.25


@pytest.mark.parametrize("name", strategies("reacts_to_slowdown"))
def test_reacts_to_a_slowdown_within_a_few_requests(name: str) -> None:
    upstreams = [Upstream(S, slow_at=ManualClock().now() + 100 * S)] + [
        Upstream(S) for _ in range(3)]
    result = Simulation(
        lambda load, clock: build_strategy(name, load, clock, 3),
        upstreams, concurrency=8, seed=3,
    ).run(3000)
    slow_answers = [t for t, d, took in result.answers if d == "d0" and took > 2 * S]
    assert slow_answers, "the slow-down must have happened"
    next_picks = [d for t, d in result.picks if t > slow_answers[0]][:200]
    assert len(next_picks) == 200
    # Of the next 200 requests after its first slow answer, at most 2 go there.
    assert next_picks.count("d0") <= 2, Counter(next_picks)


@pytest.mark.parametrize("name", strategies("avoids_busy"))
@pytest.mark.parametrize("size", [4, 3 * EXACT_LIMIT])
def test_avoids_a_busy_deployment(name: str, size: int) -> None:
    group = make_group(*({} for _ in range(size)))
    strategy, load, clock = _setup(name, group)
    _prime(load, clock, group)
    busy: list[LoadHandle] = [load.acquire("d0") for _ in range(5)]
    shares = _shares(strategy, group, picks=1000)
    assert shares["d0"] <= 0.01, shares
    for h in busy:
        h.release(ok=False)


# --- weights and candidates -------------------------------------------------------------


@pytest.mark.parametrize("name", strategies("respects_weights"))
def test_respects_weights(name: str) -> None:
    group = make_group({"weight": 1}, {"weight": 3})
    strategy = _setup(name, group)[0]
    shares = _shares(strategy, group)
    assert shares["d1"] == pytest.approx(0.75, abs=0.03), shares


def _attractive_group(size: int) -> tuple[Deployment, ...]:
    """d0 is the best by every measure: weight, price, limits (and, once primed, load)."""
    params: list[dict[str, Any]] = [{"weight": 1000, "rpm": 10**6, "tpm": 10**9}]
    params += [{"weight": 1, "rpm": 100, "tpm": 10**6} for _ in range(size - 1)]
    info = [{"input_cost_per_token": 0.0, "output_cost_per_token": 0.0}]
    info += [{"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6}] * (size - 1)
    return make_group(*params, info=info)


@pytest.mark.parametrize("name", strategies("only_candidates"))
@pytest.mark.parametrize("size", [5, 3 * EXACT_LIMIT])
def test_never_picks_a_deployment_that_is_not_a_candidate(name: str, size: int) -> None:
    group = _attractive_group(size)
    strategy, load, clock = _setup(name, group)
    busy = [load.acquire(d.id) for d in group[1:] for _ in range(3)]
    _prime(load, clock, group[1:], seconds=5.0)
    _prime(load, clock, group[:1], seconds=0.001)
    if size <= EXACT_LIMIT:  # the bait works when allowed (sampling may miss it)
        assert strategy.pick(group, REQUEST) is group[0]
    as_list = list(group[1:])
    as_tuple = tuple(group[2:])
    rng = random.Random(0)
    for _ in range(300):
        subset = [d for d in group[1:] if rng.random() < 0.5] or as_list
        for candidates in (as_list, as_tuple, subset):
            picked = strategy.pick(candidates, REQUEST)
            assert any(picked is d for d in candidates)
        assert strategy.pick(as_list, STREAM) in as_list
    for h in busy:
        h.release(ok=False)


@pytest.mark.parametrize("name", strategies("single_candidate"))
def test_a_single_candidate_is_returned_without_randomness(name: str) -> None:
    (only,) = make_group({})
    rng = random.Random(0)
    clock = ManualClock()
    context = StrategyContext(rng, clock, LoadTracker(clock))
    strategy = strategy_registry().create(name, context, where="test")
    state = rng.getstate()
    assert strategy.pick([only], REQUEST) is only
    assert strategy.pick((only,), STREAM) is only
    assert rng.getstate() == state


@pytest.mark.parametrize("name", strategies("deterministic"))
def test_a_seeded_rng_makes_picks_reproducible(name: str) -> None:
    group = make_group(*({} for _ in range(3 * EXACT_LIMIT)))

    def sequence(seed: int) -> list[str]:
        strategy = _setup(name, group, seed=seed)[0]
        return [strategy.pick(group, REQUEST).id for _ in range(60)]

    assert sequence(11) == sequence(11)
    assert sequence(11) != sequence(12)
