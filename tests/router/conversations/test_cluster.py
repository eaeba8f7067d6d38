"""Kept conversations on a real 3-master Redis Cluster (started by the test module).

A conversation's links share its first response's hash tag, so the one Lua
call that reads a chain stays in one slot; a replica that holds nothing
finds the root through the index key first (two round trips), then holds it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tests.router.conversations.harness import Fake, fakes, texts

if TYPE_CHECKING:
    from tests.redis_fixtures import PrivateCluster

pytest_plugins = ("tests.redis_fixtures",)
__all__ = ["fakes"]

PREFIX = "conv-cluster:"


async def test_a_conversation_continues_across_routers_on_a_cluster(
    fakes: Any, make_router: Any, redis_cluster: PrivateCluster
) -> None:
    fake: Fake = await fakes("gemini")
    settings = {"redis_startup_nodes": redis_cluster.startup_nodes, "redis_key_prefix": PREFIX}
    first = make_router([fake.deployment()], **settings)
    second = make_router([fake.deployment()], **settings)
    previous = None
    for i in range(6):
        router = first if i % 2 == 0 else second
        response = await router.aresponses(
            model="m", input=f"turn {i}",
            **({"previous_response_id": previous} if previous else {}))
        previous = response.id
    assert texts(fake.bodies()[-1])[0::2] == [f"turn {i}" for i in range(6)]
    with redis_cluster.cluster() as admin:
        links = [k for k in admin.scan_iter(match=PREFIX + "cv:*", target_nodes="all")]
        assert len(links) == 6
        slots = {admin.keyslot(k) for k in links}
        assert len(slots) == 1  # one tag: the first response's id
        for key in links:
            admin.delete(key)
        for key in admin.scan_iter(match=PREFIX + "*", target_nodes="all"):
            admin.delete(key)
