"""Prometheus metrics, as one observer of the router (optional extra ``metrics``).

``Router(metrics=PrometheusMetrics(registry))`` (or ``metrics=registry``)
reports on the :class:`prometheus_client.CollectorRegistry` given; without one
a private registry is made (``.registry``). The global default registry is
used only when passed on purpose (``prometheus_client.REGISTRY``).
``prometheus_client`` is imported when a :class:`PrometheusMetrics` is made,
so the router works without it installed.

Metrics (prefix ``namespace``, default ``router``), labelled by
``model_group`` and ``deployment_id`` (``""`` for a request that reached no
deployment):

=====================================  =========  ======================================
name                                   type       what
=====================================  =========  ======================================
router_requests_total                  counter    requests ended (served or failed),
                                                  by where they ended
router_request_failures_total          counter    failed requests, ``error_class``: the
                                                  error the caller got
router_attempt_errors_total            counter    failed attempts, by the deployment
                                                  that failed and ``error_class``
router_retries_total                   counter    retries, by the deployment whose
                                                  failure caused them
router_fallbacks_total                 counter    moves to a fallback group
                                                  (``model_group`` -> ``to_group``)
router_request_duration_seconds        histogram  latency of served requests, retries
                                                  included (streams: to their end)
router_time_to_first_token_seconds     histogram  streams: call to first event
router_tokens_total                    counter    tokens of served requests, ``kind``:
                                                  ``input``, ``output``, ``cached_input``
                                                  (a part of ``input``)
router_cost_total                      counter    cost of served requests, in the
                                                  currency of ``model_info`` prices
router_cooldowns_total                 counter    cooldowns this process started,
                                                  ``reason``: error class
router_in_flight                       gauge      requests in flight now
router_cooling_down                    gauge      1 while the deployment cools down
router_cooldown_remaining_seconds      gauge      seconds until it is back (0 if healthy)
=====================================  =========  ======================================

Counters and histograms are fed from each request's terminal event (so the
figures of one request are consistent: its failed attempts, retries and
fallbacks are read from its trail); the three gauges are read from the
router's live state at scrape time (:meth:`router.router.Router.inspect`).

Why one custom collector over plain numbers rather than ``prometheus_client``
``Counter``/``Histogram`` objects: those take a lock per increment and per
observation, and a request touches about ten of them; here a request takes
one lock and adds to plain attributes (a few microseconds in all), and the
families are built only when scraped. The exposition is the same (no
``_created`` series). A histogram's ``le`` buckets are the upper bounds given.
"""

from __future__ import annotations

import importlib
import threading
from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from prometheus_client.metrics_core import Metric

    from router.events import CooldownEvent, FailureEvent, SuccessEvent
    from router.inspection import DeploymentState
    from router.types import AttemptTrail

__all__ = [
    "DEFAULT_LATENCY_BUCKETS",
    "DEFAULT_TTFT_BUCKETS",
    "PrometheusMetrics",
    "metrics_observer",
]

#: Seconds; LLM calls range from tens of milliseconds to minutes.
DEFAULT_LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
DEFAULT_TTFT_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

_LABELS = ("model_group", "deployment_id")
States = Callable[[], Sequence["DeploymentState"]]


def _prometheus() -> Any:
    try:
        import prometheus_client
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "router metrics need prometheus-client: pip install 'responses-router[metrics]'"
        ) from exc
    return prometheus_client


class _Histogram:
    """Counts per bucket (the last one is +Inf, not cumulative) and a sum."""

    __slots__ = ("counts", "sum")

    def __init__(self, size: int) -> None:
        self.counts = [0] * (size + 1)
        self.sum = 0.0

    def observe(self, bounds: tuple[float, ...], value: float) -> None:
        self.counts[bisect_left(bounds, value)] += 1  # first bound >= value: "le"
        self.sum += value


class _Series:
    """Every figure of one (model group, deployment) fed by successes.

    ``ttft``, ``cached`` and ``cost`` stay ``None`` until first used: a
    deployment that never streams shows no TTFT series, and one without
    prices no cost series (its cost is unknown, not 0).
    """

    __slots__ = ("cached", "cost", "input", "latency", "output", "requests", "ttft")

    def __init__(self, latency_size: int) -> None:
        self.requests = 0
        self.latency = _Histogram(latency_size)
        self.ttft: _Histogram | None = None
        self.input = 0
        self.output = 0
        self.cached: int | None = None
        self.cost: float | None = None


