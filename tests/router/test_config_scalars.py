"""Text fields YAML or JSON typed otherwise, and numbers that are not (router/config/scalars.py)."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import pytest

from router.config import ConfigWarning, build_config, load_config_file, parse_config_document
from router.config.scalars import as_text, load_json, load_yaml
from router.errors import ConfigError


def mock(name: Any = "m", **params: Any) -> dict[str, Any]:
    return {"model_name": name, "litellm_params": {"model": "mock/echo", **params}}


def azure(**params: Any) -> dict[str, Any]:
    return {"model_name": "m", "litellm_params": {
        "model": "azure/d", "api_base": "https://east.openai.azure.com", "api_key": "k",
        **params}}


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems(model_list: Any, settings: dict[str, Any] | None = None) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as info:
        build_config(model_list, settings or {})
    return info.value.problems


# --- the YAML reader keeps what was written ----------------------------------------


def test_yaml_numbers_keep_their_source_and_timestamps_stay_text() -> None:
    doc = load_yaml("a: 2024-06-01\nb: 1.10\nc: 0123\nd: 2024-06-01 10:00:00\ne: 7\n")
    assert doc["a"] == "2024-06-01" and doc["d"] == "2024-06-01 10:00:00"
    assert doc["b"] == 1.1 and as_text(doc["b"]) == "1.10"
    assert doc["c"] == 0o123 and as_text(doc["c"]) == "0123"  # YAML 1.1 reads 0123 as octal
    assert doc["e"] + 1 == 8 and as_text(doc["e"]) == "7"


def test_json_numbers_keep_their_source() -> None:
    doc = load_json('{"v": 1.10, "n": 2024}')
    assert (doc["v"], doc["n"]) == (1.1, 2024)
    assert (as_text(doc["v"]), as_text(doc["n"])) == ("1.10", "2024")


def test_values_without_a_source() -> None:
    assert as_text(datetime.date(2024, 6, 1)) == "2024-06-01"
    assert as_text(datetime.datetime(2024, 6, 1, 9, 30)) == "2024-06-01 09:30:00"
    assert as_text(2024) == "2024"
    assert as_text("x") == "x" and as_text(None) is None
    with pytest.raises(ValueError, match="got a boolean"):
        as_text(True)
    with pytest.raises(ValueError, match="written form is lost"):
        as_text(1.1)


# --- text fields in files -----------------------------------------------------------


def test_unquoted_versions_names_and_ids_load_as_written(tmp_path: Path) -> None:
    path = write(tmp_path, "c.yaml", """
model_list:
  - model_name: 2024
    litellm_params:
      model: azure/2024
      api_base: https://east.openai.azure.com
      api_key: 0123
      api_version: 2024-06-01
      extra_query: {api-flavour: 1.10}
      extra_headers: {x-since: 2024-06-01 10:00:00}
      tags: [2024, 1.50]
      mock_response: 42
    model_info: {id: 0123, state_domain: 7}
  - model_name: 2025
    litellm_params: {model: mock/echo}
router_settings:
  fallbacks: [{2024: [2025]}]
  default_fallbacks: 2025
  redis_host: 10.0.0.1
  redis_password: 1.10
  redis_port: "6380"
  model_group_alias: {2023: 2024}
