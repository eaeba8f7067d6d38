"""The context-window check and the input-size estimate it uses (checks/context_window.py,
router/tokens.py)."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from checks.context_window import ContextWindowCheck
from router.attempts import Dispatcher
from router.clock import ManualClock
from router.config import DeploymentConfig
from router.cooldown import Cooldowns
from router.deployment import Deployment
from router.errors import ContextWindowExceededError
from router.fallbacks import FallbackPlan
from router.load import LoadHandle, LoadTracker
from router.request import RouteRequest
from router.retry import RetryPolicy
from router.table import DeploymentTable
from router.tokens import IMAGE_TOKENS, estimate_input_tokens

# isort: split
from providers.mock import MockProvider


def table(*windows: tuple[str, int | None]) -> DeploymentTable:
    """One deployment per ``(group, max_input_tokens)``, ids ``{group}-{i}``."""
    configs = [DeploymentConfig.model_validate({
        "model_name": group, "litellm_params": {"model": f"mock/m{i}"},
        "model_info": {"id": f"{group}-{i}", "max_input_tokens": window},
    }) for i, (group, window) in enumerate(windows)]
    return DeploymentTable(configs, {"mock": MockProvider()})


def ids(deployments: list[Deployment]) -> list[str]:
    return [d.id for d in deployments]


def request(model: str = "small", **params: Any) -> RouteRequest:
    return RouteRequest(model=model, params=params)


# -- the estimate -----------------------------------------------------------------------


def test_text_is_characters_over_four_rounded_up() -> None:
    assert estimate_input_tokens({}) == 0
    assert estimate_input_tokens({"input": "abcd"}) == 1
    assert estimate_input_tokens({"input": "abcde"}) == 2
    assert estimate_input_tokens({"input": "x" * 10, "instructions": "y" * 6}) == 4


def test_every_text_field_of_input_items_counts() -> None:
    items = [
        {"role": "user", "content": "a" * 8},
        {"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "b" * 8},
            {"type": "output_text", "text": "c" * 4, "annotations": []},
        ]},
        {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{\"q\":1}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "d" * 5},
        {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "e" * 4}],
         "encrypted_content": "z" * 400},
    ]
    # 8 + 8 + 4 + 7 + 5 + 4 = 36 characters; ids, roles, types and encrypted content do not count
    assert estimate_input_tokens({"input": items}) == 9


def test_an_image_counts_a_fixed_amount_whatever_its_url() -> None:
    image = {"type": "input_image", "image_url": "data:image/png;base64," + "A" * 100_000}
    params = {"input": [{"role": "user", "content": [{"type": "input_text", "text": "abcd"},
                                                     image, image]}]}
    assert estimate_input_tokens(params) == 1 + 2 * IMAGE_TOKENS


def test_tools_count_as_their_json() -> None:
    tools = [{"type": "function", "name": "lookup", "parameters": {"type": "object"}}]
    size = len(json.dumps(tools, separators=(",", ":")))
    assert estimate_input_tokens({"tools": tools}) == -(-size // 4)


def test_what_cannot_be_seen_counts_nothing() -> None:
    params = {"input": [{"type": "item_reference", "id": "msg_1"},
                        {"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}],
              "previous_response_id": "resp_1"}
    assert estimate_input_tokens(params) == 0


# -- the check --------------------------------------------------------------------------


async def test_deployments_too_small_are_dropped_others_and_undeclared_kept() -> None:
    t = table(("small", 10), ("small", 100), ("small", None))
    kept = await ContextWindowCheck().filter(list(t.group("small")), request(input="x" * 200))
    assert ids(kept) == ["small-1", "small-2"]  # 50 tokens: only the 10-token window is too small


async def test_an_input_that_fits_exactly_is_kept() -> None:
    t = table(("small", 10))
    kept = await ContextWindowCheck().filter(list(t.group("small")), request(input="x" * 40))
    assert ids(kept) == ["small-0"]


async def test_when_no_deployment_is_large_enough_the_error_leads_to_context_fallbacks() -> None:
    t = table(("small", 10), ("small", 20))
    with pytest.raises(ContextWindowExceededError) as caught:
        await ContextWindowCheck().filter(list(t.group("small")), request(input="x" * 400))
    error = caught.value
    assert error.fallback == "context_window"
    assert error.model_group == "small"
    assert "about 100 tokens" in error.message and "small-0: 10, small-1: 20" in error.message


async def test_truncation_auto_or_no_declared_windows_skip_the_check() -> None:
    check = ContextWindowCheck()
    small = list(table(("small", 1)).group("small"))
    assert await check.filter(small, request(input="x" * 400, truncation="auto")) == small
    undeclared = list(table(("small", None)).group("small"))
    assert await check.filter(undeclared, request(input="x" * 400)) is undeclared


class InOrder:
    def pick(self, candidates: Any, request: RouteRequest) -> Deployment:
        return candidates[0]  # type: ignore[no-any-return]


async def test_the_attempt_loop_goes_on_to_context_window_fallbacks() -> None:
    """No dispatcher change is needed: the error's fallback kind selects the list."""
    t = table(("small", 10), ("big", 1000), ("other", 1000))
    clock = ManualClock()
    dispatcher = Dispatcher(
        table=t, strategy=InOrder(), checks=[ContextWindowCheck()],
        cooldowns=Cooldowns(clock, allowed_fails=3, cooldown_time=5.0),
        load=LoadTracker(clock), retry=RetryPolicy(0),
        fallbacks=FallbackPlan(fallbacks=[{"small": ["other"]}],
                               context_window_fallbacks=[{"small": ["big"]}]),
        clock=clock, rng=random.Random(0),
    )

    async def call(deployment: Deployment, timeout: float | None, handle: LoadHandle) -> str:
        handle.release()
        return deployment.id

    served = await dispatcher.run(request(input="x" * 400), call)
    assert served.result == "big-1"
    assert served.trail.fallbacks == ["big"]
