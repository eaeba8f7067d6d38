"""Router-made response ids for translated providers, from the OS's random source in batches.

A translated response gets ``resp_`` and 128 random bits. Read one
``os.urandom(16)`` per response, that is one ``getrandom`` system call per
request; :class:`ResponseIds` reads the bits of
:data:`BATCH` ids in one call and hands them out in turn, so a request pays
a slice of a string instead. The bits are the same (the kernel's CSPRNG),
so ids stay unguessable and unique across processes.

A forked child must not hand out the ids its parent holds: each source
forgets its batch in the child (``os.register_at_fork``), so both read fresh
bits. The registration holds the source weakly, so a source that is no
longer used is not kept alive by it.
"""

from __future__ import annotations

import os
import weakref

__all__ = ["BATCH", "ResponseIds"]

#: Ids read from the OS at once (512 random bytes).
BATCH = 32
_HEX = 32  # hex digits of one id's 128 bits


class ResponseIds:
    """``resp_`` ids, :data:`BATCH` at a time from ``os.urandom``; one per provider."""

    __slots__ = ("__weakref__", "_at", "_hex")

    def __init__(self) -> None:
        self._hex = ""
        self._at = 0
        if hasattr(os, "register_at_fork"):  # POSIX; there is no fork elsewhere
            source = weakref.ref(self)
            os.register_at_fork(after_in_child=lambda: _forget(source))

    def new(self) -> str:
        """A new id: ``resp_`` and 32 hex digits (128 random bits)."""
        at = self._at
        if at >= len(self._hex):
            self._hex = os.urandom(BATCH * _HEX // 2).hex()
            at = 0
        self._at = at + _HEX
        return "resp_" + self._hex[at:at + _HEX]

    def forget(self) -> None:
        """Drop the ids not handed out yet (the next one reads fresh bits)."""
        self._hex = ""
        self._at = 0

    def __repr__(self) -> str:  # the ids to come are never shown
        return "ResponseIds()"


def _forget(source: weakref.ref[ResponseIds]) -> None:
    ids = source()
    if ids is not None:
        ids.forget()
