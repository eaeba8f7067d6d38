"""Conversations on stateless (translated) deployments, end to end against the loopback fakes.

A follow-up with ``previous_response_id`` reaches the provider with the whole
history it continues (exact, in order, without the earlier ``instructions``),
on every translated provider, plain and streamed; forks keep each branch's
history; delete, ``store=false`` and the size limits give clear errors before
any upstream call; by-id calls are answered from the router's store.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from openai.types.responses import Response as SdkResponse
from openai.types.responses import ResponseInputItem
from pydantic import TypeAdapter

from router.errors import ConversationLimitError, InvalidRequestError, ResponseNotFoundError
from router.router import Router
from tests.router.conversations.harness import KINDS, Fake, fakes, texts

__all__ = ["fakes"]

StartFake = Callable[..., Awaitable[Fake]]
ITEM: TypeAdapter[Any] = TypeAdapter(ResponseInputItem)


async def turn(router: Router, stream: bool, **params: Any) -> Any:
    """One create; a stream is read to its end and its final response returned."""
    if not stream:
        return await router.aresponses(model="m", **params)
    result = await router.aresponses(model="m", stream=True, **params)
    async for _ in result:
        pass
    assert result.response is not None
    return result.response


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("kind", KINDS)
async def test_four_turns_carry_the_exact_history(
    fakes: StartFake, make_router: Any, kind: str, stream: bool
) -> None:
    fake = await fakes(kind)
    router = make_router([fake.deployment()])
    said = ["My name is Ann.", "I live in Oslo.", "I like tea.", "Who am I?"]
    previous = None
    answers: list[str] = []
    for i, text in enumerate(said):
        response = await turn(router, stream, input=text, instructions=f"rule {i}",
                              **({"previous_response_id": previous} if previous else {}))
        SdkResponse.model_validate(response.model_dump())
        assert response.previous_response_id is None or response.id != previous
        answers.append(response.output_text)
        previous = response.id
    last = fake.bodies()[-1]
    expected = [t for pair in zip(said[:-1], answers[:-1], strict=True) for t in pair]
    assert texts(last) == [*expected, said[-1]]
    assert "rule 0" not in str(last) and "rule 3" in str(last)  # instructions not carried


@pytest.mark.parametrize("kind", KINDS)
async def test_a_fork_keeps_each_branch_exact(
    fakes: StartFake, make_router: Any, kind: str
) -> None:
    fake = await fakes(kind)
    router = make_router([fake.deployment()])
    root = await router.aresponses(model="m", input="root")
    left = await router.aresponses(model="m", input="left", previous_response_id=root.id)
    right = await router.aresponses(model="m", input="right", previous_response_id=root.id)
    await router.aresponses(model="m", input="after left", previous_response_id=left.id)
    after_left = texts(fake.bodies()[-1])
    await router.aresponses(model="m", input="after right", previous_response_id=right.id)
    after_right = texts(fake.bodies()[-1])
    assert after_left == ["root", root.output_text, "left", left.output_text, "after left"]
    assert after_right == ["root", root.output_text, "right", right.output_text, "after right"]


async def test_any_deployment_of_the_group_continues_a_kept_conversation(
    fakes: StartFake, make_router: Any
) -> None:
    east, west = await fakes("anthropic", "east"), await fakes("anthropic", "west")
    router = make_router([east.deployment(), west.deployment()],
                         optional_pre_call_checks=["responses_api_deployment_check"])
    previous, turns = None, 0
    # simple-shuffle is random: go on until both deployments have served a turn
    # (at least 8 turns; 8 alike has odds 1/128, 40 alike 2**-39)
    while turns < 8 or (not (east.bodies() and west.bodies()) and turns < 40):
        response = await router.aresponses(
            model="m", input=f"turn {turns}",
            **({"previous_response_id": previous} if previous else {}))
        previous, turns = response.id, turns + 1
    assert east.bodies() and west.bodies()  # not pinned to the creator: the router keeps it
    last = max((f.bodies()[-1] for f in (east, west)), key=lambda b: len(texts(b)))
    assert texts(last)[0::2] == [f"turn {i}" for i in range(turns)]


async def test_tool_call_round_trip_is_replayed(fakes: StartFake, make_router: Any) -> None:
    fake = await fakes("anthropic")
    router = make_router([fake.deployment()])
    weather = {"type": "function", "name": "get_weather",
               "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}
    first = await router.aresponses(model="m", input="weather in Oslo? [tool:get_weather]",
                                    tools=[weather])
    calls = [item for item in first.raw["output"] if item["type"] == "function_call"]
    if not calls:
        pytest.skip("the fake answered without a tool call")
    result = {"type": "function_call_output", "call_id": calls[0]["call_id"], "output": "sunny"}
    ITEM.validate_python(result)
    await router.aresponses(model="m", input=[result], tools=[weather],
                            previous_response_id=first.id)
    body = fake.bodies()[-1]
    assert "tool_use" in str(body) and "sunny" in str(body)


async def test_by_id_calls_are_answered_from_the_store(
    fakes: StartFake, make_router: Any
) -> None:
    fake = await fakes("gemini")
    router = make_router([fake.deployment()])
    first = await router.aresponses(model="m", input="hello")
    second = await router.aresponses(
        model="m", input=[{"role": "user", "content": "a"}, {"role": "user", "content": "b"},
                          {"role": "user", "content": "c"}], previous_response_id=first.id)
    sent = len(fake.bodies())
    got = await router.aget_responses(second.id, include=["message.output_text.logprobs"])
    assert got.raw == second.raw and got.routing is not None
    assert got.routing.deployment_id == fake.name
    page = (await router.alist_input_items(second.id, limit=2, order="asc")).raw
    assert [i["content"][0]["text"] for i in page["data"]] == ["a", "b"] and page["has_more"]
    rest = (await router.alist_input_items(second.id, after=page["last_id"], order="asc")).raw
    assert [i["content"][0]["text"] for i in rest["data"]] == ["c"] and not rest["has_more"]
    newest = (await router.alist_input_items(second.id)).raw  # desc by default
    assert newest["data"][0]["content"][0]["text"] == "c"
    for item in newest["data"]:
        ITEM.validate_python(item)
    with pytest.raises(InvalidRequestError, match="cannot be cancelled"):
        await router.acancel_responses(second.id)
    deleted = await router.adelete_responses(second.id)
    assert deleted.raw == {"id": second.id, "object": "response.deleted", "deleted": True}
    with pytest.raises(ResponseNotFoundError, match="deleted"):
        await router.aresponses(model="m", input="more", previous_response_id=second.id)
    assert len(fake.bodies()) == sent  # nothing reached the provider for any of it


async def test_delete_in_the_middle_breaks_only_what_follows(
    fakes: StartFake, make_router: Any
) -> None:
    fake = await fakes("chat")
    router = make_router([fake.deployment()])
    a = await router.aresponses(model="m", input="a")
    b = await router.aresponses(model="m", input="b", previous_response_id=a.id)
    c = await router.aresponses(model="m", input="c", previous_response_id=b.id)
    await router.adelete_responses(b.id)
    with pytest.raises(ResponseNotFoundError, match=b.id):
        await router.aresponses(model="m", input="d", previous_response_id=c.id)
    again = await router.aresponses(model="m", input="again", previous_response_id=a.id)
    assert texts(fake.bodies()[-1]) == ["a", a.output_text, "again"] and again.id


async def test_store_false_keeps_nothing_and_says_so(fakes: StartFake, make_router: Any) -> None:
    fake = await fakes("bedrock")
    router = make_router([fake.deployment()])
    unstored = await router.aresponses(model="m", input="secret", store=False)
    sent = len(fake.bodies())
    with pytest.raises(ResponseNotFoundError, match="store=false"):
        await router.aresponses(model="m", input="more", previous_response_id=unstored.id)
    with pytest.raises(ResponseNotFoundError, match="store=false"):
        await router.aget_responses(unstored.id)
    assert len(fake.bodies()) == sent
    kept = router._parts.keeper.store
    link = await kept.get(unstored.id)
    assert link is not None and not link.content_kept and "secret" not in repr(link)


async def test_unknown_previous_response_is_refused_before_sending(
    fakes: StartFake, make_router: Any
) -> None:
    fake = await fakes("anthropic")
    router = make_router([fake.deployment()])
    with pytest.raises(ResponseNotFoundError, match="resp_nowhere"):
        await router.aresponses(model="m", input="x", previous_response_id="resp_nowhere")
    assert fake.bodies() == []


async def test_size_limits_are_errors_before_any_upstream_call(
    fakes: StartFake, make_router: Any
) -> None:
    fake = await fakes("anthropic")
    router = make_router([fake.deployment()], conversation_max_response_bytes=3000,
                         conversation_max_bytes=9000)
    with pytest.raises(ConversationLimitError, match="conversation_max_response_bytes") as big:
        await router.aresponses(model="m", input="x" * 3500)
    assert big.value.setting == "conversation_max_response_bytes" and big.value.size > 3000
    assert "xxxx" not in str(big.value)  # content never in errors
    previous = None
    with pytest.raises(ConversationLimitError, match="conversation_max_bytes") as whole:
        for i in range(20):
            response = await router.aresponses(
                model="m", input=f"turn {i} " + "y" * 40,
                **({"previous_response_id": previous} if previous else {}))
            previous = response.id
    sent = len(fake.bodies())
    assert whole.value.limit == 9000 and 2 < sent < 20
    with pytest.raises(ConversationLimitError):
        await router.aresponses(model="m", input="z" * 2000, previous_response_id=previous)
    assert len(fake.bodies()) == sent


async def test_both_state_parameters_are_refused(fakes: StartFake, make_router: Any) -> None:
    fake = await fakes("chat")
    router = make_router([fake.deployment()])
    first = await router.aresponses(model="m", input="a")
    with pytest.raises(InvalidRequestError, match="mutually exclusive"):
        await router.aresponses(model="m", input="b", previous_response_id=first.id,
                                conversation="conv_1")


@pytest.mark.parametrize("kind", ["anthropic", "gemini"])
async def test_router_kept_conversation_parameter(
    fakes: StartFake, make_router: Any, kind: str
) -> None:
    fake = await fakes(kind)
    router = make_router([fake.deployment()])
    one = await router.aresponses(model="m", input="first", conversation="conv_router_1")
    two = await router.aresponses(model="m", input="second",
                                  conversation={"id": "conv_router_1"})
    await router.aresponses(model="m", input="other", conversation="conv_router_2")
    await turn(router, True, input="third", conversation="conv_router_1")
    assert texts(fake.bodies()[-1]) == [
        "first", one.output_text, "second", two.output_text, "third"]
    assert "conversation" not in str(fake.bodies()[-1]).lower().replace("conv_", "")


def test_sync_twin_continues_a_conversation() -> None:
    import asyncio
    import threading

    from router.testing.anthropic import AnthropicUpstream
    from tests.router.conversations.harness import KEY

    ready, stop = threading.Event(), threading.Event()
    url: list[str] = []

    async def serve() -> None:
        async with AnthropicUpstream("sync", api_key=KEY) as up:
            url.append(up.url)
            ready.set()
            await asyncio.to_thread(stop.wait)

    thread = threading.Thread(target=lambda: asyncio.run(serve()))
    thread.start()
    try:
        assert ready.wait(10)
        dep = {"model_name": "m", "litellm_params": {
            "model": "anthropic/claude-sonnet-4-5", "api_base": url[0], "api_key": KEY}}
        with Router([dep]) as router:
            first = router.responses(model="m", input="sync one")
            second = router.responses(model="m", input="sync two",
                                      previous_response_id=first.id)
            assert second.output_text and router.get_responses(first.id).id == first.id
    finally:
        stop.set()
        thread.join()
