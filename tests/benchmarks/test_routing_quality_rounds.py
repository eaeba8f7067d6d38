"""How the routing-quality benchmark folds its rounds into one row and judges targets.

Pure functions over made-up results: no upstreams, no timings.
"""

from __future__ import annotations

import pytest

from benchmarks.routing_quality import (
    DEGRADING,
    FAST,
    FLAKY,
    SLOW,
    UNLIMITED,
    Result,
    median_of_rounds,
    table,
    targets,
)


def run(strategy: str, p99: float, *, fast: float = 0.7, after: float | None = 0.02,
        errors: int = 0) -> Result:
    rest = (1.0 - fast) / 3
    return Result(
        UNLIMITED, strategy, available=True, requests=100, errors=errors, seconds=2.0,
        p50_ms=p99 / 4, p95_ms=p99 / 2, p99_ms=p99, attempts_per_request=1.0,
        share={FAST: fast, SLOW: rest, DEGRADING: rest, FLAKY: rest},
        slowed_share_after=after, upstream_hits={FAST: 70, SLOW: 10, DEGRADING: 10, FLAKY: 10},
    )


def test_each_figure_is_the_median_of_the_rounds_and_counts_add_up() -> None:
    rounds = [run("peak-ewma", 90, fast=0.6), run("peak-ewma", 200, fast=0.9, errors=2),
              run("peak-ewma", 95, fast=0.6, after=None)]

    folded = median_of_rounds(rounds)

    assert folded.p99_ms == 95
    assert folded.p99_rounds == (90, 200, 95)
    assert folded.requests == 300 and folded.errors == 2 and folded.seconds == 6.0
    assert folded.slowed_share_after == pytest.approx(0.02)  # rounds without one are left out
    assert folded.share[FAST] == pytest.approx(0.7)  # shares: the mean, so they add up
    assert sum(folded.share.values()) == pytest.approx(1.0)
    assert folded.upstream_hits[FAST] == 210


def test_an_unavailable_strategy_stays_unavailable() -> None:
    missing = Result(UNLIMITED, "nope", available=False)

    assert median_of_rounds([missing, missing]) is missing


def test_the_unlimited_target_says_in_how_many_single_rounds_it_held() -> None:
    mine = median_of_rounds([run("peak-ewma", p) for p in (90, 90, 200)])
    lucky = median_of_rounds([run("latency-based-routing", p) for p in (38, 210, 205)])

    (unlimited,) = [t for t in targets([mine, lucky]) if t["target"].startswith(UNLIMITED)]

    assert unlimited["ok"] is True  # 90 ms median against 205 ms
    assert "within it in 2 of 3 single rounds" in unlimited["value"]  # 90 > 1.2 x 38 in round 1


def test_the_table_shows_each_round_p99() -> None:
    folded = median_of_rounds([run("peak-ewma", p) for p in (90, 95, 200)])

    text = table([folded], UNLIMITED)

    assert "p99 ms each round" in text.splitlines()[0]
    assert "90 / 95 / 200" in text
