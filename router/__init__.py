"""responses-router: route OpenAI Responses API calls across deployments.

The public surface is re-exported here; inside the project, import from the
submodules (``from router.errors import ...``) to keep start-up free of cycles.
"""

from router.clock import Clock, ManualClock, SystemClock
from router.cooldown import CooldownEntry
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
from router.request import RouteRequest
from router.router import Router
from router.strategies.base import Strategy, StrategyContext
from router.streaming import ResponseStream, SyncResponseStream
from router.types import Attempt, AttemptTrail, Record, Response, RoutingInfo, StreamEvent

__all__ = [
    "Attempt",
    "AttemptTrail",
    "AuthenticationError",
    "BadRequestError",
    "Clock",
    "ConfigError",
    "ConflictError",
    "ConnectionError",
    "ContentPolicyViolationError",
    "ContextWindowExceededError",
    "CooldownEntry",
    "Deployment",
    "InvalidRequestError",
    "MalformedResponseError",
    "ManualClock",
    "NoDeploymentAvailableError",
    "NotFoundError",
    "PermissionDeniedError",
    "PinnedDeploymentUnavailableError",
    "PreviousResponseNotFoundError",
    "QuotaExhaustedError",
    "RateLimitError",
    "Record",
    "Response",
    "ResponseNotFoundError",
    "ResponseStream",
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
    "SyncResponseStream",
    "SystemClock",
    "TimeoutError",
    "UnknownModelError",
    "UpstreamError",
]
