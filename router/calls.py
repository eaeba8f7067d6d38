"""What each public call does below the façade: run it, then finish it.

A create call splits its arguments (:func:`router.request.build_request`),
runs the attempt loop with one exchange per attempt, then *finishes* the
result: attaches the routing, costs it at the deployment's prices and
reports it to the observers (callbacks, metrics, the request log), a request
rejected before routing included. When nothing observes, no event is built;
cost is computed only for deployments with prices.

By-id calls (retrieve, delete, cancel, input items) go to the deployment
that owns the response (:class:`router.ownership.Ownership`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from router.errors import InvalidRequestError, RouterError
from router.observe import StreamWatch
from router.request import RouteRequest, build_request, check_response_id
from router.types import AttemptTrail, Record, Response, RoutingInfo

if TYPE_CHECKING:
    from router.assembly import Parts
    from router.attempts import Served
    from router.deployment import Deployment
    from router.exchange import Exchanged
    from router.streaming import ResponseStream

__all__ = ["INVALID_MODEL", "Calls", "with_routing"]

#: The model group of a failure event whose request named no model (a metrics label).
INVALID_MODEL = "<invalid>"


class Calls:
    """The public calls of one router, on its parts; holds no per-request state."""

    def __init__(self, parts: Parts) -> None:
        self._parts = parts
        self._services = parts.services
        self._timeout = parts.config.settings.timeout

    # -- create -------------------------------------------------------------------

    async def create(self, model: str, params: dict[str, Any], stream: bool) -> Any:
        """A :class:`Response`, or with ``stream`` a :class:`ResponseStream`."""
        parts = self._parts
        if parts.shared_cooldowns is not None:
            parts.shared_cooldowns.ensure_started()
        started = self._services.clock.now()
        try:
            request = build_request(
                model, params, stream=stream, default_timeout=self._timeout, now=started,
                groups=self._services.table)
        except InvalidRequestError as exc:  # rejected before routing: observers hear of it
            self._report_failure(_rejected(model, params, stream), exc, started)
            raise
        if request.previous_response_id is not None or "conversation" in request.params:
            try:
                await parts.keeper.open(request)
            except RouterError as exc:
                self._report_failure(request, exc, started)
                raise
        if stream:
            return await self._stream(request, started)
        try:
            served = await parts.dispatcher.run(
                request, lambda d, t, slot: parts.exchange.create(request, d, t, slot))
        except BaseException as exc:
            self._report_failure(request, exc, started)
            raise
        return self._finish(request, served, started)

    def _finish(
        self, request: RouteRequest, served: Served[Exchanged], started: float
    ) -> Response:
        """Cost the response, attach its routing, report it when anything observes."""
        response, usage = served.result
        prices = self._parts.prices.get(served.deployment.id)
        _note_replay(request, served)
        response.routing = routing = _routing(
            served, None if prices is None else prices.cost(usage))
        observers = self._parts.observers
        if observers.watching():
            observers.succeeded(request, routing, latency=self._services.clock.now() - started,
                                ttft=None, usage=usage, data=response.raw)
        return response

    def _report_failure(self, request: RouteRequest, error: BaseException, started: float) -> None:
        observers = self._parts.observers
        if observers.watching():
            observers.failed(request, error, latency=self._services.clock.now() - started)

    async def _stream(self, request: RouteRequest, started: float) -> ResponseStream:
        parts = self._parts
        try:
            served = await parts.dispatcher.run(
                request, lambda d, t, slot: parts.exchange.open_stream(request, d, t, slot))
        except BaseException as exc:
            self._report_failure(request, exc, started)
            raise
        stream = served.result
        _note_replay(request, served)
        stream.routing = _routing(served, None)
        prices = parts.prices.get(served.deployment.id)
        observers = parts.observers if parts.observers.watching() else None
        if prices is not None or observers is not None:
            ttft = self._services.clock.now() - started
            stream.watch(StreamWatch(observers, prices, request, started, ttft))
        return stream

    # -- by id ----------------------------------------------------------------------

    async def by_id(
        self, response_id: str, model: str | None, method: str, tail: str = "",
        query: dict[str, Any] | None = None,
    ) -> tuple[Record, RoutingInfo]:
        """``method responses/{id}{tail}`` on the deployment that owns the response;
        a response the router keeps is answered from its store."""
        check_response_id(response_id, "response_id")
        kept = await self._parts.keeper.answer(response_id, method, tail, query or {})
        if kept is not None:
            return kept
        deployment = await self._owner_of(response_id, model)
        record = await deployment.provider.call(
            deployment, method, response_id + tail, query=query)
        return record, _by_id_routing(deployment.model_name, deployment.id,
                                      deployment.provider_name)

    async def forget(self, response_id: str) -> None:
        await self._services.ownership.forget(response_id)
        await self._parts.keeper.forget(response_id)

    async def _owner_of(self, response_id: str, model: str | None) -> Deployment:
        check_response_id(response_id, "response_id")
        table = self._services.table
        candidates = table.group(model) if model else table.all()
        group = table.resolve_group(model) if model else None
        return await self._services.ownership.find(response_id, candidates, group)


def with_routing(record: Record, routing: RoutingInfo) -> Response:
    """A by-id answer as a :class:`Response` saying which deployment served it."""
    return Response(record.raw, routing)


def _by_id_routing(group: str, deployment_id: str, provider: str) -> RoutingInfo:
    return RoutingInfo(group, deployment_id, provider, AttemptTrail(group))


def _note_replay(request: RouteRequest, served: Served[Any]) -> None:
    """Say in the trail that the history was replayed (conversation failover)."""
    continuation = request.continuation
    if continuation is None or continuation.replayed_on != served.deployment.id:
        return
    trail = served.trail
    trail.replayed = True
    note = (f"conversation of {continuation.previous!r} replayed on "
            f"{served.deployment.id!r} ({len(continuation.chain)} earlier responses)")
    if continuation.left_out:
        note += (f"; {continuation.left_out} reasoning items left out (they cannot cross "
                 "deployments)")
    trail.notes.append(note)


def _routing(served: Served[Any], cost: float | None) -> RoutingInfo:
    d = served.deployment
    return RoutingInfo(d.model_name, d.id, d.provider_name, served.trail, cost)


def _rejected(model: object, params: dict[str, Any], stream: bool) -> RouteRequest:
    """What a failure event can say of a request rejected before routing."""
    return RouteRequest(model=model if isinstance(model, str) and model else INVALID_MODEL,
                        params=params, stream=stream)
