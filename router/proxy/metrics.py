"""``/metrics`` for every worker, whichever worker the scrape lands on.

Each worker keeps its own registry: the Router's metrics
(:mod:`router.metrics`, a custom collector) plus the server's few
(:class:`ServerMetrics`). ``prometheus_client``'s multiprocess mode covers
only its own metric classes, not a custom collector, so the equivalent
here is a pull: every worker also answers ``GET /metrics`` on a private
Unix socket in the server's run directory, and the worker that receives a
scrape reads all of them and merges the families, each sample labelled
``worker="<n>"`` (sum them with ``sum without (worker)``). A worker that
does not answer within a second is left out of that scrape, and counted in
``proxy_metrics_workers_missing``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp

if TYPE_CHECKING:
    from aiohttp import web
    from prometheus_client import CollectorRegistry
    from prometheus_client.metrics_core import Metric

__all__ = ["ServerMetrics", "gather_workers", "socket_path"]


class ServerMetrics:
    """The server's own metrics on ``registry``: answers by route and status, limits, drops."""

    def __init__(self, registry: CollectorRegistry) -> None:
        from prometheus_client import Counter, Gauge

        self.registry = registry
        self._answers = Counter("proxy_requests", "HTTP answers by route and status",
                                ["route", "status"], registry=registry)
        self._limited = Counter("proxy_rate_limited", "requests refused by a key's rpm/tpm limit",
                                ["key"], registry=registry)
        self._dropped = Counter("proxy_streams_dropped",
                                "streams dropped: the client went away or stopped reading",
                                registry=registry)
        self.streams = Gauge("proxy_streams_open", "streams being written now",
                             registry=registry)
        #: (route, status) -> its counter: ``labels()`` costs more than the count
        self._answer_counts: dict[tuple[object, int], Any] = {}

    def answered(self, request: web.Request, status: int) -> None:
        route = request.match_info.route.resource
        counter = self._answer_counts.get((route, status))
        if counter is None:
            name = route.canonical if route is not None else "unmatched"
            counter = self._answers.labels(name.removeprefix("/v1"), str(status))
            self._answer_counts[(route, status)] = counter
        counter.inc()

    def limited(self, key_id: str) -> None:
        self._limited.labels(key_id).inc()

    def stream_dropped(self) -> None:
        self._dropped.inc()


def socket_path(run_dir: Path, index: int) -> Path:
    """The private metrics socket of worker ``index``."""
    return run_dir / f"worker-{index}.sock"


async def _fetch(path: Path, timeout: float) -> str | None:
    try:
        connector = aiohttp.UnixConnector(path=str(path))
        async with aiohttp.ClientSession(connector=connector) as session, session.get(
                "http://worker/metrics", timeout=aiohttp.ClientTimeout(total=timeout)) as r:
            return await r.text()
    except (aiohttp.ClientError, OSError, TimeoutError):
        return None


async def gather_workers(run_dir: Path, timeout: float = 1.0) -> bytes:
    """Every worker's metrics, merged and labelled by worker."""
    from prometheus_client import CollectorRegistry, generate_latest

    paths = _sockets(run_dir)
    texts = await asyncio.gather(*(_fetch(p, timeout) for p in paths))
    found = {p.stem.removeprefix("worker-"): t for p, t in zip(paths, texts, strict=True)
             if t is not None}
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Merged(found, len(paths) - len(found)))
    return bytes(generate_latest(registry))


def _sockets(run_dir: Path) -> list[Path]:
    """The workers' metrics sockets (a directory of a few entries: no I/O worth a thread)."""
    return sorted(run_dir.glob("worker-*.sock"))


class _Merged:
    """A collector over the parsed expositions of several workers."""

    def __init__(self, texts: dict[str, str], missing: int) -> None:
        self._texts = texts
        self._missing = missing

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.metrics_core import GaugeMetricFamily

        merged: dict[str, Metric] = {}
        for worker, text in self._texts.items():
            for family in _families(text):
                target = merged.setdefault(family.name, _empty_like(family))
                target.samples.extend(_labelled(family.samples, worker))
        yield from merged.values()
        yield GaugeMetricFamily("proxy_metrics_workers_missing",
                                "workers that did not answer this scrape", value=self._missing)


def _families(text: str) -> Iterable[Metric]:
    from prometheus_client.parser import text_string_to_metric_families

    return text_string_to_metric_families(text)


def _empty_like(family: Metric) -> Metric:
    from prometheus_client.metrics_core import Metric

    return Metric(family.name, family.documentation, family.type, family.unit)


def _labelled(samples: Iterable[Any], worker: str) -> list[Any]:
    return [s._replace(labels={**s.labels, "worker": worker}) for s in samples]
