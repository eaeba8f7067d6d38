"""Response ownership end to end: real upstreams on sockets, the real Redis.

A stored response lives only on the upstream that made it; these tests check
that every later call about it (follow-up turns, streamed or not, retrieve,
delete, cancel, input items) reaches that upstream, whatever else happens:
cooldowns, the owner going down or leaving the config, key rotation, a
restart without Redis, a second router process, Redis dying and coming back.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import sys
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from router import Router
from router.clock import ManualClock
from router.errors import (
    InvalidRequestError,
    PinnedDeploymentUnavailableError,
    PreviousResponseNotFoundError,
    RateLimitError,
    ResponseNotFoundError,
)
from router.testing import Upstream

if TYPE_CHECKING:
    from tests.redis_fixtures import PrivateRedis, RedisSpace

pytest_plugins = ("tests.redis_fixtures",)

GROUP = "gpt-4o"
CHECK = ["responses_api_deployment_check"]
OWN = "own:"  # router.ownership.Ownership's key prefix, under redis_key_prefix
SECRET = "sk-do-not-leak-7f3a9c"
ROOT = Path(__file__).resolve().parents[2]

Ups = tuple[Upstream, Upstream, Upstream]


# --------------------------------------------------------------------------- helpers


def deployment(up: Upstream, *, key: str = SECRET, with_id: bool = True) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "model_name": GROUP,
        "litellm_params": {"model": "openai/gpt-4o", "api_base": f"{up.url}/v1", "api_key": key},
    }
    if with_id:
        entry["model_info"] = {"id": up.name}
    return entry


def model_list(ups: Iterable[Upstream], **kwargs: Any) -> list[dict[str, Any]]:
    return [deployment(up, **kwargs) for up in ups]


def build_router(
    ups: Iterable[Upstream],
    *,
    check: bool = True,
    redis: RedisSpace | None = None,
    seed: int = 7,
    key: str = SECRET,
    with_id: bool = True,
    **settings: Any,
) -> Router:
    if redis is not None:
        settings.update(redis_url=redis.url, redis_key_prefix=redis.prefix)
    return Router(
        model_list=model_list(ups, key=key, with_id=with_id),
        optional_pre_call_checks=CHECK if check else None,
        rng=random.Random(seed),
        **settings,
    )


def requests_of(ups: Iterable[Upstream], method: str | None = None) -> list[tuple[str, str]]:
    return [
        (up.name, r.path) for up in ups for r in up.requests
        if method is None or r.method == method
    ]


def reset(ups: Iterable[Upstream]) -> None:
    for up in ups:
        up.reset()


@dataclass(frozen=True)
class Turn:
    id: str
    deployment_id: str
    text: str


async def turn(
    router: Router,
    text: str,
    previous: str | None = None,
    *,
    stream: bool = False,
    on_created: Callable[[str, str], None] | None = None,
    **params: Any,
) -> Turn:
    """One create; with ``stream``, ``on_created`` runs right after ``response.created``."""
    if previous is not None:
        params["previous_response_id"] = previous
    if not stream:
        resp = await router.aresponses(model=GROUP, input=text, **params)
        assert resp.routing is not None
        return Turn(resp.id, resp.routing.deployment_id, resp.output_text)
    async with await router.aresponses(model=GROUP, input=text, stream=True, **params) as events:
        assert events.routing is not None
        first = await anext(events)
        assert first.type == "response.created"
        response_id = first.response.id
        if on_created is not None:
            on_created(response_id, events.routing.deployment_id)
        rest = [event.type async for event in events]
        assert rest[-1] == "response.completed"
        assert events.response is not None and events.response.id == response_id
        return Turn(response_id, events.routing.deployment_id, events.response.output_text)


async def conversation(
    router: Router, n: int, turns: int, *, stream: bool = False,
    on_created: Callable[[str, str], None] | None = None,
) -> list[Turn]:
    done: list[Turn] = []
    for t in range(1, turns + 1):
        previous = done[-1].id if done else None
        done.append(await turn(router, f"c{n} t{t}", previous, stream=stream,
                               on_created=on_created))
    return done


def assert_served_by_owner(
    conv: Sequence[Turn], n: int, upstream_of: Mapping[str, str] | None = None
) -> None:
    """Every turn on the first turn's deployment, and its upstream says so (turn numbers too)."""
    owner = conv[0].deployment_id
    name = owner if upstream_of is None else upstream_of[owner]
    for t, step in enumerate(conv, 1):
        assert step.deployment_id == owner, f"conversation {n} turn {t} left its owner"
        assert step.text == f"[{name}] turn {t}: c{n} t{t}"


