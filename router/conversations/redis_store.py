"""Kept conversations on Redis: a whole chain in one round trip, TTLs renewed as it is read.

Each link is one string key (``{prefix}cv:{id}``, see
:mod:`router.conversations.links` for its form). :meth:`RedisConversations.chain`
runs one Lua script that walks the links from a response back to the root,
renewing each key's TTL, and returns them all: a follow-up at any depth costs
one round trip, and a conversation in use keeps its beginning. The mark of a
``store: false`` response (kept only so that a follow-up gets a clearer error)
stays in this process's memory: such a request costs no round trip, and
another process answers a follow-up with "not found".

On a Cluster, the links of a conversation share its root's hash tag
(``{prefix}cv:{root}id``) so the script stays in one slot, and an index key
``{prefix}cvr:{id}`` gives a response's root: a follow-up costs one more
round trip unless this process already knows the root (it made or read that
response).

**This process's copy.** Links are immutable once written, so every link this
process wrote or read is also kept decoded in memory (bounded by
``conversation_memory_max_bytes``, least recently used first). A chain this
process holds whole is not read again: one Lua call renews each link's TTL
and says whether one was deleted or has expired meanwhile (by another
process, or by its TTL), so a follow-up still costs one round trip, with a
few bytes each way instead of the whole history.

Redis is reached through the router's one :class:`RedisStore` and its breaker.
When Redis fails, new links are kept in this process's memory (bounded) until
it answers again, and a chain that cannot be read is reported unavailable so
the caller gets a clear error, never a shortened history. Writes are waited
for ``write_hold`` seconds at most, then finish in the background (the link
is also kept in memory meanwhile).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from cachetools import LRUCache

from router.conversations.links import NO_STORE, Link, dump, load, load_chain
from router.conversations.sealing import Sealer
from router.conversations.store import MAX_CHAIN, Chain, MemoryConversations, StoreUnavailable
from router.state.held import HeldWrites
from router.state.source import hash_tag

if TYPE_CHECKING:
    from router.state.redis import RedisStore

__all__ = ["RedisConversations"]

log = logging.getLogger("router.conversations")

WRITE_HOLD = 0.25
#: Link writes left running in the background at most.
MAX_BACKLOG = 1024
ROOTS_KNOWN = 65_536

# KEYS[1]: the first link's key; ARGV: key base (prefix, and a Cluster's tag), id, TTL in
# milliseconds, most links, "1" to stop at a first link of kind "native" (its owner may
# still hold the conversation: the rest is read only for a failover). Returns id, value
# pairs (each value cut to its header and replay part) from the response back to its
# root, and "!" .. id for the first link that is missing, joined by "\x1e" into one string
# (one bulk reply: redis-py parses it in one step, not one per element).
_CHAIN = """
local base, id = ARGV[1], ARGV[2]
local ttl, most, native_stop = tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5] == '1'
local out, n = {}, 0
while id and n < most do
  local key = base .. id
  local value = redis.call('GET', key)
  if not value then
    out[#out + 1] = '!' .. id
    return table.concat(out, '\\30')
  end
  redis.call('PEXPIRE', key, ttl)
  local first = string.find(value, '\\n', 1, true)
  local second = string.find(value, '\\n', first + 1, true)
  out[#out + 1] = id
  out[#out + 1] = second and string.sub(value, 1, second - 1) or value
  n = n + 1
  local header = string.sub(value, 1, first - 1)
  local sep = string.find(header, '\\31', 1, true)
  if n == 1 and native_stop then
    local kind = string.match(header, '^[^\\31]*\\31[^\\31]*\\31([^\\31]*)')
    if kind == 'native' then return table.concat(out, '\\30') end
  end
  local prev = string.sub(header, 1, sep - 1)
  if prev == '' then id = nil else id = prev end
end
return table.concat(out, '\\30')
"""


# KEYS[1]: the first link's key (for a Cluster's routing; every link shares its slot);
# ARGV: key base, TTL in ms, the ids of a chain this process holds joined by "\x1f" (one
# argument, not one per link). Renews each link's TTL; returns the index (1-based) of the
# first one that no longer exists, or 0.
_TOUCH = """
local base, ttl, i = ARGV[1], ARGV[2], 0
for id in string.gmatch(ARGV[3], '[^\\31]+') do
  i = i + 1
  if redis.call('PEXPIRE', base .. id, ttl) == 0 then return i end
end
return 0
"""


class RedisConversations:
    """A :class:`~router.conversations.store.ConversationStore` on the router's Redis."""

    def __init__(
        self, redis: RedisStore, sealer: Sealer, *, local_max_bytes: int,
        write_hold: float = WRITE_HOLD,
    ) -> None:
        self._redis = redis
        self._sealer = sealer
        self._cluster = redis.target.kind == "cluster"
        self._base = redis.prefix + "cv:"
        self._local = MemoryConversations(local_max_bytes)
        self._roots: LRUCache[str, str] = LRUCache(ROOTS_KNOWN)
        self._writes = HeldWrites(redis.breaker, write_hold, MAX_BACKLOG)
        self._scripts: dict[tuple[int, str], Any] = {}
        #: Links kept here only (written while Redis was away): not in Redis to renew.
        self._unsynced: set[str] = set()

    # -- keys -------------------------------------------------------------------------

    def _link_base(self, root: str) -> str:
        return self._base + hash_tag(root) if self._cluster else self._base

    def _root_key(self, response_id: str) -> str:
        return self._redis.prefix + "cvr:" + response_id

    def _head_key(self, conversation: str) -> str:
        return self._redis.prefix + "cvh:" + conversation

    # -- the store ----------------------------------------------------------------------

    async def put(self, link: Link, ttl: float) -> None:
        if link.kind == NO_STORE:  # only for a clearer error: this process, no round trip
            await self._local.put(link, ttl)
            return
        value = dump(link, self._sealer)
        px = max(1, int(ttl * 1000))
        if self._cluster:
            self._roots[link.id] = link.root

        async def write() -> None:
            client = await self._redis.ready()
            if not self._cluster:
                await client.set(self._base + link.id, value, px=px)
                return
            pipe = client.pipeline(transaction=False)
            pipe.set(self._link_base(link.root) + link.id, value, px=px)
            pipe.set(self._root_key(link.id), link.root, px=px)
            await pipe.execute()

        await self._local.put(link, ttl)
        if not await self._writes.write(write):
            self._unsynced.add(link.id)
            if len(self._unsynced) > ROOTS_KNOWN:
                self._unsynced.pop()

    def mark(self, response_id: str, prev: str | None, root: str, owner: str, group: str,
             conversation: str | None, ttl: float) -> None:
        self._local.mark(response_id, prev, root, owner, group, conversation, ttl)

    async def chain(self, response_id: str, ttl: float, *, whole: bool = True) -> Chain:
        local = await self._local.chain(response_id, ttl, whole=whole)
        if local.links and local.links[-1].kind == NO_STORE:
            return local  # a store=false mark, never written to Redis: nothing to renew
        if local.whole:
            held = [link for link in local.links if link.id not in self._unsynced]
            gone = await self._redis.breaker.guard(lambda: self._touch(held, ttl), None)
            if gone is None or gone == "":
                return local  # renewed in Redis (or Redis is away: what this process holds)
            await self._local.delete(gone)  # deleted or expired in Redis: read it again
        found = await self._redis.breaker.guard(
            lambda: self._read_chain(response_id, ttl, whole), None)
        if found is None:
            raise StoreUnavailable(response_id)
        for link in found.links:
            await self._local.put(link, ttl)
        return found

    async def get(self, response_id: str) -> Link | None:
        """The link of ``response_id`` alone (one read; content opened)."""
        async def read() -> str | None:
            client = await self._redis.ready()
            key = await self._key_of(client, response_id)
            value = None if key is None else await client.get(key)
            return None if value is None else str(value)

        value = await self._read(read, self._local.get, response_id)
        if value is None:
            return await self._local.get(response_id)
        return value if isinstance(value, Link) else load(response_id, value, self._sealer)

    async def delete(self, response_id: str) -> bool:
        local = await self._local.delete(response_id)

        async def remove() -> int:
            client = await self._redis.ready()
            key = await self._key_of(client, response_id)
            if key is None:
                return 0
            return int(await client.delete(key))

        removed = await self._redis.breaker.guard(remove, -1)
        if removed < 0:
            raise StoreUnavailable(response_id)
        return bool(removed) or local

    async def head(self, conversation: str) -> str | None:
        async def read() -> str | None:
            value = await (await self._redis.ready()).get(self._head_key(conversation))
            return None if value is None else str(value)

        head: str | None = await self._read(read, self._local.head, conversation)
        return head

    async def set_head(self, conversation: str, response_id: str, ttl: float) -> None:
        px = max(1, int(ttl * 1000))

        async def write() -> None:
            await (await self._redis.ready()).set(self._head_key(conversation), response_id, px=px)

        if not await self._writes.write(write):
            await self._local.set_head(conversation, response_id, ttl)

    async def flush(self) -> None:
        """Wait for this loop's background writes."""
        await self._writes.flush()

    async def aclose(self) -> None:
        await self.flush()
        await self._local.aclose()

    # -- internals ------------------------------------------------------------------------

    async def _read(self, read: Any, local: Any, key: str) -> Any:
        """``read()`` from Redis; while Redis is away, what ``local(key)`` holds, else
        :class:`StoreUnavailable`."""
        value = await self._redis.breaker.guard(read, _DOWN)
        if value is not _DOWN:
            return value
        held = await local(key)
        if held is None:
            raise StoreUnavailable(key)
        return held

    async def _key_of(self, client: Any, response_id: str) -> str | None:
        if not self._cluster:
            return self._base + response_id
        root = await self._root_of(client, response_id)
        return None if root is None else self._link_base(root) + response_id

    async def _root_of(self, client: Any, response_id: str) -> str | None:
        root = self._roots.get(response_id)
        if root is None:
            value = await client.get(self._root_key(response_id))
            root = None if value is None else str(value)
            if root is not None:
                self._roots[response_id] = root
        return root

    async def _touch(self, links: list[Link], ttl: float) -> str:
        """Renew ``links`` in Redis; the id of the first one gone, else ``""``."""
        if not links:
            return ""
        client = await self._redis.ready()
        base = self._link_base(links[0].root)
        script = self._script(client, _TOUCH)
        gone = int(await script(keys=[base + links[0].id],
                                args=[base, max(1, int(ttl * 1000)),
                                      "\x1f".join(link.id for link in links)]))
        return links[gone - 1].id if gone else ""

    async def _read_chain(self, response_id: str, ttl: float, whole: bool) -> Chain:
        client = await self._redis.ready()
        if self._cluster:
            root = await self._root_of(client, response_id)
            if root is None:
                return Chain([], response_id)
            base = self._link_base(root)
        else:
            base = self._base
        script = self._script(client, _CHAIN)
        raw = await script(keys=[base + response_id],
                           args=[base, response_id, max(1, int(ttl * 1000)), MAX_CHAIN,
                                 "0" if whole else "1"])
        return self._chain_from(str(raw or ""))

    def _chain_from(self, joined: str) -> Chain:
        raw = joined.split("\x1e") if joined else []
        pairs: list[tuple[str, str]] = []
        missing = None
        for i in range(0, len(raw), 2):
            item = raw[i]
            if item.startswith("!"):
                missing = item[1:]
                break
            pairs.append((item, raw[i + 1]))
        pairs.reverse()
        links = load_chain(pairs, self._sealer)
        if self._cluster:
            for link in links:
                self._roots[link.id] = link.root
        return Chain(links, missing)

    def _script(self, client: Any, text: str) -> Any:
        key = (id(client), text)
        found = self._scripts.get(key)
        if found is None:
            found = self._scripts[key] = client.register_script(text)
        return found

    def __repr__(self) -> str:
        return f"RedisConversations({self._redis!r})"


_DOWN: Any = object()

