"""Config names of the built-in pre-call checks, resolved once per router."""

from __future__ import annotations

from checks.base import CheckContext, PreCallCheck
from checks.responses_api import ResponsesApiDeploymentCheck
from router.registry import Registry

__all__ = ["check_registry"]


def check_registry() -> Registry[CheckContext, PreCallCheck]:
    """A fresh registry holding the built-in checks."""
    return Registry(
        "pre-call check",
        {ResponsesApiDeploymentCheck.name: ResponsesApiDeploymentCheck.from_context},
        planned=LITELLM_CHECKS,
    )


#: LiteLLM pre-call check names not built here yet: skipped with a ConfigWarning.
LITELLM_CHECKS = frozenset({
    "prompt_caching", "router_budget_limiting", "deployment_affinity",
    "session_affinity", "encrypted_content_affinity", "forward_client_headers_by_model_group",
})
