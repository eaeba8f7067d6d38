"""The keeper: reads a conversation before routing, replays it where needed, keeps each turn.

Three moments of a request:

1. :meth:`Keeper.open`, before routing. A request that continues a response
   (``previous_response_id``) or names a conversation the router keeps is
   given its :class:`Continuation`: the whole chain, read in one store
   round trip, checked against the size limits (an error before any upstream
   call). Read only when it can matter: the request's group has a stateless
   deployment, or ``conversation_failover`` is on. A native conversation is
   read to its last link only (its owner usually serves it); the rest is read
   when a failover needs it, and a history the router does not hold whole is
   never replayed.
2. :meth:`Keeper.adapt`, per attempt. A stateless deployment, or a native
   one that does not hold the previous response (failover), gets the history
   as ``input`` instead of ``previous_response_id``; the owner of a native
   conversation gets the request unchanged. Items that cannot cross
   deployments (reasoning made elsewhere) are left out and counted.
3. :meth:`Keeper.keep`, once a response is complete (a plain answer, or a
   stream's terminal event): the turn's input and the response become the
   conversation's next link, before the caller sees the end, so a follow-up
   sent at once finds it.

What is kept: every response of a stateless deployment; with failover on,
every native response too. ``store: false`` keeps only a mark, so a follow-up
is told why it cannot continue. ``instructions`` are never carried over.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from providers.responses_input import input_items
from router.conversations import answers
from router.conversations.links import (
    KEPT,
    NATIVE,
    NO_STORE,
    TOO_LARGE,
    Link,
    compact,
)
from router.conversations.sealing import SealingError
from router.conversations.store import StoreUnavailable
from router.errors import (
    ConversationLimitError,
    ConversationUnavailableError,
    InvalidRequestError,
    PinnedDeploymentUnavailableError,
    ResponseNotFoundError,
)
from router.types import AttemptTrail, Record, RoutingInfo

if TYPE_CHECKING:
    from router.config.models import RouterSettings
    from router.conversations.store import Chain, ConversationStore
    from router.deployment import Deployment
    from router.request import RouteRequest
    from router.table import DeploymentTable

__all__ = ["Continuation", "Keeper"]

Json = dict[str, Any]

log = logging.getLogger("router.conversations")

#: Bytes a link's content adds beyond its input and response JSON (the wrapper object).
_CONTENT_OVERHEAD = len('{"input":,"response":}')

#: Body parameters that name upstream state; dropped when the history is replayed.
_STATE_PARAMS = ("previous_response_id", "conversation")


@dataclass(slots=True)
class Continuation:
    """The conversation one request continues, as the router keeps it.

    ``chain``: its links, oldest first (empty for a new router-kept
    conversation); ``kind``: ``kept`` or ``native``; ``owner``: the deployment
    that made the last link; ``conversation``: the router-kept conversation
    id, if any. ``replayed_on`` and ``left_out`` say what :meth:`Keeper.adapt`
    did on the attempt that served.
    """

    chain: list[Link]
    kind: str
    owner: str | None
    failover: bool
    conversation: str | None = None
    replayed_on: str | None = None
    left_out: int = 0
    #: Only the last link was read (a native one: its owner may still serve it).
    partial: bool = False

    @property
    def previous(self) -> str | None:
        return self.chain[-1].id if self.chain else None

    @property
    def total(self) -> int:
        return self.chain[-1].total if self.chain else 0


@dataclass(slots=True)
class _Turn:
    """This request's own input, measured once (what is kept and checked)."""

    items: list[Json]
    size: int