def upstream_names(router: Router, ups: Iterable[Upstream]) -> dict[str, str]:
    """deployment id -> the name of the upstream it points at."""
    by_base = {f"{up.url}/v1": up.name for up in ups}
    return {d.id: by_base[d.config.litellm_params.api_base] for d in router.deployments()}


@pytest.fixture
async def ups() -> AsyncIterator[Ups]:
    async with Upstream("a") as a, Upstream("b") as b, Upstream("c") as c:
        yield a, b, c


@pytest.fixture
async def ups_slow_background() -> AsyncIterator[Ups]:
    async with (
        Upstream("a", background_delay=5.0) as a,
        Upstream("b", background_delay=5.0) as b,
        Upstream("c", background_delay=5.0) as c,
    ):
        yield a, b, c


# --------------------------------------------------------------------------- follow-ups


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_with_the_check_every_follow_up_lands_on_its_owner(
    ups: Ups, redis_space: RedisSpace, stream: bool
) -> None:
    router = build_router(ups, redis=redis_space, response_ownership_ttl=3600)
    seen_at_created: list[tuple[str, str, str | None]] = []

    def on_created(response_id: str, deployment_id: str) -> None:
        # The record exists before the caller has read past response.created.
        seen_at_created.append((response_id, deployment_id, redis_space.get(OWN + response_id)))

    try:
        convs = await asyncio.gather(*(
            conversation(router, n, 4, stream=stream, on_created=on_created) for n in range(30)
        ))
    finally:
        await router.aclose()

    for n, conv in enumerate(convs):
        assert_served_by_owner(conv, n)
    assert len({conv[0].deployment_id for conv in convs}) == 3  # the first turns spread
    assert requests_of(ups, "GET") == []  # every owner was known: no discovery

    keys = redis_space.keys()
    assert len(keys) == 120
    for conv in convs:
        for step in conv:
            assert redis_space.get(OWN + step.id) == step.deployment_id
    assert 3_500_000 < redis_space.pttl(OWN + convs[0][0].id) <= 3_600_000
    if stream:
        assert len(seen_at_created) == 120
        assert all(owner == recorded for _, owner, recorded in seen_at_created)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_without_the_check_follow_ups_scatter_and_fail(
    ups: Ups, redis_space: RedisSpace, stream: bool
) -> None:
    router = build_router(ups, check=False, redis=redis_space)
    failures: list[tuple[str, PreviousResponseNotFoundError]] = []
    served = 0

    async def run(n: int) -> None:
        nonlocal served
        first = await turn(router, f"c{n} t1", stream=stream)
        owner, previous = first.deployment_id, first.id
        for t in range(2, 5):
            try:
                step = await turn(router, f"c{n} t{t}", previous, stream=stream)
            except PreviousResponseNotFoundError as exc:
                failures.append((owner, exc))
                return
            assert step.deployment_id == owner  # only the owner can have served it
            assert step.text == f"[{owner}] turn {t}: c{n} t{t}"
            served += 1
            previous = step.id

    try:
        await asyncio.gather(*(run(n) for n in range(30)))
    finally:
        await router.aclose()

    assert failures, "without the check some follow-ups must land on a stranger"
    for owner, exc in failures:
        assert exc.code == "previous_response_not_found"
        assert exc.deployment_id != owner
    assert served + len(failures) <= 90


# --------------------------------------------------------------------------- by id


