"""The ``Strategy`` interface, its construction context, and its registry.

Built-in names (LiteLLM's, plus our ``peak-ewma``): ``simple-shuffle``,
``least-busy``, ``latency-based-routing``, ``usage-based-routing``,
``usage-based-routing-v2`` (the same strategy), ``cost-based-routing``,
``peak-ewma``. Users pass any object with a ``pick`` method instead, or
register a factory under a name of their own.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from router.registry import Registry

if TYPE_CHECKING:
    from router.clock import Clock
    from router.deployment import Deployment
    from router.load import LoadTracker
    from router.request import RouteRequest

__all__ = ["BUILTIN_STRATEGIES", "Strategy", "StrategyContext", "strategy_registry"]


@runtime_checkable
class Strategy(Protocol):
    """Chooses a deployment. ``candidates`` is never empty; no I/O allowed."""

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
