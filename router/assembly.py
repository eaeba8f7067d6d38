"""The composition root: turns a validated config and the caller's objects into typed parts.

Everything a router is made of is built here, once, in dependency order:
the client pool and providers (:mod:`providers.registry`), the deployment
table, the state store, the load tracker, the strategy (bound to that
tracker), the limits, what is shared through Redis, cooldowns, admission,
the pre-call checks, the observers, and at the end the two request-path
objects: the attempt loop (:class:`router.attempts.Dispatcher`) and the
exchange (:class:`router.exchange.Exchange`). The façade
(:class:`router.router.Router`) holds the resulting :class:`Parts` and only
calls downward into them.

Config names resolve through registries here and nowhere else; what a
strategy needs (shared figures, hard rate limits) is what it declares
(:class:`router.strategies.base.Needs`), never guessed from its name.
"""

from __future__ import annotations

import random
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx

from checks.base import PreCallCheck
from checks.registry import check_registry, default_checks
from providers.http import ClientPool
from providers.registry import ProviderFactory, provider_set
from router.attempts import Dispatcher
from router.budget import RetryBudgets
from router.cache_affinity import CacheAffinity
from router.clock import Clock, SystemClock
from router.config.loading import ConfigWarning
from router.config.models import RouterConfig, RouterSettings
from router.conversations.keeper import Keeper
from router.conversations.sealing import sealer_for
from router.conversations.store import ConversationStore, MemoryConversations
from router.cooldown import Cooldowns
from router.cost import Prices, price_book
from router.exchange import Exchange
from router.fallbacks import FallbackPlan
from router.headroom import Headroom
from router.inspection import DeploymentState, ReportsPeak, deployment_states
from router.limits import DeploymentLimits, limits_by_id
from router.load import LoadTracker
from router.metrics import PrometheusMetrics, metrics_observer
from router.observe import CallbackLimits, Observers
from router.order import OrderTiers
from router.ownership import Ownership
from router.pinning import PIN_CHECK_NAME, Pinning
from router.retry import RetryPolicy
from router.services import RouterServices
from router.shared_cooldowns import SharedCooldowns
from router.shared_load import Admission, SharedLoad
from router.state.memory import MemoryStore
from router.state.resilient import ResilientStore
from router.strategies.base import (
    Needs,
    Strategy,
    StrategyContext,
    bind_strategy,
    needs_of,
    strategy_registry,
)
from router.table import DeploymentTable

if TYPE_CHECKING:
    from checks.base import CheckContext
    from router.deployment import Deployment
    from router.state.base import BatchStore
    from router.state.redis import RedisStore

__all__ = ["CheckFactory", "Objects", "Parts", "StrategyFactory", "assemble"]

StrategyFactory = Callable[[StrategyContext], Strategy]
CheckFactory = Callable[["CheckContext"], PreCallCheck]

#: Strategy needs that make a router share its load figures through Redis.
_SHARED = Needs.SHARED_IN_FLIGHT | Needs.SHARED_USAGE


@dataclass(frozen=True, slots=True)
class Objects:
    """What the caller passed as objects rather than config names (see ``Router``)."""

    strategy: Strategy | None = None
    checks: Sequence[PreCallCheck] = ()
    http_client: httpx.AsyncClient | None = None
    clock: Clock | None = None
    rng: random.Random | None = None
    strategies: Mapping[str, StrategyFactory] = field(default_factory=dict)
    check_factories: Mapping[str, CheckFactory] = field(default_factory=dict)
    callbacks: Sequence[object] = ()
    metrics: object = None
    callback_limits: CallbackLimits | None = None
    providers: Mapping[str, ProviderFactory] = field(default_factory=dict)

    @classmethod
    def arguments(
        cls,
        *,
        routing_strategy: str | Strategy | None = None,
        optional_pre_call_checks: Sequence[str | PreCallCheck] | None = None,
        strategies: Mapping[str, StrategyFactory] | None = None,
        checks: Mapping[str, CheckFactory] | None = None,
        callbacks: Sequence[object] | None = None,
        providers: Mapping[str, ProviderFactory] | None = None,
        http_client: httpx.AsyncClient | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        metrics: object = None,
        callback_limits: CallbackLimits | None = None,
    ) -> Objects:
        """The objects among ``Router``'s arguments (names there are the config's business)."""
        return cls(
            strategy=None if isinstance(routing_strategy, str) else routing_strategy,
            checks=[c for c in optional_pre_call_checks or () if not isinstance(c, str)],
            http_client=http_client, clock=clock, rng=rng,
            strategies=strategies or {}, check_factories=checks or {},
            callbacks=list(callbacks or ()), metrics=metrics, callback_limits=callback_limits,
            providers=providers or {},
        )


