"""Keys: master, API keys with models and limits, no key configured, header forms."""

from __future__ import annotations

import pytest

from router.errors import ConfigError
from router.proxy.auth import MASTER_ID, KeyRing, presented_key
from router.proxy.settings import server_settings


def _ring(general: dict[str, object]) -> KeyRing:
    return KeyRing(server_settings({"general_settings": general}, source="test"))


def test_master_and_api_keys() -> None:
    ring = _ring({"master_key": "sk-m", "api_keys": [
        {"key": "sk-a", "key_alias": "a", "models": ["gpt-4o"], "rpm_limit": 5},
        {"key": "sk-b"}]})
    master = ring.authenticate("sk-m")
    assert master is not None and master.admin and master.key_id == MASTER_ID
    a = ring.authenticate("sk-a")
    assert a is not None and a.key_id == "a" and a.rpm_limit == 5
    assert a.may_use("gpt-4o") and not a.may_use("other") and not a.admin
    b = ring.authenticate("sk-b")
    assert b is not None and b.key_id.startswith("key-") and "sk-b" not in b.key_id
    assert b.may_use("anything")
    assert ring.authenticate("sk-c") is None and ring.authenticate(None) is None
    assert "sk-" not in repr(ring)


def test_ownership_visibility() -> None:
    ring = _ring({"master_key": "sk-m", "api_keys": [{"key": "sk-a", "key_alias": "a"}]})
    a, master = ring.authenticate("sk-a"), ring.authenticate("sk-m")
    assert a is not None and master is not None
    assert a.may_see("a") and not a.may_see("b") and not a.may_see(None)
    assert master.may_see("a") and master.may_see(None)


def test_no_keys_is_open() -> None:
    ring = _ring({})
    assert ring.open and ring.authenticate(None) is not None


def test_env_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROXY_TEST_MASTER", "sk-from-env")
    assert _ring({"master_key": "os.environ/PROXY_TEST_MASTER"}).authenticate("sk-from-env")


def test_duplicate_keys_are_config_errors() -> None:
    with pytest.raises(ConfigError) as info:
        _ring({"master_key": "sk-m", "api_keys": [{"key": "sk-m"}, {"key": "sk-a"},
                                                  {"key": "sk-a"}]})
    text = str(info.value)
    assert "api_keys[0].key: same key as master_key" in text
    assert "api_keys[2].key: same key as api_keys[1]" in text
    assert "sk-m" not in text and "sk-a" not in text


def test_bad_limit_is_named() -> None:
    with pytest.raises(ConfigError, match=r"api_keys\[0\]\.rpm_limit"):
        _ring({"api_keys": [{"key": "sk-x", "rpm_limit": -1}]})


@pytest.mark.parametrize("alias", ["team\ta", "team\u00a0a", "line\nbreak"])
def test_an_alias_that_is_not_printable_is_named(alias: str) -> None:
    """An alias names the key's responses (``response_owner``), which must be printable."""
    with pytest.raises(ConfigError, match=r"api_keys\[1\]\.key_alias: .*printable"):
        _ring({"api_keys": [{"key": "sk-a", "key_alias": "ok"},
                            {"key": "sk-b", "key_alias": alias}]})


@pytest.mark.parametrize("alias", ["master", "anonymous"])
def test_an_alias_cannot_pose_as_the_master_key(alias: str) -> None:
    with pytest.raises(ConfigError, match=r"api_keys\[0\]\.key_alias: .*reserved"):
        _ring({"api_keys": [{"key": "sk-a", "key_alias": alias}]})


def test_unknown_key_field_is_named() -> None:
    with pytest.raises(ConfigError, match=r"api_keys\[0\]\.rpm"):
        _ring({"api_keys": [{"key": "sk-a", "rpm": 3}]})


@pytest.mark.parametrize(("authorization", "api_key", "expected"), [
    ("Bearer sk-1", None, "sk-1"),
    ("bearer  sk-1 ", None, "sk-1"),
    ("Basic abc", None, None),
    (None, "sk-2", "sk-2"),
    (None, None, None),
])
def test_presented_key(authorization: str | None, api_key: str | None,
                       expected: str | None) -> None:
    assert presented_key(authorization, api_key) == expected
