"""The validated, immutable configuration objects of a router.

These pydantic models are what the rest of the router reads: a
:class:`RouterConfig` holds the deployments (:class:`DeploymentConfig`, each
with its upstream :class:`LiteLLMParams` and its :class:`ModelInfo`) and the
:class:`RouterSettings`. Field names are LiteLLM's, so a LiteLLM ``config.yaml``
maps onto them one to one; the few fields of our own are marked as such.

Each model validates its own fields (ranges, URLs, the provider) so that an
object that exists is valid. Checks that need the whole configuration (fallbacks
naming existing model groups, unique deployment ids) and the handling of unknown
keys and ``os.environ/`` references live in :mod:`router.config.loading`.
Secrets (``api_key``, ``redis_password``, ``redis_url``) are ``SecretStr``:
no repr, str or error message shows them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import quote, urlsplit

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from router.config.keys import (
    ALLOWED_FAILS_POLICY_KEYS,
    RETRY_POLICY_KEYS,
    SUPPORTED_PROVIDERS,
    did_you_mean,
)
from router.state.target import RedisTarget, nodes_of

_FROZEN = ConfigDict(frozen=True, extra="forbid")
_REDIS_SCHEMES = ("redis", "rediss", "unix")

NonNegativeInt = Annotated[int, Field(ge=0)]
PanicMode = Literal["fail", "soonest", "wait"]
FallbackList = list[dict[str, list[str]]]


def split_model(model: str, custom_llm_provider: str | None) -> tuple[str, str]:
    """Split ``model`` into ``(provider, upstream model)``.

    ``custom_llm_provider`` wins over a prefix; a bare model with neither is an
    OpenAI model, as in LiteLLM (``model: gpt-4o``).
    """
    if custom_llm_provider:
        prefix = custom_llm_provider + "/"
        return custom_llm_provider, model.removeprefix(prefix)
    head, sep, tail = model.partition("/")
    return (head, tail) if sep else ("openai", model)


def _check_http_url(value: str) -> str:
    # The value is deliberately not echoed: a URL can carry a token.
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    return value


def _unsupported(provider: str) -> ValueError:
    supported = ", ".join(SUPPORTED_PROVIDERS)
    return ValueError(f"unsupported provider '{provider}'; supported providers: {supported}")


class LiteLLMParams(BaseModel):
    """One deployment's upstream parameters (LiteLLM's ``litellm_params``).

    ``model`` is ``"provider/name"`` (``"azure/gpt-4o"``: for Azure the name is
    the Azure deployment name) or a bare name with ``custom_llm_provider``; a bare
    name alone means OpenAI. Timeouts are seconds per attempt; ``stream_timeout``
    bounds the wait for each next stream event. ``extra_*`` are sent with every
    request and are kept out of repr because headers often carry credentials.
    """

    model_config = _FROZEN

    # custom_llm_provider is declared first so that the checks on ``model`` and
    # ``api_base`` can see it.
    custom_llm_provider: str | None = None
    model: str = Field(min_length=1)
    api_base: str | None = Field(default=None, validate_default=True)
    api_key: SecretStr | None = None
    api_version: str | None = None
    organization: str | None = None
    timeout: float | None = Field(default=None, gt=0)
    stream_timeout: float | None = Field(default=None, gt=0)
    rpm: int | None = Field(default=None, ge=0)
    tpm: int | None = Field(default=None, ge=0)
    weight: float | None = Field(default=None, gt=0)
    order: int | None = Field(default=None, ge=1)
    tags: tuple[str, ...] = ()
    mock_response: str | None = None
    max_parallel_requests: int | None = Field(default=None, ge=1)
    extra_headers: dict[str, str] | None = Field(default=None, repr=False)
    extra_body: dict[str, Any] | None = Field(default=None, repr=False)
    extra_query: dict[str, str] | None = Field(default=None, repr=False)

    @field_validator("custom_llm_provider")
    @classmethod
    def _known_provider(cls, value: str | None) -> str | None:
        if value is not None and value not in SUPPORTED_PROVIDERS:
            raise _unsupported(value)
        return value

    @field_validator("model")
    @classmethod
    def _model_names_provider(cls, value: str, info: ValidationInfo) -> str:
        if "custom_llm_provider" not in info.data:
            return value  # custom_llm_provider itself was invalid and reported
        provider, upstream = split_model(value, info.data["custom_llm_provider"])
        if provider not in SUPPORTED_PROVIDERS:
            raise _unsupported(provider)
        if not upstream:
            raise ValueError(f"no model name after '{provider}/'")
        return value

    @field_validator("api_base")
    @classmethod
    def _api_base(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None:
            return _check_http_url(value)
        if "model" in info.data and "custom_llm_provider" in info.data:
            provider, _ = split_model(info.data["model"], info.data["custom_llm_provider"])
            if provider == "azure":
                raise ValueError("required for azure deployments (the resource endpoint)")
        return value

    @property
    def provider(self) -> str:
        """``"azure"``, ``"openai"``, ``"mock"``: the adapter that serves this deployment."""
        return split_model(self.model, self.custom_llm_provider)[0]

    @property
    def upstream_model(self) -> str:
        """The model name sent upstream (for Azure: the deployment name)."""
        return split_model(self.model, self.custom_llm_provider)[1]


class ModelInfo(BaseModel):
    """Facts about a deployment (LiteLLM's ``model_info``); unknown keys are kept.

    ``id`` names the deployment stably (``None``: the router derives one from the
    deployment's non-secret identity). ``state_domain`` is our own: deployments
    sharing it can serve each other's stored responses.
    """

    model_config = ConfigDict(frozen=True, extra="allow")

    id: str | None = Field(default=None, min_length=1)
    max_input_tokens: int | None = Field(default=None, ge=1)
    max_output_tokens: int | None = Field(default=None, ge=1)
    input_cost_per_token: float | None = Field(default=None, ge=0)
    output_cost_per_token: float | None = Field(default=None, ge=0)
    cache_read_input_token_cost: float | None = Field(default=None, ge=0)
    state_domain: str | None = Field(default=None, min_length=1)

    @field_validator("id", mode="before")
    @classmethod
    def _int_id(cls, value: Any) -> Any:
        # LiteLLM accepts numeric ids and stores them as strings.
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class DeploymentConfig(BaseModel):
    """One ``model_list`` entry: a deployment serving the group ``model_name``."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    model_name: str = Field(min_length=1)
    litellm_params: LiteLLMParams = Field(
        validation_alias=AliasChoices("litellm_params", "params"))
    model_info: ModelInfo = Field(default_factory=ModelInfo)


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def _coerce_fallbacks(value: Any) -> Any:
    """Accept LiteLLM's ``{"a": "b"}`` shorthand for ``{"a": ["b"]}``."""
    if not isinstance(value, list):
        return value
    return [{k: _as_list(v) for k, v in item.items()} if isinstance(item, dict) else item
            for item in value]


def _check_policy_keys(value: dict[str, int] | None, known: frozenset[str]) -> None:
    for key in value or {}:
        if key not in known:
            raise ValueError(f"unknown key '{key}'{did_you_mean(key, known)}")


class RouterSettings(BaseModel):
    """How the router retries, cools down, falls back and shares state.

    Names and defaults are LiteLLM's ``Router`` arguments. ``timeout`` is the
    deadline of a whole call in seconds (``None``: none); ``retry_after`` the
    minimum wait before a retry. Redis is configured by ``redis_url`` or by host,
    port, password and db; without either, state lives in memory.
    ``redis_key_prefix`` and ``response_ownership_ttl`` (seconds a response id
    stays pinned to its deployment) are our own.

    Our own failure-handling settings (see :mod:`router.cooldown` and
    :mod:`router.budget`):

    * ``max_cooldown_time``: the cap of escalating cooldowns, seconds (the n-th
      consecutive cooldown lasts ``cooldown_time x n``); default ``None`` means
      10 x ``cooldown_time``; at least ``cooldown_time``.
    * ``cooldown_jitter``: each cooldown is moved by up to this fraction either
      way (default 0.1), so routers that cooled a deployment together do not
      return to it together; ``0`` for exact durations. In [0, 1).
    * ``panic_mode``: what a request does when every deployment of its group
      is cooling down: ``"fail"`` (default, LiteLLM's behaviour: fail at once
      with the "all cooled down" error, so configured fallbacks take over),
      ``"soonest"`` (send it to the deployment that recovers first) or
      ``"wait"`` (wait for that deployment when it recovers within the
      request's deadline, else fail at once).
    * ``retry_budget`` (default ``True``; ``False``: no budget, ``num_retries``
      alone bounds retries), ``retry_budget_ratio`` (0.2: retries may add 20% to
      a group's traffic), ``retry_budget_min_per_second`` (10: retries per second
      always allowed) and ``retry_budget_window`` (10 seconds of history).
    """

    model_config = _FROZEN

    routing_strategy: str = Field(default="simple-shuffle", min_length=1)
    routing_strategy_args: dict[str, Any] = Field(default_factory=dict)
    num_retries: int = Field(default=2, ge=0)
    timeout: float | None = Field(default=None, gt=0)
    stream_timeout: float | None = Field(default=None, gt=0)
    retry_after: float = Field(default=0, ge=0)
    allowed_fails: int = Field(default=3, ge=0)
    cooldown_time: float = Field(default=5.0, ge=0)
    max_cooldown_time: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    cooldown_jitter: float = Field(default=0.1, ge=0, lt=1, allow_inf_nan=False)
    panic_mode: PanicMode = "fail"
    disable_cooldowns: bool = False
    retry_budget: bool = True
    retry_budget_ratio: float = Field(default=0.2, ge=0, allow_inf_nan=False)
    retry_budget_min_per_second: float = Field(default=10.0, ge=0, allow_inf_nan=False)
    retry_budget_window: float = Field(default=10.0, gt=0, le=3600)
    fallbacks: FallbackList = Field(default_factory=list)
    default_fallbacks: list[str] = Field(default_factory=list)
    context_window_fallbacks: FallbackList = Field(default_factory=list)
    content_policy_fallbacks: FallbackList = Field(default_factory=list)
    max_fallbacks: int = Field(default=5, ge=0)
    optional_pre_call_checks: list[str] = Field(default_factory=list)
    enable_pre_call_checks: bool = False
    enable_tag_filtering: bool = False
    retry_policy: dict[str, NonNegativeInt] | None = None
    allowed_fails_policy: dict[str, NonNegativeInt] | None = None
    model_group_alias: dict[str, str] = Field(default_factory=dict)
    default_max_parallel_requests: int | None = Field(default=None, ge=1)
    redis_url: SecretStr | None = None
    redis_host: str | None = Field(default=None, min_length=1)
    redis_port: int | None = Field(default=None, ge=1, le=65535)
    redis_password: SecretStr | None = None
    redis_db: int | None = Field(default=None, ge=0)
    redis_key_prefix: str = "rr:"
    redis_startup_nodes: tuple[tuple[str, int], ...] | None = None
    service_name: str | None = Field(default=None, min_length=1)
    sentinel_nodes: tuple[tuple[str, int], ...] | None = None
    sentinel_password: SecretStr | None = None
    redis_wait_replicas: int | None = Field(default=None, ge=0)
    response_ownership_ttl: float = Field(default=2_592_000, gt=0)

    @field_validator(
        "fallbacks", "context_window_fallbacks", "content_policy_fallbacks", mode="before")
    @classmethod
    def _fallback_shorthand(cls, value: Any) -> Any:
        return _coerce_fallbacks(value)

    @field_validator("default_fallbacks", mode="before")
    @classmethod
    def _one_default_fallback(cls, value: Any) -> Any:
        return _as_list(value)

    @field_validator("model_group_alias", mode="before")
    @classmethod
    def _alias_targets(cls, value: Any) -> Any:
        # LiteLLM also allows {"alias": {"model": "group", "hidden": true}}.
        if not isinstance(value, dict):
            return value
        return {k: v.get("model") if isinstance(v, dict) else v for k, v in value.items()}

    @field_validator("retry_policy", "allowed_fails_policy", mode="before")
    @classmethod
    def _drop_unset(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: v for k, v in value.items() if v is not None}
        return value

    @field_validator("retry_policy")
    @classmethod
    def _retry_policy_keys(cls, value: dict[str, int] | None) -> dict[str, int] | None:
        _check_policy_keys(value, RETRY_POLICY_KEYS)
        return value

    @field_validator("allowed_fails_policy")
    @classmethod
    def _allowed_fails_keys(cls, value: dict[str, int] | None) -> dict[str, int] | None:
        _check_policy_keys(value, ALLOWED_FAILS_POLICY_KEYS)
        return value

    @field_validator("max_cooldown_time")
    @classmethod
    def _cap_not_below_cooldown(cls, value: float | None, info: ValidationInfo) -> float | None:
        cooldown = info.data.get("cooldown_time")
        if value is not None and cooldown is not None and value < cooldown:
            raise ValueError(f"must be at least cooldown_time ({cooldown:g})")
        return value

    @model_validator(mode="after")
    def _one_redis_topology(self) -> RouterSettings:
        if self.redis_startup_nodes and self.sentinel_nodes:
            raise ValueError("redis_startup_nodes (a Cluster) and sentinel_nodes (Sentinel) "
                             "exclude each other")
        if self.sentinel_nodes and not self.service_name:
            raise ValueError("sentinel_nodes need service_name (the name the sentinels "
                             "monitor the primary under)")
        return self

    @field_validator("redis_startup_nodes", "sentinel_nodes", mode="before")
    @classmethod
    def _redis_nodes(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None:
            return None
        if not isinstance(value, (list, tuple)) or not value:
            raise ValueError("must be a non-empty list of nodes ({host, port} or [host, port])")
        return nodes_of(value, str(info.field_name))

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            scheme = urlsplit(value.get_secret_value()).scheme
            if scheme not in _REDIS_SCHEMES:
                raise ValueError("must be a redis://, rediss:// or unix:// URL")
        return value

    def redis_target(self) -> RedisTarget | None:
        """Where Redis is, or ``None`` for in-memory state.

        ``redis_startup_nodes`` (a Cluster) or ``sentinel_nodes`` with
        ``service_name`` (Sentinel), LiteLLM's names; else :meth:`redis_dsn`.
        ``redis_password`` authenticates on a Cluster's or a Sentinel set's data
        nodes, ``sentinel_password`` on the sentinels.
        """
        password = None if self.redis_password is None else self.redis_password.get_secret_value()
        if self.redis_startup_nodes:
            return RedisTarget(startup_nodes=self.redis_startup_nodes, password=password)
        if self.sentinel_nodes:
            sentinel_password = (None if self.sentinel_password is None
                                 else self.sentinel_password.get_secret_value())
            return RedisTarget(sentinel_nodes=self.sentinel_nodes,
                               service_name=self.service_name, password=password,
                               sentinel_password=sentinel_password, db=self.redis_db or 0)
        dsn = self.redis_dsn()
        return None if dsn is None else RedisTarget(url=dsn)

    def redis_dsn(self) -> str | None:
        """The Redis URL to connect to, or ``None`` for in-memory state.

        ``redis_url`` wins; else one is built from ``redis_host`` (port 6379 and
        db 0 unless given). The result contains the password: never log it.
        """
        if self.redis_url is not None:
            return self.redis_url.get_secret_value()
        if self.redis_host is None:
            return None
        auth = ""
        if self.redis_password is not None:
            auth = ":" + quote(self.redis_password.get_secret_value(), safe="") + "@"
        host = f"[{self.redis_host}]" if ":" in self.redis_host else self.redis_host
        return f"redis://{auth}{host}:{self.redis_port or 6379}/{self.redis_db or 0}"


class RouterConfig(BaseModel):
    """A whole validated configuration: the deployments and the settings."""

    model_config = _FROZEN

    model_list: tuple[DeploymentConfig, ...]
    settings: RouterSettings = Field(default_factory=RouterSettings)
