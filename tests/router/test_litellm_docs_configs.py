"""LiteLLM's documented configs (``/responses``, Azure, OpenAI, router settings) load.

The fixtures under ``fixtures/litellm_docs/`` are LiteLLM documentation
examples re-typed; each one's header says which page it comes from and what,
if anything, a user would have had to fill in (placeholders are not URLs).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from router.config import ConfigWarning, load_config_file
from router.router import Router
from router.testing import Upstream
from tests.conftest import StartUpstreams

DOCS = Path(__file__).parent / "fixtures" / "litellm_docs"


@pytest.fixture(autouse=True)
def doc_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "AZURE_RESPONSES_OPENAI_API_KEY", "AZURE_API_KEY",
                 "REDIS_PASSWORD", "ANTHROPIC_API_KEY", "AWS_ACCESS_KEY_ID",
                 "AWS_SECRET_ACCESS_KEY", "GEMINI_API_KEY"):
        monkeypatch.setenv(name, f"{name.lower()}-value")
    monkeypatch.setenv("AZURE_API_BASE", "https://my-endpoint.openai.azure.com/")


@pytest.mark.parametrize("path", sorted(DOCS.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_documented_config_builds_a_router(path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConfigWarning)
        router = Router.from_config(path)
    assert router.model_names
    router.close()


def test_session_continuity_config_reads_api_version_as_written() -> None:
    config = load_config_file(DOCS / "responses_session_continuity.yaml")
    assert [d.litellm_params.api_version for d in config.model_list] == ["2024-06-01"] * 2
    assert config.settings.optional_pre_call_checks == ["responses_api_deployment_check"]
    keys = [d.litellm_params.api_key for d in config.model_list]
    assert [k.get_secret_value() for k in keys if k] == ["your-api-key-1", "your-api-key-2"]


def test_azure_and_openai_responses_configs() -> None:
    azure = load_config_file(DOCS / "responses_azure.yaml").model_list[0]
    assert (azure.model_name, azure.litellm_params.api_version) == ("o1-pro", "2023-03-15-preview")
    assert azure.litellm_params.upstream_model == "o1-pro"
    openai = load_config_file(DOCS / "responses_openai.yaml").model_list[0]
    assert (openai.model_name, openai.litellm_params.provider) == ("openai/o1-pro", "openai")


def test_router_settings_examples() -> None:
    balanced = load_config_file(DOCS / "load_balancing.yaml").settings
    assert (balanced.num_retries, balanced.timeout, balanced.redis_port) == (2, 30, 1992)
    assert balanced.model_group_alias == {"gpt-4": "gpt-3.5-turbo"}
    hidden = load_config_file(DOCS / "model_group_alias_hidden.yaml").settings
    assert hidden.model_group_alias == {"GPT-3.5-turbo": "gpt-3.5-turbo"}
    assert load_config_file(DOCS / "fallbacks.yaml").settings.fallbacks == [
        {"gpt-3.5-turbo": ["gpt-4"]}]
    with pytest.warns(ConfigWarning, match="cache_params"):
        load_config_file(DOCS / "load_balancing_redis.yaml")


def test_the_all_settings_router_settings_block() -> None:
    with pytest.warns(ConfigWarning, match="tag_filtering_match_any"):
        settings = load_config_file(DOCS / "router_settings_reference.yaml").settings
    assert settings.redis_dsn() == "redis://:redis_password-value@redis.internal:6379/0"
    assert settings.retry_policy == {
        "AuthenticationErrorRetries": 3, "TimeoutErrorRetries": 3, "RateLimitErrorRetries": 3,
        "ContentPolicyViolationErrorRetries": 4, "InternalServerErrorRetries": 4}
    assert settings.allowed_fails_policy is not None
    assert settings.allowed_fails_policy["RateLimitErrorAllowedFails"] == 10000
    assert settings.fallbacks == settings.content_policy_fallbacks == [
        {"claude-2": ["my-fallback-model"]}]
    assert (settings.disable_cooldowns, settings.enable_tag_filtering) == (True, True)


def test_pre_call_checks_config() -> None:
    config = load_config_file(DOCS / "pre_call_checks.yaml")
    assert config.settings.enable_pre_call_checks is True
    azure, openai = config.model_list
    assert azure.model_info.model_extra == {"base_model": "azure/gpt-4-1106-preview"}
    assert azure.litellm_params.api_base == "https://my-endpoint.openai.azure.com/"
    assert (openai.litellm_params.provider, openai.litellm_params.upstream_model) == (
        "openai", "gpt-3.5-turbo-1106")


def test_litellm_settings_retries_timeouts_cooldowns_are_honoured() -> None:
    settings = load_config_file(DOCS / "fallbacks_retries_timeouts.yaml").settings
    assert (settings.num_retries, settings.timeout) == (3, 10)
    assert (settings.allowed_fails, settings.cooldown_time) == (3, 30)
    assert settings.fallbacks == [{"zephyr-beta": ["gpt-3.5-turbo"]}]


async def test_session_continuity_config_end_to_end(
    upstreams: StartUpstreams, make_router: Callable[..., Router], tmp_path: Path,
) -> None:
    """The documented config, pointed at two loopback upstreams, serves and pins."""
    one, two = await upstreams("endpoint1", "endpoint2", api_key=None)
    text = (DOCS / "responses_session_continuity.yaml").read_text(encoding="utf-8")
    text = text.replace("https://endpoint1.openai.azure.com", one.url)
    text = text.replace("https://endpoint2.openai.azure.com", two.url)
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    router = make_router(path=path)

    first = await router.aresponses(model="azure-gpt4-turbo", input="Hello, who are you?",
                                    truncation="auto")
    owner = one if _creates(one) else two
    for _ in range(4):
        follow = await router.aresponses(model="azure-gpt4-turbo", input="More",
                                         truncation="auto", previous_response_id=first.id)
        assert follow.id
    assert len(_creates(owner)) == 5
    assert all(r.query.get("api-version") == "2024-06-01" for r in _creates(owner))


def _creates(up: Upstream) -> list[Any]:
    return [r for r in up.requests if r.method == "POST" and r.path.endswith("/responses")]
