"""The ``Router``: the public face, public calls and lifetime only.

Construction validates the configuration and hands it, with the caller's
objects, to the composition root (:func:`router.assembly.assemble`), which
returns the router's typed parts. Each public call checks the router is
open and goes down to :class:`router.calls.Calls`, which runs the attempt
loop (:class:`router.attempts.Dispatcher`) with one exchange per attempt
(:class:`router.exchange.Exchange`) and finishes the result; nothing below
calls back up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from os import PathLike
from typing import TYPE_CHECKING, Any

from providers.registry import ProviderFactory, provider_names
from router.assembly import CheckFactory, Objects, Parts, StrategyFactory, assemble
from router.calls import Calls, with_routing
from router.config.loading import build_config, load_config_file, parse_config_document
from router.config.objects import check_objects
from router.errors import InvalidRequestError
from router.request import check_response_id
from router.streaming import SyncResponseStream
from router.sync import LoopRunner

if TYPE_CHECKING:
    import random

    import httpx

    from checks.base import PreCallCheck
    from router.clock import Clock
    from router.config.models import RouterConfig
    from router.cooldown import CooldownEntry
    from router.deployment import Deployment
    from router.inspection import DeploymentState
    from router.observe import CallbackLimits, CallbackStats
    from router.services import RouterServices
    from router.strategies.base import Strategy
    from router.types import Record, Response

__all__ = ["Router"]


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
        check_objects(
            routing_strategy=routing_strategy, optional_pre_call_checks=optional_pre_call_checks,
            http_client=http_client, clock=clock, rng=rng, strategies=strategies, checks=checks,
            callbacks=callbacks,
        )
        settings = dict(settings)
        if isinstance(routing_strategy, str):
            settings["routing_strategy"] = routing_strategy
        names = [c for c in optional_pre_call_checks or () if isinstance(c, str)]
        if names:
            settings["optional_pre_call_checks"] = names
        config, _ = build_config(model_list or [], settings, source="Router(...)",
                                 providers=provider_names(providers))
        self._adopt(assemble(config, Objects.arguments(
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
        router._adopt(assemble(config, Objects.arguments(**objects)))
        return router

    def _adopt(self, parts: Parts) -> None:
        self._parts = parts
        self._calls = Calls(parts)
        self.services: RouterServices = parts.services
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
        ``extra_headers``, ``extra_query``, ``extra_body``,
        ``conversation_failover``, ``response_owner`` (a name recorded with
        the stored response, see :meth:`aresponse_owner`); everything else is
        forwarded upstream unchanged.
        """
        self._check_open()
        if input is not None:
            params["input"] = input
        return await self._calls.create(model, params, stream)

    # -- by id ----------------------------------------------------------------------

    async def aget_responses(
        self, response_id: str, *, model: str | None = None, **query: Any
    ) -> Response:
        """``GET /responses/{id}`` on the deployment that owns the response."""
        self._check_open()
        return with_routing(*await self._calls.by_id(response_id, model, "GET", query=query))

    async def adelete_responses(self, response_id: str, *, model: str | None = None) -> Record:
        """``DELETE /responses/{id}``; forgets the ownership record too."""
        self._check_open()
        record, _ = await self._calls.by_id(response_id, model, "DELETE")
        await self._calls.forget(response_id)
        return record

    async def acancel_responses(self, response_id: str, *, model: str | None = None) -> Response:
        """``POST /responses/{id}/cancel`` (background responses only)."""
        self._check_open()
        return with_routing(*await self._calls.by_id(response_id, model, "POST", "/cancel"))

    async def alist_input_items(
        self, response_id: str, *, model: str | None = None, **query: Any
    ) -> Record:
        """``GET /responses/{id}/input_items`` (``after``, ``before``, ``limit``, ``order``)."""
        self._check_open()
        record, _ = await self._calls.by_id(response_id, model, "GET", "/input_items", query)
        return record

    async def aresponse_owner(self, response_id: str) -> str | None:
        """The ``response_owner`` recorded when ``response_id`` was created, or ``None``
        (none was given, the response was made elsewhere or with ``store=false``, the
        record outlived ``response_ownership_ttl``, or Redis does not answer and this
        process did not write it). Read from this process's copy, else Redis; nothing is
        asked of any deployment. Treat ``None`` as "nobody's", never as "anybody's"."""
        self._check_open()
        check_response_id(response_id, "response_id")
        return await self.services.ownership.owner_name(response_id)

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

    def response_owner(self, response_id: str) -> str | None:
        """Sync twin of :meth:`aresponse_owner`."""
        return self._runner.run(self.aresponse_owner(response_id), async_name="aresponse_owner")

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
        await parts.keeper.store.aclose()
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
