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

The limits themselves and the figures they are read from are core
(:mod:`router.limits`): the attempt loop's admission enforces them too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from router.limits import (
    DeploymentLimits,
    LoadFigures,
    SlotWaiter,
    limits_by_id,
    rate_limits_enforced,
)

if TYPE_CHECKING:
    from checks.base import CheckContext
    from router.deployment import Deployment
    from router.request import RouteRequest

__all__ = [
    "DeploymentLimits",
    "LoadFigures",
    "RateLimitCheck",
    "SlotWaiter",
    "limits_by_id",
    "rate_limits_enforced",
]


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
        return cls(context.load, limits_by_id(context.table.all(), context.config, rates=True))

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