async def test_by_id_calls_route_to_the_owner(
    ups_slow_background: Ups, redis_space: RedisSpace
) -> None:
    ups = ups_slow_background
    names = {up.name: up for up in ups}
    router = build_router(ups, redis=redis_space)
    try:
        made = [await turn(router, f"hello {i}") for i in range(6)]
        background = await router.aresponses(model=GROUP, input="long job", background=True)
        assert background.status == "queued"
        reset(ups)

        for step in made:
            got = await router.aget_responses(step.id)
            assert got.id == step.id and got.output_text == step.text
            assert got.routing is not None and got.routing.deployment_id == step.deployment_id
            items = await router.alist_input_items(step.id, model=GROUP, order="asc")
            texts = [i["content"][0]["text"] for i in items.model_dump()["data"]]
            assert texts == [step.text.split(": ", 1)[1]]
        cancelled = await router.acancel_responses(background.id)
        assert cancelled.status == "cancelled"
        assert cancelled.routing is not None
        bg_owner = background.routing.deployment_id
        assert cancelled.routing.deployment_id == bg_owner
        assert names[bg_owner].stored[background.id]["status"] == "cancelled"

        # Every by-id request went to the owner, and only there.
        expected = sorted(
            [(s.deployment_id, f"/v1/responses/{s.id}") for s in made]
            + [(s.deployment_id, f"/v1/responses/{s.id}/input_items") for s in made]
            + [(bg_owner, f"/v1/responses/{background.id}/cancel")]
        )
        assert sorted(requests_of(ups)) == expected

        victim = made[0]
        assert redis_space.get(OWN + victim.id) == victim.deployment_id
        deleted = await router.adelete_responses(victim.id)
        assert deleted.deleted is True and deleted.id == victim.id
        assert victim.id not in names[victim.deployment_id].stored
        assert redis_space.get(OWN + victim.id) is None  # the record went with it
        assert await router.services.ownership.owner(victim.id) is None
        assert redis_space.get(OWN + made[1].id) == made[1].deployment_id

        reset(ups)
        with pytest.raises(ResponseNotFoundError):
            await router.aget_responses(victim.id)
        assert all(method == "GET" for up in ups for method in (r.method for r in up.requests))
    finally:
        await router.aclose()


# --------------------------------------------------------------------------- the pin


@pytest.mark.parametrize("how", ["record_failure", "429_on_another_request"])
async def test_owner_in_cooldown_still_serves_the_pinned_follow_up(ups: Ups, how: str) -> None:
    names = {up.name: up for up in ups}
    clock = ManualClock()
    router = build_router(ups, clock=clock, cooldown_time=60)
    try:
        first = await turn(router, "c0 t1")
        owner = first.deployment_id
        if how == "record_failure":
            router.services.cooldowns.record_failure(
                owner, RateLimitError("rate limited", status=429, deployment_id=owner)
            )
        else:
            names[owner].faults.fail(429)  # no Retry-After: a guess, which the pin outranks
            for i in range(40):  # fresh conversations until one attempt meets the owner
                await turn(router, f"other {i}")
                if any(e.deployment_id == owner for e in router.cooldowns()):
                    break
            names[owner].faults.clear()
        assert owner in {e.deployment_id for e in router.cooldowns()}

        reset(ups)
        others = [await turn(router, f"fresh {i}") for i in range(10)]
        assert all(t.deployment_id != owner for t in others)  # the cooldown is real
        assert names[owner].hits == 0

        second = await turn(router, "c0 t2", first.id)
        third = await turn(router, "c0 t3", second.id, stream=True)
        assert_served_by_owner([first, second, third], 0)
        assert owner in {e.deployment_id for e in router.cooldowns()}
    finally:
        await router.aclose()


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_owner_down_gives_a_clear_error_and_no_stranger_is_asked(
    ups: Ups, stream: bool
) -> None:
    names = {up.name: up for up in ups}
    router = build_router(ups, clock=ManualClock(), num_retries=2)
    try:
        first = await turn(router, "c0 t1")
        owner = first.deployment_id
        await names[owner].down()
        reset(ups)

        with pytest.raises(PinnedDeploymentUnavailableError) as caught:
            await turn(router, "c0 t2", first.id, stream=stream)
        err = caught.value
        assert err.response_id == first.id
        assert err.deployment_id == owner
        assert err.model_group == GROUP
        assert first.id in str(err) and repr(owner) in str(err)
        assert err.trail is not None
        assert [a.deployment_id for a in err.trail.attempts] == [owner] * 3
        shown = " ".join([str(err), repr(err), err.message, str(err.__cause__), str(err.trail)])
        assert SECRET not in shown
        assert "Bearer" not in shown
        assert requests_of(ups) == []  # nobody else was asked (and the owner is down)

        await names[owner].up()
        second = await turn(router, "c0 t2", first.id, stream=stream)
        assert_served_by_owner([first, second], 0)
        assert all(up.hits == 0 for up in ups if up.name != owner)
    finally:
        await router.aclose()


