"""The ``PreCallCheck`` interface and what a check factory is given."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

from router.services import RouterServices

if TYPE_CHECKING:
    from router.deployment import Deployment
    from router.request import RouteRequest

__all__ = ["CheckContext", "PreCallCheck"]


@runtime_checkable
class PreCallCheck(Protocol):
    """Removes deployments that must not serve ``request``.

    ``filter`` returns a sub-list of ``candidates`` (possibly empty; the
    router then reports which check removed what). It must not reorder the
    list's meaning or add deployments that were not candidates.
    """

    name: str

    async def filter(
        self, candidates: list[Deployment], request: RouteRequest
    ) -> list[Deployment]: ...


#: What a check factory is called with: the router's typed parts
#: (:class:`router.services.RouterServices`).
CheckContext = RouterServices
