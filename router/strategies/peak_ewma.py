"""``peak-ewma``: the lowest expected latency, from peak-EWMA latencies and the queue.

The recommended strategy, after Finagle's and Linkerd's ``P2CPeakEwma``,
with the queue term made right for deployments that serve several requests
at once. Each candidate's cost is the latency a new request should expect
(:meth:`~router.strategies.peak_figures.PeakFigures.expected_latency`), with
``k`` requests in flight there::

    cost = peak x max(1, (k + 1) / c) x (1 + 0.5 x min(1, k / c))

and at least the time its oldest unanswered request has waited so far.

* ``peak`` is the latency less its queue, as a peak EWMA: it jumps up at once
  on a slow answer and decays toward faster ones (by ``alpha`` per answer at
  least, and over the time constant ``routing_strategy_args["decay_time"]``,
  default 10 s, when answers are sparse). A deployment that slows down is
  avoided after its first slow answer, or sooner, once a request there has
  waited longer than usual; one that stopped getting traffic is probed
  again after a few decay times.
* ``c`` is the deployment's parallelism, learned as its service time over
  its drain time; ``max_parallel_requests``, when configured, is a floor. So
  ``peak x (k + 1) / c`` is how long the requests already there and the new
  one take to get through once it is saturated, and a queue counts once.
* The last factor is a hedge: within its parallelism a deployment is not
  slower, but the estimates are noisy, and spreading over near-equal
  deployments limits how many requests a slow-down nobody has seen yet
  catches.

Why not Finagle's ``latency x (in_flight + 1)``: it counts every request in
flight as one more full latency, i.e. it assumes each deployment serves one
request at a time. An LLM deployment serves many at once, so that formula
makes a fast deployment with three requests in flight look 4x slower than it
is and sends traffic to an idle one that really is slower; and once the
latency samples include a queue, it counts that queue twice.

The strategy owns these figures (:class:`~router.strategies.peak_figures.PeakFigures`,
subscribed to the router's load tracker when the strategy is bound), so
routers using other strategies do not pay for them. How the strategy fares
against the others is measured by ``benchmarks/routing_quality.py`` and the
simulation in ``tests/router/strategies/simulation.py``; the README has the
figures.

A deployment with nothing in flight that was never sent a request, or that
has only cold answers so far, or that nothing was sent to for
``probe_time`` seconds, costs 0: one request probes it (so no healthy
deployment goes without traffic for long, and a new one is tried at once).
While that probe is out, a deployment not measured yet is expected to serve
like the median measured candidate (the other one, when two are sampled),
as if it served one request at a time: ``median cost x (in_flight + 1)``.
With nothing measured, identical deployments split traffic by in-flight
alone.

Exact (every candidate's cost) up to
:data:`~router.strategies.sampling.EXACT_LIMIT` candidates; above that, the
cheaper of two distinct random candidates (power of two choices), O(1).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TYPE_CHECKING

from router.strategies.base import LoadReader, unbound_reader
from router.strategies.peak_figures import COLD_ANSWERS, DEFAULT_DECAY, PeakFigures
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
    """Lowest expected latency; see the module docstring.

    ``load``: the tracker whose samples feed the figures (the router binds
    its own when ``None``); ``clock``: the instant costs are read at (default:
    the tracker's); ``decay_time``: the peak EWMA's time constant, seconds;
    ``probe_time``: seconds without an answer before an idle deployment is
    probed (default half the decay time); ``cold_answers``: first answers
    that may include connection setup (see ``PeakFigures``).
    """

    def __init__(
        self, load: LoadTracker | None = None, clock: Clock | None = None,
        rng: random.Random | None = None, *, decay_time: float = DEFAULT_DECAY,
        probe_time: float | None = None, cold_answers: int = COLD_ANSWERS,
    ) -> None:
        if not decay_time > 0:
            raise ValueError(f"PeakEwma: decay_time must be > 0 seconds, got {decay_time!r}")
        self._clock = clock
        self._decay = decay_time
        self._probe = probe_time
        self._cold = cold_answers
        self._random = (rng or random.Random()).random
        self._capacities: TupleCache[list[int | None]] = TupleCache()
        self.figures: PeakFigures | None = None
        super().__init__(load)

    def _bound(self, load: LoadTracker) -> None:
        self.figures = figures = PeakFigures(
            load, decay=self._decay, probe=self._probe, cold=self._cold)
        self._expected = figures.expected_latency
        self._in_flight = load.in_flight
        self._now = (self._clock or load.clock).now

    def _unbound(self) -> None:
        self._expected = self._in_flight = self._now = unbound_reader(type(self).__name__)

    def peak_latency(self, deployment_id: str, now: float | None = None) -> float | None:
        """The peak latency of ``deployment_id`` (for inspection); ``None`` before any."""
        return None if self.figures is None else self.figures.peak_latency(deployment_id, now)

    @classmethod
    def from_context(cls, context: StrategyContext) -> PeakEwma:
        """Built with ``routing_strategy_args``: ``decay_time`` (seconds, default 10),
        ``probe_time`` (seconds, default half the decay time), ``cold_answers`` (default 3)."""
        args = context.args
        decay = number_arg(args, "decay_time", DEFAULT_DECAY, allow_zero=False)
        probe = number_arg(args, "probe_time", decay / 2, allow_zero=False)
        cold = number_arg(args, "cold_answers", COLD_ANSWERS)
        return cls(context.load, context.clock, context.rng, decay_time=decay,
                   probe_time=probe, cold_answers=int(cold))

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

    def costs(self, candidates: Sequence[Deployment]) -> list[float]:
        """Each candidate's expected latency now (what :meth:`pick` minimises)."""
        return self._costs(candidates, [_capacity(d) for d in candidates], self._now())

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
            c if c is not None else typical * (k + 1) if (k := in_flight(d.id)) else 0.0
            for d, c in zip(candidates, costs, strict=True)
        ]