async def test_a_previous_response_id_in_extra_body_is_pinned_too(ups: Ups) -> None:
    """The body carries ``extra_body``'s id (merged last), so that is the one routed by."""
    router = build_router(ups)
    try:
        first = await turn(router, "c0 t1")
        turns = [first]
        for t in (2, 3, 4):
            turns.append(await turn(
                router, f"c0 t{t}", extra_body={"previous_response_id": turns[-1].id}
            ))
    finally:
        await router.aclose()

    assert_served_by_owner(turns, 0)


async def test_pinned_retry_honours_the_owners_retry_after(ups: Ups) -> None:
    names = {up.name: up for up in ups}
    clock = ManualClock()
    router = build_router(ups, clock=clock, num_retries=1)
    try:
        first = await turn(router, "c0 t1")
        owner = first.deployment_id
        names[owner].faults.fail(429, retry_after=3, times=1)
        second = await turn(router, "c0 t2", first.id)
        assert second.deployment_id == owner
        assert any(s >= 3 for s in clock.slept), clock.slept
    finally:
        await router.aclose()


async def test_owner_removed_from_the_config(ups: Ups, redis_space: RedisSpace) -> None:
    a, b, c = ups
    before = build_router([a], redis=redis_space)
    try:
        first = await turn(before, "c0 t1")
    finally:
        await before.aclose()
    assert first.deployment_id == "a"
    assert redis_space.get(OWN + first.id) == "a"

    after = build_router([b, c], redis=redis_space)  # "a" is gone from the config
    reset(ups)
    try:
        with pytest.raises(ResponseNotFoundError) as caught:
            await turn(after, "c0 t2", first.id)
        assert caught.value.response_id == first.id
        assert caught.value.model_group == GROUP
        assert first.id in str(caught.value)
        with pytest.raises(ResponseNotFoundError):
            await after.aget_responses(first.id)
        with pytest.raises(ResponseNotFoundError):
            await after.adelete_responses(first.id)
    finally:
        await after.aclose()
    # The follow-up was never sent: b and c were only asked whether they hold it.
    assert requests_of(ups, "POST") == []
    assert requests_of(ups, "DELETE") == []
    assert {name for name, _ in requests_of(ups)} <= {"b", "c"}
    assert a.hits == 0
    assert redis_space.get(OWN + first.id) == "a"  # not overwritten by a guess


