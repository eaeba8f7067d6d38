"""Deployment limits (rpm, tpm, max parallel requests) and the load figures they are checked on.

Core, because two layers enforce them: the pre-call checks
(:mod:`checks.limits`, :mod:`checks.parallel`) skip a deployment whose
figures have reached a limit, and the attempt loop's admission
(:class:`router.shared_load.Admission`) re-checks right before a request is
counted. Which limits hold follows LiteLLM: ``max_parallel_requests``
always; ``rpm``/``tpm`` only when rate limits are enforced
(:func:`rate_limits_enforced`), else they are only simple-shuffle weights.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from router.strategies.base import Needs, builtin_needs, needs_of

if TYPE_CHECKING:
    from router.config.models import RouterConfig
    from router.deployment import Deployment
    from router.load import MinuteUsage
    from router.strategies.base import Strategy

__all__ = [
    "DeploymentLimits",
    "LoadFigures",
    "SlotWaiter",
    "limits_by_id",
    "rate_limits_enforced",
]


class LoadFigures(Protocol):
    """What the checks read from :class:`router.load.LoadTracker`."""

    def in_flight(self, deployment_id: str) -> int: ...

    def usage(self, deployment_id: str) -> MinuteUsage: ...


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

    def rate_refusal(self, usage: MinuteUsage) -> str | None:
        """Why ``usage`` leaves no room this minute, or ``None`` when it does."""
        if self.rpm is not None and usage.requests >= self.rpm:
            return f"rpm limit {self.rpm} reached ({usage.requests} requests this minute)"
        if self.tpm is not None and usage.tokens >= self.tpm:
            return f"tpm limit {self.tpm} reached ({usage.tokens} tokens this minute)"
        return None


def rate_limits_enforced(config: RouterConfig, strategy: Strategy | None = None) -> bool:
    """Whether deployment rpm/tpm are hard limits under ``config`` (LiteLLM's rules).

    ``strategy``: the router's; a strategy that declares
    :attr:`~router.strategies.base.Needs.RATE_LIMITS` turns them on (as
    LiteLLM's usage-based routing does). Without one, the configured strategy
    name's built-in declaration counts.
    """
    s = config.settings
    declared = builtin_needs(s.routing_strategy) if strategy is None else needs_of(strategy)
    return (
        "enforce_model_rate_limits" in s.optional_pre_call_checks
        or s.enable_pre_call_checks
        or Needs.RATE_LIMITS in declared
    )


def limits_by_id(
    deployments: Iterable[Deployment], config: RouterConfig, *, rates: bool | None = None,
    strategy: Strategy | None = None,
) -> dict[str, DeploymentLimits]:
    """The limits of each deployment that has any (``rates``: default from ``config``
    and ``strategy``, see :func:`rate_limits_enforced`)."""
    enforce = rate_limits_enforced(config, strategy) if rates is None else rates
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