""")
    config = load_config_file(path)
    first, second = config.model_list
    params = first.litellm_params
    assert first.model_name == "2024" and second.model_name == "2025"
    assert params.api_version == "2024-06-01"
    assert params.api_key is not None and params.api_key.get_secret_value() == "0123"
    assert params.extra_query == {"api-flavour": "1.10"}
    assert params.extra_headers == {"x-since": "2024-06-01 10:00:00"}
    assert params.tags == ("2024", "1.50") and params.mock_response == "42"
    assert (first.model_info.id, first.model_info.state_domain) == ("0123", "7")
    settings = config.settings
    assert settings.fallbacks == [{"2024": ["2025"]}] and settings.default_fallbacks == ["2025"]
    assert settings.model_group_alias == {"2023": "2024"}
    assert settings.redis_dsn() == "redis://:1.10@10.0.0.1:6380/0"


def test_json_file_versions_keep_their_zeros(tmp_path: Path) -> None:
    path = write(tmp_path, "c.json", '{"model_list": [{"model_name": "m", "litellm_params": '
                 '{"model": "mock/echo", "api_version": 1.10}}]}')
    assert load_config_file(path).model_list[0].litellm_params.api_version == "1.10"


def test_a_date_from_a_caller_parsed_document_is_accepted() -> None:
    # Router(model_list=yaml.safe_load(...)["model_list"]): PyYAML's own loader made a date.
    config, _ = build_config([azure(api_version=datetime.date(2024, 6, 1))], {})
    assert config.model_list[0].litellm_params.api_version == "2024-06-01"
    config = parse_config_document({"model_list": [mock(2024)]}, source="doc")
    assert config.model_list[0].model_name == "2024"


def test_a_float_without_its_written_form_is_refused_by_path() -> None:
    (problem,) = problems([azure(api_version=1.1)])
    assert problem.startswith("model_list[0].litellm_params.api_version: expected text")
    assert "quote it" in problem
    (problem,) = problems([azure(api_key=98765.4321)])
    assert problem.startswith("model_list[0].litellm_params.api_key:")
    assert "98765" not in problem  # a secret is never shown


# --- numbers that are not numbers ------------------------------------------------------


@pytest.mark.parametrize(("settings", "path"), [
    ({"timeout": 1e309}, "timeout"),
    ({"timeout": float("nan")}, "timeout"),
    ({"stream_timeout": float("inf")}, "stream_timeout"),
    ({"cooldown_time": float("inf")}, "cooldown_time"),
    ({"retry_after": float("inf")}, "retry_after"),
    ({"response_ownership_ttl": float("inf")}, "response_ownership_ttl"),
    ({"allowed_fails": True}, "allowed_fails"),
    ({"num_retries": False}, "num_retries"),
    ({"max_fallbacks": True}, "max_fallbacks"),
    ({"timeout": True}, "timeout"),
    ({"num_retries": "3"}, "num_retries"),
    ({"timeout": "30"}, "timeout"),
    ({"redis_port": "6379", "redis_host": "h"}, "redis_port"),
    ({"num_retries": 2.0}, "num_retries"),  # as per call: an integer is an int
    ({"allowed_fails": 3.5}, "allowed_fails"),
])
def test_bad_numeric_arguments_are_config_errors(settings: dict[str, Any], path: str) -> None:
    (problem,) = problems([mock()], settings)
    assert problem.startswith(f"router_settings.{path}:")


@pytest.mark.parametrize(("params", "path"), [
    ({"timeout": float("inf")}, "timeout"),
    ({"stream_timeout": 1e309}, "stream_timeout"),
    ({"weight": float("inf")}, "weight"),
    ({"rpm": True}, "rpm"),
    ({"max_parallel_requests": True}, "max_parallel_requests"),
])
def test_bad_numeric_deployment_params_are_config_errors(params: dict[str, Any], path: str) -> None:
    (problem,) = problems([mock(**params)])
    assert problem.startswith(f"model_list[0].litellm_params.{path}:")


def test_numeric_text_is_read_from_files_and_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # LiteLLM documents redis_port as a string; an os.environ/ value is always text.
    monkeypatch.setenv("RETRIES", "4")
    path = write(tmp_path, "c.yaml", """
model_list: [{model_name: m, litellm_params: {model: mock/echo, rpm: "60"}}]
router_settings: {num_retries: os.environ/RETRIES, timeout: "30", redis_host: h,
                  redis_port: "6380"}
""")
    config = load_config_file(path)
    assert (config.settings.num_retries, config.settings.timeout) == (4, 30.0)
    assert config.settings.redis_port == 6380
    assert config.model_list[0].litellm_params.rpm == 60
    built, _ = build_config([mock()], {"num_retries": "os.environ/RETRIES"})
    assert built.settings.num_retries == 4


def test_a_boolean_in_a_file_is_not_a_count(tmp_path: Path) -> None:
    path = write(tmp_path, "c.yaml", """