@pytest.mark.parametrize("with_id", [True, False], ids=["model_info.id", "derived id"])
async def test_key_rotation_keeps_the_pins(
    ups: Ups, redis_space: RedisSpace, with_id: bool
) -> None:
    old = build_router(ups, redis=redis_space, key="sk-old-key-111", with_id=with_id)
    try:
        firsts = [await turn(old, f"c{n} t1") for n in range(9)]
        old_ids = sorted(d.id for d in old.deployments())
    finally:
        await old.aclose()
    assert len({f.deployment_id for f in firsts}) > 1

    new = build_router(ups, redis=redis_space, key="sk-new-key-222", with_id=with_id, seed=99)
    reset(ups)
    try:
        assert sorted(d.id for d in new.deployments()) == old_ids
        assert not any("sk-" in i for i in old_ids)
        upstream_of = upstream_names(new, ups)
        assert set(upstream_of.values()) == {"a", "b", "c"}
        for n, first in enumerate(firsts):
            second = await turn(new, f"c{n} t2", first.id)
            assert_served_by_owner([first, second], n, upstream_of)
    finally:
        await new.aclose()
    assert requests_of(ups, "GET") == []  # found in Redis, not rediscovered
    auth = {r.headers.get("authorization") for up in ups for r in up.requests}
    assert auth == {"Bearer sk-new-key-222"}


# --------------------------------------------------------------------------- discovery


async def test_restart_without_redis_discovers_the_owner_once(ups: Ups) -> None:
    before = build_router(ups)
    try:
        firsts = [await turn(before, f"c{n} t1") for n in range(3)]
    finally:
        await before.aclose()

    def asked(response_id: str) -> list[str]:
        """Who was asked for ``response_id`` (GET /responses/{id})."""
        return sorted(name for name, path in requests_of(ups, "GET")
                      if path == f"/v1/responses/{response_id}")

    after = build_router(ups, seed=3)  # a new instance: its memory knows nothing
    reset(ups)
    try:
        for n, first in enumerate(firsts):
            owner = first.deployment_id
            second = await turn(after, f"c{n} t2", first.id)
            # Asked once: the owner once, every other deployment at most once
            # (the rest are cancelled when the owner answers).
            assert asked(first.id).count(owner) == 1
            assert len(asked(first.id)) == len(set(asked(first.id))) <= 3

            again = await turn(after, f"c{n} t2", first.id)  # a branch from the same turn
            third = await turn(after, f"c{n} t3", second.id)
            assert asked(first.id).count(owner) == 1  # remembered: not asked again
            assert len(asked(first.id)) == len(set(asked(first.id)))
            assert asked(second.id) == []  # made through this router: recorded at once
            assert_served_by_owner([first, second, third], n)
            assert again.deployment_id == owner
        assert len(requests_of(ups, "POST")) == 9
    finally:
        await after.aclose()


async def test_discovery_with_the_owner_down_says_the_answer_may_change(ups: Ups) -> None:
    before = build_router(ups)
    try:
        first = await turn(before, "c0 t1")
    finally:
        await before.aclose()
    owner = next(up for up in ups if up.name == first.deployment_id)
    await owner.down()
    after = build_router(ups, seed=3)  # no Redis: its memory knows nothing
    try:
        with pytest.raises(ResponseNotFoundError) as info:
            await after.aresponses(model=GROUP, input="t2", previous_response_id=first.id)
        assert info.value.unreachable == (owner.name,)
        assert "try again" in str(info.value)
        await owner.up()
        second = await turn(after, "c0 t2", first.id)  # not remembered as missing
        assert second.deployment_id == owner.name
    finally:
        await after.aclose()


async def test_unknown_id_is_not_found_and_nothing_is_posted(
    ups: Ups, redis_space: RedisSpace
) -> None:
    router = build_router(ups, redis=redis_space)
    unknown = "resp_0123456789abcdef_nobody_made_this"
    try:
        with pytest.raises(ResponseNotFoundError) as caught:
            await turn(router, "hello", unknown)
        err = caught.value
        assert err.response_id == unknown and err.model_group == GROUP
        assert unknown in str(err) and repr(GROUP) in str(err)

        with pytest.raises(ResponseNotFoundError) as caught:
            await turn(router, "hello", unknown, stream=True)
        assert caught.value.response_id == unknown

        with pytest.raises(ResponseNotFoundError) as caught:
            await router.aget_responses(unknown, model=GROUP)
        assert repr(GROUP) in str(caught.value)
        for call in (router.aget_responses, router.adelete_responses,
                     router.acancel_responses, router.alist_input_items):
            with pytest.raises(ResponseNotFoundError) as caught:
                await call(unknown)
            assert caught.value.response_id == unknown
    finally:
        await router.aclose()
    assert requests_of(ups, "POST") == []
    assert requests_of(ups, "DELETE") == []
    assert {path for _, path in requests_of(ups)} == {f"/v1/responses/{unknown}"}
    assert redis_space.keys() == []


