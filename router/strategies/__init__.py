"""Routing strategies: pick one deployment among the candidates.

A strategy is any object with ``pick(candidates, request) -> Deployment``
(synchronous, no I/O). Config names resolve through :func:`strategy_registry`.
"""

from router.strategies.base import Strategy, StrategyContext, strategy_registry
from router.strategies.simple_shuffle import SimpleShuffle

__all__ = ["SimpleShuffle", "Strategy", "StrategyContext", "strategy_registry"]
