"""``peak-ewma``: the lowest expected latency, from peak-EWMA latencies and the queue.

The recommended strategy, after Finagle's and Linkerd's ``P2CPeakEwma``,
with the queue term made right for deployments that serve several requests
at once. Each candidate's cost, the latency a new request should expect
(:meth:`LoadTracker.expected_latency`), with ``k`` requests in flight there::

    cost = peak x max(1, (k + 1) / c) x (1 + 0.5 x min(1, k / c))

and at least the time its oldest unanswered request has waited so far.

* ``peak`` (:meth:`LoadTracker.peak_latency`) is the latency less its queue,
  as a peak EWMA: it jumps up at once on a slow answer and decays toward
  faster ones (by ``alpha`` per answer at least, and over the time constant
  ``routing_strategy_args["decay_time"]``, default 10 s, when answers are
  sparse; the tracker owns it, see :meth:`PeakEwma.from_context`). A
  deployment that slows down is avoided after its first slow answer, or
  sooner, once a request there has waited longer than usual; one that
  stopped getting traffic is probed again after a few decay times.
* ``c`` is the deployment's parallelism, learned as its service time (an
  EWMA of the answers that did not queue) over its *drain time* (the time
  per request when saturated, from ``latency / in-flight`` of the answers
  that did); ``max_parallel_requests``, when configured, is a floor. So
  ``peak x (k + 1) / c`` is how long the requests already there and the
  new one take to get through once it is saturated, and a queue counts
  once.
* The last factor is a hedge: within its parallelism a deployment is not
  slower, but the estimates are noisy, and spreading over near-equal
  deployments limits how many requests a slow-down nobody has seen yet
  catches.

Why not Finagle's ``latency x (in_flight + 1)``: it counts every request in
flight as one more full latency, i.e. it assumes each deployment serves one
request at a time. An LLM deployment serves many at once, so that formula
makes a fast deployment with three requests in flight look 4x slower than it
is and sends traffic to an idle one that really is 4x slower; and once the
latency samples include a queue, it counts that queue twice.

Why the three figures are kept apart: the previous version of this strategy
kept peak EWMAs of the latency and of ``latency / in-flight``, so one slow
first answer (a connection being opened) made a fast deployment look
serial for a whole decay time, and in ``benchmarks/routing_quality.py`` it
routed like least-busy (p99 403 ms, 8.3 % on the slowed deployment after
its slow-down). With the figures apart the same run gives 116 ms and 1.5 %.
The discrete-event simulation in ``tests/router/strategies/test_peak_ewma.py``
(20 ms upstreams of capacity 4, one 4x slower, one 10x slower from
half-way, one failing 5 %, 24 clients, slow first answers and 1 % late
reads; 10 seeds at three noise levels) gives a mean p99 of 153 ms with this
cost, 261 ms with the previous one, 330 ms for least-busy, 423 ms for
latency-based-routing and 1.18 s for simple-shuffle; with unlimited
capacity 105 ms, 172 ms, 210 ms, 157 ms and 235 ms.

Why a rare overtaken answer (a request started later has answered already)
cannot raise the peak at once, and why an overtaken request's wait does not
count: a late read (a busy event loop) or a long answer is that request's,
not the deployment's. Taken as the deployment's, one late read (70 ms on a
20 ms deployment) made it cost 3x; it got no more traffic, so no answer
brought the peak down, and the group's traffic split by accident for a
whole decay time. Only rare ones (under one answer in 50) are damped: more
common, they are the deployment's own tail and count at once. In the same
simulation, over 30 seeds at three noise levels (jitter 10 / 20 / 30 %,
late reads 0 / 1 / 3 %), the mean p99 capacity-limited went from 116 / 139
/ 215 ms to 111 / 139 / 199 ms (the worst seed from 305 to 227 ms), and
with unlimited capacity from 57 / 122 / 146 ms to 55 / 108 / 157 ms. With
unlimited capacity latency-based-routing still wins about half of the seeds
where it happens to pile onto a fast deployment and loses the others
(~190 ms): the requests sent to the slowed deployment before its first one
there is overdue (one service time: ~8 when spread over three fast
deployments) are about the 1 % tail, and no estimate can see them.

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
from router.strategies.base import LoadReader
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


class PeakEwma(LoadReader):
    """Lowest :meth:`LoadTracker.expected_latency`; see the module docstring.

    ``load``: the tracker to read (the router binds its own when ``None``);
    ``clock``: the instant costs are read at (default: the tracker's).
    """


    def __init__(
        self, load: LoadTracker | None = None, clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._clock = clock
        self._random = (rng or random.Random()).random
        self._capacities: TupleCache[list[int | None]] = TupleCache()
        super().__init__(load)

    def _bound(self, load: LoadTracker) -> None:
        self._expected = load.expected_latency
        self._in_flight = load.in_flight
        self._now = (self._clock or load.clock).now

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
