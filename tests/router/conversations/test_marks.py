"""store=false marks (router/conversations/marks.py): bounded, first in first out."""

from __future__ import annotations

from router.conversations.links import NO_STORE
from router.conversations.marks import Marks


def _mark(marks: Marks, response_id: str, expiry: float, prev: str | None = None) -> None:
    marks.mark(response_id, prev, prev or response_id, "d1", "g", "c", expiry)


def test_a_full_set_of_marks_forgets_the_oldest_first() -> None:
    marks = Marks(3)
    for i in range(5):
        _mark(marks, f"r{i}", 100.0)
    assert len(marks) == 3
    assert [marks.get(f"r{i}", now=0.0) is None for i in range(5)] == [
        True, True, False, False, False]


def test_marking_an_id_again_evicts_nothing_and_keeps_its_place() -> None:
    marks = Marks(2)
    _mark(marks, "a", 100.0)
    _mark(marks, "b", 100.0)
    _mark(marks, "a", 200.0, prev="p")  # again: still the oldest
    assert len(marks) == 2
    again = marks.get("a", now=0.0)
    assert again is not None and again.prev == "p"
    _mark(marks, "c", 100.0)
    assert marks.get("a", now=0.0) is None and marks.get("b", now=0.0) is not None


def test_a_mark_reads_back_as_its_link_until_it_expires() -> None:
    marks = Marks(10)
    _mark(marks, "r2", 10.0, prev="r1")
    read = marks.get("r2", now=5.0, renew_to=20.0)
    assert read is not None
    assert (read.id, read.prev, read.root, read.kind, read.owner, read.group,
            read.conversation) == ("r2", "r1", "r1", NO_STORE, "d1", "g", "c")
    assert marks.get("r2", now=15.0) is not None  # renewed past 10
    assert marks.get("r2", now=20.0) is None and len(marks) == 0  # expired: forgotten
    _mark(marks, "r3", 10.0)
    assert marks.pop("r3") and not marks.pop("r3")


def test_marks_turn_over_many_times_at_their_limit() -> None:
    # Twenty times their size: the oldest always goes, the newest always stays.
    marks = Marks(1000)
    for i in range(20_000):
        _mark(marks, f"r{i}", 100.0)
    assert len(marks) == 1000
    assert marks.get("r18999", now=0.0) is None and marks.get("r19000", now=0.0) is not None
