"""``max_parallel_requests``: skip a full deployment, wait when all are full.

A deployment's ``litellm_params.max_parallel_requests`` (else the router's
``default_max_parallel_requests``) bounds the requests it has in flight. The
check drops the deployments at their bound. When that would leave nothing
usable, the request waits for a slot instead of failing: it sleeps until a
request on one of the candidates ends (``load.wait_for_release``), then looks
again, until the request's deadline. When the deadline passes first it
raises :class:`router.errors.TimeoutError` saying so; a request without a
deadline waits as long as it takes, as behind LiteLLM's per-deployment
semaphore.

"Usable" takes cooldowns into account: when the only deployments with a
free slot are cooling down while a full one is healthy, the request waits
for the healthy one rather than being sent to a cooling one (or failing as
"all cooled down").

In-flight counts are the load tracker's: exact within one process; with
Redis they are the larger of the local and the shared figure (at most the
tracker's ``shared_ttl`` old), so the bound holds approximately across
processes, and exactly within each (:class:`router.shared_load.Admission`
re-checks right before a request is counted). Figures from other processes
change without a local release, so a waiting request also looks again every
``recheck_interval`` seconds, after calling ``refresh`` (the router passes
one that reads the shared counters).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

from router.errors import UpstreamTimeoutError
from router.limits import DeploymentLimits, SlotWaiter, limits_by_id

if TYPE_CHECKING:
    from checks.base import CheckContext
    from router.clock import Clock
    from router.deployment import Deployment
    from router.request import RouteRequest

__all__ = ["MaxParallelCheck"]

Refresh = Callable[[Sequence[str]], Awaitable[None]]


class Availability(Protocol):
    """The part of :class:`router.cooldown.Cooldowns` this check reads."""

    def available(self, deployments: Sequence[Deployment]) -> Sequence[Deployment]: ...


class MaxParallelCheck:
    """Drops deployments at ``max_parallel_requests``; waits for a slot when all are."""

    name = "max_parallel_requests"

    def __init__(
        self,
        load: SlotWaiter,
        clock: Clock,
        limits: Mapping[str, DeploymentLimits],
        *,
        cooldowns: Availability | None = None,
        refresh: Refresh | None = None,
        recheck_interval: float = 1.0,
    ) -> None:
        self._load = load
        self._clock = clock
        self._limits = {k: v.max_parallel for k, v in limits.items() if v.max_parallel}
        self._cooldowns = cooldowns
        self._refresh = refresh
        self._recheck = recheck_interval

    @classmethod
    def from_context(cls, context: CheckContext) -> MaxParallelCheck:
        c = context
        return cls(
            c.load, c.clock, limits_by_id(c.table.all(), c.config, rates=False),
            cooldowns=c.cooldowns, refresh=c.admission.refresh,
        )

    async def filter(
        self, candidates: list[Deployment], request: RouteRequest
    ) -> list[Deployment]:
        if not self._limits or not candidates:
            return candidates
        started = self._clock.now()
        while True:
            free = [d for d in candidates if not self._full(d.id)]
            if self._usable(free, candidates):
                return free
            await self._wait(candidates, request, started)

    def _full(self, deployment_id: str) -> bool:
        limit = self._limits.get(deployment_id)
        return limit is not None and self._load.in_flight(deployment_id) >= limit

    def _usable(self, free: list[Deployment], candidates: list[Deployment]) -> bool:
        if not free:
            return False
        if self._cooldowns is None or self._cooldowns.available(free):
            return True
        return not self._cooldowns.available(candidates)  # all cool: the loop decides

    async def _wait(
        self, candidates: list[Deployment], request: RouteRequest, started: float
    ) -> None:
        left = request.time_left(self._clock.now())
        if left is not None and left <= 0:
            raise self._timed_out(candidates, started)
        ids = [d.id for d in candidates]
        timeout = self._recheck if left is None else min(left, self._recheck)
        released = await self._load.wait_for_release(ids, timeout)
        if not released and self._refresh is not None:
            await self._refresh(ids)

    def _timed_out(self, candidates: list[Deployment], started: float) -> UpstreamTimeoutError:
        group = candidates[0].model_name
        busy = ", ".join(
            f"{d.id} ({self._load.in_flight(d.id)}/{self._limits[d.id]})"
            for d in candidates if d.id in self._limits
        )
        waited = self._clock.now() - started
        return UpstreamTimeoutError(
            f"the request's timeout passed after waiting {waited:.1f}s for a free slot: every "
            f"deployment of {group!r} that could serve it is at max_parallel_requests ({busy})",
            model_group=group,
        )
