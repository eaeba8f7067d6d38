"""Weighted random choice (router/strategies/simple_shuffle.py).

Deployments are built from real configs, so the weight resolution
(``weight``, then ``rpm``, then ``tpm``) is exercised end to end.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from typing import Any

import pytest

from router.clock import ManualClock
from router.config import DeploymentConfig
from router.deployment import Deployment
from router.load import LoadTracker
from router.request import RouteRequest
from router.strategies.base import Strategy, StrategyContext, strategy_registry
from router.strategies.simple_shuffle import SimpleShuffle
from router.table import DeploymentTable

# isort: split
from providers.mock import MockProvider

PICKS = 3000
REQUEST = RouteRequest(model="g", params={})


def _group(*params: dict[str, Any]) -> tuple[Deployment, ...]:
    configs = [
        DeploymentConfig.model_validate({
            "model_name": "g",
            "litellm_params": {"model": f"mock/m{i}", **p},
            "model_info": {"id": f"d{i}"},
        })
        for i, p in enumerate(params)
    ]
    return DeploymentTable(configs, {"mock": MockProvider()}).group("g")


def _shares(strategy: SimpleShuffle, group: Sequence[Deployment]) -> dict[str, float]:
    counts = Counter(strategy.pick(group, REQUEST).id for _ in range(PICKS))
    return {d.id: counts[d.id] / PICKS for d in group}


def _assert_shares(actual: dict[str, float], expected: dict[str, float]) -> None:
    # 0.035 is over 4 standard deviations at 3000 picks for any share <= 0.5.
    for key, share in expected.items():
        assert actual[key] == pytest.approx(share, abs=0.035), (key, actual)


def test_uniform_over_identical_deployments() -> None:
    group = _group({}, {}, {})
    _assert_shares(_shares(SimpleShuffle(random.Random(1)), group),
                   {"d0": 1 / 3, "d1": 1 / 3, "d2": 1 / 3})


def test_every_deployment_is_picked() -> None:
    group = _group(*({} for _ in range(10)))
    strategy = SimpleShuffle(random.Random(5))
    picked = {strategy.pick(group, REQUEST).id for _ in range(500)}
    assert picked == {d.id for d in group}


def test_weights_are_respected() -> None:
    group = _group({"weight": 1}, {"weight": 3})
    _assert_shares(_shares(SimpleShuffle(random.Random(2)), group), {"d0": 0.25, "d1": 0.75})


def test_weight_wins_over_rpm_and_tpm() -> None:
    group = _group({"weight": 3, "rpm": 1, "tpm": 1}, {"weight": 1, "rpm": 1000, "tpm": 10**6})
    assert [d.weight for d in group] == [3.0, 1.0]
    _assert_shares(_shares(SimpleShuffle(random.Random(3)), group), {"d0": 0.75, "d1": 0.25})


def test_rpm_wins_over_tpm() -> None:
    group = _group({"rpm": 300, "tpm": 1}, {"rpm": 100, "tpm": 10**6})
    assert [d.weight for d in group] == [300.0, 100.0]
    _assert_shares(_shares(SimpleShuffle(random.Random(4)), group), {"d0": 0.75, "d1": 0.25})


def test_tpm_alone() -> None:
    group = _group({"tpm": 1000}, {"tpm": 4000})
    _assert_shares(_shares(SimpleShuffle(random.Random(5)), group), {"d0": 0.2, "d1": 0.8})


def test_deployment_without_weight_gets_the_mean() -> None:
    group = _group({"weight": 1}, {"weight": 3}, {})
    _assert_shares(_shares(SimpleShuffle(random.Random(6)), group),
                   {"d0": 1 / 6, "d1": 3 / 6, "d2": 2 / 6})


def test_single_candidate() -> None:
    (only,) = _group({"weight": 5})
    rng = random.Random(0)
    state = rng.getstate()
    assert SimpleShuffle(rng).pick([only], REQUEST) is only
    assert rng.getstate() == state  # no randomness spent on a sure thing


def test_seeded_rng_is_deterministic() -> None:
    group = _group({}, {"weight": 2}, {"rpm": 10})

    def sequence(seed: int) -> list[str]:
        strategy = SimpleShuffle(random.Random(seed))
        return [strategy.pick(group, REQUEST).id for _ in range(50)]

    assert sequence(11) == sequence(11)
    assert sequence(11) != sequence(12)


def test_pick_returns_a_candidate_not_a_copy() -> None:
    group = _group({}, {})
    assert SimpleShuffle(random.Random(0)).pick(group, REQUEST) in group
    assert any(SimpleShuffle(random.Random(0)).pick(group, REQUEST) is d for d in group)


def test_zero_weights_do_not_crash() -> None:
    group = _group({"rpm": 0}, {"rpm": 0})
    assert SimpleShuffle(random.Random(0)).pick(group, REQUEST) in group


def test_registry_builds_it_with_the_routers_rng() -> None:
    rng = random.Random(9)
    context = StrategyContext(rng, ManualClock(), LoadTracker(ManualClock()))
    strategy = strategy_registry().create("simple-shuffle", context, where="routing_strategy")
    assert isinstance(strategy, SimpleShuffle)
    assert isinstance(strategy, Strategy)
    group = _group({}, {}, {})
    expected = SimpleShuffle(random.Random(9))
    assert [strategy.pick(group, REQUEST).id for _ in range(20)] == \
        [expected.pick(group, REQUEST).id for _ in range(20)]


def test_a_list_is_weighed_like_the_tuple() -> None:
    group = _group({"weight": 1}, {"weight": 3}, {})
    _assert_shares(_shares(SimpleShuffle(random.Random(7)), list(group)),
                   {"d0": 1 / 6, "d1": 3 / 6, "d2": 2 / 6})


def test_zero_weights_beside_positive_ones_are_never_picked() -> None:
    group = _group({"rpm": 0}, {"rpm": 10})
    strategy = SimpleShuffle(random.Random(8))
    assert {strategy.pick(group, REQUEST).id for _ in range(500)} == {"d1"}


def test_the_same_rng_draws_give_the_same_picks_for_tuple_and_list() -> None:
    group = _group({"weight": 2}, {}, {"weight": 5}, {"rpm": 7})

    def sequence(candidates: Sequence[Deployment]) -> list[str]:
        strategy = SimpleShuffle(random.Random(13))
        return [strategy.pick(candidates, REQUEST).id for _ in range(200)]

    assert sequence(group) == sequence(list(group))


def test_a_list_narrowed_from_a_seen_group_keeps_the_weights() -> None:
    # Drawn from the whole group's weights, draws outside the list drawn again.
    group = _group(*({"weight": 1 + i % 3} for i in range(40)))
    strategy = SimpleShuffle(random.Random(7))
    strategy.pick(group, REQUEST)  # seen whole
    removed = {group[3].id, group[10].id, group[22].id}
    narrowed = [d for d in group if d.id not in removed]
    counts = Counter(strategy.pick(narrowed, REQUEST).id for _ in range(PICKS * 4))
    assert not removed & set(counts)
    total = sum(d.weight or 0 for d in narrowed)
    heavy = sum(counts[d.id] for d in narrowed if d.weight == 3) / (PICKS * 4)
    assert heavy == pytest.approx(sum(3 for d in narrowed if d.weight == 3) / total, abs=0.035)


def test_a_reordered_or_unknown_list_is_weighed_afresh() -> None:
    group = _group(*({"weight": 1} for _ in range(30)), {"weight": 1000})
    strategy = SimpleShuffle(random.Random(8))
    reordered = list(reversed(group[1:]))  # never seen whole, and not in the group's order
    counts = Counter(strategy.pick(reordered, REQUEST).id for _ in range(200))
    assert counts[group[-1].id] > 180
    assert group[0].id not in counts
