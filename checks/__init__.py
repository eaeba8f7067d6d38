"""Pre-call checks: narrow the candidate deployments before the strategy picks.

A check is any object with a ``name`` and
``async filter(candidates, request) -> candidates``. Config names resolve
through :func:`checks.registry.check_registry`, per router; the checks that
LiteLLM settings imply come from :func:`checks.registry.default_checks`.

Built in: ``enforce_model_rate_limits`` (rpm/tpm), ``context_window_check``
(``enable_pre_call_checks``), ``tag_filtering`` (``enable_tag_filtering``)
and ``max_parallel_requests``. ``responses_api_deployment_check`` is a name
that switches the router's core pinning step on (:mod:`router.pinning`).
``order`` is not a check but :class:`router.order.OrderTiers`, applied by the
attempt loop after cooldowns.
"""

from checks.base import CheckContext, PreCallCheck
from checks.context_window import ContextWindowCheck
from checks.limits import DeploymentLimits, RateLimitCheck
from checks.parallel import MaxParallelCheck
from checks.registry import check_registry, default_checks
from checks.responses_api import ResponsesApiDeploymentCheck
from checks.tags import TagFilter
from router.order import OrderTiers

__all__ = [
    "CheckContext",
    "ContextWindowCheck",
    "DeploymentLimits",
    "MaxParallelCheck",
    "OrderTiers",
    "PreCallCheck",
    "RateLimitCheck",
    "ResponsesApiDeploymentCheck",
    "TagFilter",
    "check_registry",
    "default_checks",
]
