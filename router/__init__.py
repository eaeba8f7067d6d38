"""responses-router: route OpenAI Responses API calls across deployments.

The public surface is re-exported here; inside the project, import from the
submodules (``from router.errors import ...``) to keep start-up free of cycles.
"""

from router.clock import Clock, ManualClock, SystemClock
from router.cooldown import CooldownEntry
from router.cost import Prices, TokenUsage
from router.deployment import Deployment
from router.errors import (
    AuthenticationError,
    BadRequestError,
    ConfigError,
    ConflictError,
    ConnectionError,
    ContentPolicyViolationError,
    ContextWindowExceededError,
    InvalidRequestError,
    MalformedResponseError,
    NoDeploymentAvailableError,
    NotFoundError,
    PermissionDeniedError,
    PinnedDeploymentUnavailableError,
    PreviousResponseNotFoundError,
    QuotaExhaustedError,
    RateLimitError,
    ResponseNotFoundError,
    RouterError,
    ServerError,
    ServiceUnavailableError,
    StreamInterruptedError,
    TimeoutError,
    UnknownModelError,
    UpstreamError,
)
from router.events import (
    Callback,
    CooldownEvent,
    EndUser,
    Event,
    FailureEvent,
    FallbackEvent,
    RetryEvent,
    SuccessEvent,
)
from router.inspection import DeploymentState
from router.metrics import PrometheusMetrics
from router.observe import CallbackLimits, CallbackStats
from router.request import RouteRequest
from router.strategies.base import Strategy, StrategyContext
from router.types import Attempt, AttemptTrail, Record, Response, RoutingInfo, StreamEvent

_LAZY = {
    "Router": "router.router",
    "ResponseStream": "router.streaming",
    "SyncResponseStream": "router.streaming",
    "aresponses": "router.oneoff",
    "responses": "router.oneoff",
}


def __getattr__(name: str) -> object:
    """Load the Router lazily, so ``providers`` and ``checks`` can import
    ``router.*`` core modules without a cycle through the package face."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'router' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)

__all__ = [
    "Attempt",
    "AttemptTrail",
    "AuthenticationError",
    "BadRequestError",
    "Callback",
    "CallbackLimits",
    "CallbackStats",
    "Clock",
    "ConfigError",
    "ConflictError",
    "ConnectionError",
    "ContentPolicyViolationError",
    "ContextWindowExceededError",
    "CooldownEntry",
    "CooldownEvent",
    "Deployment",
    "DeploymentState",
    "EndUser",
    "Event",
    "FailureEvent",
    "FallbackEvent",
    "InvalidRequestError",
    "MalformedResponseError",
    "ManualClock",
    "NoDeploymentAvailableError",
    "NotFoundError",
    "PermissionDeniedError",
    "PinnedDeploymentUnavailableError",
    "PreviousResponseNotFoundError",
    "Prices",
    "PrometheusMetrics",
    "QuotaExhaustedError",
    "RateLimitError",
    "Record",
    "Response",
    "ResponseNotFoundError",
    "ResponseStream",
    "RetryEvent",
    "RouteRequest",
    "Router",
    "RouterError",
    "RoutingInfo",
    "ServerError",
    "ServiceUnavailableError",
    "Strategy",
    "StrategyContext",
    "StreamEvent",
    "StreamInterruptedError",
    "SuccessEvent",
    "SyncResponseStream",
    "SystemClock",
    "TimeoutError",
    "TokenUsage",
    "UnknownModelError",
    "UpstreamError",
    "aresponses",
    "responses",
]
