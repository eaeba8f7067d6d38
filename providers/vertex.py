"""Vertex AI (``vertex_ai/``): URL and OAuth tokens around the Gemini and Anthropic codecs.

Gemini: ``POST https://{location}-aiplatform.googleapis.com/v1/projects/{project}/
locations/{location}/publishers/google/models/{model}:generateContent``. Claude
(a model with ``claude`` in its name, e.g. ``vertex_ai/claude-sonnet-4-5@20250929``):
``.../publishers/anthropic/models/{model}:rawPredict``, Anthropic's Messages
body in Vertex's framing (:mod:`providers.vertex_anthropic`). The ``global``
location has no host prefix (``aiplatform.googleapis.com``); ``api_base``
replaces the host. ``vertex_project`` / ``vertex_location`` (else
``VERTEXAI_PROJECT`` / ``VERTEXAI_LOCATION``, else the credentials' project
and ``us-central1``), ``vertex_credentials`` (a service-account file path or
its JSON; else Application Default Credentials), as LiteLLM names them.

Tokens: every request needs a bearer token, and fetching one is a blocking
HTTPS round trip, so a :class:`TokenSource` per set of credentials is shared
by every deployment that uses them. It refreshes ahead of expiry (a margin
that a slow refresh cannot eat), in a worker thread so the event loop never
blocks, with one refresh at a time however many requests wait for it.
google-auth (the ``[vertex]`` extra) does the signing and the token exchange.
"""

from __future__ import annotations

import asyncio
import calendar
import hashlib
import json
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from providers.gemini import GoogleProvider
from providers.gemini_codec import GeminiCodec
from providers.http import ClientPool, origin_of
from providers.translated import Target
from providers.vertex_anthropic import VertexAnthropicCodec, is_claude
from router.errors import AuthenticationError, ConfigError

if TYPE_CHECKING:
    from router.config import DeploymentConfig
    from router.deployment import Deployment

__all__ = ["TokenSource", "VertexProvider", "vertex_host"]

SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)

_CREDENTIAL_TYPES = frozenset({"service_account", "authorized_user"})

#: Refresh this many seconds before a token expires.
REFRESH_MARGIN = 300.0


def vertex_host(location: str) -> str:
    """The Vertex AI API host for ``location`` (``global`` has no regional prefix)."""
    if location == "global":
        return "https://aiplatform.googleapis.com"
    return f"https://{location}-aiplatform.googleapis.com"


class TokenSource:
    """One access token for one set of credentials, refreshed ahead of expiry.

    ``load`` returns google-auth credentials (it may block: it runs in a
    worker thread on first use); ``clock`` is the wall clock in Unix seconds,
    against which google-auth's expiry is compared.
    """

    def __init__(self, load: Callable[[], Any], clock: Callable[[], float] = time.time,
                 margin: float = REFRESH_MARGIN) -> None:
        self._load = load
        self._clock = clock
        self._margin = margin
        self._credentials: Any = None
        self._token: str | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()
        self.fetches = 0

    async def token(self) -> str:
        """A token valid for at least the margin; refreshes (once, off the loop) if not."""
        if not self._fresh():
            async with self._lock:
                if not self._fresh():
                    await asyncio.to_thread(self._refresh)
        if self._token is None:
            raise RuntimeError("google-auth refreshed the credentials without a token")
        return self._token

    def _fresh(self) -> bool:
        return self._token is not None and self._clock() < self._expires - self._margin

    def _refresh(self) -> None:
        from google.auth.transport.requests import Request

        if self._credentials is None:
            self._credentials = self._load()
        self._credentials.refresh(Request())
        self.fetches += 1
        self._token = self._credentials.token
        expiry = self._credentials.expiry
        self._expires = (calendar.timegm(expiry.utctimetuple()) if expiry is not None
                         else self._clock() + 3600.0)


