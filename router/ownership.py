"""Response ownership: which deployment holds a stored response.

A stored response exists only on the upstream resource that made it, so the
router records ``response id -> deployment id`` as soon as the id is known
and routes every later call about that response by the record. An id that no
record knows (a restart without Redis, a response made outside the router) is
found by asking the candidate deployments once (bounded concurrency, short
timeout) and then remembered. Response ids are never rewritten.

A call may also name the response's owner (``response_owner``: a tenant, an
API key's id); it is recorded beside the deployment, in the same write (one
Redis round trip), under ``owner:<response id>``, and read back with
:meth:`Ownership.owner_name`. The router records it, never checks it: who may
see a response is the caller's decision (the server's, see
:mod:`router.proxy.app`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING

from router.errors import BadRequestError, NotFoundError, ResponseNotFoundError, UpstreamError

if TYPE_CHECKING:
    from router.deployment import Deployment
    from router.state.base import BatchStore
    from router.table import DeploymentTable

__all__ = ["OWNER_PREFIX", "Ownership"]

DISCOVERY_CONCURRENCY = 8
DISCOVERY_TIMEOUT = 5.0
#: Where a response's owner name is kept (after the store's own key prefix).
OWNER_PREFIX = "owner:"


class Ownership:
    """Records and finds the owner of response ids."""

    def __init__(
        self, store: BatchStore, table: DeploymentTable, *, ttl: float, prefix: str = "own:"
    ) -> None:
        self._store = store
        self._table = table
        self._ttl = ttl
        self._prefix = prefix

    async def record(self, response_id: str, deployment: Deployment | None,
                     owner: str | None = None) -> None:
        """Record the deployment that holds ``response_id`` (``None``: none does, the
        router keeps it) and its ``owner``, in one write.

        A record with an owner is written durably: awaited until Redis takes it
        (within the breaker's deadline), not left to finish in the background,
        because whoever reads the owner (the server, another process) reads
        Redis and has no other way to find it. If Redis fails it, the record is
        kept in this process only.
        """
        items = [] if deployment is None else [(self._prefix + response_id, deployment.id)]
        if owner is not None:
            items.append((OWNER_PREFIX + response_id, owner))
        if items:
            await self._store.set_many(items, self._ttl, durable=owner is not None)

    async def owner_name(self, response_id: str) -> str | None:
        """The ``response_owner`` recorded with ``response_id``, if any."""
        return await self._store.get(OWNER_PREFIX + response_id)

    async def forget(self, response_id: str) -> None:
        await self._store.delete_many((self._prefix + response_id, OWNER_PREFIX + response_id))

    async def owner(self, response_id: str) -> Deployment | None:
        """The recorded owner, if it is still configured."""
        owner_id = await self._store.get(self._prefix + response_id)
        return None if owner_id is None else self._table.get(owner_id)

    async def find(
        self, response_id: str, candidates: Sequence[Deployment], group: str | None,
        resource: str = "responses",
    ) -> Deployment:
        """The owner: recorded, else discovered among ``candidates`` and recorded.

        ``resource``: ``"conversations"`` for a conversation id (asked with
        ``GET conversations/{id}``).
        """
        found = await self.owner(response_id)
        if found is not None:
            return found
        found, unreachable = await self._discover(response_id, candidates, resource)
        if found is None:
            where = f"model group {group!r}" if group else "any configured deployment"
            what = "response" if resource == "responses" else "conversation"
            detail = f"{len(candidates)} deployments asked"
            if unreachable:
                detail += (
                    f"; {len(unreachable)} could not answer ({', '.join(unreachable)}), "
                    "so the owner may be among them: try again"
                )
            raise ResponseNotFoundError(
                f"{what} {response_id!r} is not held by {where} ({detail})",
                response_id=response_id, model_group=group, unreachable=unreachable,
            )
        await self.record(response_id, found)
        return found

    async def _discover(
        self, response_id: str, candidates: Sequence[Deployment], resource: str
    ) -> tuple[Deployment | None, list[str]]:
        """The deployment that holds ``response_id`` (or None), and the ids of
        deployments that failed to answer (so "not found" may be wrong)."""
        gate = asyncio.Semaphore(DISCOVERY_CONCURRENCY)
        unreachable: list[str] = []

        async def holds(deployment: Deployment) -> Deployment | None:
            async with gate:
                try:
                    await deployment.provider.call(
                        deployment, "GET", response_id, timeout=DISCOVERY_TIMEOUT,
                        resource=resource)
                except (NotFoundError, BadRequestError):
                    return None
                except UpstreamError:
                    unreachable.append(deployment.id)
                    return None
                return deployment

        tasks = [asyncio.ensure_future(holds(d)) for d in candidates]
        try:
            for next_done in asyncio.as_completed(tasks):
                hit = await next_done
                if hit is not None:
                    return hit, []
            return None, unreachable
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
