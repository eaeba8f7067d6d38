"""A small discrete-event simulation of a router in front of queueing upstreams.

Each simulated upstream serves up to ``capacity`` requests at once and
queues the rest (FIFO); its service time may change at a given instant, and
it may recover at a later instant; a fraction of its requests fail fast;
its first ``warmup_requests`` take
``warmup`` seconds more (opening connections). ``stall_rate`` of the
answers are read ``stall`` seconds late (the router's event loop busy
elsewhere), which lengthens the router's latency sample without holding the
upstream. ``concurrency`` closed-loop clients send one request after
another; a failed request is retried at once, by the attempt loop's rule
(:func:`router.retry_targets.retry_targets`: on the other deployments unless
they are clearly worse, in a new candidates list), without a retry limit
(so never a last try that must go elsewhere). Time is
a :class:`ManualClock` moved from event to event, so the strategies and the
:class:`LoadTracker` see exactly the figures a real router would, with no
sleeping and a fixed outcome per seed.
"""

from __future__ import annotations

import functools
import heapq
import random
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from router.clock import ManualClock
from router.config import DeploymentConfig
from router.deployment import Deployment
from router.load import LoadHandle, LoadTracker
from router.request import RouteRequest
from router.retry_targets import note_failure, retry_targets
from router.strategies.base import Strategy, StrategyContext, cost_reader, strategy_registry
from router.table import DeploymentTable

# isort: split
from providers.mock import MockProvider

OUTPUT_TOKENS = 100
TOTAL_TOKENS = 150


def make_group(*params: dict[str, Any], info: Sequence[dict[str, Any]] = ()) -> tuple[
        Deployment, ...]:
    """Deployments ``d0, d1, ...`` of group ``g`` with the given ``litellm_params``."""
    configs = [
        DeploymentConfig.model_validate({
            "model_name": "g",
            "litellm_params": {"model": f"mock/m{i}", **p},
            "model_info": {"id": f"d{i}", **(info[i] if i < len(info) else {})},
        })
        for i, p in enumerate(params)
    ]
    return DeploymentTable(configs, {"mock": MockProvider()}).group("g")


def build_strategy(
    name: str, load: LoadTracker, clock: ManualClock, seed: int, **args: Any
) -> Strategy:
    context = StrategyContext(random.Random(seed), clock, load, args)
    return strategy_registry().create(name, context, where="test")


@dataclass
class Upstream:
    """One simulated deployment: service seconds, parallel capacity, changes."""

    service: float = 1.0
    capacity: int = 4
    slow_at: float | None = None  # from this instant on, service x slow_factor
    slow_after: int | None = None  # or once this many requests have been sent
    slow_factor: float = 4.0
    recover_after: int | None = None  # back to ``service`` once this many were sent
    recover_at: float | None = None
    fail_rate: float = 0.0
    #: added to each of the first ``warmup_requests`` (opening connections)
    warmup: float = 0.0
    warmup_requests: int = 0

    def slowed(self, now: float) -> bool:
        """Whether its slow-down is in effect at ``now``."""
        if self.slow_at is None or now < self.slow_at:
            return False
        return self.recover_at is None or now < self.recover_at

    def service_time(self, now: float) -> float:
        slowed = self.slowed(now)
        extra = 0.0
        if self.warmup_requests > 0:
            self.warmup_requests -= 1
            extra = self.warmup
        return self.service * (self.slow_factor if slowed else 1.0) + extra


@dataclass
class _Job:
    worker: int
    started: float  # when the client sent it (latency includes retries)
    handle: LoadHandle
    deployment: str
    failed: dict[str, float] = field(default_factory=dict)  # see retry_targets
    sent: float = 0.0  # when this attempt was sent


