"""Config names of the built-in pre-call checks, and the checks a config implies.

:func:`check_registry` resolves ``optional_pre_call_checks`` names, once per
router. :func:`default_checks` returns the checks LiteLLM would run without
being named, because of other settings (``enable_pre_call_checks``,
``enable_tag_filtering``, ``max_parallel_requests``, ...).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING

from checks.base import CheckContext, PreCallCheck
from checks.context_window import ContextWindowCheck
from checks.limits import RateLimitCheck, rate_limits_enforced
from checks.parallel import MaxParallelCheck
from checks.responses_api import ResponsesApiDeploymentCheck
from checks.tags import TagFilter
from router.registry import Registry

if TYPE_CHECKING:
    from router.config.models import RouterConfig
    from router.strategies.base import Strategy

__all__ = ["LITELLM_CHECKS", "check_registry", "default_checks"]

_BUILTINS: Mapping[str, Callable[[CheckContext], PreCallCheck]] = MappingProxyType({
    ResponsesApiDeploymentCheck.name: ResponsesApiDeploymentCheck.from_context,
    RateLimitCheck.name: RateLimitCheck.from_context,
    ContextWindowCheck.name: ContextWindowCheck.from_context,
    TagFilter.name: TagFilter.from_context,
    MaxParallelCheck.name: MaxParallelCheck.from_context,
})


def check_registry() -> Registry[CheckContext, PreCallCheck]:
    """A fresh registry holding the built-in checks."""
    return Registry("pre-call check", _BUILTINS, planned=LITELLM_CHECKS)


#: LiteLLM pre-call check names not built here yet: skipped with a ConfigWarning.
LITELLM_CHECKS = frozenset({
    "prompt_caching", "router_budget_limiting", "deployment_affinity",
    "session_affinity", "encrypted_content_affinity", "forward_client_headers_by_model_group",
})


def default_checks(
    config: RouterConfig, context: CheckContext, strategy: Strategy | None = None
) -> list[PreCallCheck]:
    """The checks ``config`` turns on without naming them, in the order to run them.

    ``strategy``: the router's, when built (its declared needs may make
    ``rpm``/``tpm`` hard limits, see :func:`router.limits.rate_limits_enforced`).

    Checks already named in ``optional_pre_call_checks`` are left out (the
    router builds those from the names). The order matters: tags narrow
    first; the context window may end the group with its own error;
    ``max_parallel_requests`` may wait, so it runs before the rate-limit
    check, whose figures are then fresh.
    """
    named = set(config.settings.optional_pre_call_checks)
    wanted = [name for name, on in _implied(config, strategy) if on and name not in named]
    return [_BUILTINS[name](context) for name in wanted]


def _implied(config: RouterConfig, strategy: Strategy | None) -> list[tuple[str, bool]]:
    s = config.settings
    params = [d.litellm_params for d in config.model_list]
    info = [d.model_info for d in config.model_list]
    return [
        (TagFilter.name, s.enable_tag_filtering),
        (ContextWindowCheck.name, s.enable_pre_call_checks
         and any(i.max_input_tokens is not None for i in info)),
        (MaxParallelCheck.name, s.default_max_parallel_requests is not None
         or any(p.max_parallel_requests is not None for p in params)),
        (RateLimitCheck.name, rate_limits_enforced(config, strategy)
         and any(p.rpm is not None or p.tpm is not None for p in params)),
    ]
