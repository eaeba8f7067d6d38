"""The provider interface: how the router talks to one kind of upstream.

A provider is one small object per router that knows an upstream API's
URLs, auth and error shapes. ``prepare`` runs once per deployment at
construction and returns an opaque *endpoint* (URL, headers) that the request
path reuses; the calls themselves take the deployment and do no parsing of
configuration.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from router.config.models import DeploymentConfig
    from router.deployment import Deployment
    from router.request import RouteRequest
    from router.types import Record, Response, StreamEvent

__all__ = ["Provider"]


class Provider(Protocol):
    """What the router needs from an upstream adapter.

    ``timeout`` arguments are the seconds this attempt may take (``None``:
    the deployment's own limits only). Failures are raised as
    :class:`router.errors.UpstreamError` subclasses, never as foreign
    exceptions.
    """

    name: str

    def prepare(self, config: DeploymentConfig) -> Any:
        """Build, once, what the calls need for this deployment."""
        ...

    def state_domain(self, deployment: Deployment) -> str:
        """An identifier shared by deployments that see the same stored responses."""
        ...

    async def create(
        self, deployment: Deployment, request: RouteRequest, timeout: float | None
    ) -> Response:
        """``POST /responses`` without streaming."""
        ...

    def stream(
        self, deployment: Deployment, request: RouteRequest, timeout: float | None
    ) -> AsyncGenerator[StreamEvent, None]:
        """``POST /responses`` with ``stream: true``; closing the iterator closes the call."""
        ...

    async def call(
        self,
        deployment: Deployment,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        resource: str = "responses",
    ) -> Record:
        """Any by-id call (``GET responses/{id}``, ``DELETE``, ``cancel``, ``input_items``).

        ``path`` is relative to the ``resource`` collection (``responses``, or
        ``conversations`` beside it), e.g. ``"resp_1/cancel"``.
        """
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...
