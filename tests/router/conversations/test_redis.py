"""Kept conversations on a real Redis: one round trip per follow-up at any depth, TTLs,
encryption at rest and key rotation, two router processes taking turns, Redis down."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from cryptography.fernet import Fernet

from router.errors import ConversationUnavailableError, ResponseNotFoundError
from router.router import Router
from tests.router.conversations.harness import Fake, fakes, texts

if TYPE_CHECKING:
    from tests.redis_fixtures import PrivateRedis, RedisSpace

pytest_plugins = ("tests.redis_fixtures",)
__all__ = ["fakes"]

ROOT = Path(__file__).resolve().parents[3]


def settings(space: RedisSpace, **more: Any) -> dict[str, Any]:
    return {"redis_url": space.url, "redis_key_prefix": space.prefix, **more}


async def chain(router: Router, n: int, previous: str | None = None) -> list[Any]:
    out = []
    for i in range(n):
        response = await router.aresponses(
            model="m", input=f"turn {i}",
            **({"previous_response_id": previous} if previous else {}))
        out.append(response)
        previous = response.id
    return out


async def counted(router: Router) -> list[str]:
    """The commands the router's Redis client sends from now on (one per round trip)."""
    client = await router._parts.services.store.shared.ready()
    sent: list[str] = []
    original = client.execute_command

    async def execute(*args: Any, **options: Any) -> Any:
        sent.append(str(args[0]))
        return await original(*args, **options)

    client.execute_command = execute
    return sent


async def test_a_follow_up_costs_one_round_trip_at_any_depth(
    fakes: Any, make_router: Any, redis_space: RedisSpace
) -> None:
    fake: Fake = await fakes("anthropic")
    router = make_router([fake.deployment()], **settings(redis_space))
    made = await chain(router, 30)
    sent = await counted(router)
    for depth in (1, 10, 30):
        sent.clear()
        await router.aresponses(model="m", input="one more",
                                previous_response_id=made[depth - 1].id)
        # one EVALSHA reads the whole chain; one SET keeps the new link
        assert sent == ["EVALSHA", "SET"]
        assert texts(fake.bodies()[-1])[0::2] == [
            *[f"turn {i}" for i in range(depth)], "one more"]
    warm = make_router([fake.deployment()], **settings(redis_space))
    await warm.aresponses(model="m", input="fork", previous_response_id=made[-1].id)
    # (a server that never ran the chain script loads it once: SCRIPT LOAD, then EVALSHA)
    replica = make_router([fake.deployment()], **settings(redis_space))  # holds nothing
    cold = await counted(replica)
    await replica.aresponses(model="m", input="elsewhere", previous_response_id=made[-1].id)
    assert cold == ["EVALSHA", "SET"]  # the whole chain read in one call
    assert texts(fake.bodies()[-1])[0::2] == [*[f"turn {i}" for i in range(30)], "elsewhere"]
    every = redis_space.keys()
    stored = [k for k in every if ":cv:" in k]
    assert len(stored) == 35  # one key per response: storage grows with the items


async def test_reading_a_chain_renews_its_beginning(
    fakes: Any, make_router: Any, redis_space: RedisSpace
) -> None:
    fake: Fake = await fakes("chat")
    router = make_router([fake.deployment()], **settings(redis_space, conversation_ttl=600))
    first, second = await chain(router, 2)
    redis_space.client.pexpire(redis_space.prefix + "cv:" + first.id, 5_000)
    await router.aresponses(model="m", input="x", previous_response_id=second.id)
    assert redis_space.pttl("cv:" + first.id) > 500_000


async def test_expired_conversations_are_a_clear_error(
    fakes: Any, make_router: Any, redis_space: RedisSpace
) -> None:
    fake: Fake = await fakes("gemini")
    router = make_router([fake.deployment()], **settings(redis_space, conversation_ttl=0.5))
    (first,) = await chain(router, 1)
    await asyncio.sleep(0.7)
    with pytest.raises(ResponseNotFoundError, match=first.id):
        await router.aresponses(model="m", input="late", previous_response_id=first.id)


async def test_content_is_sealed_at_rest_and_keys_rotate(
    fakes: Any, make_router: Any, redis_space: RedisSpace
) -> None:
    fake: Fake = await fakes("anthropic")
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    first = make_router([fake.deployment()], **settings(
        redis_space, conversation_encryption_keys=[old]))
    a = await first.aresponses(model="m", input="the secret plan")
    raw = redis_space.get("cv:" + a.id)
    assert raw is not None and "secret plan" not in raw and a.id not in raw.split("\n", 1)[1]
    rotated = make_router([fake.deployment()], **settings(
        redis_space, conversation_encryption_keys=[new, old]))
    b = await rotated.aresponses(model="m", input="step two", previous_response_id=a.id)
    assert texts(fake.bodies()[-1]) == ["the secret plan", a.output_text, "step two"]
    sealed_b = redis_space.get("cv:" + b.id)
    assert sealed_b is not None
    Fernet(new.encode()).decrypt(sealed_b.split("\n", 1)[1].encode())  # newest key writes
    only_new = make_router([fake.deployment()], **settings(
        redis_space, conversation_encryption_keys=[new]))
    with pytest.raises(ConversationUnavailableError, match="conversation_encryption_keys") as e:
        await only_new.aresponses(model="m", input="x", previous_response_id=b.id)
    assert old not in str(e.value) and new not in str(e.value)
    got = await rotated.aget_responses(a.id)
    assert got.output_text == a.output_text


