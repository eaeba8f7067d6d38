"""Each deployment's live state, for dashboards, health endpoints and tests.

:func:`deployment_states` reads what the router already keeps (the load
tracker's figures, the cooldowns in force) and copies it into one immutable
:class:`DeploymentState` per deployment: reading costs nothing on the request
path and the result never changes under the caller's feet.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from router.clock import Clock
    from router.cooldown import Cooldowns
    from router.deployment import Deployment
    from router.headroom import Headroom
    from router.load import LoadTracker

__all__ = ["DeploymentState", "deployment_states"]


@dataclass(frozen=True, slots=True, kw_only=True)
class DeploymentState:
    """One deployment now.

    ``healthy`` is false while it cools down; then ``cooldown_until`` (Unix
    seconds), ``cooldown_remaining`` (seconds), ``cooldown_reason`` (the error
    class that caused it), ``cooldown_status`` (its HTTP status, if any) and
    ``cooldown_times`` (n-th consecutive cooldown) say until when and why
    (all ``None`` while healthy). ``in_flight`` counts requests in flight (in
    every router process while shared figures are fresh); ``requests`` and
    ``tokens`` are this minute's. Latencies are EWMAs in seconds (``None``
    before the first sample): ``latency`` of successful requests, ``ttft`` of
    streams' first token, ``peak_latency`` the peak EWMA the ``peak-ewma``
    strategy reads (``None`` under other strategies, which keep no peak).
    ``rate_limit_room`` is the requests it has left by its rate-limit headers
    as the router estimates them now (:mod:`router.headroom`; ``None`` when
    no answer said, the figure is past its reset, or the headers are not used).
    """

    deployment_id: str
    model_group: str
    provider: str
    healthy: bool
    cooldown_until: float | None
    cooldown_remaining: float | None
    cooldown_reason: str | None
    cooldown_status: int | None
    cooldown_times: int | None
    in_flight: int
    requests: int
    tokens: int
    latency: float | None
    ttft: float | None
    peak_latency: float | None
    rate_limit_room: float | None = None


@runtime_checkable
class ReportsPeak(Protocol):
    """A strategy that keeps a peak latency per deployment (``peak-ewma``)."""

    def peak_latency(self, deployment_id: str, now: float | None = None) -> float | None: ...


def deployment_states(
    deployments: Sequence[Deployment], load: LoadTracker, cooldowns: Cooldowns, clock: Clock,
    peak: ReportsPeak | None = None, headroom: Headroom | None = None,
) -> list[DeploymentState]:
    """The state of each of ``deployments``, in their order (``peak``: the
    strategy, when it keeps a peak latency; ``headroom``: the rate-limit figures,
    when the router reads them)."""
    now = clock.now()
    states = []
    for d in deployments:
        figures = load.snapshot(d.id)
        entry = cooldowns.get(d.id)
        states.append(DeploymentState(
            deployment_id=d.id, model_group=d.model_name, provider=d.provider_name,
            healthy=entry is None,
            cooldown_until=None if entry is None else entry.until_wall,
            cooldown_remaining=None if entry is None else max(0.0, entry.until - now),
            cooldown_reason=None if entry is None else entry.reason,
            cooldown_status=None if entry is None else entry.status,
            cooldown_times=None if entry is None else entry.times,
            in_flight=figures.in_flight, requests=figures.requests, tokens=figures.tokens,
            latency=figures.latency, ttft=figures.ttft,
            peak_latency=None if peak is None else peak.peak_latency(d.id, now),
            rate_limit_room=None if headroom is None else headroom.requests_left(d.id),
        ))
    return states