model_list: [{model_name: m, litellm_params: {model: mock/echo}}]
router_settings: {allowed_fails: yes}
""")
    with pytest.raises(ConfigError) as info:
        load_config_file(path)
    assert info.value.problems == (
        "router_settings.allowed_fails: expected a number, got a boolean",)


def test_a_deployment_header_must_be_well_formed() -> None:
    (problem,) = problems([mock(extra_headers={"x-a": "v\r\nInjected: sk-SECRET"})])
    assert problem == ("model_list[0].litellm_params.extra_headers: "
                       "header 'x-a': the value contains CR, LF or NUL")
    (problem,) = problems([mock(extra_headers={"bad name": "v"})])
    assert "not a valid HTTP header name" in problem
    # A deployment may set its own credentials this way (a caller may not).
    config, _ = build_config([mock(extra_headers={"Authorization": "Bearer k"})], {})
    assert config.model_list[0].litellm_params.extra_headers == {"Authorization": "Bearer k"}


def test_an_unquoted_yes_in_a_text_field_is_explained(tmp_path: Path) -> None:
    path = write(tmp_path, "c.yaml", "model_list: [{model_name: yes, litellm_params: "
                                     "{model: mock/echo}}]\n")
    with pytest.raises(ConfigError) as info:
        load_config_file(path)
    (problem,) = info.value.problems
    assert problem.startswith("model_list[0].model_name: expected text, got a boolean")
    assert "quote it" in problem


def test_a_duplicate_key_is_warned_with_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "c.yaml", """
model_list: [{model_name: m, litellm_params: {model: mock/echo}}]
router_settings:
  num_retries: 5
router_settings:
  timeout: 30
""")
    with pytest.warns(ConfigWarning, match=r"later value wins: line 5: duplicate key "
                                           r"'router_settings'"):
        config = load_config_file(path)
    assert (config.settings.num_retries, config.settings.timeout) == (2, 30)  # as safe_load


def test_merge_keys_are_not_duplicates() -> None:
    duplicates: list[str] = []
    doc = load_yaml("base: &b {model: mock/echo, rpm: 5}\nentry: {<<: *b, rpm: 6}\n", duplicates)
    assert doc["entry"] == {"model": "mock/echo", "rpm": 6}
    assert duplicates == []


@pytest.mark.parametrize("field", ["api_key", "organization", "api_version", "api_base"])
def test_a_line_break_in_a_sent_value_is_refused_unshown(field: str) -> None:
    value = {"api_base": "https://east.openai.azure.com/sk-SECRET\n"}.get(field, "sk-SECRET\n")
    (problem,) = problems([azure(**{field: value})])
    assert problem.startswith(f"model_list[0].litellm_params.{field}: contains a line break")
    assert "SECRET" not in problem


@pytest.mark.parametrize("field", ["redis_url", "redis_password", "redis_host"])
def test_a_line_break_in_a_redis_setting_is_refused_unshown(field: str) -> None:
    value = "redis://:sk-SECRET@h:6379/0\n" if field == "redis_url" else "sk-SECRET\r\n"
    (problem,) = problems([mock()], {field: value})
    assert problem.startswith(f"router_settings.{field}: contains a line break")
    assert "SECRET" not in problem


@pytest.mark.parametrize(("api_base", "says"), [
    ("https://host.example:99999/v1", "has an invalid port"),
    ("https://host.example:abc/v1", "has an invalid port"),
    ("https://exa mple.com/v1", "must be an http:// or https:// URL with a host"),
    ("https://user:sk-SECRET@host.example/v1", "must not carry credentials"),
    ("https://host.example/v1?api-version=2024-06-01", "must not carry a query or fragment"),
    ("https://host.example/v1#x", "must not carry a query or fragment"),
])
def test_an_api_base_that_no_request_could_use_is_refused(api_base: str, says: str) -> None:
    (problem,) = problems([mock(model="openai/gpt-4o", api_base=api_base)])
    assert problem.startswith(f"model_list[0].litellm_params.api_base: {says}")
    assert "SECRET" not in problem


@pytest.mark.parametrize(("url", "reason"), [
    ("redis://localhost:99999/0", "Port out of range"),
    ("redis://localhost:6379/0?socket_timeout=abc", "Invalid value for 'socket_timeout'"),
    ("unix:///tmp/redis.sock?db=abc", "Invalid value for 'db'"),
])
def test_a_redis_url_redis_py_cannot_use_is_refused(url: str, reason: str) -> None:
    (problem,) = problems([mock()], {"redis_url": url})
    assert problem.startswith("router_settings.redis_url: is not a URL redis-py accepts: ")
    assert reason in problem
