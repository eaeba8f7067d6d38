"""The ``Strategy`` interface, its construction context, and its registry.

Built-in names (LiteLLM's, plus our ``peak-ewma``): ``simple-shuffle``,
``least-busy``, ``latency-based-routing``, ``usage-based-routing``,
``usage-based-routing-v2`` (the same strategy), ``cost-based-routing``,
``peak-ewma``. Users pass any object with a ``pick`` method instead, or
register a factory under a name of their own.

A strategy says what it needs instead of the router guessing from its name,
so an object behaves exactly as the same strategy named in config:

* ``needs`` (a :class:`Needs`): the figures it must see from every router
  process (the router then shares them through Redis) and whether it makes
  ``rpm``/``tpm`` hard limits;
* ``bind(load)`` (:class:`LoadAware`): the router hands it the router's own
  :class:`~router.load.LoadTracker`, so ``LeastBusy()`` passed as an object
  reads the figures of the router it routes for. A strategy owns the state
  its cost model keeps beyond the tracker's figures (``peak-ewma`` its peak,
  drain and service times) and subscribes to the tracker's samples in
  ``bind``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Flag, auto
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from router.errors import ConfigError
from router.registry import Registry

if TYPE_CHECKING:
    from router.clock import Clock
    from router.deployment import Deployment
    from router.load import LoadTracker
    from router.request import RouteRequest

__all__ = [
    "BUILTIN_STRATEGIES",
    "CostReader",
    "Costs",
    "LoadAware",
    "LoadReader",
    "Needs",
    "Strategy",
    "StrategyContext",
    "bind_strategy",
    "builtin_needs",
    "cost_reader",
    "needs_of",
    "strategy_registry",
    "unbound_reader",
]


class Needs(Flag):
    """What a strategy needs from the router beyond ``pick``'s arguments."""

    NONE = 0
    #: In-flight counts of every router process (shared through Redis when configured).
    SHARED_IN_FLIGHT = auto()
    #: This minute's requests and tokens of every router process (shared likewise).
    SHARED_USAGE = auto()
    #: ``rpm``/``tpm`` are hard limits, not only weights (LiteLLM's usage-based routing).
    RATE_LIMITS = auto()


def needs_of(strategy: object) -> Needs:
    """What ``strategy`` declares in its ``needs`` attribute (none when it has none)."""
    declared = getattr(strategy, "needs", Needs.NONE)
    return declared if isinstance(declared, Needs) else Needs.NONE


@runtime_checkable
class LoadAware(Protocol):
    """A strategy that reads the router's load figures; the router binds it once."""

    def bind(self, load: LoadTracker) -> None: ...


def bind_strategy(strategy: object, load: LoadTracker) -> None:
    """Give ``strategy`` the router's load tracker when it reads one."""
    if isinstance(strategy, LoadAware):
        strategy.bind(load)


#: Each candidate's cost, in the order given (lower is better).
CostReader = Callable[[Sequence["Deployment"]], Sequence[float]]


@runtime_checkable
class Costs(Protocol):
    """A strategy that can say what each candidate costs by its own model (lower is better):
    ``peak-ewma``'s expected latency, ``least-busy``'s requests in flight plus one."""

    def costs(self, candidates: Sequence[Deployment]) -> Sequence[float]: ...


def cost_reader(strategy: object, load: LoadTracker) -> CostReader:
    """``strategy``'s own costs (:class:`Costs`), else each candidate's requests in
    flight plus one: what "clearly worse" is read by where a strategy's pick is
    weighed against another deployment (cache affinity, a retry's target)."""
    if isinstance(strategy, Costs) and callable(strategy.costs):  # not a "costs" table
        return strategy.costs
    in_flight = load.in_flight
    return lambda candidates: [in_flight(d.id) + 1.0 for d in candidates]


