"""OpenAI's ``conversation`` parameter on native deployments pins like ``previous_response_id``.

A conversation (``conv_...``) lives on the deployment whose project made it:
the router finds it there once (``GET conversations/{id}``, discovery), records
it, routes every request naming it to that deployment, and says so in the
attempt trail; a conversation no deployment holds is a clear error before any
create is sent.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from router.errors import ResponseNotFoundError
from tests.conftest import DEFAULT_KEY, openai_dep

PIN = ["responses_api_deployment_check"]


async def new_conversation(up: Any) -> str:
    async with httpx.AsyncClient() as client:
        answer = await client.post(f"{up.url}/v1/conversations", json={},
                                   headers={"authorization": f"Bearer {DEFAULT_KEY}"})
    answer.raise_for_status()
    conversation_id: str = answer.json()["id"]
    return conversation_id


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_requests_naming_a_conversation_go_to_its_deployment(
    upstreams: Any, make_router: Any, stream: bool
) -> None:
    east, west = await upstreams("east", "west")
    conversation = await new_conversation(west)
    router = make_router([openai_dep(east, id="east"), openai_dep(west, id="west")],
                         optional_pre_call_checks=PIN)
    for i in range(6):
        spelled: Any = conversation if i % 2 else {"id": conversation}
        result = await router.aresponses(model="gpt-4o", input=f"turn {i}",
                                         conversation=spelled, stream=stream)
        if stream:
            async for _ in result:
                pass
        assert result.routing.deployment_id == "west"
        assert any(conversation in note for note in result.routing.trail.notes)
    creates = [r for r in east.requests if r.method == "POST"]
    assert creates == []  # never sent to a deployment that does not hold it
    assert west.stored and all(
        r["conversation"] == {"id": conversation} for r in west.stored.values())
    assert "turn 6" in str(list(west.stored.values())[-1]["output"])  # the upstream's own turns


async def test_a_conversation_no_deployment_holds_is_a_clear_error(
    upstreams: Any, make_router: Any
) -> None:
    east, west = await upstreams("east", "west")
    router = make_router([openai_dep(east, id="east"), openai_dep(west, id="west")],
                         optional_pre_call_checks=PIN)
    with pytest.raises(ResponseNotFoundError, match="conversation 'conv_nowhere'"):
        await router.aresponses(model="gpt-4o", input="x", conversation="conv_nowhere")
    assert not [r for r in east.requests + west.requests if r.method == "POST"]


async def test_without_pinning_an_upstream_refusal_cools_nothing(
    upstreams: Any, make_router: Any
) -> None:
    east, west = await upstreams("east", "west")
    conversation = await new_conversation(east)
    router = make_router([openai_dep(east, id="east"), openai_dep(west, id="west")],
                         num_retries=2)
    for _ in range(4):
        response = await router.aresponses(model="gpt-4o", input="x", conversation=conversation)
        assert response.routing.deployment_id == "east"  # west's 404 moves it on
    assert router.cooldowns() == []