def test_a_bad_key_is_a_config_error_that_hides_it() -> None:
    from router.errors import ConfigError

    with pytest.raises(ConfigError, match=r"conversation_encryption_keys\[0\]") as e:
        Router([{"model_name": "m", "litellm_params": {"model": "openai/x", "api_key": "k"}}],
               conversation_encryption_keys=["not-a-key-but-secret"])
    assert "not-a-key-but-secret" not in str(e.value)


async def test_two_router_processes_continue_one_conversation_in_turns(
    fakes: Any, make_router: Any, redis_space: RedisSpace
) -> None:
    fake: Fake = await fakes("anthropic")
    here = make_router([fake.deployment()], **settings(redis_space))
    peer = _start_peer(fake.server.url, redis_space)
    assert peer.stdin is not None and peer.stdout is not None
    try:
        assert await asyncio.to_thread(peer.stdout.readline) == "READY\n"
        previous = None
        for i in range(6):
            if i % 2 == 0:
                response = await here.aresponses(
                    model="m", input=f"turn {i}",
                    **({"previous_response_id": previous} if previous else {}))
                previous = response.id
            else:
                peer.stdin.write(f"turn {previous} turn {i}\n")
                peer.stdin.flush()
                answer = json.loads(await asyncio.to_thread(peer.stdout.readline))
                assert "id" in answer, answer
                previous = answer["id"]
        assert texts(fake.bodies()[-1])[0::2] == [f"turn {i}" for i in range(6)]
    finally:
        peer.stdin.write("quit\n")
        peer.stdin.flush()
        peer.wait(timeout=10)


def _start_peer(api_base: str, space: RedisSpace) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.router.conversations.peer", api_base, space.url,
         space.prefix], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)


async def test_redis_down_is_a_clear_error_never_a_fresh_start(
    fakes: Any, make_router: Any, private_redis: PrivateRedis
) -> None:
    fake: Fake = await fakes("bedrock")
    shared = {"redis_url": private_redis.url, "redis_key_prefix": "conv-down:"}
    writer = make_router([fake.deployment()], **shared)
    other = make_router([fake.deployment()], **shared)  # another replica: holds nothing
    before = await chain(writer, 2)
    await other.aresponses(model="m", input="warm", conversation_failover=False)
    private_redis.stop()
    sent = len(fake.bodies())
    started = time.monotonic()
    with pytest.raises(ConversationUnavailableError, match=before[-1].id):
        await other.aresponses(model="m", input="x", previous_response_id=before[-1].id)
    assert len(fake.bodies()) == sent and time.monotonic() - started < 3
    # the replica that wrote the history holds it: its follow-up goes on, exact
    await writer.aresponses(model="m", input="go on", previous_response_id=before[-1].id)
    assert texts(fake.bodies()[-1])[0::2] == ["turn 0", "turn 1", "go on"]
    # new conversations go on too, kept in this process until Redis is back
    during = await chain(writer, 2)
    assert texts(fake.bodies()[-1])[0::2] == ["turn 0", "turn 1"] and during[-1].id


async def test_a_delete_by_another_process_is_seen_at_once(
    fakes: Any, make_router: Any, redis_space: RedisSpace
) -> None:
    fake: Fake = await fakes("anthropic")
    writer = make_router([fake.deployment()], **settings(redis_space))
    deleter = make_router([fake.deployment()], **settings(redis_space))
    a, b, c = await chain(writer, 3)
    await deleter.adelete_responses(b.id)
    with pytest.raises(ResponseNotFoundError, match=b.id):
        await writer.aresponses(model="m", input="x", previous_response_id=c.id)
    sent = await counted(writer)
    await writer.aresponses(model="m", input="y", previous_response_id=a.id)
    assert sent == ["EVALSHA", "SET"]  # held here: one renewal call, one write


async def test_a_store_false_response_costs_no_round_trip(
    fakes: Any, make_router: Any, redis_space: RedisSpace
) -> None:
    fake: Fake = await fakes("chat")
    router = make_router([fake.deployment()], **settings(redis_space))
    await router.aresponses(model="m", input="warm", store=False)
    sent = await counted(router)
    unstored = await router.aresponses(model="m", input="secret", store=False)
    assert sent == []  # nothing of it goes to Redis, not even the mark
    with pytest.raises(ResponseNotFoundError, match="store=false"):  # this process knows
        await router.aresponses(model="m", input="more", previous_response_id=unstored.id)
    replica = make_router([fake.deployment()], **settings(redis_space))
    with pytest.raises(ResponseNotFoundError, match=unstored.id):  # elsewhere: not found
        await replica.aresponses(model="m", input="more", previous_response_id=unstored.id)
    every = redis_space.keys()
    assert not [k for k in every if unstored.id in k]
