"""OpenAI and any OpenAI-compatible server (vLLM, LM Studio, proxies).

``api_base`` is the API root including its version segment
(``https://api.openai.com/v1``, ``http://vllm:8000/v1``); requests go to
``{api_base}/responses`` with ``Authorization: Bearer``. Stored responses
belong to the organisation / project of the key, so the state domain is
``api_base`` plus the organisation (or, without one, a digest of the key).
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from providers.http import origin_of
from providers.responses_http import Endpoint, HttpResponsesProvider

if TYPE_CHECKING:
    from router.config.models import DeploymentConfig

__all__ = ["DEFAULT_API_BASE", "OpenAIProvider"]

DEFAULT_API_BASE = "https://api.openai.com/v1"


class OpenAIProvider(HttpResponsesProvider):
    """The ``openai/`` provider."""

    name = "openai"

    def prepare(self, config: DeploymentConfig) -> Endpoint:
        p = config.litellm_params
        base = (p.api_base or DEFAULT_API_BASE).rstrip("/")
        headers = {"content-type": "application/json"}
        key = p.api_key.get_secret_value() if p.api_key else ""
        if key:
            headers["authorization"] = f"Bearer {key}"
        if p.organization:
            headers["openai-organization"] = p.organization
        if p.extra_headers:
            headers.update(p.extra_headers)
        account = p.organization or hashlib.sha256(key.encode()).hexdigest()[:16]
        return Endpoint(
            collection_url=f"{base}/responses",
            origin=origin_of(base),
            headers=headers,
            query=dict(p.extra_query or {}),
            state_domain=f"openai:{base}:{account}",
        )
