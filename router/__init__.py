"""responses-router: route OpenAI Responses API calls across deployments.

The public surface is exactly this module's ``__all__`` (and the faces of
``providers`` and ``checks``): the :class:`Router`, its results and errors,
the events observers receive, and the four extension interfaces with their
registration paths:

* :class:`Strategy`: pass an instance as ``routing_strategy`` or register a
  factory with ``Router(strategies={"name": factory})``; it declares what it
  needs (:class:`Needs`) and may read the router's load figures (:class:`LoadAware`);
* :class:`PreCallCheck`: pass instances in ``optional_pre_call_checks`` or
  register factories with ``Router(checks={"name": factory})``;
* :class:`Provider`: ``Router(providers={"prefix": factory})``, built-ins in
  :data:`providers.registry.BUILTIN_PROVIDERS`;
* :class:`StateStore` and :class:`BatchStore` (several keys in one round trip): the
  interfaces of the memory and Redis stores behind ownership records.

Every other module is internal: importable (tests do), but its names are not
promised to stay. Inside the project, import from the submodules
(``from router.errors import ...``) to keep start-up free of cycles.
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
    UpstreamConnectionError,
    UpstreamError,
    UpstreamTimeoutError,
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
from router.state.base import BatchStore, StateStore
from router.strategies.base import LoadAware, Needs, Strategy, StrategyContext
from router.types import Attempt, AttemptTrail, Record, Response, RoutingInfo, StreamEvent

_LAZY = {
    "PreCallCheck": "checks.base",
    "Provider": "providers.base",
    "ProviderFactory": "providers.registry",
    "Router": "router.router",
    "ResponseStream": "router.streaming",
    "SyncResponseStream": "router.streaming",
    "aresponses": "router.oneoff",
    "responses": "router.oneoff",
}


def __getattr__(name: str) -> object:
    """Load the Router and the plug-in interfaces lazily, so ``providers`` and
    ``checks`` can import ``router.*`` core modules without a cycle through
    the package face."""
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
    "BatchStore",
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
    "LoadAware",
    "MalformedResponseError",
    "ManualClock",
    "Needs",
    "NoDeploymentAvailableError",
    "NotFoundError",
    "PermissionDeniedError",
    "PinnedDeploymentUnavailableError",
    "PreCallCheck",
    "PreviousResponseNotFoundError",
    "Prices",
    "PrometheusMetrics",
    "Provider",
    "ProviderFactory",
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
    "StateStore",
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
    "UpstreamConnectionError",
    "UpstreamError",
    "UpstreamTimeoutError",
    "aresponses",
    "responses",
]