@dataclass
class Result:
    """Every pick (instant, deployment id) and every request's latency."""

    picks: list[tuple[float, str]]
    latencies: list[float]
    start: float
    #: (instant, deployment id, seconds on that deployment) per successful attempt
    answers: list[tuple[float, str, float]] = field(default_factory=list)

    def counts(self, after: float = 0.0) -> Counter[str]:
        return Counter(d for t, d in self.picks if t >= self.start + after)

    def share(self, deployment_id: str, after: float = 0.0) -> float:
        counts = self.counts(after)
        return counts[deployment_id] / max(1, sum(counts.values()))

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Simulation:
    """Drive ``strategy`` (reading ``load``) over ``upstreams`` until ``requests`` end."""

    def __init__(
        self,
        make: Callable[[LoadTracker, ManualClock], Strategy],
        upstreams: Sequence[Upstream],
        *,
        concurrency: int,
        seed: int = 0,
        jitter: float = 0.2,
        stall_rate: float = 0.0,
        stall: float = 0.0,
        params: Sequence[dict[str, Any]] = (),
    ) -> None:
        self.clock = ManualClock()
        self.load = LoadTracker(self.clock)
        self.strategy = make(self.load, self.clock)
        self._costs = cost_reader(self.strategy, self.load)
        self.group = make_group(*(params or [{} for _ in upstreams]))
        self._upstreams = {d.id: u for d, u in zip(self.group, upstreams, strict=True)}
        self._running = Counter[str]()
        self._queues: dict[str, deque[_Job]] = {d.id: deque() for d in self.group}
        self._events: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = 0
        self._rng = random.Random(seed)
        self._jitter = jitter
        self._stall_rate, self._stall = stall_rate, stall
        self._concurrency = concurrency
        self._request = RouteRequest(model="g", params={})
        self._picks: list[tuple[float, str]] = []
        self._latencies: list[float] = []
        self._answers: list[tuple[float, str, float]] = []
        self._unsent = 0

    def run(self, requests: int) -> Result:
        start = self.clock.now()
        first = min(self._concurrency, requests)
        self._unsent = requests - first
        for worker in range(first):
            self._at(start, functools.partial(self._send, worker, start, {}))
        while self._events:
            when, _, action = heapq.heappop(self._events)
            self.clock.advance(when - self.clock.now())
            action()
        return Result(self._picks, self._latencies, start, self._answers)

    def _at(self, when: float, action: Callable[[], None]) -> None:
        self._seq += 1
        heapq.heappush(self._events, (when, self._seq, action))

    def _send(self, worker: int, started: float, failed: dict[str, float]) -> None:
        candidates: Sequence[Deployment] = self.group
        if failed:
            candidates = retry_targets(self.group, failed, self._costs)
        deployment = self.strategy.pick(candidates, self._request)
        assert deployment in candidates
        self._picks.append((self.clock.now(), deployment.id))
        for upstream in self._upstreams.values():
            if upstream.slow_after == len(self._picks):
                upstream.slow_at = self.clock.now()
            if upstream.recover_after == len(self._picks):
                upstream.recover_at = self.clock.now()
        job = _Job(worker, started, self.load.acquire(deployment.id), deployment.id, failed,
                   self.clock.now())
        if self._running[job.deployment] < self._upstreams[job.deployment].capacity:
            self._start(job)
        else:
            self._queues[job.deployment].append(job)

    def _start(self, job: _Job) -> None:
        upstream = self._upstreams[job.deployment]
        self._running[job.deployment] += 1
        now = self.clock.now()
        seconds = upstream.service_time(now) * (1 + self._jitter * (2 * self._rng.random() - 1))
        fails = self._rng.random() < upstream.fail_rate
        self._at(now + (seconds / 10 if fails else seconds), lambda: self._finish(job, fails))

    def _finish(self, job: _Job, failed: bool) -> None:
        self._running[job.deployment] -= 1
        queue = self._queues[job.deployment]
        if queue:
            self._start(queue.popleft())
        if self._stall_rate and self._rng.random() < self._stall_rate:
            # The client reads the answer late (a busy event loop): the
            # upstream's slot is free, the router's sample is longer.
            self._at(self.clock.now() + self._stall, lambda: self._answered(job, failed))
        else:
            self._answered(job, failed)

    def _answered(self, job: _Job, failed: bool) -> None:
        now = self.clock.now()
        if failed:
            job.handle.release(ok=False)
            again = dict(job.failed)  # a fast server error, weighed by its attempt's seconds
            note_failure(again, job.deployment, now - job.sent)
            self._send(job.worker, job.started, again)
            return
        job.handle.release(ok=True, output_tokens=OUTPUT_TOKENS, total_tokens=TOTAL_TOKENS)
        self._latencies.append(now - job.started)
        self._answers.append((now, job.deployment, now - job.sent))
        if self._unsent > 0:
            self._unsent -= 1
            self._send(job.worker, now, {})