BAD_IDS = ["", "r" * 300, "resp_1 OR 1=1", "../x", "resp/../../admin", "resp_1\n", 42]


@pytest.mark.parametrize("bad", BAD_IDS, ids=lambda v: repr(v)[:20])
async def test_bad_ids_are_rejected_before_any_io(
    ups: Ups, redis_space: RedisSpace, bad: Any
) -> None:
    router = build_router(ups, redis=redis_space)
    try:
        with pytest.raises(InvalidRequestError, match="previous_response_id"):
            await router.aresponses(model=GROUP, input="hi", previous_response_id=bad)
        with pytest.raises(InvalidRequestError, match="previous_response_id"):
            await router.aresponses(model=GROUP, input="hi", previous_response_id=bad,
                                    stream=True)
        for call in (router.aget_responses, router.adelete_responses,
                     router.acancel_responses, router.alist_input_items):
            with pytest.raises(InvalidRequestError, match="response_id") as caught:
                await call(bad)
            assert "previous_response_id" not in str(caught.value)
            with pytest.raises(InvalidRequestError, match="response_id"):
                await call(bad, model=GROUP)
    finally:
        await router.aclose()
    assert [up.hits for up in ups] == [0, 0, 0]
    assert requests_of(ups) == []
    assert redis_space.keys() == []


@pytest.mark.parametrize("bad", [".", ".."])
async def test_dot_segment_ids_are_rejected_before_any_io(ups: Ups, bad: str) -> None:
    router = build_router(ups)
    try:
        with pytest.raises(InvalidRequestError, match="response_id"):
            await router.aget_responses(bad)
        with pytest.raises(InvalidRequestError, match="previous_response_id"):
            await router.aresponses(model=GROUP, input="hi", previous_response_id=bad)
    finally:
        await router.aclose()
    assert requests_of(ups) == []


# --------------------------------------------------------------------------- sharing


CHILD = """
import asyncio, json, sys
from router import Router

async def main() -> None:
    cfg = json.loads(sys.argv[1])
    async with Router(model_list=cfg["model_list"],
                      optional_pre_call_checks=["responses_api_deployment_check"],
                      redis_url=cfg["redis_url"], redis_key_prefix=cfg["prefix"]) as router:
        made = await router.aresponses(model="gpt-4o", input="from the child")
        print(json.dumps({"id": made.id, "owner": made.routing.deployment_id}), flush=True)

asyncio.run(main())
"""


