"""The built-in providers by config prefix: the one list a new provider is added to.

A deployment's ``model: "azure/gpt-4o"`` names its provider by prefix. The
config validation (:mod:`router.config.keys`) and the router's composition
root both read :data:`BUILTIN_PROVIDERS`, so adding a provider is one line
here. Entries are ``"module:Class"`` paths imported on first use: the config
layer can list the names without importing any provider (nor their HTTP
stacks). Every factory, built-in or third-party, is called once per router
with that router's :class:`providers.http.ClientPool`.

Third-party providers are passed to the router instead:
``Router(providers={"name": factory})`` where ``factory(pool) -> Provider``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from providers.base import Provider
    from providers.http import ClientPool

__all__ = ["BUILTIN_PROVIDERS", "ProviderFactory", "provider_names", "provider_set"]

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


def provider_set(
    pool: ClientPool, extra: Mapping[str, ProviderFactory] | None = None
) -> dict[str, Provider]:
    """One instance of each provider for one router, sharing its client ``pool``.

    ``extra`` (third-party factories) may also replace a built-in by its name.
    """
    factories: dict[str, ProviderFactory] = {
        name: _builtin(name, path) for name, path in BUILTIN_PROVIDERS.items()
    }
    factories.update(extra or {})
    return {name: factory(pool) for name, factory in factories.items()}
