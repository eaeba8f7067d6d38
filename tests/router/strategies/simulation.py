"""The discrete-event simulation the strategy tests drive (now in ``router.testing``)."""

from __future__ import annotations

from router.testing.simulation import (
    OUTPUT_TOKENS,
    TOTAL_TOKENS,
    Result,
    Simulation,
    Upstream,
    build_strategy,
    make_group,
)

__all__ = [
    "OUTPUT_TOKENS", "TOTAL_TOKENS", "Result", "Simulation", "Upstream", "build_strategy",
    "make_group",
]
