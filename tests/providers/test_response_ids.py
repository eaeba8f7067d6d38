"""providers/response_ids.py: batched ids are well formed, unique, and not shared by a fork."""

from __future__ import annotations

import gc
import os
import re
import weakref

import pytest

from providers.response_ids import BATCH, ResponseIds, _forget

ID = re.compile(r"resp_[0-9a-f]{32}")


def test_ids_are_resp_and_128_bits_and_never_repeat_across_batches() -> None:
    ids = ResponseIds()
    made = [ids.new() for _ in range(BATCH * 20 + 7)]
    assert all(ID.fullmatch(i) for i in made)
    assert len(set(made)) == len(made)
    other = ResponseIds()  # another source (another router) reads its own bits
    assert not set(made) & {other.new() for _ in range(BATCH * 3)}


def test_forget_drops_the_batch_and_reads_fresh_bits() -> None:
    ids = ResponseIds()
    first = ids.new()
    ids.forget()
    after = [ids.new() for _ in range(BATCH)]
    assert first not in after and len(set(after)) == BATCH


def test_no_id_in_a_repr() -> None:
    ids = ResponseIds()
    ids.new()
    assert repr(ids) == "ResponseIds()" and ids._hex[32:64] not in repr(ids)


def test_the_fork_hook_holds_its_source_weakly() -> None:
    ids = ResponseIds()
    source = weakref.ref(ids)
    del ids
    gc.collect()
    assert source() is None
    _forget(source)  # a source gone: nothing to do, no error


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_forked_child_does_not_hand_out_its_parents_ids() -> None:
    ids = ResponseIds()
    ids.new()  # the batch is read: BATCH - 1 ids are waiting
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, to the parent
        try:
            os.write(write, " ".join(ids.new() for _ in range(BATCH)).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = set(pipe.read().split())
    os.waitpid(pid, 0)
    parent = {ids.new() for _ in range(BATCH)}
    assert len(child) == BATCH and all(ID.fullmatch(i) for i in child)
    assert not child & parent, "the child handed out ids its parent also handed out"
