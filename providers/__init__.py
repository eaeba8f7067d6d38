"""Upstream adapters: one small class per API, over one pooled sender per upstream.

:func:`provider_set` builds one instance of each provider for a router,
sharing that router's :class:`providers.http.ClientPool`. The built-ins are
listed once, in :data:`providers.registry.BUILTIN_PROVIDERS`; third-party
providers are passed as ``Router(providers={"prefix": factory})``.
"""

from __future__ import annotations

from providers.azure import AzureProvider
from providers.base import Provider
from providers.http import ClientPool, default_client
from providers.mock import MockProvider
from providers.openai import OpenAIProvider
from providers.registry import BUILTIN_PROVIDERS, ProviderFactory, provider_names, provider_set

__all__ = [
    "BUILTIN_PROVIDERS",
    "AzureProvider",
    "ClientPool",
    "MockProvider",
    "OpenAIProvider",
    "Provider",
    "ProviderFactory",
    "default_client",
    "provider_names",
    "provider_set",
]

