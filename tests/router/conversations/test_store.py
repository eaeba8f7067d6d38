"""The in-memory conversation store: chains, forks, TTLs renewed by reading, the byte bound."""

from __future__ import annotations

from router.conversations.links import KEPT, NATIVE, NO_STORE, Link
from router.conversations.store import MemoryConversations


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def link(rid: str, prev: str | None, size: int = 100, kind: str = KEPT) -> Link:
    return Link(rid, prev, "r0", kind, "d", "g", size, size, None, [{"n": rid}],
                {"output": [{"m": rid}]})


async def test_chains_and_forks_are_exact() -> None:
    store = MemoryConversations(10_000)
    for rid, prev in (("r0", None), ("r1", "r0"), ("r2a", "r1"), ("r2b", "r1")):
        await store.put(link(rid, prev), 60)
    a = await store.chain("r2a", 60)
    b = await store.chain("r2b", 60)
    assert [x.id for x in a.links] == ["r0", "r1", "r2a"] and a.whole
    assert [x.id for x in b.links] == ["r0", "r1", "r2b"] and b.whole
    missing = await store.chain("nope", 60)
    assert missing.missing == "nope" and not missing.whole


async def test_reading_renews_and_unread_links_expire() -> None:
    clock = Clock()
    store = MemoryConversations(10_000, timer=clock)
    await store.put(link("r0", None), 10)
    await store.put(link("r1", "r0"), 10)
    clock.now = 8
    assert (await store.chain("r1", 10)).whole  # renews both to t=18
    clock.now = 15
    assert (await store.chain("r1", 10)).whole
    clock.now = 30
    gone = await store.chain("r1", 10)
    assert gone.missing == "r1" and await store.get("r0") is None


async def test_the_byte_bound_evicts_the_least_recently_used() -> None:
    store = MemoryConversations(3 * (1000 + 256))
    for i in range(4):
        await store.put(link(f"r{i}", f"r{i - 1}" if i else None, size=1000), 60)
    assert await store.get("r0") is None and len(store) == 3
    broken = await store.chain("r3", 60)
    assert broken.missing == "r0" and [x.id for x in broken.links] == ["r1", "r2", "r3"]
    await store.put(link("huge", None, size=10**6), 60)  # larger than the store: not kept
    assert await store.get("huge") is None and store.bytes_held <= 3 * 1256


async def test_a_native_chain_can_be_read_to_its_last_link_only() -> None:
    store = MemoryConversations(10_000)
    await store.put(link("r0", None, kind=NATIVE), 60)
    await store.put(link("r1", "r0", kind=NATIVE), 60)
    head = await store.chain("r1", 60, whole=False)
    assert [x.id for x in head.links] == ["r1"]
    assert [x.id for x in (await store.chain("r1", 60)).links] == ["r0", "r1"]


async def test_heads_and_deletes() -> None:
    store = MemoryConversations(10_000)
    await store.set_head("conv_1", "r9", 60)
    assert await store.head("conv_1") == "r9" and await store.head("conv_2") is None
    await store.put(link("r0", None), 60)
    assert await store.delete("r0") and not await store.delete("r0")


async def test_a_mark_is_a_store_false_link_until_its_ttl() -> None:
    """``mark`` keeps what ``put`` of a ``nostore`` link keeps, read back alike."""
    clock = Clock()
    store = MemoryConversations(10_000, timer=clock)
    store.mark("r2", "r1", "r0", "d", "g", "conv_1", 10)
    await store.put(Link("r3", "r1", "r0", NO_STORE, "d", "g", conversation="conv_1"), 10)
    for rid in ("r2", "r3"):
        read = await store.get(rid)
        assert read is not None
        assert (read.prev, read.root, read.kind, read.owner, read.group,
                read.conversation) == ("r1", "r0", NO_STORE, "d", "g", "conv_1")
    clock.now = 11
    assert await store.get("r2") is None and await store.get("r3") is None
