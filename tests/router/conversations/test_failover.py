"""``conversation_failover``: a native conversation survives the loss of its owner.

Two native fake upstreams (each holds only its own responses, as OpenAI
does). With failover on, a conversation whose owner is down, cooling or
gone from the config goes on elsewhere: the new deployment receives the
stored history as ``input`` (exact, without ``previous_response_id``), the
response says it was replayed, and the new response's owner is recorded so
the conversation then continues natively there. With failover off, today's
clear error.
"""

from __future__ import annotations

from typing import Any

import pytest

from router.errors import PinnedDeploymentUnavailableError
from router.router import Router
from tests.conftest import openai_dep

PIN = ["responses_api_deployment_check"]


def said(body: dict[str, Any]) -> list[str]:
    """The texts of a Responses ``input`` as the upstream received it."""
    out = []
    items = body["input"]
    for item in [items] if isinstance(items, str) else items:
        if isinstance(item, str):
            out.append(item)
            continue
        content = item.get("content")
        if isinstance(content, str):
            out.append(content)
        elif isinstance(content, list):
            out.extend(part.get("text", "") for part in content)
    return out


async def conversation(router: Router, turns: int, start: str | None = None) -> list[Any]:
    responses = []
    previous = start
    for i in range(turns):
        response = await router.aresponses(
            model="gpt-4o", input=f"turn {i}",
            **({"previous_response_id": previous} if previous else {}))
        responses.append(response)
        previous = response.id
    return responses


async def test_owner_down_the_conversation_goes_on_with_its_exact_history(
    upstreams: Any, make_router: Any
) -> None:
    east, west = await upstreams("east", "west")
    router = make_router([openai_dep(east, id="east"), openai_dep(west, id="west")],
                         optional_pre_call_checks=PIN, conversation_failover=True,
                         num_retries=2, rng=None)
    first = await conversation(router, 3)
    owner = east if first[-1].routing.deployment_id == "east" else west
    other = west if owner is east else east
    assert {r.routing.deployment_id for r in first} == {owner.name}  # pinned while it serves
    owner.faults.fail(503)  # the owner goes down
    before = len(other.requests)
    replayed = await router.aresponses(model="gpt-4o", input="turn 3",
                                       previous_response_id=first[-1].id)
    assert replayed.routing.deployment_id == other.name and replayed.routing.replayed
    assert any("replayed" in note for note in replayed.routing.trail.notes)
    body = other.requests[before].json
    assert "previous_response_id" not in body
    expected = []
    for i, r in enumerate(first):
        expected += [f"turn {i}", r.output_text]
    assert said(body) == [*expected, "turn 3"]
    # the new response is the next link, and its new owner serves what follows natively
    owner.faults.clear()
    after = await router.aresponses(model="gpt-4o", input="turn 4",
                                    previous_response_id=replayed.id)
    assert after.routing.deployment_id == other.name and not after.routing.replayed
    assert other.requests[-1].json["previous_response_id"] == replayed.id


async def test_owner_removed_from_the_config(upstreams: Any, make_router: Any) -> None:
    east, west = await upstreams("east", "west")
    shared: dict[str, Any] = {"optional_pre_call_checks": PIN, "conversation_failover": True}
    both = make_router([openai_dep(east, id="east"), openai_dep(west, id="west")], **shared)
    first = await conversation(both, 2)
    owner_id = first[-1].routing.deployment_id
    survivor = west if owner_id == "east" else east
    keeper_store = both._parts.keeper.store
    only = make_router([openai_dep(survivor, id=survivor.name)], **shared)
    only._parts.keeper._store = keeper_store  # one store, as two routers on one Redis
    only.services.ownership._store = both.services.ownership._store
    response = await only.aresponses(model="gpt-4o", input="later",
                                     previous_response_id=first[-1].id)
    assert response.routing.replayed and response.routing.deployment_id == survivor.name
    assert said(survivor.requests[-1].json)[-1] == "later"
    assert len(said(survivor.requests[-1].json)) == 5


async def test_failover_off_is_todays_clear_error(upstreams: Any, make_router: Any) -> None:
    east, west = await upstreams("east", "west")
    router = make_router([openai_dep(east, id="east"), openai_dep(west, id="west")],
                         optional_pre_call_checks=PIN, num_retries=1)
    first = await conversation(router, 2)
    owner = east if first[-1].routing.deployment_id == "east" else west
    owner.faults.fail(503)
    with pytest.raises(PinnedDeploymentUnavailableError, match=first[-1].id):
        await router.aresponses(model="gpt-4o", input="x", previous_response_id=first[-1].id)
    assert len(router._parts.keeper.store) == 0  # nothing was kept without failover


async def test_failover_per_request(upstreams: Any, make_router: Any) -> None:
    east, west = await upstreams("east", "west")
    router = make_router([openai_dep(east, id="east"), openai_dep(west, id="west")],
                         optional_pre_call_checks=PIN, num_retries=2)
    a = await router.aresponses(model="gpt-4o", input="one", conversation_failover=True)
    b = await router.aresponses(model="gpt-4o", input="two", previous_response_id=a.id,
                                conversation_failover=True)
    owner = east if b.routing.deployment_id == "east" else west
    other = west if owner is east else east
    owner.faults.fail(500)
    c = await router.aresponses(model="gpt-4o", input="three", previous_response_id=b.id,
                                conversation_failover=True)
    assert c.routing.deployment_id == other.name and c.routing.replayed
    assert said(other.requests[-1].json) == ["one", a.output_text, "two", b.output_text,
                                             "three"]


async def test_reasoning_items_do_not_cross_deployments(
    upstreams: Any, make_router: Any
) -> None:
    east, west = await upstreams("east", "west")
    router = make_router([openai_dep(east, id="east"), openai_dep(west, id="west")],
                         optional_pre_call_checks=PIN, conversation_failover=True)
    reasoning = {"type": "reasoning", "id": "rs_1", "summary": [],
                 "encrypted_content": "gAAAA-from-another-org"}
    first = await router.aresponses(
        model="gpt-4o", input=[{"role": "user", "content": "q"}, reasoning,
                               {"role": "assistant", "content": "a"}])
    owner = east if first.routing.deployment_id == "east" else west
    other = west if owner is east else east
    owner.faults.fail(503)
    second = await router.aresponses(model="gpt-4o", input="next",
                                     previous_response_id=first.id)
    assert second.routing.deployment_id == other.name
    sent = other.requests[-1].json["input"]
    assert not any(item.get("type") == "reasoning" for item in sent)
    assert any("reasoning items left out" in n for n in second.routing.trail.notes)
    assert all("id" not in item for item in sent if isinstance(item, dict)
               and item.get("role") == "assistant")


async def test_a_history_begun_before_failover_was_on_is_never_replayed_short(
    upstreams: Any, make_router: Any
) -> None:
    east, west = await upstreams("east", "west")
    router = make_router([openai_dep(east, id="east"), openai_dep(west, id="west")],
                         optional_pre_call_checks=PIN, num_retries=2)
    a = await router.aresponses(model="gpt-4o", input="one")  # failover off: not kept
    b = await router.aresponses(model="gpt-4o", input="two", previous_response_id=a.id,
                                conversation_failover=True)
    owner = east if b.routing.deployment_id == "east" else west
    owner.faults.fail(503)
    with pytest.raises(PinnedDeploymentUnavailableError):
        await router.aresponses(model="gpt-4o", input="three", previous_response_id=b.id,
                                conversation_failover=True)
