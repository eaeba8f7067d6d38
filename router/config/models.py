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
from router.config.scalars import Count, Number, SecretText, Text
from router.headers import header_problem
from router.state.target import RedisTarget, nodes_of
from router.state.urls import target_from_url

# Infinities and NaN are refused everywhere: a timeout of 1e309 is a typo, and
# a NaN compares false with every bound.
_FROZEN = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

NonNegativeInt = Annotated[Count, Field(ge=0)]
PanicMode = Literal["fail", "soonest", "wait"]
FallbackList = list[dict[Text, list[Text]]]


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


def _control_characters(value: str) -> bool:
    return any(ord(c) < 0x20 or ord(c) == 0x7F for c in value)


def _no_control_characters(value: str) -> str:
    # Sent in a header or the URL, a line break fails every request (a key read
    # from a file or a secret store often keeps its trailing newline). Not echoed.
    if _control_characters(value):
        raise ValueError("contains a line break or another control character "
                         "(a value read from a file often ends with a newline: strip it)")
    return value


def _check_http_url(value: str) -> str:
    # The value is deliberately not echoed: a URL can carry a token.
    _no_control_characters(value)
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or " " in value:
        raise ValueError("must be an http:// or https:// URL with a host")
    try:
        parts.port  # noqa: B018 - urlsplit checks the port only when asked
    except ValueError:
        raise ValueError("has an invalid port") from None
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not carry credentials (user:password@); use api_key")
    if parts.query or parts.fragment:
        raise ValueError("must not carry a query or fragment; use extra_query")
    return value


def _check_redis_url(url: str) -> None:
    """Parse ``url`` as redis-py will, now: a bad port or option fails at construction.

    Otherwise the router starts, every Redis use fails, and it quietly runs on
    local state. redis-py's reason is shown unless it quotes the credentials.
    """
    # Imported here: a router without Redis need not load redis-py.
    from redis.asyncio.connection import parse_url

    try:
        parse_url(url)
    except ValueError as exc:
        parts = urlsplit(url)
        secrets = [s for s in (parts.username, parts.password) if s]
        reason = str(exc)
        if any(s in reason for s in secrets):
            reason = "redis-py cannot parse it"
        raise ValueError(f"is not a URL redis-py accepts: {reason}") from None


def _supported(info: ValidationInfo) -> tuple[str, ...]:
    """The provider prefixes this validation accepts (the loader passes the router's)."""
    context = info.context
    if isinstance(context, dict) and "providers" in context:
        return tuple(context["providers"])
    return SUPPORTED_PROVIDERS


