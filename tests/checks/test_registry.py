"""The checks a configuration turns on without naming them (checks/registry.py)."""

from __future__ import annotations

from typing import Any

import pytest

from checks import CheckContext, default_checks
from router.clock import ManualClock
from router.config import DeploymentConfig, RouterConfig, RouterSettings
from router.table import DeploymentTable
from tests.checks.parts import services_for

# isort: split
from providers.mock import MockProvider


def context_for(params: list[dict[str, Any]], info: list[dict[str, Any]] | None = None,
                **settings: Any) -> tuple[RouterConfig, CheckContext]:
    configs = tuple(DeploymentConfig.model_validate({
        "model_name": "g", "litellm_params": {"model": f"mock/m{i}", **p},
        "model_info": {"id": f"g-{i}", **((info or [{}] * len(params))[i])},
    }) for i, p in enumerate(params))
    config = RouterConfig(model_list=configs, settings=RouterSettings(**settings))
    table = DeploymentTable(configs, {"mock": MockProvider()})
    return config, services_for(config, table, ManualClock())


def names(params: list[dict[str, Any]], info: list[dict[str, Any]] | None = None,
          **settings: Any) -> list[str]:
    config, context = context_for(params, info, **settings)
    return [c.name for c in default_checks(config, context)]


def test_a_plain_config_implies_no_check() -> None:
    assert names([{}, {"rpm": 10, "order": 1}]) == []  # rpm alone is a shuffle weight


def test_litellm_settings_turn_their_checks_on_in_running_order() -> None:
    everything = names(
        [{"rpm": 10, "max_parallel_requests": 4}, {}], [{"max_input_tokens": 1000}, {}],
        enable_pre_call_checks=True, enable_tag_filtering=True,
    )
    assert everything == ["tag_filtering", "context_window_check", "max_parallel_requests",
                          "enforce_model_rate_limits"]


@pytest.mark.parametrize(("params", "settings", "expected"), [
    ([{}], {"enable_tag_filtering": True}, ["tag_filtering"]),
    ([{}], {"default_max_parallel_requests": 2}, ["max_parallel_requests"]),
    ([{"tpm": 1000}], {"routing_strategy": "usage-based-routing-v2"},
     ["enforce_model_rate_limits"]),
    ([{"rpm": 5}], {"enable_pre_call_checks": True}, ["enforce_model_rate_limits"]),
    ([{}], {"enable_pre_call_checks": True}, []),  # nothing declares a window or a limit
])
def test_each_setting_alone(params: list[dict[str, Any]], settings: dict[str, Any],
                            expected: list[str]) -> None:
    assert names(params, **settings) == expected


def test_checks_named_in_optional_pre_call_checks_are_not_added_twice() -> None:
    assert names([{"rpm": 5}], optional_pre_call_checks=["enforce_model_rate_limits"],
                 enable_tag_filtering=True) == ["tag_filtering"]
