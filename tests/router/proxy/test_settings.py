"""The server's settings: the config loader's catalogue matches them; Redis from router_settings."""

from __future__ import annotations

import pytest

from router.config.keys import GENERAL_SETTINGS_KEYS
from router.errors import ConfigError
from router.proxy.settings import ServerSettings, server_settings


def test_loader_catalogue_matches_the_settings() -> None:
    ours = {name for name, f in ServerSettings.model_fields.items() if not f.exclude}
    assert ours - {"redis_key_prefix", "ownership_ttl"} == GENERAL_SETTINGS_KEYS


def test_redis_and_ownership_from_router_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROXY_TEST_REDIS_PW", "p@ss")
    settings = server_settings({"router_settings": {
        "redis_host": "cache", "redis_password": "os.environ/PROXY_TEST_REDIS_PW",
        "redis_key_prefix": "x:", "response_ownership_ttl": 60, "num_retries": 1}},
        source="doc")
    assert settings.redis_target is not None
    assert settings.redis_target.url == "redis://:p%40ss@cache:6379/0"
    assert (settings.redis_key_prefix, settings.ownership_ttl) == ("x:", 60)
    assert "p@ss" not in repr(settings)


@pytest.mark.parametrize("router", [
    {"redis_url": "redis+cluster://:pw@a:7000,b:7001"},
    {"redis_startup_nodes": [{"host": "a", "port": 7000}], "redis_password": "pw"},
])
def test_a_cluster_is_the_servers_shared_state_too(router: dict[str, object]) -> None:
    settings = server_settings({"router_settings": router}, source="doc")
    assert settings.redis_target is not None and settings.redis_target.kind == "cluster"
    assert "pw" not in repr(settings)


def test_a_sentinel_url_is_the_servers_shared_state_too() -> None:
    settings = server_settings({"router_settings": {
        "redis_url": "redis+sentinel://s1:26379,s2:26379/mymaster/1?sentinel_password=sp"}},
        source="doc")
    target = settings.redis_target
    assert target is not None and target.kind == "sentinel"
    assert (target.service_name, target.db, target.sentinel_password) == ("mymaster", 1, "sp")


def test_defaults_without_sections() -> None:
    settings = server_settings({}, source="doc")
    assert settings.redis_target is None and not settings.auth_enabled
    assert settings.max_request_bytes == 32 * 1024 * 1024


def test_bad_values_are_named() -> None:
    with pytest.raises(ConfigError) as info:
        server_settings({"general_settings": {"max_request_size_mb": 0, "idle_timeout": "x"}},
                        source="doc")
    text = str(info.value)
    assert "general_settings.max_request_size_mb" in text
    assert "general_settings.idle_timeout" in text