@dataclass(frozen=True, slots=True)
class Parts:
    """A router's parts, built once; the façade only calls down into them."""

    config: RouterConfig
    services: RouterServices
    pool: ClientPool
    strategy: Strategy
    dispatcher: Dispatcher
    exchange: Exchange
    observers: Observers
    prices: Mapping[str, Prices]
    shared_cooldowns: SharedCooldowns | None
    shared_load: SharedLoad | None
    keeper: Keeper
    headroom: Headroom | None = None

    def inspect(self, model: str | None = None) -> list[DeploymentState]:
        """Each deployment's live state (of one group when ``model`` is given)."""
        s = self.services
        deployments = s.table.group(model) if model else s.table.all()
        strategy = self.strategy
        peak = strategy if isinstance(strategy, ReportsPeak) else None
        return deployment_states(deployments, s.load, s.cooldowns, s.clock, peak,
                                 self.headroom)


def assemble(config: RouterConfig, objects: Objects) -> Parts:
    """Build every part of a router from ``config`` and ``objects``."""
    s = config.settings
    clock = objects.clock or SystemClock()
    rng = objects.rng or random.Random()
    pool = ClientPool(objects.http_client)
    providers = provider_set(pool, objects.providers)
    table = DeploymentTable(config.model_list, providers, s.model_group_alias,
                            default_stream_timeout=s.stream_timeout)
    redis = _make_redis(s, clock)
    store: BatchStore = MemoryStore() if redis is None else ResilientStore(redis, clock)
    load = LoadTracker(clock)
    strategy = objects.strategy or _named_strategy(config, objects, rng, clock, load)
    bind_strategy(strategy, load)
    limits = limits_by_id(table.all(), config, strategy=strategy)
    shared_load = (SharedLoad(redis, clock)
                   if redis is not None and _shares_load(limits, strategy) else None)
    cooldowns = _cooldowns(s, clock, rng)
    shared_cooldowns = None if redis is None or s.disable_cooldowns else SharedCooldowns(
        redis, cooldowns, clock, [d.id for d in table.all()])
    ownership = Ownership(store, table, ttl=s.response_ownership_ttl)
    admission = Admission(load, clock, limits, shared_load)
    services = RouterServices(table, ownership, store, clock, load, cooldowns, config, admission)
    checks, pinned = _checks(config, objects, services, strategy)
    observers, prometheus = _observers(objects, services)
    headroom = Headroom(clock) if s.use_rate_limit_headers else None
    if headroom is not None:
        pool.listen(headroom.saw)
    dispatcher = _dispatcher(services, strategy, checks, rng, observers,
                             Pinning(ownership, table) if pinned else None, shared_cooldowns,
                             headroom)
    keeper = Keeper(_conversation_store(s, redis), table, s)
    exchange = Exchange(ownership, providers["mock"], dispatcher.record_failure, keeper)
    parts = Parts(config, services, pool, strategy, dispatcher, exchange, observers,
                  price_book(table.all()), shared_cooldowns, shared_load, keeper, headroom)
    if prometheus is not None:  # the live gauges read the router's state
        prometheus.bind(parts.inspect)
    return parts


def _make_redis(settings: RouterSettings, clock: Clock) -> RedisStore | None:
    """The Redis of the shared state (one server, a Cluster or Sentinel), when configured."""
    target = settings.redis_target()
    if target is None:
        return None
    from router.state.redis import RedisStore  # redis-py only for routers that use Redis

    return RedisStore(
        target, prefix=settings.redis_key_prefix, clock=clock,
        wait_replicas=settings.redis_wait_replicas)


def _conversation_store(settings: RouterSettings, redis: RedisStore | None) -> ConversationStore:
    """Where kept conversations live: the router's Redis, else bounded memory."""
    keys = [k.get_secret_value() for k in settings.conversation_encryption_keys]
    sealer = sealer_for(keys)  # checks the keys now, even for the memory store
    if redis is None:
        return MemoryConversations(settings.conversation_memory_max_bytes)
    from router.conversations.redis_store import RedisConversations

    return RedisConversations(redis, sealer, local_max_bytes=settings.conversation_memory_max_bytes)


def _shares_load(limits: Mapping[str, DeploymentLimits], strategy: Strategy) -> bool:
    """Whether load figures must be shared through Redis: limits, or a strategy that
    declares it reads every process's figures. Without either, no request pays the
    two extra Redis round trips."""
    return bool(limits) or bool(needs_of(strategy) & _SHARED)


