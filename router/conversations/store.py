"""Where kept conversations live: the interface, and the in-memory store.

A store holds :class:`~router.conversations.links.Link` records by response
id, each with a TTL that every read of a chain through it renews (so a
conversation in use never loses its beginning), and, for conversations the
router keeps (the ``conversation`` parameter on stateless deployments), the
id of each conversation's latest response.

:meth:`ConversationStore.chain` returns a whole conversation, oldest first,
in one step (one Redis round trip in :mod:`router.conversations.redis_store`);
a chain that breaks (a link deleted, expired or evicted) says which id is
missing rather than returning part of the history.

:class:`MemoryConversations` is bounded by the bytes it holds
(``conversation_memory_max_bytes``); the least recently used links go
first, which breaks the chains they belonged to (a follow-up then gets a
clear error, never a shortened history).
"""

from __future__ import annotations

import time
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from cachetools import LRUCache

from router.conversations.links import NATIVE, NO_STORE, Link
from router.conversations.marks import Marks

__all__ = ["MAX_CHAIN", "Chain", "ConversationStore", "MemoryConversations", "StoreUnavailable"]

#: Links read for one chain at most (a guard against a cycle written by hand).
MAX_CHAIN = 100_000
#: Bytes counted for a link beyond its content (ids, header, the cache's own entry).
LINK_OVERHEAD = 256
#: Bytes counted for a ``store=false`` mark: its id, its tuple and its ordered entry
#: (about 265 measured with tracemalloc, owner and group shared).
MARK_OVERHEAD = 288


class StoreUnavailable(Exception):
    """The store (Redis) could not be read, and this process does not hold what was asked."""


@dataclass(frozen=True, slots=True)
class Chain:
    """A conversation up to a response, oldest first; ``missing`` is the first id that
    could not be found (the response itself, or an ancestor), ``None`` when whole."""

    links: list[Link] = field(default_factory=list)
    missing: str | None = None

    @property
    def whole(self) -> bool:
        return self.missing is None and bool(self.links)


class ConversationStore(Protocol):
    """Links by response id, and the latest response of router-kept conversations."""

    async def put(self, link: Link, ttl: float) -> None:
        """Keep ``link`` for ``ttl`` seconds."""
        ...

    def mark(self, response_id: str, prev: str | None, root: str, owner: str, group: str,
             conversation: str | None, ttl: float) -> None:
        """Mark ``response_id`` as made with ``store=false`` for ``ttl`` seconds, in this
        process only (read for a clearer error, never worth a round trip): what
        ``put`` of a :data:`~router.conversations.links.NO_STORE` link does, without
        making the link, since one is marked per such response."""
        ...

    async def chain(self, response_id: str, ttl: float, *, whole: bool = True) -> Chain:
        """The chain ending at ``response_id``, its links holding input and output items;
        renews each link's TTL to ``ttl``. Without ``whole``, a chain whose last link is
        ``native`` is that link alone (its owner may still hold it)."""
        ...

    async def get(self, response_id: str) -> Link | None: ...

    async def delete(self, response_id: str) -> bool:
        """Remove the link; ``True`` when it existed."""
        ...

    async def head(self, conversation: str) -> str | None:
        """The latest response id of a router-kept conversation."""
        ...

    async def set_head(self, conversation: str, response_id: str, ttl: float) -> None: ...

    async def aclose(self) -> None: ...


class MemoryConversations:
    """A :class:`ConversationStore` in this process, bounded by ``max_bytes``.

    Entries are ``[link, expiry]`` in an LRU cache weighed by content size; a
    read renews the expiry in place (no re-insertion), and an expired entry
    counts as missing. ``store=false`` marks, which hold no content and are
    only read for a clearer error, live apart (:class:`~router.conversations.marks.Marks`),
    first in, first out, up to a quarter of ``max_bytes`` at :data:`MARK_OVERHEAD`
    each: a put there costs a fraction of one in the weighed LRU.
    """

    def __init__(
        self, max_bytes: int, timer: Callable[[], float] = time.monotonic
    ) -> None:
        self._timer = timer
        self._links: LRUCache[str, list[Any]] = LRUCache(maxsize=max_bytes, getsizeof=_size)
        self._heads: LRUCache[str, list[Any]] = LRUCache(
            maxsize=max(1, max_bytes // LINK_OVERHEAD))
        self._marks = Marks(max_bytes // (4 * MARK_OVERHEAD))

    async def put(self, link: Link, ttl: float) -> None:
        if link.kind == NO_STORE:
            self.mark(link.id, link.prev, link.root, link.owner, link.group, link.conversation,
                      ttl)
            return
        if link.size + LINK_OVERHEAD > self._links.maxsize:
            return  # larger than the whole store: a follow-up will find it missing
        self._links[link.id] = [link, self._timer() + ttl]

    def mark(self, response_id: str, prev: str | None, root: str, owner: str, group: str,
             conversation: str | None, ttl: float) -> None:
        self._marks.mark(response_id, prev, root, owner, group, conversation,
                         self._timer() + ttl)

    async def chain(self, response_id: str, ttl: float, *, whole: bool = True) -> Chain:
        links: list[Link] = []
        now = self._timer()
        current: str | None = response_id
        while current is not None and len(links) < MAX_CHAIN:
            entry = self._live(self._links, current, now)
            if entry is not None:
                entry[1] = now + ttl
                link: Link | None = entry[0]
            else:
                link = self._marks.get(current, now, now + ttl)
            if link is None:
                links.reverse()
                return Chain(links, current)
            links.append(link)
            if not whole and len(links) == 1 and link.kind == NATIVE:
                break
            current = link.prev
        links.reverse()
        return Chain(links)

    async def get(self, response_id: str) -> Link | None:
        now = self._timer()
        entry = self._live(self._links, response_id, now)
        return self._marks.get(response_id, now) if entry is None else entry[0]

    async def delete(self, response_id: str) -> bool:
        return self._links.pop(response_id, None) is not None or self._marks.pop(response_id)

    async def head(self, conversation: str) -> str | None:
        entry = self._live(self._heads, conversation, self._timer())
        return None if entry is None else entry[0]

    async def set_head(self, conversation: str, response_id: str, ttl: float) -> None:
        self._heads[conversation] = [response_id, self._timer() + ttl]

    async def aclose(self) -> None:
        self._links.clear()
        self._heads.clear()
        self._marks.clear()

    @property
    def bytes_held(self) -> int:
        return int(self._links.currsize)

    def __len__(self) -> int:
        return len(self._links) + len(self._marks)

    @staticmethod
    def _live(cache: MutableMapping[str, list[Any]], key: str, now: float) -> list[Any] | None:
        entry = cache.get(key)
        if entry is None:
            return None
        if entry[1] <= now:
            del cache[key]
            return None
        return entry


def _size(value: list[Any]) -> int:
    link: Link = value[0]
    return link.size + LINK_OVERHEAD
