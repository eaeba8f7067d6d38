"""Router(...)'s object arguments and model_list, checked at construction (config/objects.py)."""

from __future__ import annotations

import random
from typing import Any

import pytest

from router.config.objects import check_objects
from router.errors import ConfigError
from router.router import Router
from tests.conftest import InOrder

MOCK = [{"model_name": "m", "litellm_params": {"model": "mock/echo"}}]


def problems(**arguments: Any) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as info:
        Router(MOCK, **arguments)
    return info.value.problems


@pytest.mark.parametrize(("arguments", "expected"), [
    ({"routing_strategy": 5},
     "routing_strategy: expected a strategy name or an object with pick(candidates, request), "
     "got an int"),
    ({"optional_pre_call_checks": "responses_api_deployment_check"},
     "optional_pre_call_checks: expected a list of check names or objects, got a string "
     "(write ['responses_api_deployment_check'])"),
    ({"optional_pre_call_checks": [3]},
     "optional_pre_call_checks[0]: expected a check name or an object with filter(), got an int"),
    ({"http_client": "x"}, "http_client: expected an httpx.AsyncClient, got a string"),
    ({"clock": "x"}, "clock: expected a clock with now(), wall() and sleep(), got a string"),
    ({"rng": 42}, "rng: expected a random.Random, got an int"),
    ({"strategies": {"mine": 5}},
     "strategies['mine']: expected a name and a callable factory, got an int"),
    ({"checks": 5}, "checks: expected a mapping of names to factories, got an int"),
    ({"callbacks": 5}, "callbacks: expected a list of callback objects, got an int"),
])
def test_a_wrong_object_is_named(arguments: dict[str, Any], expected: str) -> None:
    assert problems(**arguments) == (expected,)


def test_every_wrong_object_is_listed_at_once() -> None:
    assert len(problems(routing_strategy=5, rng="x", callbacks=1)) == 3


def test_right_objects_pass() -> None:
    check_objects(routing_strategy=InOrder(), rng=random.Random(1), callbacks=[],
                  optional_pre_call_checks=["responses_api_deployment_check"], clock=None)
    Router(MOCK, routing_strategy=InOrder(), rng=random.Random(1)).close()


@pytest.mark.parametrize(("model_list", "expected"), [
    ("x", "model_list: must be a list of deployments, got str"),
    ({"model_name": "m"}, "model_list: must be a list of deployments, got dict"),
    (None, "model_list: must list at least one deployment"),
])
def test_model_list_of_the_wrong_shape(model_list: Any, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        Router(model_list)
    assert info.value.problems == (expected,)


@pytest.mark.parametrize("name", ["disable_cooldowns", "retry_budget", "enable_pre_call_checks"])
def test_a_flag_argument_takes_no_text(name: str) -> None:
    assert problems(**{name: "false"}) == (
        f"router_settings.{name}: expected a boolean (True or False), got text (text is read "
        "as a value only in a config document: Router.from_config / from_dict, or os.environ/)",)


@pytest.mark.parametrize("field", ["stream", "model"])
def test_a_deployment_extra_body_leaves_stream_and_model_to_the_router(field: str) -> None:
    entry = {"model_name": "m", "litellm_params": {"model": "mock/echo",
                                                   "extra_body": {field: True}}}
    with pytest.raises(ConfigError) as info:
        Router([entry])
    assert info.value.problems == (
        f"model_list[0].litellm_params.extra_body: may not set {field!r}: the router sets it "
        "on every request",)
