"""Shared pieces of the strategies: exact scans for small groups, sampling for large ones.

Reading one deployment's load figures costs a fraction of a microsecond in
Python, so a full scan of a thousand candidates costs hundreds: far over a
pick's budget (``benchmarks/pick_cost.py`` measures it). Every strategy
therefore compares all candidates only up to :data:`EXACT_LIMIT` of them
and samples above that (power of two choices:
two distinct random candidates; Mitzenmacher shows the best of two already
gets almost all the benefit of the best of all). Figures that never change
(weights, prices) are instead precomputed once per candidates tuple by
:class:`TupleCache`.

A check or a cooldown narrows a group to a fresh list, and weighing a
thousand candidates afresh costs far over the budget. :class:`Wholes`
remembers the group tuples a strategy has seen and, for a list that is an
order-preserving subset of one (what every filter makes), answers "is the
whole's ``k``-th member still in the list?" in O(removed members), so a
strategy can reuse the whole's cached figures and sample from them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from router.errors import ConfigError

if TYPE_CHECKING:
    from router.deployment import Deployment

__all__ = [
    "EXACT_LIMIT", "NARROW_LIMIT", "Narrowed", "TupleCache", "Wholes", "lowest", "number_arg",
    "random_min", "two_distinct",
]

#: Up to this many candidates a strategy compares them all; above, it samples.
EXACT_LIMIT = 16
#: A list narrowed from a known whole by more than this many members is
#: weighed afresh (membership tests cost O(removed) each).
NARROW_LIMIT = 32

T = TypeVar("T")


def two_distinct(rand: Callable[[], float], n: int) -> tuple[int, int]:
    """Two distinct uniformly random indices below ``n`` (``n >= 2``)."""
    i = int(rand() * n)
    j = int(rand() * (n - 1))
    return i, (j + 1 if j >= i else j)


def random_min(
    candidates: Sequence[Deployment],
    key: Callable[[Deployment], Any],
    rand: Callable[[], float],
) -> Deployment:
    """The candidate with the lowest ``key`` (any ordered value); ties broken at random.

    ``key`` is called once per candidate; at most one random draw.
    """
    return lowest(candidates, [key(d) for d in candidates], rand)


def lowest(
    candidates: Sequence[Deployment], keys: list[Any], rand: Callable[[], float]
) -> Deployment:
    """The candidate whose key (same position in ``keys``) is lowest; ties at random."""
    low = min(keys)
    if keys.count(low) == 1:
        return candidates[keys.index(low)]
    ties = [d for d, k in zip(candidates, keys, strict=True) if k == low]
    return ties[int(rand() * len(ties))]


class TupleCache(Generic[T]):
    """Values derived from a candidates *tuple*, found again by the tuple's identity.

    Only tuples are cached: they are immutable (and so are deployments), and
    the cache keeps a reference to each, so an ``id()`` cannot be reused while
    its entry lives. The deployment table hands out each group as one tuple,
    so steady traffic hits the cache; lists (what is left after a check
    removed someone) are built per request and never cached. At most
    ``size`` tuples are kept; when full, the cache starts over.
    """

    __slots__ = ("_entries", "_size")

    def __init__(self, size: int = 64) -> None:
        self._size = size
        self._entries: dict[int, tuple[tuple[Deployment, ...], T]] = {}

    def get(
        self, candidates: Sequence[Deployment], build: Callable[[Sequence[Deployment]], T]
    ) -> T:
        """The value for ``candidates``, built by ``build`` unless cached."""
        if type(candidates) is not tuple:
            return build(candidates)
        entry = self._entries.get(id(candidates))
        if entry is not None and entry[0] is candidates:
            return entry[1]
        value = build(candidates)
        if len(self._entries) >= self._size:
            self._entries = {}
        self._entries[id(candidates)] = (candidates, value)
        return value


def number_arg(
    args: Mapping[str, Any], name: str, default: float, *, allow_zero: bool = True
) -> float:
    """``routing_strategy_args[name]`` as a finite float, checked; ``default`` when absent."""
    value = args.get(name, default)
    bad = (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
        or (value == 0 and not allow_zero)
    )
    if bad:
        need = ">= 0" if allow_zero else "> 0"
        raise ConfigError(
            f"routing_strategy_args.{name}: expected a finite number {need}, got {value!r}"
        )
    return float(value)


class Narrowed:
    """A list seen as its whole tuple less a few members (see :class:`Wholes`)."""

    __slots__ = ("_first", "_items", "_removed", "whole")

    def __init__(self, whole: tuple[Deployment, ...], items: Sequence[Deployment],
                 first: int) -> None:
        self.whole = whole
        self._items = items
        self._first = first
        self._removed = len(whole) - len(items)

    def has(self, position: int) -> bool:
        """Whether ``whole[position]`` is in the list (an identity test, O(removed))."""
        offset = position - self._first
        if offset < 0:
            return False
        member = self.whole[position]
        items = self._items
        low = max(0, offset - self._removed)
        return any(d is member for d in items[low:offset + 1])


class Wholes:
    """The group tuples a strategy has seen, found again from a list narrowed from one.

    :meth:`learn` registers a tuple's members (once per tuple, O(n));
    :meth:`narrowed` recognises a list whose first and last members come from
    one remembered tuple and that lacks at most :data:`NARROW_LIMIT` of its
    members. Membership answers assume the list keeps the tuple's order (a
    filter's output); a member a reordering hid is only reported absent, so a
    strategy never picks a deployment that is not in the list. At most
    ``size`` tuples are remembered; when full, it starts over.
    """

    __slots__ = ("_count", "_index", "_size")

    def __init__(self, size: int = 64) -> None:
        self._size = size
        self._count = 0
        self._index: dict[int, tuple[tuple[Deployment, ...], int]] = {}

    def learn(self, whole: tuple[Deployment, ...]) -> None:
        """Remember ``whole``'s members and their positions."""
        if self._count >= self._size:
            self._index, self._count = {}, 0
        self._count += 1
        self._index.update((id(d), (whole, i)) for i, d in enumerate(whole))

    def narrowed(self, items: Sequence[Deployment]) -> Narrowed | None:
        """``items`` as a narrowed remembered tuple, or ``None`` when it is not one."""
        index = self._index
        head, tail = index.get(id(items[0])), index.get(id(items[-1]))
        if head is None or tail is None:
            return None
        whole, first = head
        if tail[0] is not whole or whole[first] is not items[0] or whole[tail[1]] is not items[-1]:
            return None
        if tail[1] - first + 1 < len(items) or len(whole) - len(items) > NARROW_LIMIT:
            return None  # not in the whole's order, or narrowed too far
        return Narrowed(whole, items, first)
