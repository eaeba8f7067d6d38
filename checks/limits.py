"""``enforce_model_rate_limits``: skip deployments at their rpm or tpm this minute.

A deployment's ``litellm_params.rpm`` (requests per minute) and ``tpm``
(tokens per minute) are its limits in the current wall-clock minute
``int(clock.wall() // 60)``, the same minute the load tracker and the Redis
counters (:mod:`router.shared_load`) count in. The check drops a deployment
whose requests this minute have reached ``rpm`` or whose tokens have reached
``tpm`` (tokens are known only when a request ends, so a deployment can go
over ``tpm`` by the requests in flight when it reaches it; LiteLLM does the
same). When every candidate is at its limit the router reports it as this
check having removed them all.

The check reads figures; it does not reserve. Between the check and the
request being sent, other requests (in this process or, with Redis, in
others) may take the last slot of the minute. The hard guarantee comes from
:class:`router.shared_load.Admission`, which the attempt loop calls after
the pick: one atomic Redis reservation (INCR, roll back when over) across
processes, or a synchronous re-check right before the load is acquired in
one process.

As in LiteLLM, limits are enforced when the check is named in
``optional_pre_call_checks``, when ``enable_pre_call_checks`` is on, or
under ``usage-based-routing(-v2)`` (see :func:`rate_limits_enforced`); under
other strategies alone ``rpm``/``tpm`` are only simple-shuffle weights.

This module also holds what the load-based checks share: the per-deployment
:class:`DeploymentLimits` and the read-only view of the load figures.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from checks.base import CheckContext

if TYPE_CHECKING:
    from router.config import RouterConfig
    from router.deployment import Deployment
    from router.request import RouteRequest

__all__ = [
    "DeploymentLimits",
    "LoadFigures",
    "RateLimitCheck",
    "SlotWaiter",
    "UsageFigures",
    "limits_by_id",
    "rate_limits_enforced",
]

#: Strategies under which LiteLLM enforces deployment rpm/tpm.
USAGE_STRATEGIES = frozenset({"usage-based-routing", "usage-based-routing-v2"})


class UsageFigures(Protocol):
    """Requests and tokens of one deployment in the current minute."""

    @property
    def requests(self) -> int: ...

    @property
    def tokens(self) -> int: ...


class LoadFigures(Protocol):
    """What the checks read from :class:`router.load.LoadTracker`."""

    def in_flight(self, deployment_id: str) -> int: ...

    def usage(self, deployment_id: str) -> UsageFigures: ...


class SlotWaiter(LoadFigures, Protocol):
    """Load figures, and a wait for a request on some deployments to end."""

    async def wait_for_release(
        self, deployment_ids: Collection[str], timeout: float | None
    ) -> bool: ...


@dataclass(frozen=True, slots=True)
class DeploymentLimits:
    """One deployment's limits; ``None`` means none.

    ``rpm``/``tpm`` are set only when rate limits are enforced (see
    :func:`rate_limits_enforced`); ``max_parallel`` is the deployment's
    ``max_parallel_requests``, else the router's ``default_max_parallel_requests``.
    """

    rpm: int | None = None
    tpm: int | None = None
    max_parallel: int | None = None

    def rate_refusal(self, usage: UsageFigures) -> str | None:
        """Why ``usage`` leaves no room this minute, or ``None`` when it does."""
        if self.rpm is not None and usage.requests >= self.rpm:
            return f"rpm limit {self.rpm} reached ({usage.requests} requests this minute)"
        if self.tpm is not None and usage.tokens >= self.tpm:
            return f"tpm limit {self.tpm} reached ({usage.tokens} tokens this minute)"
        return None


def rate_limits_enforced(config: RouterConfig) -> bool:
    """Whether deployment rpm/tpm are hard limits under ``config`` (LiteLLM's rules)."""
    s = config.settings
    return (
        "enforce_model_rate_limits" in s.optional_pre_call_checks
        or s.enable_pre_call_checks
        or s.routing_strategy in USAGE_STRATEGIES
    )


def limits_by_id(
    deployments: Iterable[Deployment], config: RouterConfig, *, rates: bool | None = None
) -> dict[str, DeploymentLimits]:
    """The limits of each deployment that has any (``rates``: default from ``config``)."""
    enforce = rate_limits_enforced(config) if rates is None else rates
    default_parallel = config.settings.default_max_parallel_requests
    found: dict[str, DeploymentLimits] = {}
    for d in deployments:
        p = d.config.litellm_params
        limits = DeploymentLimits(
            rpm=p.rpm if enforce else None,
            tpm=p.tpm if enforce else None,
            max_parallel=p.max_parallel_requests or default_parallel,
        )
        if limits != _NONE:
            found[d.id] = limits
    return found


_NONE = DeploymentLimits()


class RateLimitCheck:
    """Drops deployments whose rpm or tpm is used up this minute."""

    name = "enforce_model_rate_limits"

    def __init__(self, load: LoadFigures, limits: Mapping[str, DeploymentLimits]) -> None:
        self._load = load
        self._limits = {
            k: v for k, v in limits.items() if v.rpm is not None or v.tpm is not None
        }

    @classmethod
    def from_context(cls, context: CheckContext) -> RateLimitCheck:
        s: Any = context.services
        return cls(s.load, limits_by_id(s.table.all(), s.config, rates=True))

    async def filter(
        self, candidates: list[Deployment], request: RouteRequest
    ) -> list[Deployment]:
        if not self._limits:
            return candidates
        return [d for d in candidates if not self._exhausted(d.id)]

    def _exhausted(self, deployment_id: str) -> bool:
        limits = self._limits.get(deployment_id)
        if limits is None:
            return False
        return limits.rate_refusal(self._load.usage(deployment_id)) is not None
