"""The built-in providers by config name, one instance each per router."""

from __future__ import annotations

from providers.azure import AzureProvider
from providers.base import Provider
from providers.gemini import GeminiProvider
from providers.http import ClientPool
from providers.mock import MockProvider
from providers.openai import OpenAIProvider
from providers.vertex import VertexProvider

__all__ = ["provider_set"]


def provider_set(pool: ClientPool) -> dict[str, Provider]:
    """One instance of each built-in provider, sharing the router's client ``pool``."""
    return {
        "openai": OpenAIProvider(pool),
        "azure": AzureProvider(pool),
        "mock": MockProvider(),
        "gemini": GeminiProvider(pool),
        "vertex_ai": VertexProvider(pool),
    }
