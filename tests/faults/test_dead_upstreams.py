"""Upstreams that are down (connection refused) or failing for a whole run.

* One dead deployment: every request still succeeds; the dead one is tried
  at most ``allowed_fails + 1`` times before it cools down, is probed again
  once per cooldown, and its cooldowns escalate while it stays dead. It comes
  back into rotation when it answers again.
* Every deployment dead: a clear error, quickly, after at most
  ``num_retries + 1`` attempts; with many concurrent requests the retry
  budget bounds the extra attempts, and once the group has cooled down new
  requests fail at once without touching an upstream.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import pytest

from router.clock import ManualClock
from router.errors import ConnectionError, NoDeploymentAvailableError, ServiceUnavailableError
from tests.conftest import openai_dep
from tests.faults.conftest import attempts_of


def _attempts_on(trails: list[Any], deployment_id: str) -> int:
    return sum(a.deployment_id == deployment_id for t in trails for a in t.attempts)


async def _serve(router: Any, n: int) -> list[Any]:
    """``n`` requests one after the other; their trails (every one must succeed)."""
    trails = []
    for i in range(n):
        response = await router.aresponses(model="gpt-4o", input=f"q{i}")
        assert response.status == "completed"
        trails.append(response.routing.trail)
    return trails


async def test_one_dead_upstream_for_the_whole_run(upstreams, make_router):
    a, b, c = await upstreams("a", "b", "c")
    await a.down()
    clock = ManualClock()
    router = make_router([openai_dep(u) for u in (a, b, c)], rng=random.Random(7),
                         allowed_fails=1, cooldown_time=30, cooldown_jitter=0, clock=clock)

    trails = await _serve(router, 40)
    assert _attempts_on(trails, "a") == 2  # allowed_fails + 1, then it cools
    assert all(len(t.attempts) <= 2 for t in trails)  # one failure, then served elsewhere
    (entry,) = router.cooldowns()
    assert (entry.deployment_id, entry.reason, entry.times) == ("a", "ConnectionError", 1)
    assert entry.until - entry.started == 30

    clock.advance(30.01)  # the cooldown ends: `a` is probed again, fails, cools for longer
    trails = await _serve(router, 40)
    assert _attempts_on(trails, "a") == 2
    (entry,) = router.cooldowns()
    assert (entry.deployment_id, entry.times, entry.until - entry.started) == ("a", 2, 60)

    await a.up()  # back: after its cooldown it serves again
    clock.advance(60.01)
    trails = await _serve(router, 20)
    assert router.cooldowns() == []
    assert a.hits == _attempts_on(trails, "a") >= 1


async def test_one_dead_upstream_under_concurrent_load(upstreams, make_router):
    a, b, c = await upstreams("a", "b", "c")
    await a.down()
    router = make_router([openai_dep(u) for u in (a, b, c)], rng=random.Random(3),
                         allowed_fails=1, cooldown_time=60)

    first = await asyncio.gather(*(router.aresponses(model="gpt-4o", input=f"q{i}")
                                   for i in range(30)))
    assert all(len(r.routing.attempts) <= 2 for r in first)
    assert [c.deployment_id for c in router.cooldowns()] == ["a"]

    second = await asyncio.gather(*(router.aresponses(model="gpt-4o", input=f"r{i}")
                                    for i in range(30)))
    assert _attempts_on([r.routing.trail for r in second], "a") == 0


async def test_every_upstream_dead_fails_quickly_with_a_clear_error(upstreams, make_router):
    """Bound: three refused loopback connections and no backoff (each retry goes to
    another deployment, which does not wait) take milliseconds; 2 s is far above
    that and far below the 30 s deadline a retry storm would run into."""
    ups = await upstreams("a", "b", "c")
    for up in ups:
        await up.down()
    router = make_router([openai_dep(u) for u in ups], rng=random.Random(1), num_retries=2)

    started = time.monotonic()
    with pytest.raises(ConnectionError) as info:
        await router.aresponses(model="gpt-4o", input="x", timeout=30)

    assert time.monotonic() - started < 2.0
    err = info.value
    assert sorted(a for _, a, _ in attempts_of(err.trail)) == ["a", "b", "c"]
    assert all(e == "ConnectionError" for _, _, e in attempts_of(err.trail))
    assert err.model_group == "gpt-4o" and err.deployment_id in {"a", "b", "c"}
    assert "connection" in str(err).lower()


@pytest.mark.parametrize("fault", ["down", "503"])
async def test_every_upstream_dead_under_concurrent_load_is_no_retry_storm(
    upstreams, make_router, fault
):
    """60 concurrent requests, ``num_retries=2`` (3 attempts each without a budget,
    180 in all): the retry budget (ratio 0.2, a reserve of 5) allows at most
    60 x 0.2 + 5 = 17 retries. Once cooled, the group fails new requests at once."""
    ups = await upstreams("a", "b", "c")
    for up in ups:
        if fault == "down":
            await up.down()
        else:
            up.faults.fail(503)
    router = make_router([openai_dep(u) for u in ups], rng=random.Random(2), num_retries=2,
                         retry_budget_ratio=0.2, retry_budget_min_per_second=0.5,
                         retry_budget_window=10, cooldown_time=60)
    expected = ConnectionError if fault == "down" else ServiceUnavailableError

    started = time.monotonic()
    errors = await asyncio.gather(
        *(router.aresponses(model="gpt-4o", input=f"q{i}", timeout=30) for i in range(60)),
        return_exceptions=True)
    assert time.monotonic() - started < 5.0  # see the bound of the test above

    assert all(isinstance(e, expected | NoDeploymentAvailableError) for e in errors)
    attempts = [len(e.trail.attempts) for e in errors]
    assert max(attempts) <= 3
    assert sum(attempts) <= 60 + 17
    assert any("retry budget exhausted" in n for e in errors for n in e.trail.notes)
    assert sum(up.hits for up in ups) == (0 if fault == "down" else sum(attempts))
    assert {c.deployment_id for c in router.cooldowns()} == {"a", "b", "c"}

    hits = sum(up.hits for up in ups)
    again = await asyncio.gather(
        *(router.aresponses(model="gpt-4o", input=f"r{i}") for i in range(60)),
        return_exceptions=True)
    assert all(isinstance(e, NoDeploymentAvailableError) and e.reason == "all_cooled_down"
               for e in again)
    assert sum(up.hits for up in ups) == hits
