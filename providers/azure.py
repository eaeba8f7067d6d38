"""Azure OpenAI: the v1 URL shape and the legacy dated-version shape.

* v1 (``api_version`` unset, ``"v1"``, ``"latest"`` or ``"preview"``):
  ``{api_base}/openai/v1/responses`` (``?api-version=preview`` for preview).
* legacy (a dated ``api_version`` such as ``2025-03-01-preview``):
  ``{api_base}/openai/responses?api-version=...``.

The Azure *deployment name* goes in the body's ``model`` (the part of
``model`` after ``azure/``); auth is the ``api-key`` header. Stored responses
belong to the Azure resource, so the state domain is the resource's origin.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from providers.http import origin_of
from providers.responses_http import Endpoint, HttpResponsesProvider

if TYPE_CHECKING:
    from router.config.models import DeploymentConfig

__all__ = ["AzureProvider", "azure_collection"]

_V1_VERSIONS = frozenset({"v1", "latest", "preview"})


def azure_collection(api_base: str, api_version: str | None) -> tuple[str, dict[str, str]]:
    """The Responses collection URL and query for an Azure resource."""
    base = api_base.rstrip("/")
    for suffix in ("/openai/v1", "/openai"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
            break
    if api_version is None or api_version in _V1_VERSIONS:
        query = {"api-version": api_version} if api_version == "preview" else {}
        return f"{base}/openai/v1/responses", query
    return f"{base}/openai/responses", {"api-version": api_version}


class AzureProvider(HttpResponsesProvider):
    """The ``azure/`` provider."""

    name = "azure"

    def prepare(self, config: DeploymentConfig) -> Endpoint:
        p = config.litellm_params
        if not p.api_base:  # config validation guarantees it; keep the contract explicit
            raise ValueError(f"azure deployment {config.model_name!r} needs api_base")
        url, query = azure_collection(p.api_base, p.api_version)
        headers = {"content-type": "application/json"}
        if p.api_key:
            headers["api-key"] = p.api_key.get_secret_value()
        if p.extra_headers:
            headers.update(p.extra_headers)
        query.update(p.extra_query or {})
        origin = origin_of(p.api_base)
        return Endpoint(
            collection_url=url, origin=origin, headers=headers, query=query,
            state_domain=f"azure:{origin}",
        )
