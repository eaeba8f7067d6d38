"""benchmarks/cache_affinity.py in miniature: every strategy, affinity on and off, against
upstream processes that keep a prompt cache; shapes only, never a timing assertion."""

from __future__ import annotations

import argparse

from benchmarks.cache_affinity import STRATEGIES, Scenario, _keys, _scenario


def test_keys_are_seeded_and_skewed() -> None:
    drawn = _keys(50, 400, 3)
    assert drawn == _keys(50, 400, 3) and drawn != _keys(50, 400, 4)
    assert drawn.count("user-0") > drawn.count("user-49")


async def test_every_strategy_runs_with_and_without_affinity() -> None:
    args = argparse.Namespace(requests=40, miss=0.0, ttl=60.0)
    rows = await _scenario(Scenario(2, 3, 4), args, 1)
    assert sorted((r["strategy"], r["affinity"]) for r in rows) == sorted(
        (s, a) for s in STRATEGIES for a in (True, False))
    for row in rows:
        assert 0 < row["hit_share"] <= 1 and row["p99_ms"] >= row["p50_ms"] > 0
