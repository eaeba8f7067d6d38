"""The built-in providers by config prefix: the one list a new provider is added to.

A deployment's ``model: "azure/gpt-4o"`` names its provider by prefix. The
config validation (:mod:`router.config.keys`) and the router's composition
root both read :data:`BUILTIN_PROVIDERS`, so adding a provider is one line
here. Entries are ``"module:Class"`` paths imported on first use: the config
layer can list the names without importing any provider (nor their HTTP
stacks), and a router builds (and imports) only the providers its
deployments name (:class:`ProviderSet`), so a router of OpenAI and Azure
deployments never loads the translation codecs. Every factory, built-in or
third-party, is called at most once per router with that router's
:class:`providers.http.ClientPool`.

Third-party providers are passed to the router instead:
``Router(providers={"name": factory})`` where ``factory(pool) -> Provider``.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from providers.base import Provider
    from providers.http import ClientPool

__all__ = [
    "BUILTIN_PROVIDERS", "ProviderFactory", "ProviderSet", "provider_names", "provider_set",
]

#: Builds a router's instance of one provider from the router's client pool.
ProviderFactory = Callable[["ClientPool"], "Provider"]

#: Config prefix -> ``"module:Class"`` of the built-in provider; the class is
#: called with the router's client pool.
BUILTIN_PROVIDERS: Mapping[str, str] = MappingProxyType({
    "openai": "providers.openai:OpenAIProvider",
    "azure": "providers.azure:AzureProvider",
    "mock": "providers.mock:MockProvider",
    "anthropic": "providers.anthropic:AnthropicProvider",
    "bedrock": "providers.bedrock:BedrockProvider",
    "gemini": "providers.gemini:GeminiProvider",
    "vertex_ai": "providers.vertex:VertexProvider",
    # Chat Completions servers, bridged by one provider class per prefix
    # (providers/chat.py VENDORS holds each one's default URL and key variables).
    **{prefix: "providers.chat:ChatProvider" for prefix in (
        "hosted_vllm", "openai_like", "custom_openai", "ollama_chat", "ollama", "lm_studio",
        "llamafile", "groq", "together_ai", "deepseek", "mistral", "fireworks_ai",
        "openrouter", "deepinfra", "perplexity", "xai", "cerebras", "azure_ai",
    )},
})


def provider_names(extra: Mapping[str, ProviderFactory] | None = None) -> tuple[str, ...]:
    """The provider prefixes a config may name: the built-ins, then ``extra``'s."""
    return tuple(BUILTIN_PROVIDERS) + tuple(n for n in extra or () if n not in BUILTIN_PROVIDERS)


def _builtin(name: str, path: str) -> ProviderFactory:
    """The factory at ``path``; a class serving several prefixes gives one per prefix
    through its ``for_prefix(name)``."""
    module, _, attr = path.partition(":")
    found = getattr(importlib.import_module(module), attr)
    per_prefix = getattr(found, "for_prefix", None)
    factory: ProviderFactory = found if per_prefix is None else per_prefix(name)
    return factory


class ProviderSet(Mapping[str, "Provider"]):
    """One router's providers by prefix, each built on first lookup (its module imported
    then), all sharing the router's client ``pool``."""

    def __init__(
        self, pool: ClientPool, extra: Mapping[str, ProviderFactory] | None = None
    ) -> None:
        self._pool = pool
        self._extra = dict(extra or {})
        self._names = provider_names(self._extra)
        self._built: dict[str, Provider] = {}
        self._lock = threading.Lock()  # the sync twins look up from a thread of their own

    def __getitem__(self, name: str) -> Provider:
        provider = self._built.get(name)
        if provider is not None:
            return provider
        factory = self._extra.get(name)
        if factory is None:
            path = BUILTIN_PROVIDERS.get(name)
            if path is None:
                raise KeyError(name)
            factory = _builtin(name, path)
        with self._lock:  # built once, even when two threads look it up together
            provider = self._built.get(name)
            if provider is None:
                provider = self._built[name] = factory(self._pool)
            return provider

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, name: object) -> bool:
        return name in self._names

    def built(self) -> list[str]:
        """The prefixes whose provider has been built so far."""
        return list(self._built)


def provider_set(
    pool: ClientPool, extra: Mapping[str, ProviderFactory] | None = None
) -> ProviderSet:
    """The providers of one router, sharing its client ``pool`` (see :class:`ProviderSet`).

    ``extra`` (third-party factories) may also replace a built-in by its name.
    """
    return ProviderSet(pool, extra)
