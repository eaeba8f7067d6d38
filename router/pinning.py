"""Pinning: a follow-up turn goes where its stored state is, as a core step.

A request naming an OpenAI ``conversation`` (``conv_...``) is pinned the same
way, to the deployment that holds the conversation: recorded when a response
names it, discovered with ``GET conversations/{id}`` on a miss.

A request with ``previous_response_id`` can only be served by the deployment
that stored that response, or by one sharing its *state domain* (the same
Azure resource, the same OpenAI organisation; ``model_info.state_domain``
declares it explicitly). The attempt loop resolves the pin once per model
group, before the pre-call checks run, and narrows the group to the
deployments that can read the response. The pin is core behaviour, not a
check's side effect, because it changes the loop's own rules: the pinned
deployment is the only one that can serve, so it outranks cooldown, and when
it fails the caller learns which response and deployment
(:class:`router.errors.PinnedDeploymentUnavailableError`) instead of a
``previous_response_not_found`` from a stranger.

Naming ``responses_api_deployment_check`` in ``optional_pre_call_checks``
only switches pinning on. An id with no ownership record is looked up once
on the group's deployments (:meth:`router.ownership.Ownership.find`); if none
holds it the caller gets :class:`router.errors.ResponseNotFoundError` and
nothing is sent to a random deployment.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from router.deployment import Deployment
    from router.ownership import Ownership
    from router.request import RouteRequest
    from router.table import DeploymentTable

__all__ = ["PIN_CHECK_NAME", "Pin", "PinResolver", "Pinning"]

#: The LiteLLM check name that switches pinning on.
PIN_CHECK_NAME = "responses_api_deployment_check"


@dataclass(frozen=True, slots=True)
class Pin:
    """``response_id`` is held by deployment ``owner``, readable within ``domain``."""

    response_id: str
    owner: str
    domain: str

    def narrow(self, candidates: Sequence[Deployment]) -> list[Deployment]:
        """The candidates that can read the response: the owner and its state domain."""
        return [d for d in candidates if d.id == self.owner or d.state_domain == self.domain]


class PinResolver(Protocol):
    """What the attempt loop asks before the checks: where must this request go?"""

    async def resolve(self, group: str, request: RouteRequest) -> Pin | None: ...


class Pinning:
    """Resolves pins from the router's response ownership records."""

    def __init__(self, ownership: Ownership, table: DeploymentTable) -> None:
        self._ownership = ownership
        self._table = table

    async def resolve(self, group: str, request: RouteRequest) -> Pin | None:
        """The pin of ``request`` in ``group``; ``None`` when it continues no response.

        Raises :class:`router.errors.ResponseNotFoundError` when no deployment
        of the group holds the response.
        """
        previous = request.previous_response_id
        if previous is not None:
            owner = await self._ownership.find(previous, self._table.group(group), group)
            return Pin(previous, owner.id, owner.state_domain)
        conversation = request.conversation_id
        if conversation is None:
            return None
        owner = await self._ownership.find(conversation, self._table.group(group), group,
                                           resource="conversations")
        return Pin(conversation, owner.id, owner.state_domain)
