"""The ``anthropic/`` provider: Claude through the Anthropic Messages API.

``POST {api_base}/v1/messages`` with the ``x-api-key`` header and
``anthropic-version`` (:data:`API_VERSION` unless the deployment's
``extra_headers`` set another, or add ``anthropic-beta`` for a feature in
beta). As in LiteLLM, a deployment without ``api_key`` / ``api_base`` reads
``ANTHROPIC_API_KEY`` / ``ANTHROPIC_API_BASE`` from the environment, once,
when the router is built; ``api_base`` may be given with or without ``/v1``.
The translation itself is :mod:`providers.anthropic_codec`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from providers.anthropic_codec import AnthropicCodec
from providers.http import ClientPool, origin_of
from providers.translated import Target, TranslatedProvider

if TYPE_CHECKING:
    from router.config import DeploymentConfig

__all__ = ["API_VERSION", "DEFAULT_BASE", "AnthropicProvider"]

#: The Messages API version sent unless the deployment's extra_headers say otherwise.
API_VERSION = "2023-06-01"
DEFAULT_BASE = "https://api.anthropic.com"


def _base_url(api_base: str) -> str:
    base = api_base.rstrip("/")
    for suffix in ("/v1/messages", "/v1"):
        if base.endswith(suffix):
            return base[: -len(suffix)]
    return base


class AnthropicProvider(TranslatedProvider):
    """Anthropic's Messages API behind the Responses interface."""

    name = "anthropic"
    codec = AnthropicCodec()

    def __init__(self, pool: ClientPool, environ: Mapping[str, str] | None = None) -> None:
        super().__init__(pool)
        self._environ = os.environ if environ is None else environ

    def prepare(self, config: DeploymentConfig) -> Target:
        p = config.litellm_params
        base = _base_url(p.api_base or self._environ.get("ANTHROPIC_API_BASE") or DEFAULT_BASE)
        headers = {"content-type": "application/json", "anthropic-version": API_VERSION}
        key = p.api_key.get_secret_value() if p.api_key else self._environ.get("ANTHROPIC_API_KEY")
        if key:
            headers["x-api-key"] = key
        headers.update(p.extra_headers or {})
        origin = origin_of(base)
        return Target(
            base_url=base, origin=origin, headers=headers, state_domain=f"anthropic:{origin}",
            query=dict(p.extra_query) if p.extra_query else None, drop_params=p.drop_params,
        )
