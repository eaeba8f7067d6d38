"""The load test's short form, in-process: correctness figures, never timings.

300 requests at concurrency 30 over a healthy, a 30 %-failing and a dying
upstream (``benchmarks/load.py``): every request must succeed and be counted,
the router's in-flight count must return to 0, and retries must stay bounded.
"""

from __future__ import annotations

import asyncio

import pytest

from benchmarks.load import DYING, FLAKY, HEALTHY, QUICK, LoadReport, run_load


@pytest.fixture(scope="module")
def report() -> LoadReport:
    return asyncio.run(run_load(QUICK))


def test_every_request_succeeds_and_is_accounted_for(report: LoadReport) -> None:
    assert report.requests == QUICK.requests
    assert report.failed == 0, report.errors
    assert report.succeeded == QUICK.requests
    assert sum(report.served_by_deployment.values()) == QUICK.requests


def test_in_flight_count_returns_to_zero(report: LoadReport) -> None:
    assert report.in_flight_at_end == 0


def test_retry_amplification_is_bounded(report: LoadReport) -> None:
    assert 1.0 <= report.attempts_per_request < 2.0
    assert report.hits_per_request < 2.0


def test_failures_were_met_and_retried(report: LoadReport) -> None:
    # Some attempts failed (flaky 500s, the dead socket) and were retried: more
    # attempts than requests, and the healthy upstream served the most.
    assert sum(report.attempts_by_deployment.values()) > QUICK.requests
    served = report.served_by_deployment
    assert served[HEALTHY] == max(served.values())
    assert report.attempts_by_deployment[FLAKY] > served.get(FLAKY, 0)
    assert report.upstream_hits[HEALTHY] == served[HEALTHY]
    assert DYING in report.attempts_by_deployment
