"""Gemini on Google AI Studio (``gemini/``): URL and API-key auth around the Gemini codec.

``POST {api_base}/v1beta/models/{model}:generateContent`` (and
``:streamGenerateContent?alt=sse``), ``api_base`` defaulting to
``https://generativelanguage.googleapis.com``. The key goes in the
``x-goog-api-key`` header, never in the URL (URLs end up in logs); without
``api_key`` the ``GEMINI_API_KEY`` environment variable is read once, at
construction, as LiteLLM does.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import TYPE_CHECKING, Any

from providers.gemini_codec import GeminiCodec, retry_delay
from providers.http import Answer, origin_of
from providers.translated import Target, TranslatedProvider

if TYPE_CHECKING:
    from router.config import DeploymentConfig
    from router.deployment import Deployment
    from router.errors import UpstreamError

__all__ = ["GEMINI_API_BASE", "GeminiProvider", "GoogleProvider"]

GEMINI_API_BASE = "https://generativelanguage.googleapis.com"


class GoogleProvider(TranslatedProvider):
    """What AI Studio and Vertex share: the wait of a throttle is in the error body."""

    def _status_error(self, answer: Answer, deployment: Deployment) -> UpstreamError:
        error = super()._status_error(answer, deployment)
        if error.retry_after is None:
            try:
                body: Any = json.loads(answer.content)
            except ValueError:
                return error
            error.retry_after = retry_delay(body)
        return error


class GeminiProvider(GoogleProvider):
    """The ``gemini/`` provider."""

    name = "gemini"
    codec = GeminiCodec("gemini")

    def prepare(self, config: DeploymentConfig) -> Target:
        p = config.litellm_params
        base = (p.api_base or GEMINI_API_BASE).rstrip("/")
        key = p.api_key.get_secret_value() if p.api_key else os.environ.get("GEMINI_API_KEY")
        headers = {"content-type": "application/json", **(p.extra_headers or {})}
        if key:
            headers["x-goog-api-key"] = key
        # The state domain names the account without holding the key itself.
        account = hashlib.sha256((key or "").encode()).hexdigest()[:16]
        return Target(
            base_url=f"{base}/v1beta/models", origin=origin_of(base), headers=headers,
            state_domain=f"gemini:{origin_of(base)}:{account}",
            query=dict(p.extra_query or {}) or None, drop_params=p.drop_params,
        )
