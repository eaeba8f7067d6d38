"""Routing strategies: pick one deployment among the candidates.

A strategy is any object with ``pick(candidates, request) -> Deployment``
(synchronous, no I/O); it may declare what it needs (:class:`Needs`) and
take the router's load figures (:class:`LoadAware`). Config names resolve
through :func:`strategy_registry`.
"""

from router.strategies.base import (
    BUILTIN_STRATEGIES,
    LoadAware,
    LoadReader,
    Needs,
    Strategy,
    StrategyContext,
    strategy_registry,
)
from router.strategies.cost_based import CostBased
from router.strategies.latency_based import LatencyBased
from router.strategies.least_busy import LeastBusy
from router.strategies.peak_ewma import PeakEwma
from router.strategies.simple_shuffle import SimpleShuffle
from router.strategies.usage_based import UsageBased

__all__ = [
    "BUILTIN_STRATEGIES",
    "CostBased",
    "LatencyBased",
    "LeastBusy",
    "LoadAware",
    "LoadReader",
    "Needs",
    "PeakEwma",
    "SimpleShuffle",
    "Strategy",
    "StrategyContext",
    "UsageBased",
    "strategy_registry",
]
