"""``store=false`` marks: which responses were made without being kept, in this process.

A mark holds no content; it is read only to tell a follow-up that its
previous response was made with ``store=false`` (a clearer error than "not
found"). One is written per ``store=false`` response of a stateless
deployment, so thousands live at once, and the cost of holding them counts
on the request path. A mark is therefore kept as a tuple of strings and a
float, never as a :class:`~router.conversations.links.Link`: CPython's
collector stops tracking a tuple of such atoms, so the marks add nothing to
each garbage collection's work (a ``Link`` in a list, with its empty
response dict, added three tracked objects per request that every young
collection walked, and every full one walked again). The ``Link`` is made
again on the rare read. First in, first out, up to ``limit`` marks: the marks are an
:class:`~collections.OrderedDict`, whose oldest entry goes in constant time (a dict's
first entry is found by walking past every entry deleted before it, and at the default
limit, a quarter million marks, that walk cost some 35 µs per mark once the marks were
full).
"""

from __future__ import annotations

from collections import OrderedDict

from router.conversations.links import NO_STORE, Link

__all__ = ["Marks"]

#: (previous, root, owner, group, conversation, expiry)
_Mark = tuple[str | None, str, str, str, str | None, float]


class Marks:
    """``store=false`` marks by response id, bounded, first in first out."""

    __slots__ = ("_limit", "_marks")

    def __init__(self, limit: int) -> None:
        self._limit = max(1, limit)
        self._marks: OrderedDict[str, _Mark] = OrderedDict()

    def mark(self, response_id: str, prev: str | None, root: str, owner: str, group: str,
             conversation: str | None, expiry: float) -> None:
        """Mark ``response_id`` until ``expiry``, from its fields (no :class:`Link` made)."""
        marks = self._marks
        if len(marks) >= self._limit and response_id not in marks:
            marks.popitem(last=False)
        marks[response_id] = (prev, root, owner, group, conversation, expiry)

    def get(self, response_id: str, now: float, renew_to: float | None = None) -> Link | None:
        """The mark as a link, unless missing or expired (then forgotten); ``renew_to``
        moves its expiry."""
        mark = self._marks.get(response_id)
        if mark is None:
            return None
        prev, root, owner, group, conversation, expiry = mark
        if expiry <= now:
            del self._marks[response_id]
            return None
        if renew_to is not None:
            self._marks[response_id] = (prev, root, owner, group, conversation, renew_to)
        return Link(response_id, prev, root, NO_STORE, owner, group, conversation=conversation)

    def pop(self, response_id: str) -> bool:
        """Forget the mark; ``True`` when there was one."""
        return self._marks.pop(response_id, None) is not None

    def clear(self) -> None:
        self._marks.clear()

    def __len__(self) -> int:
        return len(self._marks)