class VertexProvider(GoogleProvider):
    """The ``vertex_ai/`` provider: Gemini models, and Anthropic's Claude models."""

    name = "vertex_ai"
    codec = GeminiCodec("vertex_ai")
    claude_codec = VertexAnthropicCodec()

    def __init__(self, pool: ClientPool, clock: Callable[[], float] = time.time) -> None:
        super().__init__(pool)
        self._clock = clock
        self._sources: dict[str, TokenSource] = {}
        self._by_domain: dict[str, TokenSource] = {}

    def prepare(self, config: DeploymentConfig) -> Target:
        p = config.litellm_params
        info = _credentials_info(p.vertex_credentials.get_secret_value()
                                 if p.vertex_credentials else None, config.model_name)
        project = (p.vertex_project or os.environ.get("VERTEXAI_PROJECT")
                   or (info or {}).get("project_id"))
        if not project:
            raise ConfigError(f"model {config.model_name!r}: vertex_ai needs vertex_project "
                              "(or VERTEXAI_PROJECT, or credentials that name a project_id)")
        location = p.vertex_location or os.environ.get("VERTEXAI_LOCATION") or "us-central1"
        host = (p.api_base or vertex_host(location)).rstrip("/")
        key = _identity(info)
        source = self._sources.get(key)
        if source is None:
            source = self._sources[key] = TokenSource(_loader(info), self._clock)
        domain = f"vertex_ai:{project}:{location}:{key}"
        self._by_domain[domain] = source
        claude = is_claude(p.upstream_model)
        publisher = "anthropic" if claude else "google"
        return Target(
            base_url=f"{host}/v1/projects/{project}/locations/{location}/publishers/"
                     f"{publisher}/models",
            origin=origin_of(host),
            headers={"content-type": "application/json", **(p.extra_headers or {})},
            state_domain=domain, query=dict(p.extra_query or {}) or None,
            drop_params=p.drop_params, codec=self.claude_codec if claude else None,
        )

    def authorize_now(
        self, deployment: Deployment, method: str, url: str, headers: dict[str, str],
        body: bytes,
    ) -> Mapping[str, str] | None:
        return None  # the token may need fetching or refreshing: always through authorize

    async def authorize(
        self, deployment: Deployment, method: str, url: str, headers: dict[str, str],
        body: bytes,
    ) -> Mapping[str, str]:
        source = self._by_domain[deployment.endpoint.state_domain]
        try:
            token = await source.token()
        except ImportError:
            raise ConfigError("vertex_ai deployments need google-auth: "
                              "pip install 'responses-router[vertex]'") from None
        except Exception as exc:  # google-auth's RefreshError / TransportError, I/O errors
            raise AuthenticationError(
                f"could not get a Vertex AI access token ({type(exc).__name__})",
                model_group=deployment.model_name, deployment_id=deployment.id,
            ) from None
        return {**headers, "authorization": f"Bearer {token}"}


def _credentials_info(value: str | None, model_name: str) -> dict[str, Any] | None:
    """The service-account (or authorized-user) JSON from a path or the JSON text."""
    if value is None:
        return None
    text = value.strip()
    try:
        if not text.startswith("{"):
            text = Path(text).read_text()
        info = json.loads(text)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"model {model_name!r}: vertex_credentials is neither a readable "
                          f"credentials file nor its JSON ({type(exc).__name__})") from None
    if not isinstance(info, dict) or info.get("type") not in _CREDENTIAL_TYPES:
        raise ConfigError(f"model {model_name!r}: vertex_credentials must be a service_account "
                          "or authorized_user credentials JSON object")
    return info


def _identity(info: Mapping[str, Any] | None) -> str:
    """A non-secret key for a set of credentials (so deployments can share tokens)."""
    if info is None:
        return "adc"
    who = f"{info.get('type')}:{info.get('client_email') or info.get('client_id')}:" \
          f"{info.get('private_key_id', '')}:{info.get('token_uri', '')}"
    return hashlib.sha256(who.encode()).hexdigest()[:16]


def _loader(info: Mapping[str, Any] | None) -> Callable[[], Any]:
    """Loads the credentials (only the two types the config accepts; ADC when ``None``)."""
    def load() -> Any:
        import google.auth
        from google.oauth2 import credentials as user
        from google.oauth2 import service_account

        if info is None:
            return google.auth.default(scopes=list(SCOPES))[0]
        if info["type"] == "service_account":
            return service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
                dict(info), scopes=list(SCOPES))
        return user.Credentials.from_authorized_user_info(  # type: ignore[no-untyped-call]
            dict(info), scopes=list(SCOPES))

    return load
