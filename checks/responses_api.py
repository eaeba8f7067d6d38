"""``responses_api_deployment_check``: follow-up turns go where their state is.

A request with ``previous_response_id`` can only be served by the deployment
that stored that response, or by one that shares its *state domain* (the
same Azure resource, the same OpenAI organisation; ``model_info.state_domain``
declares it explicitly). This check narrows the candidates to those, and
marks the request as pinned so the attempt loop lets the pin outrank
cooldown. An id with no ownership record is looked up once on the group's
deployments (:meth:`router.ownership.Ownership.find`); if none holds it the
caller gets :class:`router.errors.ResponseNotFoundError` and nothing is sent
to a random deployment.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from checks.base import CheckContext

if TYPE_CHECKING:
    from router.deployment import Deployment
    from router.ownership import Ownership
    from router.request import RouteRequest
    from router.table import DeploymentTable

__all__ = ["ResponsesApiDeploymentCheck"]


class ResponsesApiDeploymentCheck:
    """Keeps only deployments that can read ``previous_response_id``."""

    name = "responses_api_deployment_check"

    def __init__(self, ownership: Ownership, table: DeploymentTable) -> None:
        self._ownership = ownership
        self._table = table

    @classmethod
    def from_context(cls, context: CheckContext) -> ResponsesApiDeploymentCheck:
        services = context.services
        return cls(services.ownership, services.table)

    async def filter(
        self, candidates: list[Deployment], request: RouteRequest
    ) -> list[Deployment]:
        previous = request.previous_response_id
        if previous is None or not candidates:
            return candidates
        group = candidates[0].model_name
        owner = await self._ownership.find(previous, self._table.group(group), group)
        domain = owner.state_domain
        kept = [d for d in candidates if d.id == owner.id or d.state_domain == domain]
        if kept:
            request.pinned_to = owner.id
        return kept
