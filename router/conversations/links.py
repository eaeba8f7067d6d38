"""One kept response (a :class:`Link` of its conversation) and its stored form.

A link holds what one turn added: the input items the request sent (the
history before it is *not* repeated) and the response (with its output
items), plus the id of the response it continued. A conversation is the
chain of links from a root, so storage grows with the number of items, and
two follow-ups to one response (a fork) each have an exact history.

Kinds: ``kept`` (made by a stateless deployment: the router is the only
keeper), ``native`` (made by a deployment that keeps its own state, stored
for ``conversation_failover``), ``nostore`` (``store: false``: only the fact
is kept, so a follow-up learns why it cannot continue) and ``toolarge`` (its
content passed ``conversation_max_response_bytes`` after the call).

Stored form, one string: a JSON header (ids, kind, owner, sizes) and, after a
newline, the content (JSON of the input items and the response) as sealed by
:mod:`router.conversations.sealing`. The header stays readable so a store can
walk a chain without opening content.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from router.conversations.sealing import Sealer

__all__ = [
    "KEPT", "NATIVE", "NO_STORE", "TOO_LARGE", "Link", "content_of", "dump", "history", "load",
]

Json = dict[str, Any]

KEPT = "kept"
NATIVE = "native"
NO_STORE = "nostore"
TOO_LARGE = "toolarge"


@dataclass(frozen=True, slots=True)
class Link:
    """One response of a conversation; ``size`` is its content's bytes, ``total``
    those of its whole chain (its ancestors' included)."""

    id: str
    prev: str | None
    root: str
    kind: str
    owner: str
    group: str
    size: int = 0
    total: int = 0
    conversation: str | None = None
    input: Sequence[Json] = field(default=(), repr=False)
    response: Json = field(default_factory=dict, repr=False)

    @property
    def content_kept(self) -> bool:
        """Whether the input and response are held (not a ``nostore``/``toolarge`` mark)."""
        return self.kind in (KEPT, NATIVE)

    def output(self) -> list[Json]:
        items = self.response.get("output")
        return list(items) if isinstance(items, list) else []

    def __repr__(self) -> str:  # content never appears in a repr
        return f"Link({self.id!r}, prev={self.prev!r}, kind={self.kind!r}, owner={self.owner!r})"


def history(chain: Sequence[Link]) -> Iterator[Json]:
    """Every item of ``chain`` (oldest first): each turn's input, then its output."""
    for link in chain:
        yield from link.input
        yield from link.output()


def content_of(input_items: Sequence[Json], response: Json) -> str:
    """The JSON a link's content is stored as (also what its size is measured on)."""
    return json.dumps({"input": list(input_items), "response": response},
                      separators=(",", ":"), ensure_ascii=False)


def dump(link: Link, content: str, sealer: Sealer) -> str:
    """``link`` in its stored form; ``content`` is :func:`content_of` its input and response."""
    header = json.dumps({
        "p": link.prev, "r": link.root, "k": link.kind, "o": link.owner, "g": link.group,
        "s": link.size, "t": link.total, "c": link.conversation,
    }, separators=(",", ":"))
    body = sealer.seal(content.encode()).decode() if link.content_kept else ""
    return header + "\n" + body


def load(response_id: str, stored: str, sealer: Sealer) -> Link:
    """The link stored as ``stored`` (raises :class:`SealingError` when it cannot open)."""
    header_text, _, body = stored.partition("\n")
    h = json.loads(header_text)
    link = Link(id=response_id, prev=h["p"], root=h["r"], kind=h["k"], owner=h["o"],
                group=h["g"], size=h["s"], total=h["t"], conversation=h.get("c"))
    if not body or not link.content_kept:
        return link
    content = json.loads(sealer.open(body.encode()))
    return Link(id=link.id, prev=link.prev, root=link.root, kind=link.kind, owner=link.owner,
                group=link.group, size=link.size, total=link.total,
                conversation=link.conversation, input=content["input"],
                response=content["response"])
