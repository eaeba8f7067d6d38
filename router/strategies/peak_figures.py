"""The ``peak-ewma`` strategy's own figures: peak latency, drain time, service time.

Only ``peak-ewma`` reads them, so it owns them (as a tower or Finagle
balancer owns its load metric): :class:`PeakFigures` subscribes to the load
tracker's samples (:class:`router.load.LoadListener`) and keeps, per
deployment, three figures fed by each successful latency sample ``L`` (a
stream's: its time to first token, because a stream's whole duration depends
on how fast the caller reads) and the requests ``f`` in flight there when it
started (itself included; the shared count when fresh and larger):

* the *drain time* ``d``: the time the deployment takes per request when
  saturated (inverse throughput). The first sample gives ``L / f``. It then
  moves by ``alpha`` toward ``L / f`` when that is lower (the deployment has
  shown that throughput) or when the sample queued (``f`` beyond the
  parallelism below, or ``L`` over 1.5x the service time with others in
  flight). A sample served at the parallelism already known, without
  queueing, nudges it toward ``service / (f + 1)``: a deployment not loaded
  yet is tried one request further instead of being taken as serial for ever;
* the *service time* ``s``: an EWMA of the latency of the samples that did
  not queue (``f`` within the parallelism): the deployment's latency while it
  has room;
* the *peak* latency: each sample less its queue (``L`` within the
  parallelism, ``L x parallelism / f`` beyond it) as a peak EWMA
  (Finagle/Linkerd): a higher sample replaces it at once, a lower one pulls
  it down by ``max(alpha, 1 - exp(-dt / decay))`` where ``dt`` is the time
  since the previous sample. While a deployment has nothing in flight the
  value read decays toward zero with the same time constant, and once
  nothing was sent there for ``probe`` seconds (default ``decay / 2``) and
  nothing is in flight, its expected latency reads 0: one request probes it.
  So a deployment that looked slow once (or whose figures are stale) never
  goes without traffic for long, at the cost of one request per ``probe``
  seconds when it really is slow.

The first :data:`COLD_ANSWERS` (``cold``) answers of a deployment may include connection
setup (TLS, a cold upstream), and so may any request sent there before its
first answer came back (a burst at start opens a connection per request, and
the slowest of those answers arrive last): for those each figure keeps the
*lowest* sample, and :meth:`PeakFigures.expected_latency` reads 0 while it has
nothing in flight (probe it, one request at a time), else ``None`` (the
strategy's stand-in for an unmeasured deployment), so a cold start does not
brand a deployment as slow; a deployment that is slow answers slowly every
time and keeps a high figure.

The *parallelism*, ``s / d``, is how many requests it serves at once. Keeping
the three apart lets a queue count once: one slow first answer (a connection
being opened) does not make a fast deployment look serial.

A sample is *overtaken* when a request that started later on the same
deployment has already answered. The deployment was not slow for that younger
request, so what made this one slow may be its own (a long answer, a late
read by a busy event loop). While such outliers (overtaken and above the
peak) are rare, fewer than one answer in 50 (an EWMA of their share, weight
1/50), one moves the peak by ``alpha`` only and feeds neither the service nor
the drain time: taken as the deployment's, one late read would make a fast
deployment cost several times its latency, it would get no traffic, and no
answer would bring the peak back down. Once they are more common they are
the deployment's tail and count at once, as any sample does.

A timeout feeds a penalty sample, ``max(2 x peak, elapsed)``: never below
the peak, and as bad as the whole wait when the deployment hung.

:meth:`PeakFigures.expected_latency` also reads how long the oldest request
still waiting for its answer (a stream: its first token) has waited, among
those no younger answer has overtaken: a lower bound of a sample still to
come, so a deployment that has just slowed down looks slow at once.

Mutations run under the tracker's lock (listeners are called under it) and
this object's own lock; the hot-path reads take no lock.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from router.load import LoadHandle, LoadTracker

__all__ = ["COLD_ANSWERS", "DEFAULT_DECAY", "PeakFigures"]

DEFAULT_DECAY = 10.0  # seconds; Finagle's default decay time
_PENALTY_FACTOR = 2.0
#: A sample this many times the service time, with others in flight, queued.
_QUEUED = 1.5
#: Overtaken samples above the peak are a request's own slowness while rarer
#: than this share of the answers (also the weight of the EWMA of that share).
_RARE = 0.02
#: The hedge of :meth:`PeakFigures.expected_latency`: requests already there
#: add up to this share of the latency (all of it at the parallelism).
_HEDGE = 0.5
#: The first answers of a deployment may include connection setup: until
#: this many, each figure keeps the lowest sample instead of the worst.
COLD_ANSWERS = 3
_WAITING_COMPACT_AT = 64


class _Peak:
    """The figures of one deployment (mutated under the locks)."""

    __slots__ = (
        "drain", "first_answer", "last_start", "outliers", "peak", "peak_at", "samples",
        "service", "waiting", "youngest",
    )

    def __init__(self) -> None:
        self.peak: float | None = None
        self.drain = 0.0
        self.service = 0.0
        self.peak_at = 0.0
        self.samples = 0
        #: When its first answer came (infinite before): a request sent earlier found
        #: no connection known to be warm, so it may have paid for opening one.
        self.first_answer = math.inf
        #: When the latest request was sent there.
        self.last_start = -math.inf
        #: When the latest-started answered (successful) request started.
        self.youngest = -math.inf
        #: EWMA of the share of answers that were overtaken and above the peak.
        self.outliers = 0.0
        #: Handles in start order; those still waiting for an answer (or a
        #: stream's first token), and not overtaken, tell how long the oldest
        #: has waited so far.
        self.waiting: deque[LoadHandle] = deque()


def _parallelism(service: float, drain: float) -> float:
    """How many requests a deployment serves at once: service time / drain time, at least 1.

    Below 1 the figures contradict each other (a slow-down raised the drain
    time before the service time): one request alone is never queued there.
    """
    return max(1.0, service / drain) if drain > 0 else math.inf


def _keep_lowest(stats: _Peak, latency: float, drain_sample: float, now: float) -> None:
    """A cold answer: each figure keeps the lowest sample (the first one as it is)."""
    peak = stats.peak
    if peak is None:
        stats.peak, stats.service, stats.drain = latency, latency, drain_sample
    else:
        stats.peak = min(peak, latency)
        stats.service = min(stats.service, latency)
        stats.drain = min(stats.drain, drain_sample)
    stats.peak_at = now


def _drop_overtaken(waiting: deque[LoadHandle], started: float) -> None:
    """Forget the handles started before ``started`` (at the queue's head: start order)."""
    while waiting and waiting[0].started < started:
        waiting.popleft()


def _compact(waiting: deque[LoadHandle]) -> None:
    """Drop answered handles stuck behind an old one that still waits (amortised O(1))."""
    keep = [h for h in waiting if not h.answered]
    waiting.clear()
    waiting.extend(keep)


class PeakFigures:
    """Peak, drain and service time per deployment, fed by ``load``'s samples.

    ``decay``: the peak EWMA's time constant, seconds (``decay_time``);
    ``alpha``: the weight of a new sample (default: the tracker's);
    ``probe``: seconds without a request after which an idle deployment is
    probed (default ``decay / 2``; ``math.inf``: never); ``cold``: answers
    that may include connection setup (1: the first answer counts fully, and so
    does every request sent before it came back).
    """

    def __init__(
        self, load: LoadTracker, *, decay: float = DEFAULT_DECAY, alpha: float | None = None,
        probe: float | None = None, cold: int = COLD_ANSWERS,
    ) -> None:
        if not decay > 0:
            raise ValueError(f"PeakFigures: decay must be > 0 seconds, got {decay!r}")
        probe = decay / 2 if probe is None else probe
        if not probe > 0:
            raise ValueError(f"PeakFigures: probe must be > 0 seconds, got {probe!r}")
        self._load = load
        self._decay = decay
        self._probe = probe
        self._cold = max(1, cold)
        self._alpha = load.alpha if alpha is None else alpha
        self._local = load.local_in_flight
        self._in_flight = load.in_flight
        self._peaks: dict[str, _Peak] = {}
        self._lock = threading.Lock()
        load.listen(self)

    @property
    def decay(self) -> float:
        return self._decay

    # -- samples (called by the tracker, under its lock) --------------------------------

    def started(self, handle: LoadHandle) -> None:
        peak = self._peaks.get(handle.deployment_id) or self._add(handle.deployment_id)
        with self._lock:
            peak.last_start = max(peak.last_start, handle.started)
            waiting = peak.waiting
            waiting.append(handle)
            if len(waiting) > _WAITING_COMPACT_AT and len(waiting) > 4 * self._local(
                    handle.deployment_id):
                _compact(waiting)

    def answered(self, handle: LoadHandle, latency: float, now: float) -> None:
        """One sample of ``latency`` from ``handle`` (its in-flight count at its start).

        The drain time moves by ``alpha`` toward ``latency / flight`` when
        that is lower or the deployment was saturated; the latency less its
        queue feeds the service time (EWMA) and the peak (up at once, down by
        elapsed time). A rare overtaken sample above the peak only moves the
        peak by ``alpha``; a sample not overtaken ends the wait of every
        request started before it.
        """
        stats = self._peaks.get(handle.deployment_id) or self._add(handle.deployment_id)
        with self._lock:
            self._observe(stats, latency, handle.flight, handle.started, now)

    def _observe(self, stats: _Peak, latency: float, flight: int, started: float,
                 now: float) -> None:
        drain_sample = latency / flight
        peak = stats.peak
        overtaken = started < stats.youngest
        if not overtaken:
            stats.youngest = started
            _drop_overtaken(stats.waiting, started)
        if stats.first_answer == math.inf:
            stats.first_answer = now
        elif started < stats.first_answer and self._cold > 1:
            # sent before any answer came back (a burst opening connections): cold however
            # late it answers, and even when quicker ones overtook it
            stats.samples += 1
            _keep_lowest(stats, latency, drain_sample, now)
            return
        outlier = overtaken and peak is not None and latency > peak
        rate = stats.outliers
        stats.outliers = rate + _RARE * (float(outlier) - rate)
        if outlier and rate < _RARE and peak is not None:  # rare: the request's own
            stats.peak, stats.peak_at = peak + self._alpha * (latency - peak), now
            return
        stats.samples += 1
        if peak is None or stats.samples <= self._cold:  # among the first answers: cold
            _keep_lowest(stats, latency, drain_sample, now)
            return
        alpha, drain, service = self._alpha, stats.drain, stats.service
        parallel = _parallelism(service, drain)
        if flight > parallel or drain_sample < drain or (
                flight > 1 and latency > _QUEUED * service):
            stats.drain = drain + alpha * (drain_sample - drain)
        elif flight + 1 > parallel:  # served at its known parallelism: try one more
            stats.drain = drain + alpha * (min(drain, service / (flight + 1)) - drain)
        if flight <= parallel:
            stats.service = service + alpha * (latency - service)
            unqueued = latency
        else:
            unqueued = latency * parallel / flight
        if unqueued < peak:
            weight = min(1.0 - alpha, math.exp(min(0.0, stats.peak_at - now) / self._decay))
            unqueued += (peak - unqueued) * weight
        stats.peak, stats.peak_at = unqueued, now

    def timed_out(self, handle: LoadHandle, elapsed: float, now: float) -> None:
        """A penalty sample, never below the peak."""
        stats = self._peaks.get(handle.deployment_id) or self._add(handle.deployment_id)
        with self._lock:
            sample = elapsed if stats.peak is None else max(_PENALTY_FACTOR * stats.peak, elapsed)
            if stats.peak is None:
                stats.service, stats.drain = sample, elapsed / handle.flight
            else:
                stats.service += self._alpha * (sample - stats.service)
            stats.peak, stats.peak_at = sample, now

    def _add(self, deployment_id: str) -> _Peak:
        with self._lock:
            return self._peaks.setdefault(deployment_id, _Peak())

    # -- reading ------------------------------------------------------------------------

    def peak_latency(self, deployment_id: str, now: float | None = None) -> float | None:
        """The peak-EWMA latency as of ``now`` (default: the clock's); ``None`` before any.

        With nothing in flight it decays toward zero since the last sample;
        pass ``now`` to read many at one instant.
        """
        stats = self._peaks.get(deployment_id)
        if stats is None or stats.peak is None:
            return None
        if self._local(deployment_id):
            return stats.peak
        idle = (self._load.clock.now() if now is None else now) - stats.peak_at
        return stats.peak * math.exp(-idle / self._decay) if idle > 0 else stats.peak

    def drain_time(self, deployment_id: str) -> float | None:
        """The drain time; ``None`` before any sample. Not decayed while idle."""
        stats = self._peaks.get(deployment_id)
        return None if stats is None or stats.peak is None else stats.drain

    def service_time(self, deployment_id: str) -> float | None:
        """The service time; ``None`` before any sample."""
        stats = self._peaks.get(deployment_id)
        return None if stats is None or stats.peak is None else stats.service

    def expected_latency(
        self, deployment_id: str, now: float, capacity: int | None = None
    ) -> float | None:
        """The latency one more request should expect now; ``None`` before any sample.

        With ``k`` requests in flight and parallelism ``c`` (``s / d``, at
        least ``capacity`` when the deployment's parallel requests are
        known)::

            peak x max(1, (k + 1) / c) x (1 + 0.5 x min(1, k / c))

        and at least the time the oldest request still waiting there has
        waited (among those no younger answer has overtaken): the latency
        while it has room, the time to get through its queue once saturated,
        and a hedge (the last factor) that makes each request already there
        cost a little even within the parallelism, since estimates are noisy.
        """
        stats = self._peaks.get(deployment_id)
        if stats is None:
            return None
        idle = not self._in_flight(deployment_id)
        if idle and (now - stats.last_start >= self._probe or 0 < stats.samples < self._cold):
            return 0.0  # nothing sent for a while, or cold so far: probe it, one at a time
        if stats.samples < self._cold:
            return None  # unmeasured, or a probe in flight: the caller's stand-in
        latency = stats.peak
        assert latency is not None
        if not self._local(deployment_id) and now > stats.peak_at:
            latency *= math.exp((stats.peak_at - now) / self._decay)
        waiting = self._in_flight(deployment_id)
        parallel = _parallelism(stats.service, stats.drain)
        if capacity and capacity > parallel:
            parallel = capacity
        position = (waiting + 1) / parallel
        if position > 1.0:
            latency *= position
        if waiting:
            latency *= 1.0 + _HEDGE * min(1.0, waiting / parallel)
        age = self._oldest_wait(stats.waiting, now)
        return age if age > latency else latency

    def _oldest_wait(self, waiting: deque[LoadHandle], now: float) -> float:
        """How long the oldest request still waiting for an answer has waited (0: none).

        Reads without the lock (the hot path); answered handles at the head
        are dropped under it, and only if still at the head.
        """
        while True:
            try:
                head = waiting[0]
            except IndexError:
                return 0.0
            if not head.answered:
                return now - head.started
            with self._lock:
                if waiting and waiting[0] is head:
                    waiting.popleft()