class Keeper:
    """Keeps conversations for one router in ``store``."""

    def __init__(
        self, store: ConversationStore, table: DeploymentTable, settings: RouterSettings
    ) -> None:
        self._store = store
        self._table = table
        self._ttl = float(settings.conversation_ttl)
        self._max_response = settings.conversation_max_response_bytes
        self._max_total = settings.conversation_max_bytes
        self._failover = settings.conversation_failover
        self._stateless_groups: dict[str, bool] = {}
        #: Whether any response can be kept (else by-id calls skip the store).
        self._keeps_any = self._failover or any(d.stateless for d in table.all())

    @property
    def store(self) -> ConversationStore:
        return self._store

    def failover_for(self, request: RouteRequest) -> bool:
        given = request.conversation_failover
        return self._failover if given is None else given

    # -- 1. before routing ----------------------------------------------------------------

    async def open(self, request: RouteRequest) -> None:
        """Attach the request's :class:`Continuation` when the router keeps its conversation.

        Raises :class:`ResponseNotFoundError` (a kept response that cannot be
        continued), :class:`ConversationLimitError`,
        :class:`ConversationUnavailableError` (the store cannot be read).
        """
        previous = request.previous_response_id
        conversation = request.conversation_id
        if previous is None and conversation is None:
            return
        failover = self.failover_for(request)
        if not (failover or self._has_stateless(request.model)):
            return
        if previous is not None and conversation is not None:
            raise InvalidRequestError(
                "previous_response_id and conversation are mutually exclusive: "
                "send one of them", model_group=request.model)
        if previous is not None:
            request.continuation = await self._continuing(request, previous, failover)
        else:
            assert conversation is not None
            request.continuation = await self._in_conversation(request, conversation, failover)
        if request.continuation is not None:
            self._check_total(request, request.continuation)

    async def _continuing(
        self, request: RouteRequest, previous: str, failover: bool
    ) -> Continuation | None:
        chain = await self._chain(previous, request.model, whole=False)
        if not chain.links or chain.links[-1].id != previous:
            return None  # not kept by the router: a native response, or unknown
        last = chain.links[-1]
        if last.kind == NO_STORE:
            raise ResponseNotFoundError(
                f"response {previous!r} was created with store=false, so nothing of it was "
                "kept and it cannot be continued; send the whole conversation as input",
                response_id=previous, model_group=request.model)
        if last.kind == TOO_LARGE:
            raise ResponseNotFoundError(
                f"response {previous!r} was not kept: its content passed "
                f"conversation_max_response_bytes ({self._max_response}); send the "
                "conversation as input", response_id=previous, model_group=request.model)
        if chain.missing is not None:
            if last.kind == NATIVE:
                return None  # the owner still holds it: continue natively, no failover
            raise ResponseNotFoundError(
                f"the history of response {previous!r} is incomplete: the earlier response "
                f"{chain.missing!r} was deleted or has expired, so the conversation cannot "
                "be continued", response_id=previous, model_group=request.model)
        if last.kind == NATIVE and not failover:
            return None
        partial = last.kind == NATIVE and last.prev is not None  # read whole on failover
        return Continuation(chain.links, last.kind, last.owner, failover, last.conversation,
                            partial=partial)

    async def _in_conversation(
        self, request: RouteRequest, conversation: str, failover: bool
    ) -> Continuation | None:
        try:
            head = await self._store.head(conversation)
        except StoreUnavailable:
            raise self._unavailable(conversation, request.model) from None
        if head is None:  # new here: kept by the router if a stateless deployment serves it
            if not self._has_stateless(request.model):
                return None  # a native conversation (OpenAI's), held by its upstream
            return Continuation([], KEPT, None, failover, conversation)
        chain = await self._chain(head, request.model)
        if chain.missing is not None or not chain.links:
            raise ResponseNotFoundError(
                f"conversation {conversation!r} cannot be continued: its response "
                f"{chain.missing or head!r} was deleted or has expired",
                response_id=chain.missing or head, model_group=request.model)
        return Continuation(chain.links, KEPT, chain.links[-1].owner, failover, conversation)

    async def _chain(self, response_id: str, group: str, *, whole: bool = True) -> Chain:
        try:
            return await self._store.chain(response_id, self._ttl, whole=whole)
        except StoreUnavailable:
            raise self._unavailable(response_id, group) from None
        except SealingError as exc:
            raise ConversationUnavailableError(
                f"the conversation of {response_id!r} cannot be read: {exc}",
                response_id=response_id, model_group=group) from None

    def _unavailable(self, what: str, group: str) -> ConversationUnavailableError:
        return ConversationUnavailableError(
            f"the conversation of {what!r} is kept by the router, and its store (Redis) "
            "cannot be read now; retry when it is back (the request was not sent, so "
            "the conversation is not started afresh)", response_id=what, model_group=group)

    def _check_total(self, request: RouteRequest, continuation: Continuation) -> None:
        turn = self._turn(request)
        total = continuation.total + turn.size
        if total > self._max_total:
            raise ConversationLimitError(
                f"conversation of {continuation.previous or continuation.conversation!r} "
                f"would hold {total} bytes with this request's input, over "
                f"conversation_max_bytes ({self._max_total}); start a new conversation "
                "(nothing was sent)", setting="conversation_max_bytes", size=total,
                limit=self._max_total, model_group=request.model)

    def _has_stateless(self, group: str) -> bool:
        found = self._stateless_groups.get(group)
        if found is None:
            try:
                deployments = self._table.group(group)
            except Exception:  # an unknown group: the attempt loop says so
                return False
            found = self._stateless_groups[group] = any(d.stateless for d in deployments)
        return found

    # -- 2. per attempt -------------------------------------------------------------------

    async def adapt(self, request: RouteRequest, deployment: Deployment) -> RouteRequest:
        """The request as ``deployment`` must receive it (see the module docstring)."""
        continuation = request.continuation
        if continuation is None:
            if not deployment.stateless:
                return request
            previous = request.previous_response_id
            if previous is not None or request.conversation_id is not None:
                await self.open(request)  # a fallback group's stateless deployment
                continuation = request.continuation
            if continuation is None:
                if request.params.get("store") is not False:  # its turn will be kept
                    self._check_response_size(request, self._turn(request).size)
                if previous is not None:
                    raise self._not_kept(previous, deployment)
                return request
        if not self._replays(continuation, deployment):
            return request
        if continuation.partial:  # failover: now the whole history is needed
            previous = continuation.previous or ""
            chain = await self._chain(previous, request.model)
            if chain.missing is not None or not chain.links:
                raise PinnedDeploymentUnavailableError(
                    f"deployment {continuation.owner!r}, which holds response {previous!r}, "
                    "cannot serve, and the router does not hold that conversation whole "
                    f"(response {chain.missing!r} was not kept: made before failover was "
                    "on, deleted or expired), so it cannot be replayed elsewhere",
                    response_id=previous, model_group=request.model,
                    deployment_id=continuation.owner or "")
            continuation.chain, continuation.partial = chain.links, False
        return self._replayed(request, continuation, deployment)

    def _replays(self, continuation: Continuation, deployment: Deployment) -> bool:
        if deployment.stateless:
            return True
        if not continuation.chain:
            return False  # a conversation new to the router, on a native deployment
        if continuation.kind == KEPT:
            return True
        owner = self._table.get(continuation.owner or "")
        return owner is None or owner.state_domain != deployment.state_domain

    def _replayed(
        self, request: RouteRequest, continuation: Continuation, deployment: Deployment
    ) -> RouteRequest:
        turn = self._turn(request)
        self._check_response_size(request, turn.size)
        items: list[Json] = []
        left_out = 0
        for link in continuation.chain:
            same = link.owner == deployment.id
            for item in (*link.input, *link.output()):
                if item.get("type") == "reasoning" and not same:
                    left_out += 1
                    continue
                if not same and not deployment.stateless and "id" in item:
                    item = {k: v for k, v in item.items() if k != "id"}
                items.append(item)
        items.extend(turn.items)
        params = {k: v for k, v in request.params.items() if k not in _STATE_PARAMS}
        params["input"] = items
        extra = request.extra_body
        if extra and any(k in extra for k in _STATE_PARAMS):
            extra = {k: v for k, v in extra.items() if k not in _STATE_PARAMS}
        if not deployment.stateless or continuation.kind == NATIVE:
            continuation.replayed_on = deployment.id
        continuation.left_out = left_out
        return dataclasses.replace(request, params=params, extra_body=extra)

    @staticmethod
    def _not_kept(previous: str, deployment: Deployment) -> ResponseNotFoundError:
        """A stateless deployment cannot continue a response the router does not keep (it
        is refused, never silently dropped)."""
        return ResponseNotFoundError(
            f"previous_response_id {previous!r}: {deployment.id!r} keeps no conversation "
            "state and the router keeps no response by that id (made with store=false, "
            "deleted, expired, or made elsewhere)", response_id=previous,
            model_group=deployment.model_name)

    def _check_response_size(self, request: RouteRequest, size: int) -> None:
        if size > self._max_response:
            raise ConversationLimitError(
                f"input: {size} bytes, over conversation_max_response_bytes "
                f"({self._max_response}), so its turn could not be kept; nothing was sent",
                setting="conversation_max_response_bytes", size=size,
                limit=self._max_response, model_group=request.model)

    def _turn(self, request: RouteRequest) -> _Turn:
        cached: _Turn | None = request.kept_turn
        if cached is None:
            items = input_items(request.params)
            cached = request.kept_turn = _Turn(items, len(compact(items).encode()))
        return cached

    # -- by id ----------------------------------------------------------------------------

    async def answer(
        self, response_id: str, method: str, tail: str, query: Mapping[str, Any]
    ) -> tuple[Record, RoutingInfo] | None:
        """A by-id call on a response the router keeps, answered from the store; ``None``
        for any other response (its owner answers)."""
        if not self._keeps_any:
            return None
        try:
            link = await self._store.get(response_id)
        except StoreUnavailable:
            return None  # the owners are asked; a kept response is then "not found"
        except SealingError as exc:
            raise ConversationUnavailableError(
                f"response {response_id!r} cannot be read: {exc}",
                response_id=response_id, model_group=None) from None
        if link is None or link.kind == NATIVE:
            return None
        if not link.content_kept:
            raise ResponseNotFoundError(
                f"response {response_id!r} was not kept by the router ("
                + ("created with store=false" if link.kind == NO_STORE else
                   "over conversation_max_response_bytes") + ")",
                response_id=response_id, model_group=link.group)
        owner = self._table.get(link.owner)
        routing = RoutingInfo(link.group, link.owner,
                              owner.provider_name if owner else "router",
                              AttemptTrail(link.group))
        if method == "GET" and tail == "":
            return Record(answers.retrieved(link, query)), routing
        if method == "GET" and tail == "/input_items":
            return Record(answers.input_items_page(link, query)), routing
        if method == "DELETE" and tail == "":
            await self._store.delete(response_id)
            return Record(answers.deleted(response_id)), routing
        if method == "POST" and tail == "/cancel":
            raise answers.cancel_refusal(link)
        raise InvalidRequestError(f"{method} responses/{response_id}{tail} is not a call "
                                  "the Responses API has")

    async def forget(self, response_id: str) -> None:
        """Remove what is kept of ``response_id`` (after the owner deleted it)."""
        if self._keeps_any:
            try:
                await self._store.delete(response_id)
            except StoreUnavailable:
                log.warning("response %r: deleted upstream, but the router's copy could not "
                            "be removed now (store unavailable); it expires with "
                            "conversation_ttl", response_id)

    # -- 3. once complete -----------------------------------------------------------------

    def keeps(self, request: RouteRequest, deployment: Deployment) -> bool:
        """Whether the response ``deployment`` made for ``request`` is kept."""
        return (deployment.stateless or request.continuation is not None
                or self.failover_for(request))

    async def keep(self, request: RouteRequest, deployment: Deployment, response: Json) -> None:
        """Keep ``response`` as the next link of the request's conversation."""
        response_id = response.get("id")
        if not isinstance(response_id, str) or response.get("status") in ("failed", "cancelled"):
            return
        continuation = request.continuation
        # a response continuing one the router does not hold links to it all the same:
        # its history is then known to be incomplete, never taken for whole
        previous = (continuation.previous if continuation is not None
                    else request.previous_response_id)
        root = (continuation.chain[0].id if continuation and continuation.chain
                else previous or response_id)
        conversation = continuation.conversation if continuation else None
        if request.params.get("store") is False:
            self._store.mark(response_id, previous, root, deployment.id, deployment.model_name,
                             conversation, self._ttl)
            return
        kind = KEPT if deployment.stateless or (
            continuation is not None and continuation.kind == KEPT) else NATIVE
        turn = self._turn(request)
        size = turn.size + len(compact(response).encode()) + _CONTENT_OVERHEAD
        if size > self._max_response:
            log.warning("response %r (deployment %r) was not kept: %d bytes, over "
                        "conversation_max_response_bytes (%d)", response_id, deployment.id,
                        size, self._max_response)
            await self._store.put(Link(response_id, previous, root, TOO_LARGE, deployment.id,
                                       deployment.model_name, size, size, conversation),
                                  self._ttl)
            return
        total = (continuation.total if continuation else 0) + size
        link = Link(response_id, previous, root, kind, deployment.id, deployment.model_name,
                    size, total, conversation, turn.items, response)
        await self._store.put(link, self._ttl)
        if link.conversation is not None and kind == KEPT:
            await self._store.set_head(link.conversation, response_id, self._ttl)