class LoadReader:
    """Base of the built-in strategies that read load figures: bound once, to one tracker."""

    def __init__(self, load: LoadTracker | None) -> None:
        self._load: LoadTracker | None = None
        if load is None:
            self._unbound()
        else:
            self.bind(load)

    def bind(self, load: LoadTracker) -> None:
        """Read ``load``'s figures; a strategy reads one router's figures only."""
        if self._load is load:
            return
        if self._load is not None:
            raise ConfigError(
                f"{type(self).__name__} already reads another router's load figures; "
                f"give each router its own {type(self).__name__}()"
            )
        self._load = load
        self._bound(load)

    def _bound(self, load: LoadTracker) -> None:
        """Cache what ``pick`` reads from ``load`` (bound methods: the hot path)."""

    def _unbound(self) -> None:
        """Until ``bind``: every figure ``pick`` reads raises a ConfigError saying so."""
        self._bound(_Unbound(type(self).__name__))  # type: ignore[arg-type]

    @property
    def load(self) -> LoadTracker:
        """The tracker bound; a strategy used before it is bound is a programming error."""
        if self._load is None:
            raise _not_bound(type(self).__name__)
        return self._load


def unbound_reader(name: str) -> Callable[..., Any]:
    """A stand-in for a figure reader of a strategy not bound yet: raises when called."""
    def read(*args: object) -> Any:
        raise _not_bound(name)
    return read


def _not_bound(name: str) -> ConfigError:
    return ConfigError(
        f"{name} is not bound to a router's load figures: pass it to Router(routing_strategy=...)"
        f" or give it a LoadTracker")


class _Unbound:
    """Stands in for the tracker until ``bind``: any figure read says what is wrong."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> Callable[..., Any]:
        return unbound_reader(self._name)


@runtime_checkable
class Strategy(Protocol):
    """Chooses a deployment. ``candidates`` is never empty; no I/O allowed.

    Optional, read once at construction: a ``needs`` attribute (a
    :class:`Needs`; none when absent) and a ``bind(load)`` method
    (:class:`LoadAware`) through which the router hands over its load tracker.
    """

    def pick(self, candidates: Sequence[Deployment], request: RouteRequest) -> Deployment: ...


@dataclass(frozen=True, slots=True)
class StrategyContext:
    """What a strategy factory may use: the router's rng, clock, load figures, args."""

    rng: random.Random
    clock: Clock
    load: LoadTracker
    args: Mapping[str, Any] = field(default_factory=dict)


def _builtins() -> dict[str, Callable[[StrategyContext], Strategy]]:
    from router.strategies.cost_based import CostBased
    from router.strategies.latency_based import LatencyBased
    from router.strategies.least_busy import LeastBusy
    from router.strategies.peak_ewma import PeakEwma
    from router.strategies.simple_shuffle import SimpleShuffle
    from router.strategies.usage_based import UsageBased

    return {
        "simple-shuffle": SimpleShuffle.from_context,
        "least-busy": LeastBusy.from_context,
        "latency-based-routing": LatencyBased.from_context,
        "usage-based-routing": UsageBased.from_context,
        "usage-based-routing-v2": UsageBased.from_context,
        "cost-based-routing": CostBased.from_context,
        "peak-ewma": PeakEwma.from_context,
    }


def builtin_needs(name: str) -> Needs:
    """What the built-in strategy called ``name`` declares (none for other names)."""
    factory = _builtins().get(name)
    return needs_of(getattr(factory, "__self__", None))  # the class of a from_context


def strategy_registry() -> Registry[StrategyContext, Strategy]:
    """A fresh registry holding the built-in strategies."""
    return Registry("routing_strategy", _builtins(), planned=LITELLM_STRATEGIES)


#: Names of the built-in strategies, in the order of the module docstring.
BUILTIN_STRATEGIES = (
    "simple-shuffle", "least-busy", "latency-based-routing", "usage-based-routing",
    "usage-based-routing-v2", "cost-based-routing", "peak-ewma",
)

#: LiteLLM strategy names not built yet: a config naming one falls back to
#: simple-shuffle with a ConfigWarning, so a LiteLLM config.yaml still loads.
LITELLM_STRATEGIES = frozenset({"provider-budget-routing"})
