"""The ``Router``: the public face (public calls and lifetime), nothing else.

Construction validates the configuration and hands it, with the caller's
objects, to the composition root (:func:`router.assembly.assemble`), which
returns the router's typed parts. A call then only flows down:

* ``aresponses``: split the arguments (:func:`router.request.build_request`),
  run the attempt loop (:class:`router.attempts.Dispatcher`) with one
  exchange per attempt (:class:`router.exchange.Exchange`), then attach the
  routing, cost it and report it;
* by-id calls (retrieve, delete, cancel, input items) go to the deployment
  that owns the response (:class:`router.ownership.Ownership`).

Observation (:mod:`router.observe`): callbacks, Prometheus metrics and the
INFO request log see each request's end, a request rejected before routing
included. When none of them listens, a request builds no event and
schedules nothing; cost (:mod:`router.cost`) is computed only for
deployments with prices.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from os import PathLike
from typing import TYPE_CHECKING, Any

from providers.registry import ProviderFactory, provider_names
from router.assembly import CheckFactory, Objects, Parts, StrategyFactory, assemble
from router.config.loading import build_config, load_config_file, parse_config_document
from router.errors import InvalidRequestError
from router.observe import StreamWatch
from router.request import RouteRequest, build_request, check_response_id
from router.streaming import ResponseStream, SyncResponseStream
from router.sync import LoopRunner
from router.types import AttemptTrail, Record, Response, RoutingInfo

if TYPE_CHECKING:
    import random

    import httpx

    from checks.base import PreCallCheck
    from router.attempts import Served
    from router.clock import Clock
    from router.config.models import RouterConfig
    from router.cooldown import CooldownEntry
    from router.deployment import Deployment
    from router.exchange import Exchanged
    from router.inspection import DeploymentState
    from router.observe import CallbackLimits, CallbackStats
    from router.services import RouterServices
    from router.strategies.base import Strategy

__all__ = ["INVALID_MODEL", "Router"]

#: The model group of a failure event whose request named no model (a metrics label).
INVALID_MODEL = "<invalid>"


class Router:
    """Routes Responses API calls across the deployments of each model group.

    ``model_list`` and keyword settings are LiteLLM's (``num_retries``,
    ``fallbacks``, ``timeout``, ``routing_strategy``, ...). Objects may be
    passed where config takes names: ``routing_strategy=MyStrategy()``,
    ``optional_pre_call_checks=[MyCheck()]``; ``strategies`` and ``checks``
    register factories under names of your own. ``http_client`` replaces the
    default pooled client for every upstream; ``clock`` and ``rng`` make
    routing deterministic in tests.

    ``callbacks``: observers of each request's end, retries, fallbacks and
    cooldowns (see :mod:`router.observe`; sync or async, run after the
    response, bounded by ``callback_limits``). ``metrics``: a
    :class:`router.metrics.PrometheusMetrics` or a ``prometheus_client``
    registry to report on. ``providers``: third-party providers by config
    prefix, ``{"name": factory}`` with ``factory(pool) -> Provider`` (see
    :mod:`providers.registry`); a deployment then names one as ``"name/model"``.
    """

    def __init__(
        self,
        model_list: Sequence[Mapping[str, Any]] | None = None,
        *,
        routing_strategy: str | Strategy = "simple-shuffle",
        optional_pre_call_checks: Sequence[str | PreCallCheck] | None = None,
        http_client: httpx.AsyncClient | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        strategies: Mapping[str, StrategyFactory] | None = None,
        checks: Mapping[str, CheckFactory] | None = None,
        callbacks: Sequence[object] | None = None,
        metrics: object = None,
        callback_limits: CallbackLimits | None = None,
        providers: Mapping[str, ProviderFactory] | None = None,
        **settings: Any,
    ) -> None:
        settings = dict(settings)
        if isinstance(routing_strategy, str):
            settings["routing_strategy"] = routing_strategy
        names = [c for c in optional_pre_call_checks or () if isinstance(c, str)]
        if names:
            settings["optional_pre_call_checks"] = names
        config, _ = build_config(list(model_list or ()), settings, source="Router(...)",
                                 providers=provider_names(providers))
        self._adopt(assemble(config, _objects(
            routing_strategy=routing_strategy, optional_pre_call_checks=optional_pre_call_checks,
            http_client=http_client, clock=clock, rng=rng, strategies=strategies, checks=checks,
            callbacks=callbacks, metrics=metrics, callback_limits=callback_limits,
            providers=providers)))

    @classmethod
    def from_config(cls, path: str | PathLike[str], **objects: Any) -> Router:
        """A router from a YAML/JSON file (a LiteLLM ``config.yaml`` loads unchanged).

        ``objects``: the constructor's object arguments (``clock``, ``callbacks``,
        ``providers``, ...); settings come from the file.
        """
        names = provider_names(objects.get("providers"))
        return cls._assembled(load_config_file(path, names), objects)

    @classmethod
    def from_dict(cls, document: Mapping[str, Any], **objects: Any) -> Router:
        """A router from a config document (``model_list`` + ``router_settings``)."""
        names = provider_names(objects.get("providers"))
        config = parse_config_document(document, source="Router.from_dict", providers=names)
        return cls._assembled(config, objects)

    @classmethod
    def _assembled(cls, config: RouterConfig, objects: Mapping[str, Any]) -> Router:
        router = cls.__new__(cls)
        router._adopt(assemble(config, _objects(**objects)))
        return router

    def _adopt(self, parts: Parts) -> None:
        self._parts = parts
        self.services: RouterServices = parts.services
        self._timeout = parts.config.settings.timeout
        self._runner = LoopRunner()
        self._closed = False

    # -- create -------------------------------------------------------------------

    async def aresponses(
        self, *, model: str, input: Any = None, stream: bool = False, **params: Any
    ) -> Any:
        """``POST /responses`` through the router.

        Returns a :class:`Response`, or with ``stream=True`` a
        :class:`ResponseStream` (already past its first event). Router
        parameters: ``timeout`` (whole call), ``num_retries``, ``fallbacks``,
        ``disable_fallbacks``, ``mock_response``, ``stream_timeout``,
        ``extra_headers``, ``extra_query``, ``extra_body``; everything else
        is forwarded upstream unchanged.
        """
        self._check_open()
        if input is not None:
            params["input"] = input
        parts = self._parts
        if parts.shared_cooldowns is not None:
            parts.shared_cooldowns.ensure_started()
        started = self.services.clock.now()
        try:
            request = build_request(
                model, params, stream=stream, default_timeout=self._timeout, now=started)
        except InvalidRequestError as exc:  # rejected before routing: observers hear of it
            self._report_failure(_rejected(model, params, stream), exc, started)
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
        response.routing = routing = _routing(
            served, None if prices is None else prices.cost(usage))
        observers = self._parts.observers
        if observers.watching():
            observers.succeeded(request, routing, latency=self.services.clock.now() - started,
                                ttft=None, usage=usage, data=response.raw)
        return response

    def _report_failure(self, request: RouteRequest, error: BaseException, started: float) -> None:
        observers = self._parts.observers
        if observers.watching():
            observers.failed(request, error, latency=self.services.clock.now() - started)

    async def _stream(self, request: RouteRequest, started: float) -> ResponseStream:
        parts = self._parts
        try:
            served = await parts.dispatcher.run(
                request, lambda d, t, slot: parts.exchange.open_stream(request, d, t, slot))
        except BaseException as exc:
            self._report_failure(request, exc, started)
            raise
        stream = served.result
        stream.routing = _routing(served, None)
        prices = parts.prices.get(served.deployment.id)
        observers = parts.observers if parts.observers.watching() else None
        if prices is not None or observers is not None:
            ttft = self.services.clock.now() - started
            stream.watch(StreamWatch(observers, prices, request, started, ttft))
        return stream

    # -- by id ----------------------------------------------------------------------

    async def aget_responses(
        self, response_id: str, *, model: str | None = None, **query: Any
    ) -> Response:
        """``GET /responses/{id}`` on the deployment that owns the response."""
        deployment = await self._owner_of(response_id, model)
        record = await deployment.provider.call(deployment, "GET", response_id, query=query)
        return Response(record.raw, _by_id_routing(deployment))

    async def adelete_responses(self, response_id: str, *, model: str | None = None) -> Record:
        """``DELETE /responses/{id}``; forgets the ownership record too."""
        deployment = await self._owner_of(response_id, model)
        record = await deployment.provider.call(deployment, "DELETE", response_id)
        await self.services.ownership.forget(response_id)
        return record

    async def acancel_responses(self, response_id: str, *, model: str | None = None) -> Response:
        """``POST /responses/{id}/cancel`` (background responses only)."""
        deployment = await self._owner_of(response_id, model)
        record = await deployment.provider.call(deployment, "POST", f"{response_id}/cancel")
        return Response(record.raw, _by_id_routing(deployment))

    async def alist_input_items(
        self, response_id: str, *, model: str | None = None, **query: Any
    ) -> Record:
        """``GET /responses/{id}/input_items`` (``after``, ``before``, ``limit``, ``order``)."""
        deployment = await self._owner_of(response_id, model)
        return await deployment.provider.call(
            deployment, "GET", f"{response_id}/input_items", query=query)

    async def _owner_of(self, response_id: str, model: str | None) -> Deployment:
        self._check_open()
        check_response_id(response_id, "response_id")
        table = self.services.table
        candidates = table.group(model) if model else table.all()
        group = table.resolve_group(model) if model else None
        return await self.services.ownership.find(response_id, candidates, group)

    # -- sync twins -----------------------------------------------------------------

    def responses(self, *, model: str, input: Any = None, stream: bool = False,
                  **params: Any) -> Any:
        """Sync twin of :meth:`aresponses` (a stream comes back as a sync iterator)."""
        result = self._runner.run(
            self.aresponses(model=model, input=input, stream=stream, **params),
            async_name="aresponses")
        return SyncResponseStream(result, self._runner) if stream else result

    def get_responses(self, response_id: str, **kwargs: Any) -> Response:
        """Sync twin of :meth:`aget_responses`."""
        return self._runner.run(
            self.aget_responses(response_id, **kwargs), async_name="aget_responses")

    def delete_responses(self, response_id: str, **kwargs: Any) -> Record:
        """Sync twin of :meth:`adelete_responses`."""
        return self._runner.run(
            self.adelete_responses(response_id, **kwargs), async_name="adelete_responses")

    def cancel_responses(self, response_id: str, **kwargs: Any) -> Response:
        """Sync twin of :meth:`acancel_responses`."""
        return self._runner.run(
            self.acancel_responses(response_id, **kwargs), async_name="acancel_responses")

    def list_input_items(self, response_id: str, **kwargs: Any) -> Record:
        """Sync twin of :meth:`alist_input_items`."""
        return self._runner.run(
            self.alist_input_items(response_id, **kwargs), async_name="alist_input_items")

    # -- inspection and lifetime ----------------------------------------------------

    @property
    def model_names(self) -> list[str]:
        return self.services.table.group_names()

    def deployments(self, model: str | None = None) -> tuple[Deployment, ...]:
        """The configured deployments (of one group when ``model`` is given)."""
        table = self.services.table
        return table.group(model) if model else table.all()

    def cooldowns(self) -> list[CooldownEntry]:
        """Deployments cooling down now: id, until (clock time), reason."""
        return self.services.cooldowns.active()

    def inspect(self, model: str | None = None) -> list[DeploymentState]:
        """Each deployment's live state (of one group when ``model`` is given):
        healthy or cooling down until when and why, in flight, latency EWMAs,
        requests and tokens this minute."""
        return self._parts.inspect(model)

    def callback_stats(self) -> CallbackStats:
        """Callback calls that raised or timed out, and events dropped, so far."""
        return self._parts.observers.stats()

    async def drain_callbacks(self, timeout: float | None = None) -> bool:
        """Wait until the callbacks of every event so far (on this loop) have run;
        ``False`` if ``timeout`` seconds passed first."""
        return await self._parts.observers.drain(timeout)

    def _check_open(self) -> None:
        if self._closed:
            raise InvalidRequestError(
                "the router is closed: aclose() released its connections and state; "
                "make a new Router")

    async def aclose(self) -> None:
        """Close pooled connections (of this event loop and of the sync twins').

        Calls made after it raise :class:`~router.errors.InvalidRequestError`.
        """
        self._closed = True
        loop = self._runner.loop
        if loop is not None:
            closing = asyncio.run_coroutine_threadsafe(self._close_here(), loop)
            await asyncio.wrap_future(closing)
            await asyncio.to_thread(self._runner.stop)
        await self._close_here()

    async def _close_here(self) -> None:
        parts = self._parts
        await parts.observers.aclose()
        if parts.shared_cooldowns is not None:
            await parts.shared_cooldowns.aclose()
        if parts.shared_load is not None:
            await parts.shared_load.aclose()
        await parts.pool.aclose()
        await self.services.store.aclose()

    def close(self) -> None:
        """Sync twin of :meth:`aclose`."""
        self._closed = True
        if self._runner.started:
            self._runner.run(self._close_here())
            self._runner.stop()

    async def __aenter__(self) -> Router:
        shared = self._parts.shared_cooldowns
        if shared is not None:
            await shared.start()  # cooldowns in force before the first request
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __enter__(self) -> Router:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        table = self.services.table
        groups = {g: len(table.group(g)) for g in table.group_names()}
        return f"Router(groups={groups}, strategy={type(self._parts.strategy).__name__})"


def _objects(
    *,
    routing_strategy: str | Strategy | None = None,
    optional_pre_call_checks: Sequence[str | PreCallCheck] | None = None,
    strategies: Mapping[str, StrategyFactory] | None = None,
    checks: Mapping[str, CheckFactory] | None = None,
    callbacks: Sequence[object] | None = None,
    providers: Mapping[str, ProviderFactory] | None = None,
    **rest: Any,
) -> Objects:
    """The caller's objects (names in these arguments are the config's business)."""
    return Objects(
        strategy=None if isinstance(routing_strategy, str) else routing_strategy,
        checks=[c for c in optional_pre_call_checks or () if not isinstance(c, str)],
        strategies=strategies or {}, check_factories=checks or {},
        callbacks=list(callbacks or ()), providers=providers or {}, **rest,
    )


def _routing(served: Served[Any], cost: float | None) -> RoutingInfo:
    d = served.deployment
    return RoutingInfo(d.model_name, d.id, d.provider_name, served.trail, cost)


def _by_id_routing(deployment: Deployment) -> RoutingInfo:
    return RoutingInfo(deployment.model_name, deployment.id, deployment.provider_name,
                       AttemptTrail(deployment.model_name))


def _rejected(model: object, params: dict[str, Any], stream: bool) -> RouteRequest:
    """What a failure event can say of a request rejected before routing."""
    return RouteRequest(model=model if isinstance(model, str) and model else INVALID_MODEL,
                        params=params, stream=stream)
