"""Tests for router.config: loading LiteLLM configs, env references, errors, secrets."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from router.config import (
    ConfigWarning,
    DeploymentConfig,
    LiteLLMParams,
    RouterConfig,
    RouterSettings,
    build_config,
    load_config_file,
    parse_config_document,
    resolve_env,
)
from router.errors import ConfigError

FIXTURES = Path(__file__).parent / "fixtures"
SECRET = "sk-test-SECRET123"


def azure(name: str = "gpt-4o", **params: Any) -> dict[str, Any]:
    base = {"model": "azure/gpt-4o", "api_base": "https://east.openai.azure.com",
            "api_key": "k"}
    return {"model_name": name, "litellm_params": {**base, **params}}


def mock(name: str = "gpt-4o", **params: Any) -> dict[str, Any]:
    return {"model_name": name, "litellm_params": {"model": "mock/echo", **params}}


def problems_of(model_list: Any, settings: dict[str, Any] | None = None) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as info:
        build_config(model_list, settings or {})
    return info.value.problems


def problems_of_doc(doc: dict[str, Any]) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as info, warnings.catch_warnings():
        warnings.simplefilter("ignore", ConfigWarning)
        parse_config_document(doc, source="test.yaml")
    return info.value.problems


@pytest.fixture
def litellm_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_EAST_KEY", "east-key")
    monkeypatch.setenv("AZURE_WEST_KEY", "west-key")
    monkeypatch.setenv("OPENAI_API_KEY", "openai-key")
    monkeypatch.setenv("REDIS_HOST", "redis.internal")
    monkeypatch.setenv("REDIS_PASSWORD", "p@ss/word")
    monkeypatch.delenv("LITELLM_MASTER_KEY", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)


# --- building from dicts ----------------------------------------------------------


def test_dict_config_with_defaults() -> None:
    config, issued = build_config([azure(), mock("cheap")], {"num_retries": 4})
    assert issued == []
    assert isinstance(config, RouterConfig)
    assert [d.model_name for d in config.model_list] == ["gpt-4o", "cheap"]
    params = config.model_list[0].litellm_params
    assert params.api_base == "https://east.openai.azure.com"
    assert isinstance(params.api_key, SecretStr)
    assert params.api_key.get_secret_value() == "k"
    settings = config.settings
    assert settings.num_retries == 4
    assert settings.routing_strategy == "simple-shuffle"
    assert (settings.allowed_fails, settings.cooldown_time, settings.max_fallbacks) == (3, 5.0, 5)
    assert settings.timeout is None and settings.redis_dsn() is None
    assert settings.redis_key_prefix == "rr:"
    assert settings.response_ownership_ttl == 30 * 24 * 3600


def test_none_setting_means_default() -> None:
    config, _ = build_config([mock()], {"num_retries": None, "timeout": None})
    assert config.settings.num_retries == 2


def test_params_alias_is_accepted() -> None:
    config, _ = build_config(
        [{"model_name": "m", "params": {"model": "openai/gpt-4o", "api_key": "k"}}], {})
    assert config.model_list[0].litellm_params.provider == "openai"


def test_params_and_litellm_params_together_is_an_error() -> None:
    entry = {"model_name": "m", "params": {"model": "mock/a"},
             "litellm_params": {"model": "mock/b"}}
    assert problems_of([entry]) == ("model_list[0]: give litellm_params or params, not both",)


def test_model_info_extras_are_kept_and_int_id_becomes_str() -> None:
    entry = {**mock(), "model_info": {"id": 7, "mode": "responses", "anything": {"x": 1}}}
    info = build_config([entry], {})[0].model_list[0].model_info
    assert info.id == "7"
    assert info.model_extra == {"mode": "responses", "anything": {"x": 1}}


def test_litellm_placements_are_adopted() -> None:
    entry = {"model_name": "m", "tpm": 1000, "rpm": 10,
             "litellm_params": {"model": "mock/a", "rpm": 5, "input_cost_per_token": 1e-6}}
    deployment = build_config([entry], {})[0].model_list[0]
    assert (deployment.litellm_params.tpm, deployment.litellm_params.rpm) == (1000, 5)
    assert deployment.model_info.input_cost_per_token == 1e-6


def test_fallback_shorthands_and_alias_dicts() -> None:
    settings = {"fallbacks": [{"a": "b"}], "default_fallbacks": "b",
                "model_group_alias": {"old": {"model": "a", "hidden": True}, "older": "a"}}
    config, _ = build_config([mock("a"), mock("b")], settings)
    assert config.settings.fallbacks == [{"a": ["b"]}]
    assert config.settings.default_fallbacks == ["b"]
    assert config.settings.model_group_alias == {"old": "a", "older": "a"}


def test_fallback_to_alias_is_allowed() -> None:
    settings = {"fallbacks": [{"a": ["old"]}], "model_group_alias": {"old": "a"}}
    assert build_config([mock("a")], settings)[0].settings.fallbacks == [{"a": ["old"]}]


def test_config_objects_are_frozen() -> None:
    config, _ = build_config([mock()], {})
    with pytest.raises(ValidationError):
        config.settings.num_retries = 9
    with pytest.raises(ValidationError):
        config.model_list[0].litellm_params.model = "mock/other"


# --- provider and upstream model -----------------------------------------------------


@pytest.mark.parametrize(("params", "provider", "upstream"), [
    ({"model": "azure/my-deployment", "api_base": "https://a.openai.azure.com"},
     "azure", "my-deployment"),
    ({"model": "openai/gpt-4o"}, "openai", "gpt-4o"),
    ({"model": "openai/facebook/opt-125m"}, "openai", "facebook/opt-125m"),
    ({"model": "mock/anything"}, "mock", "anything"),
    ({"model": "gpt-4o"}, "openai", "gpt-4o"),
    ({"model": "my-deployment", "custom_llm_provider": "azure",
      "api_base": "https://a.openai.azure.com"}, "azure", "my-deployment"),
    ({"model": "azure/dep", "custom_llm_provider": "azure",
      "api_base": "https://a.openai.azure.com"}, "azure", "dep"),
    ({"model": "meta-llama/Llama-3", "custom_llm_provider": "openai"},
     "openai", "meta-llama/Llama-3"),
])
def test_provider_and_upstream_model(params: dict[str, Any], provider: str,
                                     upstream: str) -> None:
    validated = LiteLLMParams.model_validate(params)
    assert (validated.provider, validated.upstream_model) == (provider, upstream)


# --- redis ---------------------------------------------------------------------------


def test_redis_dsn_from_url() -> None:
    settings = RouterSettings.model_validate(
        {"redis_url": "rediss://:pw@cache:6380/2", "redis_host": "ignored"})
    assert settings.redis_dsn() == "rediss://:pw@cache:6380/2"


def test_redis_dsn_from_host_port_password_db() -> None:
    settings = RouterSettings.model_validate(
        {"redis_host": "cache", "redis_port": 6380, "redis_password": "p@ss/word", "redis_db": 3})
    assert settings.redis_dsn() == "redis://:p%40ss%2Fword@cache:6380/3"


def test_redis_dsn_host_only_uses_defaults() -> None:
    assert RouterSettings(redis_host="cache").redis_dsn() == "redis://cache:6379/0"
    assert RouterSettings(redis_host="::1").redis_dsn() == "redis://[::1]:6379/0"


# --- environment references -----------------------------------------------------------


def test_env_secrets_are_resolved(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EAST_KEY", "resolved-key")
    monkeypatch.setenv("EAST_BASE", "https://east.openai.azure.com")
    monkeypatch.setenv("RETRIES", "5")
    monkeypatch.setenv("REDIS_URL", "redis://cache:6379/0")
    entry = azure(api_key="os.environ/EAST_KEY", api_base="os.environ/EAST_BASE",
                  extra_headers={"x-team": "os.environ/EAST_KEY"})
    config, _ = build_config([entry], {"num_retries": "os.environ/RETRIES",
                                       "redis_url": "os.environ/REDIS_URL"})
    params = config.model_list[0].litellm_params
    assert params.api_key is not None and params.api_key.get_secret_value() == "resolved-key"
    assert params.api_base == "https://east.openai.azure.com"
    assert params.extra_headers == {"x-team": "resolved-key"}
    assert config.settings.num_retries == 5
    assert config.settings.redis_dsn() == "redis://cache:6379/0"


def test_resolve_env_recurses_and_reports_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("A", "1")
    monkeypatch.delenv("B", raising=False)
    assert resolve_env({"x": ["os.environ/A", 2], "y": "plain"}, "cfg") == \
        {"x": ["1", 2], "y": "plain"}
    with pytest.raises(ConfigError) as info:
        resolve_env({"x": ["os.environ/A", "os.environ/B"]}, "cfg")
    assert info.value.problems == ("cfg.x[1]: environment variable B is not set",)


def test_missing_env_var_names_variable_path_and_source(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_EAST_KEY", "x")
    monkeypatch.delenv("AZURE_WEST_KEY", raising=False)
    path = tmp_path / "config.yaml"
    path.write_text(
        "model_list:\n"
        "  - model_name: gpt-4o\n"
        "    litellm_params: {model: mock/a, api_key: os.environ/AZURE_EAST_KEY}\n"
        "  - model_name: gpt-4o\n"
        "    litellm_params: {model: mock/b, api_key: os.environ/AZURE_WEST_KEY}\n")
    with pytest.raises(ConfigError) as info:
        load_config_file(path)
    expected = ("model_list[1].litellm_params.api_key: "
                "environment variable AZURE_WEST_KEY is not set")
    assert info.value.problems == (expected,)
    assert str(path) in str(info.value) and expected in str(info.value)


def test_unset_env_in_ignored_keys_is_not_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("UNSET_VAR", raising=False)
    entry = mock(azure_ad_token="os.environ/UNSET_VAR")
    doc = {"model_list": [entry], "general_settings": {"master_key": "os.environ/UNSET_VAR"},
           "router_settings": {"cache_kwargs": {"password": "os.environ/UNSET_VAR"}}}
    with pytest.warns(ConfigWarning):
        parse_config_document(doc, source="doc")


# --- files ---------------------------------------------------------------------------


def test_server_general_settings_load_without_warnings() -> None:
    doc = {"model_list": [mock()], "general_settings": {
        "master_key": "os.environ/UNSET_VAR", "max_request_size_mb": 2,
        "api_keys": [{"key": "sk-a", "models": ["gpt-4o"], "rpm_limit": 5}]}}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        parse_config_document(doc, source="doc")


def test_other_general_settings_warn() -> None:
    doc = {"model_list": [mock()], "general_settings": {"database_url": "x"}}
    with pytest.warns(ConfigWarning, match="database_url"):
        parse_config_document(doc, source="doc")


def test_yaml_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-x")
    config = load_config_file(FIXTURES / "minimal.yaml")
    assert config.settings.num_retries == 1
    assert config.model_list[0].litellm_params.upstream_model == "gpt-4o"


def test_json_file() -> None:
    config = load_config_file(str(FIXTURES / "minimal.json"))
    assert config.settings.timeout == 45
    assert config.model_list[0].litellm_params.mock_response == "hi"


def test_litellm_file_loads_unchanged_with_warnings(litellm_env: None) -> None:
    with pytest.warns(ConfigWarning) as record:
        config = load_config_file(FIXTURES / "litellm_config.yaml")
    messages = [str(w.message) for w in record]
    # one per section: top level, model_list, router, litellm, general (database_url)
    assert len(messages) == 5
    joined = "\n".join(messages)
    for name in ("database_url", "environment_variables", "temperature", "max_retries",
                 "cache_responses", "drop_params", "success_callback"):
        assert name in joined
    assert "litellm_config.yaml" in joined

    east, west, mini, local = config.model_list
    assert east.model_info.id == "gpt-4o-east"
    assert east.model_info.model_extra == {"base_model": "azure/gpt-4o"}
    assert east.litellm_params.upstream_model == "gpt-4o-eastus"
    assert east.litellm_params.api_key is not None
    assert east.litellm_params.api_key.get_secret_value() == "east-key"
    assert (east.litellm_params.timeout, east.litellm_params.stream_timeout) == (30, 10)
    assert west.litellm_params.weight == 2
    assert mini.litellm_params.tpm == 200000
    assert mini.model_info.input_cost_per_token == 0.00000015
    assert local.litellm_params.tags == ("test", "free")

    settings = config.settings
    assert settings.routing_strategy == "least-busy"
    assert (settings.num_retries, settings.timeout) == (3, 120)  # router_settings wins
    assert settings.context_window_fallbacks == [{"gpt-4o-mini": ["gpt-4o"]}]
    assert settings.retry_policy == {"RateLimitErrorRetries": 5, "AuthenticationErrorRetries": 0}
    assert settings.model_group_alias == {"gpt-4": "gpt-4o"}
    assert settings.optional_pre_call_checks == ["responses_api_deployment_check"]
    assert settings.redis_dsn() == "redis://:p%40ss%2Fword@redis.internal:6380/0"


def test_litellm_settings_feed_unset_router_settings() -> None:
    doc = {"model_list": [mock("a"), mock("b")],
           "litellm_settings": {"num_retries": 7, "request_timeout": 60,
                                "fallbacks": [{"a": ["b"]}], "default_fallbacks": ["b"]}}
    config = parse_config_document(doc, source="doc")
    assert (config.settings.num_retries, config.settings.timeout) == (7, 60)
    assert config.settings.fallbacks == [{"a": ["b"]}]
    assert config.settings.default_fallbacks == ["b"]


def test_unreadable_file_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match=r"nope\.yaml"):
        load_config_file(missing)


def test_invalid_yaml_reports_position_without_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(f"model_list:\n  - api_key: {SECRET}: oops\n")
    with pytest.raises(ConfigError) as info:
        load_config_file(path)
    message = str(info.value)
    assert "bad.yaml" in message and "line 2" in message
    assert SECRET not in message and info.value.__cause__ is None


# --- errors, one kind at a time -----------------------------------------------------


def test_bad_type() -> None:
    problems = problems_of([mock(rpm="lots", tags="x")])
    assert problems[0].startswith("model_list[0].litellm_params.rpm: Input should be a valid")
    assert problems[1].startswith("model_list[0].litellm_params.tags: Input should be a valid")


def test_entry_and_list_types() -> None:
    assert problems_of("gpt-4o") == ("model_list: must be a list of deployments, got str",)
    assert problems_of([]) == ("model_list: must list at least one deployment",)
    assert problems_of([mock(), "gpt-4o"]) == (
        "model_list[1]: must be a mapping with model_name and litellm_params, got str",)
    assert problems_of([{"model_name": "m"}]) == ("model_list[0]: missing litellm_params",)
    assert problems_of([{"litellm_params": {"model": "mock/a"}}]) == (
        "model_list[0].model_name: required",)
    assert problems_of([{"model_name": "m", "litellm_params": "mock/a"}]) == (
        "model_list[0].litellm_params: must be a mapping, got str",)


def test_unknown_provider() -> None:
    (problem,) = problems_of([mock(model="cohere/command-r")])
    assert problem.startswith("model_list[0].litellm_params.model: unsupported provider "
                              "'cohere'; supported providers: openai, azure, mock, ")
    (problem,) = problems_of([mock(model="r", custom_llm_provider="cohere")])
    assert problem.startswith(
        "model_list[0].litellm_params.custom_llm_provider: unsupported provider 'cohere'")


def test_typo_in_settings_suggests_nearest() -> None:
    assert problems_of([mock()], {"num_retires": 3}) == (
        "router_settings.num_retires: unknown setting; did you mean 'num_retries'?",)


def test_unknown_setting_without_near_match() -> None:
    assert problems_of([mock()], {"zzzz": 1}) == ("router_settings.zzzz: unknown setting",)


def test_typo_in_litellm_params_suggests_nearest() -> None:
    assert problems_of([mock(api_bsae="https://x")]) == (
        "model_list[0].litellm_params.api_bsae: unknown parameter; did you mean 'api_base'?",)


def test_unknown_litellm_params_are_warned_and_dropped() -> None:
    with pytest.warns(ConfigWarning) as record:
        config, issued = build_config([mock(temperature=0.1, max_retries=0, itpm=5)], {})
    assert [str(w.message) for w in record] == issued
    assert issued == ["Router(...): ignoring keys responses-router does not use: "
                      "model_list[0].litellm_params: temperature, max_retries, itpm"]
    assert "temperature" not in config.model_list[0].litellm_params.model_dump()


def test_litellm_only_settings_are_warned_once() -> None:
    with pytest.warns(ConfigWarning) as record:
        build_config([mock()], {"cache_responses": True, "client_ttl": 10})
    assert len(record) == 1
    assert "router_settings: cache_responses, client_ttl" in str(record[0].message)


def test_deployment_level_keys() -> None:
    assert problems_of([{**mock(), "model_infos": {}}]) == (
        "model_list[0].model_infos: unknown deployment key; did you mean 'model_info'?",)


def test_unknown_top_level_key_suggests_nearest() -> None:
    doc = {"model_list": [mock()], "router_setings": {}}
    assert problems_of_doc(doc) == (
        "router_setings: unknown top-level key; did you mean 'router_settings'?",)


def test_document_shape_errors() -> None:
    assert problems_of_doc({"router_settings": {}}) == ("model_list: required",)
    assert problems_of_doc({"model_list": [mock()], "router_settings": [1]}) == (
        "router_settings: must be a mapping, got list",)
    with pytest.raises(ConfigError, match="top level: must be a mapping"):
        parse_config_document([1], source="doc")  # type: ignore[arg-type]


def test_fallback_to_unknown_model() -> None:
    settings = {"fallbacks": [{"gpt-4o": ["cheap", "gpt4o-mini"]}]}
    assert problems_of([mock(), mock("cheap"), mock("gpt-4o-mini")], settings) == (
        "router_settings.fallbacks[0].gpt-4o[1]: fallback to unknown model group "
        "'gpt4o-mini'; did you mean 'gpt-4o-mini'?",)


def test_other_fallback_kinds_and_aliases_are_checked() -> None:
    settings = {"default_fallbacks": ["nope"], "content_policy_fallbacks": [{"a": ["nope"]}],
                "model_group_alias": {"old": "gone"}}
    assert problems_of([mock("a")], settings) == (
        "router_settings.content_policy_fallbacks[0].a[0]: fallback to unknown model group 'nope'",
        "router_settings.default_fallbacks[0]: fallback to unknown model group 'nope'",
        "router_settings.model_group_alias.old: alias of unknown model group 'gone'",
    )


def test_fallback_from_litellm_settings_is_reported_there() -> None:
    doc = {"model_list": [mock("a")], "litellm_settings": {"fallbacks": [{"a": ["zz"]}]}}
    assert problems_of_doc(doc) == (
        "litellm_settings.fallbacks[0].a[0]: fallback to unknown model group 'zz'",)
    doc = {"model_list": [mock("a")], "litellm_settings": {"request_timeout": -1}}
    assert problems_of_doc(doc) == (
        "litellm_settings.request_timeout: Input should be greater than 0",)


def test_azure_without_api_base() -> None:
    entry = {"model_name": "m", "litellm_params": {"model": "azure/gpt-4o", "api_key": "k"}}
    assert problems_of([entry]) == (
        "model_list[0].litellm_params.api_base: required for azure deployments "
        "(the resource endpoint)",)


def test_api_base_must_be_http_url() -> None:
    assert problems_of([mock(api_base="ftp://host")]) == (
        "model_list[0].litellm_params.api_base: must be an http:// or https:// URL with a host",)


def test_policy_keys_are_litellm_names() -> None:
    (problem,) = problems_of([mock()], {"retry_policy": {"RateLimitErrorRetires": 1}})
    assert problem == ("router_settings.retry_policy: unknown key 'RateLimitErrorRetires'; "
                       "did you mean 'RateLimitErrorRetries'?")
    (problem,) = problems_of([mock()], {"allowed_fails_policy": {"TimeoutErrorAllowedFails": -1}})
    assert problem.startswith("router_settings.allowed_fails_policy.TimeoutErrorAllowedFails:")


def test_duplicate_deployment_ids() -> None:
    first, second = ({**mock(), "model_info": {"id": "same"}} for _ in range(2))
    assert problems_of([first, second]) == (
        "model_list[1].model_info.id: duplicate deployment id 'same' (also model_list[0])",)


def test_several_problems_in_one_error() -> None:
    entries = [azure(api_base=None), mock(model="cohere/x"), mock(rpm=-1)]
    with pytest.raises(ConfigError) as info:
        build_config(entries, {"num_retires": 1, "cooldown_time": -5}, source="svc.yaml")
    problems = info.value.problems
    assert len(problems) == 5
    message = str(info.value)
    assert message.startswith("invalid router configuration in svc.yaml (5 problems)")
    for line in problems:
        assert line in message
    assert [p.split(":")[0] for p in problems] == [
        "model_list[0].litellm_params.api_base",
        "model_list[1].litellm_params.model",
        "model_list[2].litellm_params.rpm",
        "router_settings.num_retires",
        "router_settings.cooldown_time",
    ]


def test_direct_construction_validates_too() -> None:
    with pytest.raises(ValidationError):
        DeploymentConfig.model_validate({"model_name": "", "params": {"model": "mock/a"}})
    with pytest.raises(ValidationError):
        RouterSettings.model_validate({"redis_url": "http://cache"})


# --- secrets never show ------------------------------------------------------------------


def test_secret_never_appears(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("THE_KEY", SECRET)
    entry = azure(api_key="os.environ/THE_KEY", extra_headers={"api-key": SECRET})
    settings = {"redis_url": f"redis://:{SECRET}@cache:6379/0", "redis_password": SECRET,
                "cache_kwargs": {"password": SECRET}}
    with pytest.warns(ConfigWarning) as record:
        config, issued = build_config([entry, mock("m", azure_ad_token=SECRET)], settings)
    shown = [repr(config), str(config), repr(config.settings), str(config.model_list[0]),
             repr(config.model_list[0].litellm_params), *issued,
             *(str(w.message) for w in record)]
    assert all(SECRET not in text for text in shown)
    dsn = config.settings.redis_dsn()
    assert dsn is not None and SECRET in dsn  # available to the router, on purpose

    bad = [azure(api_key=SECRET, api_base=SECRET, rpm=SECRET, tags=SECRET, weight=SECRET),
           mock("m", api_key=12345, extra_headers={"api-key": 1})]
    bad_settings = {"redis_url": f"http://{SECRET}", "redis_password": 1.5,
                    "num_retries": SECRET, "redis_port": SECRET}
    with pytest.raises(ConfigError) as info:
        build_config(bad, bad_settings)
    errors = [str(info.value), repr(info.value), *info.value.problems]
    assert all(SECRET not in text for text in errors)

    path = tmp_path / "c.yaml"
    path.write_text(f"model_list:\n  - model_name: m\n    litellm_params:\n"
                    f"      model: mock/a\n      api_key: {SECRET}\n      api_bsae: {SECRET}\n")
    with pytest.raises(ConfigError) as info:
        load_config_file(path)
    assert SECRET not in str(info.value)


# --- failure-handling settings (cooldown escalation, panic mode, retry budget) --------------

FAILURE_SETTINGS = {
    "max_cooldown_time": 120.0, "cooldown_jitter": 0.25, "panic_mode": "wait",
    "retry_budget": False, "retry_budget_ratio": 0.5, "retry_budget_min_per_second": 2.0,
    "retry_budget_window": 30.0,
}


def test_failure_settings_defaults() -> None:
    s = RouterSettings()
    assert s.max_cooldown_time is None  # 10 x cooldown_time
    assert s.cooldown_jitter == 0.1
    assert s.panic_mode == "fail"
    assert s.retry_budget is True
    assert (s.retry_budget_ratio, s.retry_budget_min_per_second, s.retry_budget_window) == (
        0.2, 10.0, 10.0)


def test_failure_settings_from_a_dict_document() -> None:
    doc = {"model_list": [mock()], "router_settings": dict(FAILURE_SETTINGS)}
    settings = parse_config_document(doc, source="doc").settings
    assert {k: getattr(settings, k) for k in FAILURE_SETTINGS} == FAILURE_SETTINGS


def test_failure_settings_from_keyword_arguments() -> None:
    config, issued = build_config([mock()], dict(FAILURE_SETTINGS), source="Router(...)")
    assert issued == []
    assert {k: getattr(config.settings, k) for k in FAILURE_SETTINGS} == FAILURE_SETTINGS


def test_failure_settings_from_yaml(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "model_list:\n  - model_name: m\n    litellm_params:\n      model: mock/a\n"
        "router_settings:\n  cooldown_time: 2\n  max_cooldown_time: 30\n"
        "  cooldown_jitter: 0\n  panic_mode: soonest\n  retry_budget: false\n"
        "  retry_budget_ratio: 0.1\n  retry_budget_min_per_second: 0\n"
        "  retry_budget_window: 5\n"
    )
    s = load_config_file(path).settings
    assert (s.max_cooldown_time, s.cooldown_jitter, s.panic_mode) == (30, 0, "soonest")
    assert (s.retry_budget, s.retry_budget_ratio, s.retry_budget_min_per_second,
            s.retry_budget_window) == (False, 0.1, 0, 5)


@pytest.mark.parametrize(("settings", "path", "text"), [
    ({"cooldown_time": 10, "max_cooldown_time": 5}, "max_cooldown_time",
     "must be at least cooldown_time (10)"),
    ({"max_cooldown_time": -1}, "max_cooldown_time", "greater than or equal to 0"),
    ({"cooldown_jitter": 1}, "cooldown_jitter", "less than 1"),
    ({"cooldown_jitter": -0.1}, "cooldown_jitter", "greater than or equal to 0"),
    ({"panic_mode": "retry"}, "panic_mode", "'fail', 'soonest' or 'wait'"),
    ({"retry_budget_ratio": -0.5}, "retry_budget_ratio", "greater than or equal to 0"),
    ({"retry_budget_ratio": float("nan")}, "retry_budget_ratio", "finite"),
    ({"retry_budget_min_per_second": -1}, "retry_budget_min_per_second",
     "greater than or equal to 0"),
    ({"retry_budget_window": 0}, "retry_budget_window", "greater than 0"),
    ({"retry_budget_window": 1e9}, "retry_budget_window", "less than or equal to 3600"),
    ({"retry_budget": "sometimes"}, "retry_budget", "boolean"),
])
def test_failure_settings_are_validated(settings: dict[str, Any], path: str, text: str) -> None:
    (problem,) = problems_of([mock()], settings)
    assert problem.startswith(f"router_settings.{path}:")
    assert text in problem


def test_failure_setting_typo_suggests_nearest() -> None:
    assert problems_of([mock()], {"cooldown_jiter": 0.2}) == (
        "router_settings.cooldown_jiter: unknown setting; did you mean 'cooldown_jitter'?",)


def test_settings_keys_list_every_field() -> None:
    from router.config.keys import SETTINGS_KEYS

    assert set(RouterSettings.model_fields) == SETTINGS_KEYS