class PrometheusMetrics:
    """The Prometheus observer and collector (see the module docstring).

    One instance reports one router (:meth:`bind` is called by the router).
    Two routers on one registry need distinct ``namespace`` s. Thread-safe.
    """

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        namespace: str = "router",
        latency_buckets: Sequence[float] = DEFAULT_LATENCY_BUCKETS,
        ttft_buckets: Sequence[float] = DEFAULT_TTFT_BUCKETS,
    ) -> None:
        prom = _prometheus()
        self.registry: CollectorRegistry = registry if registry is not None else (
            prom.CollectorRegistry())
        self.namespace = namespace
        self._prefix = f"{namespace}_" if namespace else ""
        self._latency_bounds = _bounds(latency_buckets, "latency_buckets")
        self._ttft_bounds = _bounds(ttft_buckets, "ttft_buckets")
        self._lock = threading.Lock()
        self._series: dict[tuple[str, str], _Series] = {}
        self._failures: dict[tuple[str, str, str], int] = {}
        self._attempt_errors: dict[tuple[str, str, str], int] = {}
        self._retries: dict[tuple[str, str], int] = {}
        self._fallbacks: dict[tuple[str, str], int] = {}
        self._cooldowns: dict[tuple[str, str, str], int] = {}
        self._states: States | None = None
        self.registry.register(self)

    def bind(self, states: States) -> None:
        """Read the live gauges from ``states`` (the router's ``inspect``); once only."""
        if self._states is not None:
            raise ValueError(
                "this PrometheusMetrics already reports a router; make one per router "
                "(with distinct namespaces on a shared registry)")
        self._states = states

    # -- the observer --------------------------------------------------------------

    def on_success(self, event: SuccessEvent) -> None:
        usage, cost, ttft, trail = event.usage, event.cost, event.ttft, event.trail
        with self._lock:
            series = self._get(event.model_group, event.deployment_id)
            series.requests += 1
            series.latency.observe(self._latency_bounds, event.latency)
            if ttft is not None:
                if series.ttft is None:
                    series.ttft = _Histogram(len(self._ttft_bounds))
                series.ttft.observe(self._ttft_bounds, ttft)
            if usage is not None:
                _add_usage(series, usage.input_tokens, usage.output_tokens, usage.cached_tokens)
            if cost is not None:
                series.cost = (series.cost or 0.0) + cost
            if len(trail.attempts) > 1 or trail.fallbacks:
                self._count_trail(trail)

    def on_failure(self, event: FailureEvent) -> None:
        group, deployment, usage = event.model_group, event.deployment_id or "", event.usage
        with self._lock:
            series = self._get(group, deployment)
            series.requests += 1
            _inc(self._failures, (group, deployment, event.error_class))
            if usage is not None:
                _add_usage(series, usage.input_tokens, usage.output_tokens, usage.cached_tokens)
            if event.cost is not None:
                series.cost = (series.cost or 0.0) + event.cost
            self._count_trail(event.trail)

    def on_cooldown(self, event: CooldownEvent) -> None:
        if event.origin is not None:
            return  # recorded by another router process, which counts it: sums stay true
        with self._lock:
            _inc(self._cooldowns, (event.model_group or "", event.deployment_id, event.reason))

    def _get(self, group: str, deployment: str) -> _Series:
        series = self._series.get((group, deployment))
        if series is None:
            series = self._series[group, deployment] = _Series(len(self._latency_bounds))
        return series

    def _count_trail(self, trail: AttemptTrail) -> None:
        """Failed attempts, retries and fallbacks of one finished request (lock held)."""
        attempts = trail.attempts
        for i, attempt in enumerate(attempts):
            if attempt.error is None:
                continue
            group, deployment = attempt.model_group, attempt.deployment_id
            _inc(self._attempt_errors, (group, deployment, attempt.error))
            following = attempts[i + 1] if i + 1 < len(attempts) else None
            if following is not None and following.model_group == group:
                _inc(self._retries, (group, deployment))
        source = trail.requested_model
        for target in trail.fallbacks:
            _inc(self._fallbacks, (source, target))
            source = target

    # -- the collector -----------------------------------------------------------------

    def describe(self) -> Iterator[Metric]:
        """The families' names, for the registry's duplicate check (no samples)."""
        return iter(_Families(self._prefix).all())

    def collect(self) -> Iterator[Metric]:
        """Every family with its samples now."""
        families = _Families(self._prefix)
        with self._lock:
            self._collect_counts(families)
        states = () if self._states is None else self._states()
        for state in states:
            labels = [state.model_group, state.deployment_id]
            families.in_flight.add_metric(labels, state.in_flight)
            families.cooling.add_metric(labels, 0.0 if state.healthy else 1.0)
            families.remaining.add_metric(labels, state.cooldown_remaining or 0.0)
        return iter(families.all())

    def _collect_counts(self, f: _Families) -> None:
        for (group, deployment), s in self._series.items():
            labels = [group, deployment]
            f.requests.add_metric(labels, s.requests)
            if any(s.latency.counts):
                f.latency.add_metric(labels, _buckets(self._latency_bounds, s.latency),
                                     s.latency.sum)
            if s.ttft is not None:
                f.ttft.add_metric(labels, _buckets(self._ttft_bounds, s.ttft), s.ttft.sum)
            if s.input or s.output:
                f.tokens.add_metric([*labels, "input"], s.input)
                f.tokens.add_metric([*labels, "output"], s.output)
            if s.cached is not None:
                f.tokens.add_metric([*labels, "cached_input"], s.cached)
            if s.cost is not None:
                f.cost.add_metric(labels, s.cost)
        for (group, deployment, cls), n in self._failures.items():
            f.failures.add_metric([group, deployment, cls], n)
        for (group, deployment, cls), n in self._attempt_errors.items():
            f.attempt_errors.add_metric([group, deployment, cls], n)
        for (group, deployment), n in self._retries.items():
            f.retries.add_metric([group, deployment], n)
        for (group, target), n in self._fallbacks.items():
            f.fallbacks.add_metric([group, target], n)
        for (group, deployment, reason), n in self._cooldowns.items():
            f.cooldowns.add_metric([group, deployment, reason], n)