def _cooldowns(s: RouterSettings, clock: Clock, rng: random.Random) -> Cooldowns:
    return Cooldowns(
        clock, allowed_fails=s.allowed_fails, cooldown_time=s.cooldown_time,
        disabled=s.disable_cooldowns, allowed_fails_policy=s.allowed_fails_policy,
        max_cooldown_time=s.max_cooldown_time, jitter=s.cooldown_jitter, rng=rng,
    )


def _named_strategy(
    config: RouterConfig, objects: Objects, rng: random.Random, clock: Clock, load: LoadTracker
) -> Strategy:
    registry = strategy_registry()
    for name, factory in objects.strategies.items():
        registry.register(name, factory)
    s = config.settings
    name = s.routing_strategy
    if registry.is_planned(name):
        _not_yet(f"routing_strategy {name!r}", "using 'simple-shuffle'")
        name = "simple-shuffle"
    context = StrategyContext(rng, clock, load, s.routing_strategy_args)
    return registry.create(name, context, where="routing_strategy")


def _checks(
    config: RouterConfig, objects: Objects, services: RouterServices, strategy: Strategy
) -> tuple[list[PreCallCheck], bool]:
    """The pre-call checks to run, in order, and whether pinning is on.

    The pinning check's name only switches the core pinning step on
    (:mod:`router.pinning`); it is not run as a check.
    """
    registry = check_registry()
    for name, factory in objects.check_factories.items():
        registry.register(name, factory)
    names = config.settings.optional_pre_call_checks
    built = []
    for i, name in enumerate(names):
        if registry.is_planned(name):
            _not_yet(f"optional_pre_call_checks[{i}] {name!r}", "skipping it")
        elif name != PIN_CHECK_NAME:
            built.append(registry.create(name, services, where=f"optional_pre_call_checks[{i}]"))
    given = built + list(objects.checks)
    pinned = PIN_CHECK_NAME in names or any(c.name == PIN_CHECK_NAME for c in given)
    given = [c for c in given if c.name != PIN_CHECK_NAME]
    given_names = {c.name for c in given}
    implied = [c for c in default_checks(config, services, strategy)
               if c.name not in given_names]
    return given + implied, pinned


def _observers(
    objects: Objects, services: RouterServices
) -> tuple[Observers, PrometheusMetrics | None]:
    prometheus = metrics_observer(objects.metrics)
    table = services.table

    def group_of(deployment_id: str) -> str | None:
        found: Deployment | None = table.get(deployment_id)
        return None if found is None else found.model_name

    built = Observers(
        list(objects.callbacks), clock=services.clock, limits=objects.callback_limits,
        builtin=[] if prometheus is None else [prometheus], group_of=group_of,
    )
    services.cooldowns.listen(built.cooled)
    return built, prometheus


def _dispatcher(
    services: RouterServices, strategy: Strategy, checks: Sequence[PreCallCheck],
    rng: random.Random, observers: Observers, pinning: Pinning | None,
    probes: SharedCooldowns | None = None, headroom: Headroom | None = None,
) -> Dispatcher:
    s = services.config.settings
    clock = services.clock
    return Dispatcher(
        table=services.table, strategy=strategy, checks=checks,
        cooldowns=services.cooldowns, load=services.load,
        retry=RetryPolicy(s.num_retries, s.retry_after, s.retry_policy or {}),
        fallbacks=FallbackPlan(
            fallbacks=s.fallbacks, default_fallbacks=s.default_fallbacks,
            context_window_fallbacks=s.context_window_fallbacks,
            content_policy_fallbacks=s.content_policy_fallbacks,
            max_fallbacks=s.max_fallbacks,
        ),
        clock=clock, rng=rng, admission=services.admission,
        order=OrderTiers(services.table.all()),
        budgets=RetryBudgets(
            clock, ratio=s.retry_budget_ratio, min_per_second=s.retry_budget_min_per_second,
            window=s.retry_budget_window, enabled=s.retry_budget,
        ),
        panic_mode=s.panic_mode, observers=observers, pinning=pinning, probes=probes,
        affinity=CacheAffinity(
            strategy, services.load, slack=s.prompt_cache_affinity_slack,
            instructions=s.prompt_cache_affinity_instructions)
        if s.prompt_cache_affinity else None,
        headroom=headroom,
    )


def _not_yet(what: str, instead: str) -> None:
    warnings.warn(
        f"{what} is a LiteLLM name this router does not implement yet; {instead}",
        ConfigWarning, stacklevel=5,
    )
