"""``peak-ewma``: the lowest expected latency, from peak-EWMA latencies and the queue.

The recommended strategy, after Finagle's and Linkerd's ``P2CPeakEwma``,
with the queue term made right for deployments that serve several requests
at once. Each candidate's cost, the latency a new request should expect, is::

    cost = max(peak_latency, drain_time x (in_flight + 1))

* ``peak_latency`` (:meth:`LoadTracker.peak_latency`) jumps up at once on a
  slow answer and decays toward faster ones with the time constant
  ``routing_strategy_args["decay_time"]`` (default 10 s; the tracker owns
  it, see :meth:`PeakEwma.from_context`). A deployment that slows down is
  avoided after its first slow answer, and wins traffic back within a few
  decay times once it is fast again. It is also at least the time the
  oldest request still waiting there has waited so far: a slow-down costs
  traffic as soon as a request has waited longer than usual, before its
  first slow answer arrives.
* ``drain_time x (in_flight + 1)`` is how long the requests already there,
  and the new one, take to get through. ``drain_time``
  (:meth:`LoadTracker.peak_drain_time`) is a peak EWMA of each latency
  sample divided by the requests in flight when it started: at saturation
  the deployment's time per request (inverse throughput); below it, the
  latency divided by the concurrency the deployment was serving. When the
  deployment's ``max_parallel_requests`` is configured,
  ``peak_latency / max_parallel_requests`` caps it.

Why not Finagle's ``latency x (in_flight + 1)``: it counts every request in
flight as one more full latency, i.e. it assumes each deployment serves one
request at a time. An LLM deployment serves many at once, so that formula
makes a fast deployment with three requests in flight look 4x slower than it
is and sends traffic to an idle one that really is 4x slower; and once the
latency samples include a queue, it counts that queue twice. Here a
deployment costs its latency while it has spare capacity, and its queue's
drain time when saturated: with capacity 4, latency ``L`` and 8 in flight,
``L/4 x 9 = 2.25 L``, which is about what the next request will see.
The drain time starts where Finagle does (a request alone in flight gives
the whole latency) and, being a peak EWMA, falls only as the deployment
keeps serving more requests at once without slowing down, over a few decay
times; a drop in throughput counts at once. So an unknown deployment is
treated as serial until it has shown its parallelism. In the discrete-event
simulation of ``benchmarks/routing_quality.py``'s capacity-limited workload
(``tests/router/strategies/test_peak_ewma.py``: 20 ms upstreams of capacity
4, one 4x slower, one 10x slower from half-way, one failing 5 %, 24 clients)
p99 is 96 ms with this cost and 179 ms with Finagle's (least-busy: 328 ms,
latency-based-routing: 598 ms, simple-shuffle: 1.2 s).

A deployment not measured yet is expected to serve like the median measured
candidate (the other one, when two are sampled), as if it served one request
at a time: ``median cost x (in_flight + 1)``. So it is tried as soon as it
is not busier than a typical deployment, and with nothing measured,
identical deployments split traffic by in-flight alone.

Exact (every candidate's cost) up to
:data:`~router.strategies.sampling.EXACT_LIMIT` candidates; above that, the
cheaper of two distinct random candidates (power of two choices), O(1).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TYPE_CHECKING

from router.errors import ConfigError
from router.strategies.sampling import EXACT_LIMIT, TupleCache, lowest, number_arg, two_distinct

if TYPE_CHECKING:
    from router.clock import Clock
    from router.deployment import Deployment
    from router.load import LoadTracker
    from router.request import RouteRequest
    from router.strategies.base import StrategyContext

__all__ = ["PeakEwma"]

#: The latency assumed when no candidate is measured (only ratios matter then).
DEFAULT_LATENCY = 0.1
#: The stand-in latency of an unmeasured deployment is at least this, so its
#: in-flight count still matters when every measured one has decayed to ~0.
_FLOOR = 1e-9


def _capacity(deployment: Deployment) -> int | None:
    return deployment.config.litellm_params.max_parallel_requests


def _capacities(candidates: Sequence[Deployment]) -> list[int | None]:
    return [_capacity(d) for d in candidates]


class PeakEwma:
    """Lowest :meth:`LoadTracker.expected_latency`; see the module docstring."""

    def __init__(self, load: LoadTracker, clock: Clock, rng: random.Random | None = None) -> None:
        self._expected = load.expected_latency
        self._in_flight = load.in_flight
        self._now = clock.now
        self._random = (rng or random.Random()).random
        self._capacities: TupleCache[list[int | None]] = TupleCache()

    @classmethod
    def from_context(cls, context: StrategyContext) -> PeakEwma:
        """Build it; ``decay_time`` must match the tracker's ``peak_decay``.

        The tracker keeps the peak EWMAs (it sees every sample), so the router
        builds it with ``LoadTracker(clock, peak_decay=decay_time)``; a
        mismatch is a configuration error rather than a silently ignored setting.
        """
        if "decay_time" in context.args:
            wanted = number_arg(context.args, "decay_time", 0.0, allow_zero=False)
            if wanted != context.load.peak_decay:
                raise ConfigError(
                    f"routing_strategy_args.decay_time: {wanted:g}s, but the load tracker "
                    f"decays over {context.load.peak_decay:g}s; build it with "
                    f"LoadTracker(clock, peak_decay={wanted:g})"
                )
        return cls(context.load, context.clock, context.rng)

    def pick(self, candidates: Sequence[Deployment], request: RouteRequest) -> Deployment:
        n = len(candidates)
        if n == 1:
            return candidates[0]
        now = self._now()
        if n > EXACT_LIMIT:
            i, j = two_distinct(self._random, n)
            a, b = candidates[i], candidates[j]
            costs = self._costs((a, b), [_capacity(a), _capacity(b)], now)
            return b if costs[1] < costs[0] else a
        capacities = self._capacities.get(candidates, _capacities)
        return lowest(candidates, self._costs(candidates, capacities, now), self._random)

    def _costs(
        self, candidates: Sequence[Deployment], capacities: list[int | None], now: float
    ) -> list[float]:
        """Each candidate's expected latency; unmeasured ones get a stand-in."""
        expected = self._expected
        costs = [
            expected(d.id, now, capacity)
            for d, capacity in zip(candidates, capacities, strict=True)
        ]
        measured = [c for c in costs if c is not None]
        if len(measured) == len(costs):
            return measured
        measured.sort()
        typical = max(measured[len(measured) // 2] if measured else DEFAULT_LATENCY, _FLOOR)
        in_flight = self._in_flight
        return [
            typical * (in_flight(d.id) + 1) if c is None else c
            for d, c in zip(candidates, costs, strict=True)
        ]
