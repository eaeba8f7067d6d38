"""The ``Strategy`` interface, its construction context, and its registry."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from router.registry import Registry

if TYPE_CHECKING:
    from router.clock import Clock
    from router.deployment import Deployment
    from router.load import LoadTracker
    from router.request import RouteRequest

__all__ = ["Strategy", "StrategyContext", "strategy_registry"]


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


def strategy_registry() -> Registry[StrategyContext, Strategy]:
    """A fresh registry holding the built-in strategies."""
    from router.strategies.simple_shuffle import SimpleShuffle

    return Registry(
        "routing_strategy",
        {"simple-shuffle": SimpleShuffle.from_context},
        planned=LITELLM_STRATEGIES,
    )


#: LiteLLM strategy names: a config naming one not built yet falls back to
#: simple-shuffle with a ConfigWarning, so a LiteLLM config.yaml still loads.
LITELLM_STRATEGIES = frozenset({
    "least-busy", "latency-based-routing", "usage-based-routing",
    "usage-based-routing-v2", "cost-based-routing", "provider-budget-routing",
})
