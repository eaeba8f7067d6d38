"""The ``Router``: the public face that ties the request path together.

It builds everything once at construction (config validation, deployments,
providers, strategy, checks) and keeps the per-request path to: split the
arguments (:func:`router.request.build_request`), run the attempt loop
(:class:`router.attempts.Dispatcher`), record ownership, attach routing
metadata. By-id calls (retrieve, delete, cancel, input items) go to the
deployment that owns the response (:class:`router.ownership.Ownership`).

Observation (:mod:`router.observe`): callbacks, Prometheus metrics
(:mod:`router.metrics`) and the INFO request log see each request's end. When
none of them listens (:meth:`Observers.watching`), a request builds no event
and schedules nothing; cost (:mod:`router.cost`) is computed only for
deployments with prices.
"""

from __future__ import annotations

import asyncio
import builtins
import random
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from os import PathLike
from typing import TYPE_CHECKING, Any

import httpx

from checks.base import CheckContext, PreCallCheck
from checks.limits import DeploymentLimits, limits_by_id
from checks.order import OrderTiers
from checks.registry import check_registry, default_checks
from providers.http import ClientPool
from providers.registry import provider_set
from router.attempts import Dispatcher
from router.budget import RetryBudgets
from router.clock import Clock, SystemClock
from router.config import (
    ConfigWarning,
    RouterConfig,
    build_config,
    load_config_file,
    parse_config_document,
)
from router.cooldown import CooldownEntry, Cooldowns
from router.cost import TokenUsage, price_book
from router.errors import InvalidRequestError, UpstreamError, error_from_transport
from router.fallbacks import FallbackPlan
from router.inspection import DeploymentState, deployment_states
from router.load import DEFAULT_PEAK_DECAY, LoadTracker, release_with_usage
from router.metrics import metrics_observer
from router.observe import CallbackLimits, CallbackStats, Observers, StreamWatch
from router.ownership import Ownership
from router.request import RouteRequest, build_request, check_response_id
from router.retry import RetryPolicy
from router.shared_cooldowns import SharedCooldowns
from router.shared_load import Admission, SharedLoad, SlotHandle
from router.state.memory import MemoryStore
from router.state.redis import RedisStore
from router.state.resilient import ResilientStore
from router.strategies.base import Strategy, StrategyContext, strategy_registry
from router.strategies.sampling import number_arg
from router.streaming import ResponseStream, SyncResponseStream
from router.sync import LoopRunner
from router.table import DeploymentTable
from router.types import AttemptTrail, Record, Response, RoutingInfo, StreamEvent

if TYPE_CHECKING:
    from providers.base import Provider
    from router.attempts import Served
    from router.deployment import Deployment
    from router.state.base import StateStore

__all__ = ["Router", "RouterServices"]

StrategyFactory = Callable[[StrategyContext], Strategy]
CheckFactory = Callable[[CheckContext], PreCallCheck]


@dataclass(frozen=True, slots=True)
class RouterServices:
    """The router's shared parts, as pre-call checks and strategies may see them."""

    table: DeploymentTable
    ownership: Ownership
    store: StateStore
    clock: Clock
    load: LoadTracker
    cooldowns: Cooldowns
    config: RouterConfig
    admission: Admission


