"""Catalogues of configuration key names: ours, and LiteLLM's that we do not implement.

Why a catalogue: a LiteLLM ``config.yaml`` must load unchanged, so a key that
LiteLLM understands but this router does not is *ignored with a warning*, while a
key that nobody understands is almost always a typo and is an *error* with a
suggestion. Telling the two apart needs LiteLLM's names. They were taken from
LiteLLM's ``Router.__init__`` arguments, its ``router_settings`` /
``litellm_settings`` reference, ``LiteLLM_Params`` / ``GenericLiteLLMParams`` and
the top-level keys its proxy reads from ``config.yaml``.

Everything here is an immutable constant (frozensets and tuples).
"""

from __future__ import annotations

from difflib import get_close_matches

from providers.registry import provider_names

SUPPORTED_PROVIDERS: tuple[str, ...] = provider_names()
"""Provider prefixes of the built-in adapters (``azure/gpt-4o``), from
:data:`providers.registry.BUILTIN_PROVIDERS`; a router given third-party
providers accepts their names too."""

# --- top level of a config document -------------------------------------------------

DOCUMENT_KEYS: frozenset[str] = frozenset({
    "model_list", "router_settings", "litellm_settings", "general_settings",
})
"""Top-level keys we read (``litellm_settings`` and ``general_settings`` only in part)."""

GENERAL_SETTINGS_KEYS: frozenset[str] = frozenset({
    "master_key", "api_keys", "max_request_size_mb", "idle_timeout", "body_timeout",
    "write_timeout", "graceful_shutdown_timeout",
})
"""``general_settings`` keys the server (:mod:`router.proxy.settings`) reads.

``master_key`` and ``max_request_size_mb`` are LiteLLM's names; the rest are
the server's own. The Router itself reads none of them; other keys of the
section are LiteLLM's and are ignored with a warning.
"""

LITELLM_DOCUMENT_KEYS: frozenset[str] = frozenset({
    "environment_variables", "callback_settings", "credential_list",
    "guardrails", "mcp_servers", "mcp_tools", "search_tools", "vector_store_registry",
    "prompts", "include", "files_settings", "finetune_settings", "assistant_settings",
    "default_vertex_config",
})
"""Top-level sections LiteLLM's proxy reads and this router ignores."""

# --- litellm_settings ------------------------------------------------------------

LITELLM_SETTINGS_HONOURED: tuple[tuple[str, str], ...] = (
    ("num_retries", "num_retries"),
    ("request_timeout", "timeout"),
    ("fallbacks", "fallbacks"),
    ("default_fallbacks", "default_fallbacks"),
    ("context_window_fallbacks", "context_window_fallbacks"),
    ("content_policy_fallbacks", "content_policy_fallbacks"),
    ("allowed_fails", "allowed_fails"),
    # LiteLLM's "Fallbacks + Retries + Timeouts + Cooldowns" docs set it here.
    ("cooldown_time", "cooldown_time"),
    ("max_fallbacks", "max_fallbacks"),
)
"""``litellm_settings`` key -> router setting it feeds when router_settings is silent.

LiteLLM's Router reads these module-level values (``litellm.num_retries``,
``litellm.request_timeout``, ...) as its defaults; every other
``litellm_settings`` key configures LiteLLM itself and is ignored here.
"""

# --- one deployment ----------------------------------------------------------------

DEPLOYMENT_KEYS: frozenset[str] = frozenset({
    "model_name", "litellm_params", "params", "model_info", "tpm", "rpm",
})
"""Keys of a ``model_list`` entry we read (top-level ``tpm``/``rpm`` as LiteLLM allows)."""

LITELLM_DEPLOYMENT_KEYS: frozenset[str] = frozenset({"blocked"})

PARAMS_KEYS: frozenset[str] = frozenset({
    "model", "custom_llm_provider", "api_base", "api_key", "api_version", "organization",
    "timeout", "stream_timeout", "rpm", "tpm", "weight", "order", "tags", "mock_response",
    "max_parallel_requests", "extra_headers", "extra_body", "extra_query", "drop_params",
    "vertex_project", "vertex_location", "vertex_credentials", "aws_access_key_id",
    "aws_secret_access_key", "aws_session_token", "aws_region_name",
    "aws_bedrock_runtime_endpoint", "aws_profile_name",
})
"""Fields of :class:`router.config.models.LiteLLMParams`."""

PRICING_KEYS: tuple[str, ...] = (
    "input_cost_per_token", "output_cost_per_token", "cache_read_input_token_cost",
)
"""Prices LiteLLM lets a deployment set in ``litellm_params``; moved into ``model_info``."""

