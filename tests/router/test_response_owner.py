"""``response_owner``: a name recorded with each stored response, in the ownership write.

Real upstreams on sockets (a Responses one, and a Chat Completions one whose
responses the router keeps), the in-memory state and the real Redis. The
router records the owner; it never enforces it (the server does).
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest

from router import Router
from router.errors import InvalidRequestError
from router.ownership import OWNER_PREFIX
from router.testing import Upstream, UpstreamProcess
from router.testing.chat import ChatUpstream

if TYPE_CHECKING:
    from tests.redis_fixtures import RedisSpace

pytest_plugins = ("tests.redis_fixtures",)

OWN = "own:"  # router.ownership.Ownership's key prefix for the deployment


@pytest.fixture
async def up() -> AsyncIterator[Upstream]:
    async with Upstream("owner-a") as server:
        yield server


def _router(up: Upstream | UpstreamProcess, **settings: Any) -> Router:
    return Router(model_list=[{
        "model_name": "gpt-4o", "model_info": {"id": "dep-a"},
        "litellm_params": {"model": "openai/gpt-4o", "api_base": f"{up.url}/v1",
                           "api_key": "k"}}], rng=random.Random(1), **settings)


async def _create(router: Router, stream: bool, **params: Any) -> str:
    if not stream:
        made = await router.aresponses(model="gpt-4o", input="hi", **params)
        return str(made.id)
    events = await router.aresponses(model="gpt-4o", input="hi", stream=True, **params)
    async for _ in events:
        pass
    assert events.response is not None
    return str(events.response.id)


@pytest.mark.parametrize("stream", [False, True])
async def test_the_owner_is_recorded_and_read_back_in_memory(up: Upstream, stream: bool) -> None:
    async with _router(up) as router:
        mine = await _create(router, stream, response_owner="team-a")
        theirs = await _create(router, stream, response_owner="team-b")
        nobody = await _create(router, stream)
        unstored = await _create(router, stream, response_owner="team-a", store=False)
        assert await router.aresponse_owner(mine) == "team-a"
        assert await router.aresponse_owner(theirs) == "team-b"
        assert await router.aresponse_owner(nobody) is None
        assert await router.aresponse_owner(unstored) is None
        assert await router.aresponse_owner("resp_never_made") is None
        # the router records, never enforces: any call may continue any response
        follow = await router.aresponses(model="gpt-4o", input="more",
                                         previous_response_id=mine, response_owner="team-b")
        assert await router.aresponse_owner(str(follow.id)) == "team-b"
        await router.adelete_responses(mine)
        assert await router.aresponse_owner(mine) is None
    bodies = [r.json for r in up.requests if r.method == "POST"]
    assert bodies and not any("response_owner" in (b or {}) for b in bodies)  # not sent upstream


@pytest.mark.parametrize("stream", [False, True])
async def test_with_redis_the_owner_rides_the_ownership_write(
        up: Upstream, redis_space: RedisSpace, stream: bool) -> None:
    settings = {"redis_url": redis_space.url, "redis_key_prefix": redis_space.prefix,
                "response_ownership_ttl": 600}
    async with _router(up, **settings) as router:
        rid = await _create(router, stream, response_owner="team-a")
        plain = await _create(router, stream)
    assert redis_space.get(OWN + rid) == "dep-a" and redis_space.get(OWNER_PREFIX + rid) == "team-a"
    assert 550_000 < redis_space.pttl(OWNER_PREFIX + rid) <= 600_000
    assert redis_space.get(OWN + plain) == "dep-a"
    assert redis_space.get(OWNER_PREFIX + plain) is None
    async with _router(up, **settings) as other:  # another process on the same Redis
        assert await other.aresponse_owner(rid) == "team-a"
        assert await other.aresponse_owner(plain) is None


async def test_a_response_the_router_keeps_has_its_owner_and_no_deployment_record(
        redis_space: RedisSpace) -> None:
    async with ChatUpstream("owner-chat", api_key="k") as chat:
        router = Router(model_list=[{
            "model_name": "llama", "model_info": {"id": "dep-chat"},
            "litellm_params": {"model": "hosted_vllm/llama", "api_base": f"{chat.url}/v1",
                               "api_key": "k"}}],
            redis_url=redis_space.url, redis_key_prefix=redis_space.prefix)
        async with router:
            made = await router.aresponses(model="llama", input="hi", response_owner="team-a")
            follow = await router.aresponses(model="llama", input="more",
                                             previous_response_id=made.id,
                                             response_owner="team-a")
            assert await router.aresponse_owner(str(made.id)) == "team-a"
            assert await router.aresponse_owner(str(follow.id)) == "team-a"
    assert redis_space.get(OWN + str(made.id)) is None  # a Chat Completions server holds nothing


@pytest.mark.parametrize(("value", "message"), [
    (42, "response_owner: expected a non-empty string, got 42"),
    ("", "response_owner: expected a non-empty string"),
    ("a" * 257, "response_owner: at most 256 printable characters"),
    ("team\nb", "response_owner: at most 256 printable characters"),
])
async def test_a_bad_owner_is_refused_before_any_upstream_call(
        up: Upstream, value: Any, message: str) -> None:
    async with _router(up) as router:
        with pytest.raises(InvalidRequestError, match=message):
            await router.aresponses(model="gpt-4o", input="hi", response_owner=value)
        with pytest.raises(InvalidRequestError, match="response_id"):
            await router.aresponse_owner("bad id!")
    assert up.requests == []


def test_sync_twin() -> None:
    with UpstreamProcess("owner-sync", api_key="k") as up, _router(up) as router:
        made = router.responses(model="gpt-4o", input="hi", response_owner="team-a")
        assert router.response_owner(str(made.id)) == "team-a"
