"""Upstream adapters: one small class per API, over one pooled sender per upstream.

:func:`provider_set` builds one instance of each built-in provider for a
router, sharing that router's :class:`providers.http.ClientPool`.
"""

from __future__ import annotations

from providers.azure import AzureProvider
from providers.base import Provider
from providers.http import ClientPool, default_client
from providers.mock import MockProvider
from providers.openai import OpenAIProvider
from providers.registry import provider_set

__all__ = [
    "AzureProvider",
    "ClientPool",
    "MockProvider",
    "OpenAIProvider",
    "Provider",
    "default_client",
    "provider_set",
]