LITELLM_PARAMS_KEYS: frozenset[str] = frozenset({
    # credentials and cloud-specific settings of providers we do not speak
    "azure_ad_token", "azure_ad_token_provider", "tenant_id", "client_id", "client_secret",
    "azure_scope", "azure_username", "azure_password", "region_name", "aws_session_name",
    "aws_role_name", "aws_web_identity_token", "aws_sts_endpoint", "aws_external_id",
    "watsonx_region_name", "litellm_credential_name",
    # limits, retries and budgets LiteLLM applies per deployment
    "itpm", "otpm", "max_retries", "num_retries", "cooldown_time", "max_budget",
    "budget_duration", "default_api_key_tpm_limit", "default_api_key_rpm_limit",
    "max_file_size_mb",
    # LiteLLM behaviour switches
    "configurable_clientside_auth_params", "use_in_pass_through",
    "use_litellm_proxy", "use_chat_completions_api", "merge_reasoning_content_in_choices",
    "litellm_trace_id", "model_info", "tag_regex", "base_model", "input_cost_per_second",
    "output_cost_per_second", "auto_router_config_path", "auto_router_config",
    "auto_router_default_model", "auto_router_embedding_model",
})
"""``litellm_params`` keys LiteLLM defines and this router does not use.

Any other unknown key is taken as a completion keyword argument (``temperature``,
``max_tokens``, ...) and ignored with a warning, unless it is a near miss of one of
:data:`PARAMS_KEYS` (a typo such as ``api_bsae``), which is an error.
"""

# --- router settings -----------------------------------------------------------------

SETTINGS_KEYS: frozenset[str] = frozenset({
    "routing_strategy", "routing_strategy_args", "num_retries", "timeout", "stream_timeout",
    "retry_after", "allowed_fails", "cooldown_time", "disable_cooldowns", "fallbacks",
    "default_fallbacks", "context_window_fallbacks", "content_policy_fallbacks",
    "max_fallbacks", "optional_pre_call_checks", "enable_pre_call_checks",
    "enable_tag_filtering", "retry_policy", "allowed_fails_policy", "model_group_alias",
    "default_max_parallel_requests", "redis_url", "redis_host", "redis_port",
    "redis_password", "redis_db", "redis_key_prefix", "response_ownership_ttl",
    "redis_startup_nodes", "service_name", "sentinel_nodes", "sentinel_password",
    "redis_wait_replicas", "conversation_ttl", "conversation_max_response_bytes",
    "conversation_max_bytes", "conversation_memory_max_bytes", "conversation_encryption_keys",
    "conversation_failover", "prompt_cache_affinity", "prompt_cache_affinity_slack",
    "prompt_cache_affinity_instructions", "use_rate_limit_headers",
    "max_cooldown_time", "cooldown_jitter", "panic_mode", "retry_budget", "retry_budget_ratio",
    "retry_budget_min_per_second", "retry_budget_window",
})
"""Fields of :class:`router.config.models.RouterSettings`."""

LITELLM_SETTINGS_KEYS: frozenset[str] = frozenset({
    "assistants_config", "search_tools", "guardrail_list", "cache_responses", "cache_kwargs",
    "cache_params",
    "caching_groups", "client_ttl", "polling_interval", "default_priority",
    "default_litellm_params", "set_verbose", "debug_level", "tag_filtering_match_any",
    "model_group_retry_policy", "provider_budget_config", "alerting_config",
    "router_general_settings", "deployment_affinity_ttl_seconds",
    "model_group_affinity_config", "ignore_invalid_deployments",
    "enable_health_check_routing", "health_check_staleness_threshold",
    "health_check_ignore_transient_errors", "enable_weighted_failover", "routing_groups",
    "max_retries", "weights", "tag_routing_prefix",
})
"""``Router.__init__`` / ``router_settings`` names LiteLLM has and this router ignores."""

RETRY_POLICY_KEYS: frozenset[str] = frozenset({
    "BadRequestErrorRetries", "AuthenticationErrorRetries", "TimeoutErrorRetries",
    "RateLimitErrorRetries", "ContentPolicyViolationErrorRetries",
    "InternalServerErrorRetries", "ServiceUnavailableErrorRetries", "NotFoundErrorRetries",
    "DefaultRetries",
})
"""Field names of LiteLLM's ``RetryPolicy``."""

ALLOWED_FAILS_POLICY_KEYS: frozenset[str] = frozenset({
    "BadRequestErrorAllowedFails", "AuthenticationErrorAllowedFails",
    "TimeoutErrorAllowedFails", "RateLimitErrorAllowedFails",
    "ContentPolicyViolationErrorAllowedFails", "InternalServerErrorAllowedFails",
    "ServiceUnavailableErrorAllowedFails", "BadGatewayErrorAllowedFails",
    "NotFoundErrorAllowedFails",
})
"""Field names of LiteLLM's ``AllowedFailsPolicy``."""


def did_you_mean(key: str, choices: frozenset[str], cutoff: float = 0.6) -> str:
    """Return ``"; did you mean 'x'?"`` for the nearest of ``choices``, or ``""``."""
    close = get_close_matches(key, sorted(choices), n=1, cutoff=cutoff)
    return f"; did you mean '{close[0]}'?" if close else ""