def _bounds(buckets: Sequence[float], name: str) -> tuple[float, ...]:
    bounds = tuple(float(b) for b in buckets if b != float("inf"))
    if not bounds or list(bounds) != sorted(set(bounds)):
        raise ValueError(f"PrometheusMetrics({name}=...): expected increasing upper bounds, "
                         f"got {list(buckets)!r}")
    return bounds


def _inc(counts: dict[Any, int], key: Any) -> None:
    counts[key] = counts.get(key, 0) + 1


def _add_usage(series: _Series, inp: int, out: int, cached: int) -> None:
    series.input += inp
    series.output += out
    if cached:
        series.cached = (series.cached or 0) + cached


def _buckets(bounds: tuple[float, ...], histogram: _Histogram) -> list[tuple[str, float]]:
    """Cumulative ``(le, count)`` pairs, +Inf last."""
    go_float = importlib.import_module("prometheus_client.utils").floatToGoString
    pairs, total = [], 0
    for bound, count in zip((*bounds, float("inf")), histogram.counts, strict=True):
        total += count
        pairs.append((go_float(bound), float(total)))
    return pairs


class _Families:
    """The metric families of one scrape, empty until samples are added."""

    def __init__(self, prefix: str) -> None:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        def counter(name: str, doc: str, *extra: str) -> CounterMetricFamily:
            return CounterMetricFamily(prefix + name, doc, labels=[*_LABELS, *extra])

        def gauge(name: str, doc: str) -> GaugeMetricFamily:
            return GaugeMetricFamily(prefix + name, doc, labels=_LABELS)

        self.requests = counter("requests", "Requests ended (served or failed).")
        self.failures = counter("request_failures", "Failed requests.", "error_class")
        self.attempt_errors = counter("attempt_errors", "Failed attempts.", "error_class")
        self.retries = counter("retries", "Retries, by the deployment that failed.")
        self.fallbacks = CounterMetricFamily(prefix + "fallbacks", "Moves to a fallback group.",
                                             labels=["model_group", "to_group"])
        self.latency = HistogramMetricFamily(
            prefix + "request_duration_seconds",
            "Latency of served requests, retries included.", labels=_LABELS)
        self.ttft = HistogramMetricFamily(
            prefix + "time_to_first_token_seconds",
            "Streams: seconds from the call to the first event.", labels=_LABELS)
        self.tokens = counter("tokens", "Tokens the upstreams reported in usage.", "kind")
        self.cost = counter("cost", "Cost of served requests (model_info prices).")
        self.cooldowns = counter("cooldowns", "Cooldowns started.", "reason")
        self.in_flight = gauge("in_flight", "Requests in flight.")
        self.cooling = gauge("cooling_down", "1 while the deployment cools down.")
        self.remaining = gauge("cooldown_remaining_seconds",
                               "Seconds until the deployment is back in rotation.")

    def all(self) -> list[Metric]:
        return [self.requests, self.failures, self.attempt_errors, self.retries, self.fallbacks,
                self.latency, self.ttft, self.tokens, self.cost, self.cooldowns, self.in_flight,
                self.cooling, self.remaining]


def metrics_observer(metrics: object) -> PrometheusMetrics | None:
    """``Router(metrics=...)``: ``None``, a :class:`PrometheusMetrics`, or a registry."""
    if metrics is None or isinstance(metrics, PrometheusMetrics):
        return metrics
    registry_type = _prometheus().CollectorRegistry
    if isinstance(metrics, registry_type):
        return PrometheusMetrics(metrics)
    raise TypeError(
        f"Router(metrics=...): expected a PrometheusMetrics or a prometheus_client "
        f"CollectorRegistry, got {type(metrics).__name__}")