async def test_two_router_processes_share_ownership_through_redis(
    ups: Ups, redis_space: RedisSpace, tmp_path: Path
) -> None:
    names = {up.name: up for up in ups}
    script = tmp_path / "child_router.py"
    script.write_text(CHILD)
    cfg = {"model_list": model_list(ups), "redis_url": redis_space.url,
           "prefix": redis_space.prefix}
    child = await asyncio.create_subprocess_exec(
        sys.executable, str(script), json.dumps(cfg), cwd=str(ROOT),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(child.communicate(), timeout=30)
    assert child.returncode == 0, err.decode()[-2000:]
    made = json.loads(out.decode().strip().splitlines()[-1])
    rid, owner = made["id"], made["owner"]
    assert rid in names[owner].stored
    assert redis_space.get(OWN + rid) == owner

    router = build_router(ups, redis=redis_space, seed=11)
    reset(ups)
    try:
        second = await turn(router, "from the parent", rid)
        assert second.deployment_id == owner
        assert second.text == f"[{owner}] turn 2: from the parent"
        third = await turn(router, "and again", second.id, stream=True)
        assert third.deployment_id == owner
        got = await router.aget_responses(rid)
        assert got.routing is not None and got.routing.deployment_id == owner
        assert got.output_text == f"[{owner}] turn 1: from the child"
        deleted = await router.adelete_responses(rid)
        assert deleted.deleted is True
    finally:
        await router.aclose()
    assert rid not in names[owner].stored
    assert redis_space.get(OWN + rid) is None
    assert {name for name, _ in requests_of(ups)} == {owner}  # no discovery, no stranger


async def test_redis_killed_mid_run_and_restarted(
    ups: Ups, private_redis: PrivateRedis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="router.state")
    prefix = "kill-test:"
    clock = ManualClock()
    router = Router(
        model_list=model_list(ups), optional_pre_call_checks=CHECK, rng=random.Random(5),
        redis_url=private_redis.url, redis_key_prefix=prefix, clock=clock,
    )
    peek = private_redis.client()

    def failed_warnings() -> list[logging.LogRecord]:
        return [r for r in caplog.records
                if r.name == "router.state" and "failed" in r.getMessage()]

    try:
        early = await asyncio.gather(*(conversation(router, n, 2) for n in range(10)))
        assert len(peek.keys(prefix + "*")) == 20

        await asyncio.to_thread(private_redis.stop)  # Redis dies under the router
        continued: list[list[Turn]] = []
        for n, conv in enumerate(early):
            steps = list(conv)
            for t in (3, 4):
                steps.append(await turn(router, f"c{n} t{t}", steps[-1].id))
            continued.append(steps)
        clock.advance(6)  # past the retry interval: Redis is tried again, still dead
        fresh = await asyncio.gather(*(conversation(router, n, 3) for n in range(10, 15)))
        for n, conv in enumerate([*continued, *fresh]):
            assert_served_by_owner(conv, n)
        assert router.services.store.degraded
        assert len(failed_warnings()) == 1
        assert requests_of(ups, "GET") == []  # memory knew every owner

        await asyncio.to_thread(private_redis.start)  # back, on the same port, empty
        assert peek.keys(prefix + "*") == []
        clock.advance(6)
        after = await conversation(router, 15, 2)
        assert_served_by_owner(after, 15)
        assert not router.services.store.degraded
        assert sorted(peek.keys(prefix + "*")) == sorted(f"{prefix}{OWN}{t.id}" for t in after)
        assert all(peek.get(f"{prefix}{OWN}{t.id}") == t.deployment_id for t in after)
        assert sum("again" in r.getMessage() for r in caplog.records) == 1

        for n, conv in enumerate(continued):  # conversations from before the kill go on
            step = await turn(router, f"c{n} t5", conv[-1].id)
            assert_served_by_owner([*conv, step], n)
        assert len(failed_warnings()) == 1
    finally:
        peek.close()
        await router.aclose()


async def test_two_routers_without_redis_share_nothing(ups: Ups) -> None:
    one = build_router(ups)
    two = build_router(ups, seed=8)
    try:
        assert one.services.store is not two.services.store
        assert one.services.ownership is not two.services.ownership
        assert one._parts.dispatcher._pinning is not two._parts.dispatcher._pinning

        first = await turn(one, "c0 t1")
        assert await one.services.ownership.owner(first.id) is not None
        assert await two.services.ownership.owner(first.id) is None  # one's pin is one's own

        reset(ups)
        second = await turn(two, "c0 t2", first.id)  # two discovers it
        assert second.deployment_id == first.deployment_id
        gets = requests_of(ups, "GET")
        assert (first.deployment_id, f"/v1/responses/{first.id}") in gets
        owner = await two.services.ownership.owner(first.id)
        assert owner is not None and owner.id == first.deployment_id

        # What two learnt and made stays in two.
        assert await one.services.ownership.owner(second.id) is None
        third = await turn(one, "c0 t3", second.id)
        assert_served_by_owner([first, second, third], 0)
        assert (second.deployment_id, f"/v1/responses/{second.id}") in requests_of(ups, "GET")
    finally:
        await one.aclose()
        await two.aclose()
