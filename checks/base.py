"""The ``PreCallCheck`` interface and what a check factory is given."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

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


@dataclass(frozen=True, slots=True)
class CheckContext:
    """What a check factory may use: the router's shared services.

    ``services`` is the router's :class:`router.services.RouterServices`.
    """

    services: Any
