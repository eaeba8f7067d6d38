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

Stored form, one string of three lines: a header (the ids, kind, owner and
sizes, separated by ``\x1f``), the *replay* part (JSON of the turn's input
and output items: what a follow-up needs) and the *rest* of the response
(JSON of the response without its output: what a retrieve needs too), each
part sealed by :mod:`router.conversations.sealing`. A store walks a chain by
the headers alone and returns only header and replay part of each link, and
the replay parts of a whole chain are decoded in one parse.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from router.conversations.sealing import Sealer
from router.types import dump_json, parse_json

__all__ = [
    "KEPT", "NATIVE", "NO_STORE", "TOO_LARGE", "Link", "compact", "content_of", "dump", "header_of",
    "history", "load", "load_chain",
]

Json = dict[str, Any]

KEPT = "kept"
NATIVE = "native"
NO_STORE = "nostore"
TOO_LARGE = "toolarge"


@dataclass(slots=True)
class Link:
    """One response of a conversation; ``size`` is its content's bytes, ``total``
    those of its whole chain (its ancestors' included).

    Treated as immutable once made, but not frozen: a frozen dataclass sets each
    field through ``object.__setattr__``, which made a link cost 2.1 µs instead
    of 0.7, and one is made per kept response and per link read from Redis.
    """

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


#: Separates the header's fields (never in a response id; removed from names).
SEP = "\x1f"
_FIELDS = 8


def compact(value: Any) -> str:
    """``value`` as the compact JSON a link's content is stored and measured as.

    :func:`router.types.dump_json`: the same text as ``json.dumps`` with compact
    separators and ``ensure_ascii=False``, in a third of the time (a kept
    response is measured on every turn); a value holding an unpaired surrogate is
    written with every non-ASCII character escaped.
    """
    return dump_json(value).decode()


def content_of(input_items: Sequence[Json], response: Json) -> str:
    """The JSON of a link's content (what its size is measured on)."""
    return compact({"input": list(input_items), "response": response})


def dump(link: Link, sealer: Sealer) -> str:
    """``link`` in its stored form (see the module docstring)."""
    header = SEP.join((link.prev or "", link.root, link.kind, _name(link.owner),
                       _name(link.group), str(link.size), str(link.total),
                       link.conversation or ""))
    if not link.content_kept:
        return header + "\n\n"
    rest = {k: v for k, v in link.response.items() if k != "output"}
    replay = compact({"input": list(link.input), "output": link.output()})
    return "\n".join((header, _seal(sealer, replay), _seal(sealer, compact(rest))))


def header_of(response_id: str, header: str) -> Link:
    """The link a stored header describes, without its content."""
    return _link(response_id, header, (), {})


def _link(response_id: str, header: str, input_items: Sequence[Json], response: Json) -> Link:
    f = header.split(SEP)
    if len(f) != _FIELDS:
        raise ValueError(f"stored link {response_id!r} has a malformed header")
    return Link(response_id, f[0] or None, f[1], f[2], f[3], f[4], int(f[5]), int(f[6]),
                f[7] or None, input_items, response)


def load(response_id: str, stored: str, sealer: Sealer) -> Link:
    """The whole link stored as ``stored`` (raises :class:`SealingError` when it cannot
    open)."""
    header, replay, rest = [*stored.split("\n", 2), "", ""][:3]
    link = header_of(response_id, header)
    if not link.content_kept or not replay:
        return link
    items = parse_json(_open(sealer, replay))
    response = parse_json(_open(sealer, rest)) if rest else {}
    response["output"] = items["output"]
    return _link(response_id, header, items["input"], response)


def load_chain(pairs: Sequence[tuple[str, str]], sealer: Sealer) -> list[Link]:
    """Links from ``(id, header + "\\n" + replay part)`` pairs, their content holding
    the input and the output only; every replay part is decoded in one parse."""
    heads: list[tuple[str, str, bool]] = []
    parts: list[str] = []
    for response_id, stored in pairs:
        header, _, replay = stored.partition("\n")
        kept = bool(replay)
        heads.append((response_id, header, kept))
        if kept:
            parts.append(sealer.open(replay))
    decoded = iter(parse_json("[" + ",".join(parts) + "]") if parts else ())
    out = []
    for response_id, header, kept in heads:
        if kept:
            items = next(decoded)
            out.append(_link(response_id, header, items["input"], {"output": items["output"]}))
        else:
            out.append(_link(response_id, header, (), {}))
    return out


def _seal(sealer: Sealer, text: str) -> str:
    return sealer.seal(text)


def _open(sealer: Sealer, text: str) -> str:
    return sealer.open(text)


def _name(value: str) -> str:
    return value.replace(SEP, "").replace("\n", "").replace("\x1e", "")