class Router:
    """Routes Responses API calls across the deployments of each model group.

    ``model_list`` and keyword settings are LiteLLM's (``num_retries``,
    ``fallbacks``, ``timeout``, ``routing_strategy``, ...). Objects may be
    passed where config takes names: ``routing_strategy=MyStrategy()``,
    ``optional_pre_call_checks=[MyCheck()]``. ``http_client`` replaces the
    default pooled client for every upstream; ``clock`` and ``rng`` make
    routing deterministic in tests.

    ``callbacks``: observers of each request's end, retries, fallbacks and
    cooldowns (see :mod:`router.observe`; sync or async, run after the
    response, bounded by ``callback_limits``). ``metrics``: a
    :class:`router.metrics.PrometheusMetrics` or a ``prometheus_client``
    registry to report on.
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
        _config: RouterConfig | None = None,
        **settings: Any,
    ) -> None:
        if _config is None:
            settings = dict(settings)
            if isinstance(routing_strategy, str):
                settings["routing_strategy"] = routing_strategy
            names = [c for c in optional_pre_call_checks or () if isinstance(c, str)]
            if names:
                settings["optional_pre_call_checks"] = names
            _config, _ = build_config(list(model_list or ()), settings, source="Router(...)")
        self._config = config = _config
        s = config.settings
        self._clock: Clock = clock or SystemClock()
        self._rng = rng or random.Random()
        self._pool = ClientPool(http_client)
        self._providers = provider_set(self._pool)
        self._mock = self._providers["mock"]
        self._table = DeploymentTable(
            config.model_list, self._providers, s.model_group_alias,
            default_stream_timeout=s.stream_timeout,
        )
        redis = _make_redis(s, self._clock)
        self._store: StateStore = (
            MemoryStore() if redis is None else ResilientStore(redis, self._clock))
        limits = limits_by_id(self._table.all(), config)
        self._shared_load = (
            SharedLoad(redis, self._clock)
            if redis is not None and _shares_load(limits, s.routing_strategy) else None
        )
        self._ownership = Ownership(self._store, self._table, ttl=s.response_ownership_ttl)
        self._load = LoadTracker(self._clock, peak_decay=number_arg(
            s.routing_strategy_args, "decay_time", DEFAULT_PEAK_DECAY, allow_zero=False))
        self._cooldowns = Cooldowns(
            self._clock, allowed_fails=s.allowed_fails, cooldown_time=s.cooldown_time,
            disabled=s.disable_cooldowns, allowed_fails_policy=s.allowed_fails_policy,
            max_cooldown_time=s.max_cooldown_time, jitter=s.cooldown_jitter, rng=self._rng,
        )
        self._shared_cooldowns = None if redis is None or s.disable_cooldowns else SharedCooldowns(
            redis, self._cooldowns, self._clock, [d.id for d in self._table.all()],
        )
        self._admission = Admission(self._load, self._clock, limits, self._shared_load)
        self.services = RouterServices(
            self._table, self._ownership, self._store, self._clock, self._load,
            self._cooldowns, config, self._admission,
        )
        self._prices = price_book(self._table.all())
        self._observers = self._make_observers(callbacks, metrics, callback_limits)
        self._strategy = self._resolve_strategy(routing_strategy, strategies)
        self._checks = self._resolve_checks(optional_pre_call_checks, checks)
        self._dispatcher = Dispatcher(
            table=self._table, strategy=self._strategy, checks=self._checks,
            cooldowns=self._cooldowns, load=self._load,
            retry=RetryPolicy(s.num_retries, s.retry_after, s.retry_policy or {}),
            fallbacks=FallbackPlan(
                fallbacks=s.fallbacks, default_fallbacks=s.default_fallbacks,
                context_window_fallbacks=s.context_window_fallbacks,
                content_policy_fallbacks=s.content_policy_fallbacks,
                max_fallbacks=s.max_fallbacks,
            ),
            clock=self._clock, rng=self._rng,
            admission=self._admission, order=OrderTiers(self._table.all()),
            budgets=RetryBudgets(
                self._clock, ratio=s.retry_budget_ratio,
                min_per_second=s.retry_budget_min_per_second, window=s.retry_budget_window,
                enabled=s.retry_budget,
            ),
            panic_mode=s.panic_mode,
            observers=self._observers,
        )
        self._timeout = s.timeout
        self._runner = LoopRunner()

    # -- construction -------------------------------------------------------------

    @classmethod
    def from_config(cls, path: str | PathLike[str], **objects: Any) -> Router:
        """A router from a YAML/JSON file (a LiteLLM ``config.yaml`` loads unchanged)."""
        return cls(_config=load_config_file(path), **objects)

    @classmethod
    def from_dict(cls, document: Mapping[str, Any], **objects: Any) -> Router:
        """A router from a config document (``model_list`` + ``router_settings``)."""
        return cls(_config=parse_config_document(document, source="Router.from_dict"), **objects)

    def _make_observers(
        self, callbacks: Sequence[object] | None, metrics: object,
        limits: CallbackLimits | None,
    ) -> Observers:
        prometheus = metrics_observer(metrics)
        if prometheus is not None:
            prometheus.bind(self.inspect)
        built = Observers(
            list(callbacks or ()), clock=self._clock, limits=limits,
            builtin=[] if prometheus is None else [prometheus],
            group_of=lambda i: getattr(self._table.get(i), "model_name", None),
        )
        self._cooldowns.listen(built.cooled)
        return built

    def _resolve_strategy(
        self, given: str | Strategy, extra: Mapping[str, StrategyFactory] | None
    ) -> Strategy:
        if not isinstance(given, str):
            return given
        registry = strategy_registry()
        for name, factory in (extra or {}).items():
            registry.register(name, factory)
        context = StrategyContext(
            self._rng, self._clock, self._load, self._config.settings.routing_strategy_args
        )
        name = self._config.settings.routing_strategy
        if registry.is_planned(name):
            _not_yet(f"routing_strategy {name!r}", "using 'simple-shuffle'")
            name = "simple-shuffle"
        return registry.create(name, context, where="routing_strategy")

    def _resolve_checks(
        self,
        given: Sequence[str | PreCallCheck] | None,
        extra: Mapping[str, CheckFactory] | None,
    ) -> list[PreCallCheck]:
        registry = check_registry()
        for name, factory in (extra or {}).items():
            registry.register(name, factory)
        context = CheckContext(self.services)
        objects = [c for c in given or () if not isinstance(c, str)]
        names = self._config.settings.optional_pre_call_checks
        built = []
        for i, name in enumerate(names):
            if registry.is_planned(name):
                _not_yet(f"optional_pre_call_checks[{i}] {name!r}", "skipping it")
                continue
            built.append(registry.create(name, context, where=f"optional_pre_call_checks[{i}]"))
        given_names = {c.name for c in built + objects}
        implied = [c for c in default_checks(self._config, context) if c.name not in given_names]
        return built + objects + implied

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
        if input is not None:
            params["input"] = input
        if self._shared_cooldowns is not None:
            self._shared_cooldowns.ensure_started()
        started = self._clock.now()
        try:
            request = build_request(
                model, params, stream=stream, default_timeout=self._timeout, now=started
            )
        except InvalidRequestError as exc:  # rejected before routing: observers hear of it
            self._report_failure(_rejected(model, params, stream), exc, started)
            raise
        if stream:
            return await self._stream(request, started)
        try:
            served = await self._dispatcher.run(
                request, lambda d, t, h: self._create_on(request, d, t, h)
            )
        except BaseException as exc:
            self._report_failure(request, exc, started)
            raise
        return self._finish(request, served, started)

    def _finish(self, request: RouteRequest, served: Served[Response], started: float) -> Response:
        """Cost the response, attach its routing, report it when anything observes."""
        response = served.result
        prices = self._prices.get(served.deployment.id)
        watching = self._observers.watching()
        usage = (TokenUsage.from_usage(response._data.get("usage"))
                 if watching or prices is not None else None)
        response.routing = routing = _routing(
            served, None if prices is None else prices.cost(usage))
        if watching:
            self._observers.succeeded(request, routing, latency=self._clock.now() - started,
                                      ttft=None, usage=usage, data=response._data)
        return response

    def _report_failure(self, request: RouteRequest, error: BaseException, started: float) -> None:
        if self._observers.watching():
            self._observers.failed(request, error, latency=self._clock.now() - started)

    async def _create_on(
        self, request: RouteRequest, deployment: Deployment, timeout: float | None,
        handle: SlotHandle,
    ) -> Response:
        provider = self._provider_for(request, deployment)
        try:
            if timeout is None:
                response = await provider.create(deployment, request, None)
            else:
                async with asyncio.timeout(timeout):
                    response = await provider.create(deployment, request, timeout)
        except builtins.TimeoutError as exc:
            raise error_from_transport(
                exc, model_group=deployment.model_name, deployment_id=deployment.id
            ) from exc
        release_with_usage(handle, response._data.get("usage"))
        if request.params.get("store") is not False and "id" in response:
            await self._ownership.record(response._data["id"], deployment)
        return response

    async def _stream(self, request: RouteRequest, started: float) -> ResponseStream:
        try:
            served = await self._dispatcher.run(
                request, lambda d, t, h: self._open_stream(request, d, t, h)
            )
        except BaseException as exc:
            self._report_failure(request, exc, started)
            raise
        stream = served.result
        stream.routing = _routing(served, None)
        prices = self._prices.get(served.deployment.id)
        observers = self._observers if self._observers.watching() else None
        if prices is not None or observers is not None:
            ttft = self._clock.now() - started
            stream.watch(StreamWatch(observers, prices, request, started, ttft))
        return stream

    async def _open_stream(
        self, request: RouteRequest, deployment: Deployment, timeout: float | None,
        handle: SlotHandle,
    ) -> ResponseStream:
        events = self._provider_for(request, deployment).stream(deployment, request, timeout)
        try:
            async with asyncio.timeout(timeout):
                first = await events.__anext__()
            handle.first_token()
        except builtins.TimeoutError as exc:
            await events.aclose()
            raise error_from_transport(
                exc, model_group=deployment.model_name, deployment_id=deployment.id
            ) from exc
        except StopAsyncIteration:
            raise error_from_transport(
                ConnectionResetError("stream ended before its first event"),
                model_group=deployment.model_name, deployment_id=deployment.id,
            ) from None
        except BaseException:
            await events.aclose()
            raise

        async def observe(event: StreamEvent) -> None:
            await self._record_streamed(request, event, deployment)

        def on_failure(error: UpstreamError) -> None:
            self._dispatcher.record_failure(deployment, error)

        if first._data.get("type") != "response.created":
            return ResponseStream(first, events, handle, observe, on_failure)
        await observe(first)
        return ResponseStream(first, events, handle, None, on_failure)

    async def _record_streamed(
        self, request: RouteRequest, event: StreamEvent, deployment: Deployment
    ) -> None:
        data = event._data.get("response")
        if isinstance(data, dict) and "id" in data and request.params.get("store") is not False:
            await self._ownership.record(data["id"], deployment)

    def _provider_for(self, request: RouteRequest, deployment: Deployment) -> Provider:
        return self._mock if request.mock_response is not None else deployment.provider

    # -- by id ----------------------------------------------------------------------

    async def aget_responses(
        self, response_id: str, *, model: str | None = None, **query: Any
    ) -> Response:
        """``GET /responses/{id}`` on the deployment that owns the response."""
        deployment = await self._owner_of(response_id, model)
        record = await deployment.provider.call(deployment, "GET", response_id, query=query)
        return Response(record._data, self._by_id_routing(deployment))

    async def adelete_responses(self, response_id: str, *, model: str | None = None) -> Record:
        """``DELETE /responses/{id}``; forgets the ownership record too."""
        deployment = await self._owner_of(response_id, model)
        record = await deployment.provider.call(deployment, "DELETE", response_id)
        await self._ownership.forget(response_id)
        return record

    async def acancel_responses(self, response_id: str, *, model: str | None = None) -> Response:
        """``POST /responses/{id}/cancel`` (background responses only)."""
        deployment = await self._owner_of(response_id, model)
        record = await deployment.provider.call(deployment, "POST", f"{response_id}/cancel")
        return Response(record._data, self._by_id_routing(deployment))

    async def alist_input_items(
        self, response_id: str, *, model: str | None = None, **query: Any
    ) -> Record:
        """``GET /responses/{id}/input_items`` (``after``, ``before``, ``limit``, ``order``)."""
        deployment = await self._owner_of(response_id, model)
        return await deployment.provider.call(
            deployment, "GET", f"{response_id}/input_items", query=query
        )

    async def _owner_of(self, response_id: str, model: str | None) -> Deployment:
        check_response_id(response_id, "response_id")
        candidates = self._table.group(model) if model else self._table.all()
        group = self._table.resolve_group(model) if model else None
        return await self._ownership.find(response_id, candidates, group)

    def _by_id_routing(self, deployment: Deployment) -> RoutingInfo:
        return RoutingInfo(
            deployment.model_name, deployment.id, deployment.provider_name,
            AttemptTrail(deployment.model_name),
        )

    # -- sync twins -----------------------------------------------------------------

    def responses(self, *, model: str, input: Any = None, stream: bool = False,
                  **params: Any) -> Any:
        """Sync twin of :meth:`aresponses` (a stream comes back as a sync iterator)."""
        result = self._runner.run(
            self.aresponses(model=model, input=input, stream=stream, **params),
            async_name="aresponses",
        )
        return SyncResponseStream(result, self._runner) if stream else result

    def get_responses(self, response_id: str, **kwargs: Any) -> Response:
        """Sync twin of :meth:`aget_responses`."""
        return self._runner.run(
            self.aget_responses(response_id, **kwargs), async_name="aget_responses"
        )

    def delete_responses(self, response_id: str, **kwargs: Any) -> Record:
        """Sync twin of :meth:`adelete_responses`."""
        return self._runner.run(
            self.adelete_responses(response_id, **kwargs), async_name="adelete_responses"
        )

    def cancel_responses(self, response_id: str, **kwargs: Any) -> Response:
        """Sync twin of :meth:`acancel_responses`."""
        return self._runner.run(
            self.acancel_responses(response_id, **kwargs), async_name="acancel_responses"
        )

    def list_input_items(self, response_id: str, **kwargs: Any) -> Record:
        """Sync twin of :meth:`alist_input_items`."""
        return self._runner.run(
            self.alist_input_items(response_id, **kwargs), async_name="alist_input_items"
        )

    # -- inspection and lifetime ----------------------------------------------------

    @property
    def model_names(self) -> list[str]:
        return self._table.group_names()

    def deployments(self, model: str | None = None) -> tuple[Deployment, ...]:
        """The configured deployments (of one group when ``model`` is given)."""
        return self._table.group(model) if model else self._table.all()

    def cooldowns(self) -> list[CooldownEntry]:
        """Deployments cooling down now: id, until (clock time), reason."""
        return self._cooldowns.active()

    def inspect(self, model: str | None = None) -> list[DeploymentState]:
        """Each deployment's live state (of one group when ``model`` is given):
        healthy or cooling down until when and why, in flight, latency EWMAs,
        requests and tokens this minute."""
        return deployment_states(
            self.deployments(model), self._load, self._cooldowns, self._clock)

    def callback_stats(self) -> CallbackStats:
        """Callback calls that raised or timed out, and events dropped, so far."""
        return self._observers.stats()

    async def drain_callbacks(self, timeout: float | None = None) -> bool:
        """Wait until the callbacks of every event so far (on this loop) have run;
        ``False`` if ``timeout`` seconds passed first."""
        return await self._observers.drain(timeout)

    async def aclose(self) -> None:
        """Close pooled connections (of this event loop and of the sync twins')."""
        loop = self._runner.loop
        if loop is not None:
            closing = asyncio.run_coroutine_threadsafe(self._close_here(), loop)
            await asyncio.wrap_future(closing)
            await asyncio.to_thread(self._runner.stop)
        await self._close_here()

    async def _close_here(self) -> None:
        await self._observers.aclose()
        if self._shared_cooldowns is not None:
            await self._shared_cooldowns.aclose()
        if self._shared_load is not None:
            await self._shared_load.aclose()
        await self._pool.aclose()
        await self._store.aclose()

    def close(self) -> None:
        """Sync twin of :meth:`aclose`."""
        if self._runner.started:
            self._runner.run(self._close_here())
            self._runner.stop()

    async def __aenter__(self) -> Router:
        if self._shared_cooldowns is not None:
            await self._shared_cooldowns.start()  # cooldowns in force before the first request
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __enter__(self) -> Router:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        groups = {g: len(self._table.group(g)) for g in self._table.group_names()}
        return f"Router(groups={groups}, strategy={type(self._strategy).__name__})"


def _routing(served: Served[Any], cost: float | None) -> RoutingInfo:
    d = served.deployment
    return RoutingInfo(d.model_name, d.id, d.provider_name, served.trail, cost)


#: The model group of a failure event whose request named no model (a metrics label).
INVALID_MODEL = "<invalid>"


def _rejected(model: object, params: dict[str, Any], stream: bool) -> RouteRequest:
    """What a failure event can say of a request rejected before routing."""
    return RouteRequest(model=model if isinstance(model, str) and model else INVALID_MODEL,
                        params=params, stream=stream)


def _make_redis(settings: Any, clock: Clock) -> RedisStore | None:
    """The Redis of the shared state (one server, a Cluster or Sentinel), when configured."""
    target = settings.redis_target()
    return None if target is None else RedisStore(
        target, prefix=settings.redis_key_prefix, clock=clock,
        wait_replicas=settings.redis_wait_replicas)


#: Strategies that read in-flight counts or this minute's usage: with Redis,
#: they read every router process's figures.
_SHARED_FIGURE_STRATEGIES = frozenset({
    "least-busy", "usage-based-routing", "usage-based-routing-v2",
})


def _shares_load(limits: Mapping[str, DeploymentLimits], strategy: str) -> bool:
    """Whether load figures must be shared through Redis (limits or a load-reading strategy).

    Without either, no request pays the two extra Redis round trips.
    """
    return bool(limits) or strategy in _SHARED_FIGURE_STRATEGIES


def _not_yet(what: str, instead: str) -> None:
    warnings.warn(
        f"{what} is a LiteLLM name this router does not implement yet; {instead}",
        ConfigWarning, stacklevel=4,
    )

