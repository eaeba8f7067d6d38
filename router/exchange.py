"""One attempt on one deployment: send, map the timeout, record ownership, report usage.

The attempt loop (:mod:`router.attempts`) decides *where*; an
:class:`Exchange` does the one call there and nothing else. It never
releases the load slot (the loop holds it with ``async with``): it reports
the response's usage to the slot, marks a stream's first token, and hands
the slot over to a stream, which releases it when it ends.

The attempt's time limit is applied here and only here: a provider is
given the seconds left so it can bound its own I/O, and the whole call is
wrapped in :func:`asyncio.timeout`, whose expiry becomes the router's
:class:`~router.errors.TimeoutError` naming the deployment. Every other
failure is already a :class:`~router.errors.UpstreamError` (providers map
their foreign errors at their boundary).

Ownership (``response id -> deployment``) is recorded as soon as the id is
known: from a plain response, or from a stream's ``response.created``
event, unless the request asked ``store: false`` or the deployment is
stateless (the conversation keeper's link records its owner).

The conversation keeper (:mod:`router.conversations.keeper`) adapts the
request to the deployment before it is sent (the history replayed as input
where the deployment does not hold it) and keeps the complete response as
the conversation's next link: a plain one before it is returned, a
stream's at its terminal event, before that event reaches the caller.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from router.cost import TokenUsage
from router.errors import UpstreamError, error_from_transport
from router.streaming import ResponseStream

if TYPE_CHECKING:
    from providers.base import Provider
    from router.conversations.keeper import Keeper
    from router.deployment import Deployment
    from router.load import LoadHandle
    from router.ownership import Ownership
    from router.request import RouteRequest
    from router.types import Response, StreamEvent

__all__ = ["Exchange", "Exchanged"]

T = TypeVar("T")


class Exchanged(NamedTuple):
    """A plain call's response and its usage (parsed once, for load, cost and events)."""

    response: Response
    usage: TokenUsage | None


class Exchange:
    """Does attempts for one router; holds no per-request state.

    ``mock``: the provider that answers a request with ``mock_response``;
    ``on_broken``: counts a failure found after the attempt loop (a stream
    broken mid-way) toward the deployment's cooldown.
    """

    def __init__(
        self,
        ownership: Ownership,
        mock: Provider,
        on_broken: Callable[[Deployment, UpstreamError], None],
        keeper: Keeper | None = None,
    ) -> None:
        self._ownership = ownership
        self._mock = mock
        self._on_broken = on_broken
        self._keeper = keeper

    async def create(
        self, request: RouteRequest, deployment: Deployment, timeout: float | None,
        slot: LoadHandle,
    ) -> Exchanged:
        """``POST /responses`` on ``deployment`` within ``timeout`` seconds."""
        provider = self._provider_for(request, deployment)
        keeper = self._keeper
        sent = request if keeper is None else await keeper.adapt(request, deployment)
        response = await _within(timeout, deployment, provider.create(deployment, sent, timeout))
        usage = TokenUsage.from_usage(response.raw.get("usage"))
        slot.report(usage)
        response_id = response.raw.get("id")
        if isinstance(response_id, str) and request.params.get("store") is not False:
            await self._record(request, response_id, deployment, sent.conversation_id)
        if keeper is not None and keeper.keeps(request, deployment):
            await keeper.keep(request, deployment, response.raw)
        return Exchanged(response, usage)

    async def open_stream(
        self, request: RouteRequest, deployment: Deployment, timeout: float | None,
        slot: LoadHandle,
    ) -> ResponseStream:
        """Open a stream on ``deployment`` and wait (within ``timeout``) for its first event."""
        keeper = self._keeper
        sent = request if keeper is None else await keeper.adapt(request, deployment)
        events = self._provider_for(request, deployment).stream(deployment, sent, timeout)
        try:
            first = await _within(timeout, deployment, events.__anext__())
        except StopAsyncIteration:
            raise error_from_transport(
                ConnectionResetError("stream ended before its first event"),
                model_group=deployment.model_name, deployment_id=deployment.id,
            ) from None
        except BaseException:
            await events.aclose()
            raise
        slot.first_token()

        def broken(error: UpstreamError) -> None:
            self._on_broken(deployment, error)

        on_end = None
        if keeper is not None and keeper.keeps(request, deployment):
            async def on_end(data: dict[str, Any]) -> None:
                await keeper.keep(request, deployment, data)

        if first.raw.get("type") != "response.created":
            return ResponseStream(first, events, slot.hand_over(), self._observer(
                request, deployment), broken, on_end)
        await self._record_streamed(request, first, deployment)
        return ResponseStream(first, events, slot.hand_over(), None, broken, on_end)

    def _observer(
        self, request: RouteRequest, deployment: Deployment
    ) -> Callable[[StreamEvent], Awaitable[None]]:
        async def observe(event: StreamEvent) -> None:
            await self._record_streamed(request, event, deployment)
        return observe

    async def _record_streamed(
        self, request: RouteRequest, event: StreamEvent, deployment: Deployment
    ) -> None:
        data = event.raw.get("response")
        if isinstance(data, dict) and isinstance(data.get("id"), str) \
                and request.params.get("store") is not False:
            conversation = data.get("conversation")
            await self._record(request, data["id"], deployment, conversation.get("id")
                               if isinstance(conversation, dict) else None)

    async def _record(self, request: RouteRequest, response_id: str, deployment: Deployment,
                      conversation_id: object) -> None:
        """Record who holds a stored response (a stateless deployment holds nothing: the
        keeper keeps what is kept), its owner, and the conversation the upstream holds."""
        holder = None if deployment.stateless else deployment
        await self._ownership.record(response_id, holder, request.response_owner)
        if holder is not None and isinstance(conversation_id, str):
            await self._ownership.record(conversation_id, holder)  # the upstream holds it

    def _provider_for(self, request: RouteRequest, deployment: Deployment) -> Provider:
        return self._mock if request.mock_response is not None else deployment.provider


async def _within(timeout: float | None, deployment: Deployment, call: Awaitable[T]) -> T:
    """Await ``call`` within ``timeout`` seconds (``None``: no limit); expiry, or a
    built-in ``TimeoutError`` escaping a provider, is the router's TimeoutError."""
    try:
        async with asyncio.timeout(timeout):
            return await call
    except TimeoutError as exc:  # the built-in: asyncio's expiry, or a provider's
        raise error_from_transport(
            exc, model_group=deployment.model_name, deployment_id=deployment.id
        ) from exc
