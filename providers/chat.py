"""Chat Completions servers and Azure AI Foundry, reached through the chat codec.

One provider class serves every OpenAI-compatible server that has
``/chat/completions`` but no ``/responses``; a :class:`Vendor` row says what
differs between them, with LiteLLM's names so a LiteLLM config loads unchanged:
the model prefix (``hosted_vllm/``, ``groq/``, ``azure_ai/``, ...), the default
``api_base`` and the environment variables read when the config gives no
``api_base`` / ``api_key``, and how the key is sent.

A deployment whose ``model_info.supported_endpoints`` contains
``/v1/responses`` (LiteLLM's switch) is sent Responses calls as they are, on
the native path of :mod:`providers.responses_http` at ``{api_base}/responses``:
no translation, and stored responses and by-id calls work as on OpenAI.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from providers.chat_codec import ChatCodec
from providers.http import ClientPool, origin_of
from providers.responses_http import Endpoint, HttpResponsesProvider
from providers.translated import Target, TranslatedProvider
from router.errors import ConfigError

if TYPE_CHECKING:
    from router.config import DeploymentConfig
    from router.deployment import Deployment
    from router.request import RouteRequest
    from router.types import Record, Response, StreamEvent

__all__ = ["VENDORS", "ChatProvider", "Vendor", "chat_providers"]

#: ``supported_endpoints`` entries that switch a deployment to the native Responses path.
NATIVE_ENDPOINTS = frozenset({"/v1/responses", "/responses"})

#: Azure AI model inference's API version when the config names none.
AZURE_AI_API_VERSION = "2024-05-01-preview"


@dataclass(frozen=True, slots=True)
class Vendor:
    """What sets one Chat Completions server family apart.

    ``api_base`` is the default (``None``: the config or ``base_env`` must
    give one); ``suffix`` is appended to a configured base that lacks it
    (Ollama's OpenAI-compatible API lives under ``/v1`` of the server root,
    which is what LiteLLM's ``api_base`` names); ``key_env`` are read in order
    when the config has no ``api_key``; ``auth`` is ``"bearer"``
    (``Authorization: Bearer``) or ``"azure"`` (``api-key`` and bearer, plus
    ``api-version``).
    """

    prefix: str
    api_base: str | None = None
    base_env: str | None = None
    key_env: tuple[str, ...] = ()
    suffix: str = ""
    auth: str = "bearer"


VENDORS: tuple[Vendor, ...] = (
    Vendor("hosted_vllm", base_env="HOSTED_VLLM_API_BASE", key_env=("HOSTED_VLLM_API_KEY",)),
    Vendor("openai_like"),
    Vendor("custom_openai"),
    Vendor("ollama_chat", "http://localhost:11434", "OLLAMA_API_BASE", ("OLLAMA_API_KEY",),
           suffix="/v1"),
    Vendor("ollama", "http://localhost:11434", "OLLAMA_API_BASE", ("OLLAMA_API_KEY",),
           suffix="/v1"),
    Vendor("lm_studio", base_env="LM_STUDIO_API_BASE", key_env=("LM_STUDIO_API_KEY",)),
    Vendor("llamafile", "http://127.0.0.1:8080/v1", "LLAMAFILE_API_BASE",
           ("LLAMAFILE_API_KEY",)),
    Vendor("groq", "https://api.groq.com/openai/v1", "GROQ_API_BASE", ("GROQ_API_KEY",)),
    Vendor("together_ai", "https://api.together.xyz/v1", "TOGETHER_AI_API_BASE",
           ("TOGETHERAI_API_KEY", "TOGETHER_AI_API_KEY", "TOGETHER_API_KEY")),
    Vendor("deepseek", "https://api.deepseek.com", "DEEPSEEK_API_BASE", ("DEEPSEEK_API_KEY",)),
    Vendor("mistral", "https://api.mistral.ai/v1", "MISTRAL_API_BASE", ("MISTRAL_API_KEY",)),
    Vendor("fireworks_ai", "https://api.fireworks.ai/inference/v1", "FIREWORKS_API_BASE",
           ("FIREWORKS_API_KEY", "FIREWORKS_AI_API_KEY", "FIREWORKSAI_API_KEY")),
    Vendor("openrouter", "https://openrouter.ai/api/v1", "OPENROUTER_API_BASE",
           ("OPENROUTER_API_KEY", "OR_API_KEY")),
    Vendor("deepinfra", "https://api.deepinfra.com/v1/openai", "DEEPINFRA_API_BASE",
           ("DEEPINFRA_API_KEY",)),
    Vendor("perplexity", "https://api.perplexity.ai", "PERPLEXITY_API_BASE",
           ("PERPLEXITYAI_API_KEY", "PERPLEXITY_API_KEY")),
    Vendor("xai", "https://api.x.ai/v1", "XAI_API_BASE", ("XAI_API_KEY",)),
    Vendor("cerebras", "https://api.cerebras.ai/v1", "CEREBRAS_API_BASE",
           ("CEREBRAS_API_KEY",)),
    Vendor("azure_ai", base_env="AZURE_AI_API_BASE", key_env=("AZURE_AI_API_KEY",),
           auth="azure"),
)


class ChatProvider(TranslatedProvider):
    """One :class:`Vendor`'s deployments: translated, or native where configured."""

    codec = ChatCodec()

    def __init__(
        self, pool: ClientPool, vendor: Vendor, environ: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(pool)
        self.name = vendor.prefix
        self._vendor = vendor
        self._environ = os.environ if environ is None else environ
        self._passthrough = HttpResponsesProvider(pool)

    @classmethod
    def for_prefix(cls, prefix: str) -> Callable[[ClientPool], ChatProvider]:
        """The registry's factory for ``prefix`` (one of :data:`VENDORS`)."""
        vendor = next((v for v in VENDORS if v.prefix == prefix), None)
        if vendor is None:
            raise KeyError(f"no Chat Completions vendor {prefix!r} in providers.chat.VENDORS")
        return lambda pool: cls(pool, vendor)

    def prepare(self, config: DeploymentConfig) -> Target | Endpoint:  # type: ignore[override]
        p = config.litellm_params
        base = self._base(config)
        key = p.api_key.get_secret_value() if p.api_key else self._env_key()
        headers, query = self._auth(key, p.api_version, base)
        if p.extra_headers:
            headers.update(p.extra_headers)
        query.update(p.extra_query or {})
        account = hashlib.sha256(key.encode()).hexdigest()[:16]
        domain = f"{self.name}:{base}:{account}"
        if NATIVE_ENDPOINTS.intersection(config.model_info.supported_endpoints or ()):
            return Endpoint(collection_url=f"{base}/responses", origin=origin_of(base),
                            headers=headers, query=query, state_domain=domain)
        return Target(base_url=base, origin=origin_of(base), headers=headers,
                      state_domain=domain, query=query or None, drop_params=p.drop_params)

    # -- native pass-through where the deployment serves /responses ---------------------

    async def create(
        self, deployment: Deployment, request: RouteRequest, timeout: float | None
    ) -> Response:
        if isinstance(deployment.endpoint, Endpoint):
            return await self._passthrough.create(deployment, request, timeout)
        return await super().create(deployment, request, timeout)

    def stream(
        self, deployment: Deployment, request: RouteRequest, timeout: float | None
    ) -> AsyncGenerator[StreamEvent, None]:
        if isinstance(deployment.endpoint, Endpoint):
            return self._passthrough.stream(deployment, request, timeout)
        return super().stream(deployment, request, timeout)

    async def call(
        self,
        deployment: Deployment,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        resource: str = "responses",
    ) -> Record:
        if isinstance(deployment.endpoint, Endpoint):
            return await self._passthrough.call(deployment, method, path, query=query,
                                                timeout=timeout, resource=resource)
        return await super().call(deployment, method, path, query=query, timeout=timeout,
                                  resource=resource)

    # -- configuration ------------------------------------------------------------------

    def _base(self, config: DeploymentConfig) -> str:
        vendor = self._vendor
        base = config.litellm_params.api_base
        if base is None and vendor.base_env:
            base = self._environ.get(vendor.base_env) or None
        base = (base or vendor.api_base or "").rstrip("/")
        if not base:
            hint = f" (or set {vendor.base_env})" if vendor.base_env else ""
            raise ConfigError(
                f"model_list entry {config.model_name!r}: litellm_params.api_base is "
                f"required for {vendor.prefix}/ models{hint}")
        if vendor.suffix and not base.endswith(vendor.suffix):
            base += vendor.suffix
        if vendor.auth == "azure" and base.endswith(".services.ai.azure.com"):
            base += "/models"  # the Foundry resource root: model inference lives under it
        return base

    def _env_key(self) -> str:
        for name in self._vendor.key_env:
            value = self._environ.get(name)
            if value:
                return value
        return ""

    def _auth(
        self, key: str, api_version: str | None, base: str
    ) -> tuple[dict[str, str], dict[str, str]]:
        headers = {"content-type": "application/json"}
        query: dict[str, str] = {}
        if key:
            headers["authorization"] = f"Bearer {key}"
        if self._vendor.auth == "azure":
            if key:
                headers["api-key"] = key
            if api_version or base.endswith("/models"):
                query["api-version"] = api_version or AZURE_AI_API_VERSION
        return headers, query


def chat_providers(
    pool: ClientPool, environ: Mapping[str, str] | None = None
) -> dict[str, ChatProvider]:
    """One :class:`ChatProvider` per :data:`VENDORS` row, by prefix."""
    return {v.prefix: ChatProvider(pool, v, environ) for v in VENDORS}
