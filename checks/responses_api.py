"""``responses_api_deployment_check``: the config name that switches pinning on.

Pinning a follow-up turn to the deployment holding its state is core
behaviour (:mod:`router.pinning`): the attempt loop resolves the pin before
the checks run and lets it outrank cooldown. Naming this check in
``optional_pre_call_checks`` (or passing an instance) only turns it on; the
router does not run it as a check. Its :meth:`filter` narrows like the core
step does, for code that uses it on its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from router.pinning import PIN_CHECK_NAME, Pinning

if TYPE_CHECKING:
    from checks.base import CheckContext
    from router.deployment import Deployment
    from router.ownership import Ownership
    from router.request import RouteRequest
    from router.table import DeploymentTable

__all__ = ["ResponsesApiDeploymentCheck"]


class ResponsesApiDeploymentCheck:
    """Keeps only deployments that can read ``previous_response_id``."""

    name = PIN_CHECK_NAME

    def __init__(self, ownership: Ownership, table: DeploymentTable) -> None:
        self._pinning = Pinning(ownership, table)

    @classmethod
    def from_context(cls, context: CheckContext) -> ResponsesApiDeploymentCheck:
        return cls(context.ownership, context.table)

    async def filter(
        self, candidates: list[Deployment], request: RouteRequest
    ) -> list[Deployment]:
        if not candidates:
            return candidates
        pin = await self._pinning.resolve(candidates[0].model_name, request)
        return candidates if pin is None else pin.narrow(candidates)
