"""Test doubles for the router: fake Responses API upstreams on real sockets.

See :mod:`router.testing.upstream`. ``python -m router.testing`` runs one fake
upstream in its own process.
"""

from __future__ import annotations

from router.testing.upstream import (
    FaultPlan,
    RecordedRequest,
    RemoteFaultPlan,
    Upstream,
    UpstreamProcess,
)

__all__ = ["FaultPlan", "RecordedRequest", "RemoteFaultPlan", "Upstream", "UpstreamProcess"]
