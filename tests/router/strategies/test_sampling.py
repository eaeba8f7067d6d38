"""Shared strategy pieces: pairs, ties, the tuple cache, argument checks."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence

import pytest

from router.deployment import Deployment
from router.errors import ConfigError
from router.strategies.sampling import (
    NARROW_LIMIT,
    TupleCache,
    Wholes,
    lowest,
    number_arg,
    random_min,
    two_distinct,
)
from tests.router.strategies.simulation import make_group


def test_two_distinct_is_distinct_and_uniform() -> None:
    rand = random.Random(0).random
    pairs = Counter(two_distinct(rand, 4) for _ in range(12000))
    assert all(i != j for i, j in pairs)
    assert len(pairs) == 12  # every ordered pair of distinct indices
    for count in pairs.values():
        assert count == pytest.approx(1000, abs=150)
    assert {two_distinct(rand, 2) for _ in range(50)} == {(0, 1), (1, 0)}


def test_lowest_breaks_ties_at_random_and_prefers_the_lowest() -> None:
    group = make_group({}, {}, {}, {})
    rand = random.Random(1).random
    assert lowest(group, [3, 1, 2, 5], rand) is group[1]
    picks = Counter(lowest(group, [1, 2, 1, 1], rand).id for _ in range(3000))
    assert set(picks) == {"d0", "d2", "d3"}
    for count in picks.values():
        assert count == pytest.approx(1000, abs=120)


def test_random_min_calls_the_key_once_per_candidate() -> None:
    group = make_group({}, {}, {})
    seen: list[str] = []

    def key(d: Deployment) -> tuple[int, str]:
        seen.append(d.id)
        return (0, d.id)

    assert random_min(group, key, random.Random(0).random) is group[0]
    assert seen == ["d0", "d1", "d2"]


def test_tuple_cache_keeps_tuples_by_identity_and_never_lists() -> None:
    group = make_group({}, {}, {})
    builds: list[int] = []

    def build(candidates: Sequence[Deployment]) -> int:
        builds.append(len(candidates))
        return len(builds)

    cache: TupleCache[int] = TupleCache()
    assert cache.get(group, build) == 1
    assert cache.get(group, build) == 1  # same tuple object: cached
    equal_copy = tuple(list(group))
    assert cache.get(equal_copy, build) == 2  # another object: its own entry
    as_list = list(group)
    assert cache.get(as_list, build) == 3
    assert cache.get(as_list, build) == 4  # a list may change: never cached
    assert builds == [3, 3, 3, 3]


def test_tuple_cache_is_bounded() -> None:
    cache: TupleCache[int] = TupleCache(size=2)
    groups = [make_group({}) for _ in range(3)]
    calls = Counter[int]()

    def build(candidates: Sequence[Deployment]) -> int:
        calls[id(candidates)] += 1
        return 0

    for g in groups:
        cache.get(g, build)
    cache.get(groups[2], build)  # kept after the reset
    cache.get(groups[0], build)  # dropped by the reset: built again
    assert [calls[id(g)] for g in groups] == [2, 1, 1]


def test_number_arg() -> None:
    assert number_arg({}, "x", 0.5) == 0.5
    assert number_arg({"x": 2}, "x", 0.5) == 2.0
    assert number_arg({"x": 0}, "x", 0.5) == 0.0
    for bad in (-1, "1", True, float("nan"), float("inf"), None):
        with pytest.raises(ConfigError, match=r"routing_strategy_args\.x: expected a finite"):
            number_arg({"x": bad}, "x", 0.5)
    with pytest.raises(ConfigError, match="> 0"):
        number_arg({"x": 0}, "x", 1.0, allow_zero=False)


def test_wholes_recognise_an_order_preserving_subset() -> None:
    group = make_group(*({} for _ in range(40)))
    wholes = Wholes()
    assert wholes.narrowed(list(group)) is None  # never seen whole
    wholes.learn(group)
    kept = [d for i, d in enumerate(group) if i not in (0, 7, 8, 39)]
    narrowed = wholes.narrowed(kept)
    assert narrowed is not None and narrowed.whole is group
    assert [i for i in range(40) if narrowed.has(i)] == [
        i for i in range(40) if i not in (0, 7, 8, 39)]
    assert wholes.narrowed(kept[::-1]) is None  # first/last not where they belong
    too_narrow = list(group[: 40 - NARROW_LIMIT - 1])
    assert wholes.narrowed(too_narrow) is None