def _unsupported(provider: str, supported_names: tuple[str, ...]) -> ValueError:
    supported = ", ".join(supported_names)
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
    custom_llm_provider: Text | None = None
    model: Text = Field(min_length=1)
    api_base: Text | None = Field(default=None, validate_default=True)
    api_key: SecretText | None = None
    api_version: Text | None = None
    organization: Text | None = None
    timeout: Number | None = Field(default=None, gt=0)
    stream_timeout: Number | None = Field(default=None, gt=0)
    rpm: Count | None = Field(default=None, ge=0)
    tpm: Count | None = Field(default=None, ge=0)
    weight: Number | None = Field(default=None, gt=0)
    order: Count | None = Field(default=None, ge=1)
    tags: tuple[Text, ...] = ()
    mock_response: Text | None = None
    max_parallel_requests: Count | None = Field(default=None, ge=1)
    extra_headers: dict[str, Text] | None = Field(default=None, repr=False)
    extra_body: dict[str, Any] | None = Field(default=None, repr=False)
    extra_query: dict[str, Text] | None = Field(default=None, repr=False)
    #: Drop the Responses parameters a translated provider cannot honour (else refuse them).
    drop_params: bool = False
    # Google Vertex AI (``vertex_ai/``): project, region, service-account file path or JSON.
    vertex_project: Text | None = None
    vertex_location: Text | None = None
    vertex_credentials: SecretText | None = None
    # AWS Bedrock (``bedrock/``): keys (else the default AWS credential chain) and region.
    aws_access_key_id: SecretText | None = None
    aws_secret_access_key: SecretText | None = None
    aws_session_token: SecretText | None = None
    aws_region_name: Text | None = None
    aws_bedrock_runtime_endpoint: Text | None = None
    #: A named profile of the shared AWS config / credentials files (else the default chain).
    aws_profile_name: Text | None = None

    @field_validator("custom_llm_provider")
    @classmethod
    def _known_provider(cls, value: str | None, info: ValidationInfo) -> str | None:
        supported = _supported(info)
        if value is not None and value not in supported:
            raise _unsupported(value, supported)
        return value

    @field_validator("model")
    @classmethod
    def _model_names_provider(cls, value: str, info: ValidationInfo) -> str:
        if "custom_llm_provider" not in info.data:
            return value  # custom_llm_provider itself was invalid and reported
        provider, upstream = split_model(value, info.data["custom_llm_provider"])
        supported = _supported(info)
        if provider not in supported:
            raise _unsupported(provider, supported)
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

    @field_validator("api_key", "organization", "api_version")
    @classmethod
    def _sendable(cls, value: SecretStr | str | None) -> SecretStr | str | None:
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if text is not None:
            _no_control_characters(text)
        return value

    @field_validator("extra_body")
    @classmethod
    def _body_leaves_stream_and_model(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        # The router sets both per request; a fixed one would break every other request.
        for name in ("stream", "model"):
            if value and name in value:
                raise ValueError(f"may not set {name!r}: the router sets it on every request")
        return value

    @field_validator("extra_headers")
    @classmethod
    def _well_formed_headers(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        for name, header_value in (value or {}).items():
            problem = header_problem(name, header_value)
            if problem is not None:
                raise ValueError(problem)
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

    model_config = ConfigDict(frozen=True, extra="allow", allow_inf_nan=False)

    # LiteLLM accepts numeric ids and stores them as strings: Text does the same.
    id: Text | None = Field(default=None, min_length=1)
    max_input_tokens: Count | None = Field(default=None, ge=1)
    max_output_tokens: Count | None = Field(default=None, ge=1)
    input_cost_per_token: Number | None = Field(default=None, ge=0)
    output_cost_per_token: Number | None = Field(default=None, ge=0)
    cache_read_input_token_cost: Number | None = Field(default=None, ge=0)
    state_domain: Text | None = Field(default=None, min_length=1)
    #: LiteLLM's list of endpoints the deployment serves; ``/v1/responses`` in it
    #: makes a Chat Completions provider pass Responses calls through natively.
    supported_endpoints: tuple[Text, ...] | None = None


class DeploymentConfig(BaseModel):
    """One ``model_list`` entry: a deployment serving the group ``model_name``."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    model_name: Text = Field(min_length=1)
    litellm_params: LiteLLMParams = Field(
        validation_alias=AliasChoices("litellm_params", "params"))
    model_info: ModelInfo = Field(default_factory=ModelInfo)


def _as_list(value: Any) -> Any:
    """One name (text, or a scalar YAML typed) as a list of one; lists unchanged."""
    return value if value is None or isinstance(value, list | tuple | dict) else [value]


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

    Conversations the router keeps (:mod:`router.conversations`), our own:
    ``conversation_ttl`` (seconds a kept response lives after it was last
    continued or read; default 30 days), ``conversation_max_response_bytes``
    and ``conversation_max_bytes`` (the stored size of one response and of a
    whole conversation), ``conversation_memory_max_bytes`` (the in-memory
    store's bound, without Redis), ``conversation_encryption_keys`` (Fernet
    keys, newest first: content is sealed at rest with the first, read with
    any) and ``conversation_failover`` (continue a native conversation on
    another deployment by replaying its history when its owner cannot serve).

    Prompt-cache affinity (:mod:`router.cache_affinity`), our own:
    ``prompt_cache_affinity`` (requests with the same ``prompt_cache_key``
    prefer the deployment that served it last), ``prompt_cache_affinity_slack``
    (how much costlier, by the strategy's cost, that deployment may be and
    still be preferred) and ``prompt_cache_affinity_instructions`` (opt-in: an
    ``instructions`` of at least that many characters is a key too).

    ``use_rate_limit_headers`` (our own, default on): the rate-limit headers
    of each answer (``x-ratelimit-remaining-*``, Anthropic's
    ``anthropic-ratelimit-*``) leave a deployment with no room out of the
    candidates until its reset (:mod:`router.headroom`).

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

    routing_strategy: Text = Field(default="simple-shuffle", min_length=1)
    routing_strategy_args: dict[str, Any] = Field(default_factory=dict)
    num_retries: Count = Field(default=2, ge=0)
    timeout: Number | None = Field(default=None, gt=0)
    stream_timeout: Number | None = Field(default=None, gt=0)
    retry_after: Number = Field(default=0, ge=0)
    allowed_fails: Count = Field(default=3, ge=0)
    cooldown_time: Number = Field(default=5.0, ge=0)
    max_cooldown_time: Number | None = Field(default=None, ge=0)
    cooldown_jitter: Number = Field(default=0.1, ge=0, lt=1)
    panic_mode: PanicMode = "fail"
    disable_cooldowns: bool = False
    retry_budget: bool = True
    retry_budget_ratio: Number = Field(default=0.2, ge=0)
    retry_budget_min_per_second: Number = Field(default=10.0, ge=0)
    retry_budget_window: Number = Field(default=10.0, gt=0, le=3600)
    fallbacks: FallbackList = Field(default_factory=list)
    default_fallbacks: list[Text] = Field(default_factory=list)
    context_window_fallbacks: FallbackList = Field(default_factory=list)
    content_policy_fallbacks: FallbackList = Field(default_factory=list)
    max_fallbacks: Count = Field(default=5, ge=0)
    optional_pre_call_checks: list[str] = Field(default_factory=list)
    enable_pre_call_checks: bool = False
    enable_tag_filtering: bool = False
    retry_policy: dict[str, NonNegativeInt] | None = None
    allowed_fails_policy: dict[str, NonNegativeInt] | None = None
    model_group_alias: dict[Text, Text] = Field(default_factory=dict)
    default_max_parallel_requests: Count | None = Field(default=None, ge=1)
    redis_url: SecretText | None = None
    redis_host: Text | None = Field(default=None, min_length=1)
    redis_port: Count | None = Field(default=None, ge=1, le=65535)
    redis_password: SecretText | None = None
    redis_db: Count | None = Field(default=None, ge=0)
    redis_key_prefix: Text = "rr:"
    redis_startup_nodes: tuple[tuple[Text, Count], ...] | None = None
    service_name: Text | None = Field(default=None, min_length=1)
    sentinel_nodes: tuple[tuple[Text, Count], ...] | None = None
    sentinel_password: SecretText | None = None
    redis_wait_replicas: Count | None = Field(default=None, ge=0)
    response_ownership_ttl: Number = Field(default=2_592_000, gt=0)
    conversation_ttl: Number = Field(default=2_592_000, gt=0)
    conversation_max_response_bytes: Count = Field(default=16 * 2**20, ge=1)
    conversation_max_bytes: Count = Field(default=64 * 2**20, ge=1)
    conversation_memory_max_bytes: Count = Field(default=256 * 2**20, ge=1)
    conversation_encryption_keys: tuple[SecretText, ...] = ()
    conversation_failover: bool = False
    prompt_cache_affinity: bool = True
    prompt_cache_affinity_slack: Number = Field(default=2.0, ge=1)
    prompt_cache_affinity_instructions: Count | None = Field(default=None, ge=1)
    use_rate_limit_headers: bool = True

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

    @field_validator("redis_url", "redis_password", "redis_host")
    @classmethod
    def _redis_sendable(cls, value: SecretStr | str | None) -> SecretStr | str | None:
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if text is not None:
            _no_control_characters(text)
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
            target = target_from_url(value.get_secret_value())
            if target.url is not None:
                _check_redis_url(target.url)
        return value

    def redis_target(self) -> RedisTarget | None:
        """Where Redis is, or ``None`` for in-memory state.

        ``redis_startup_nodes`` (a Cluster) or ``sentinel_nodes`` with
        ``service_name`` (Sentinel), LiteLLM's names; else :meth:`redis_dsn`, which
        may itself name a Cluster or a Sentinel set (:mod:`router.state.urls`).
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
        return None if dsn is None else target_from_url(dsn)

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
