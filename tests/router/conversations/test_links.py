"""Links, their stored form and sealing: what the stores rely on, without I/O."""

from __future__ import annotations

import json
import random

import pytest
from cryptography.fernet import Fernet

from router.conversations.links import (
    KEPT,
    NATIVE,
    NO_STORE,
    Link,
    compact,
    dump,
    header_of,
    history,
    load,
    load_chain,
)
from router.conversations.sealing import FernetSealer, PlainSealer, SealingError, sealer_for
from router.errors import ConfigError
from router.types import parse_json
from tests.router.test_types import json_values

INPUT = [{"type": "message", "role": "user", "content": [{"type": "input_text",
                                                          "text": "line one\nline two"}]}]
TEXT = {"type": "output_text", "text": "ok \x1e\x1f", "annotations": []}
RESPONSE = {"id": "resp_a", "object": "response", "status": "completed", "usage": {"x": 1},
            "output": [{"type": "message", "role": "assistant", "id": "msg_1",
                        "content": [TEXT]}]}


def link(**changes: object) -> Link:
    base = dict(id="resp_a", prev="resp_0", root="resp_0", kind=KEPT, owner="east",
                group="g", size=10, total=25, conversation="conv_1", input=INPUT,
                response=RESPONSE)
    base.update(changes)
    return Link(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize("sealer", [PlainSealer(), FernetSealer([Fernet.generate_key().decode()])],
                         ids=["plain", "fernet"])
def test_a_link_round_trips_and_its_chain_form_holds_the_items(sealer: object) -> None:
    stored = dump(link(), sealer)  # type: ignore[arg-type]
    assert stored.count("\n") == 2  # header, replay, rest: newlines in content are escaped
    back = load("resp_a", stored, sealer)  # type: ignore[arg-type]
    assert back == link() and back.response == RESPONSE and list(back.input) == INPUT
    header, replay, _ = stored.split("\n")
    (chained,) = load_chain([("resp_a", header + "\n" + replay)], sealer)  # type: ignore[arg-type]
    assert chained.response == {"output": RESPONSE["output"]} and chained.total == 25
    assert list(history([chained])) == [*INPUT, *RESPONSE["output"]]


def test_marks_keep_no_content_and_reprs_show_none() -> None:
    mark = link(kind=NO_STORE, input=(), response={})
    stored = dump(mark, PlainSealer())
    assert stored.endswith("\n\n") and "line one" not in stored
    assert not load("resp_a", stored, PlainSealer()).content_kept
    assert "line one" not in repr(link()) and "ok" not in repr(link())


def test_a_root_and_a_native_link_read_back() -> None:
    root = link(prev=None, kind=NATIVE, conversation=None)
    back = header_of("resp_a", dump(root, PlainSealer()).split("\n")[0])
    assert back.prev is None and back.kind == NATIVE and back.conversation is None


def test_a_malformed_header_is_refused() -> None:
    with pytest.raises(ValueError, match="resp_x"):
        header_of("resp_x", "too\x1ffew")


def test_rotation_opens_old_content_and_seals_with_the_newest() -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    sealed_old = FernetSealer([old]).seal("history")
    rotated = FernetSealer([new, old])
    assert rotated.open(sealed_old) == "history"
    assert Fernet(new.encode()).decrypt(rotated.seal("next").encode()) == b"next"
    with pytest.raises(SealingError, match="conversation_encryption_keys"):
        FernetSealer([new]).open(sealed_old)
    assert old not in repr(rotated)


def test_keys_are_checked_without_being_shown() -> None:
    assert isinstance(sealer_for([]), PlainSealer)
    with pytest.raises(ConfigError, match=r"conversation_encryption_keys\[1\]") as e:
        FernetSealer([Fernet.generate_key().decode(), "hunter2-not-a-key"])
    assert "hunter2" not in str(e.value)


@pytest.mark.parametrize("seed", range(20))
def test_compact_is_json_dumps_compact_text(seed: int) -> None:
    """What a link is measured and stored as: json.dumps' compact, non-ASCII text (only an
    exponent's spelling may differ, and no response holds one in these values)."""
    rng = random.Random(seed)
    value = {"input": [json_values(rng) for _ in range(3)],
             "response": {"output": [json_values(rng) for _ in range(3)]}}
    assert compact(value) == json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    assert json.loads(compact({"big": 1e16, "small": 1e-7})) == {"big": 1e16, "small": 1e-7}


def test_compact_keeps_a_lone_surrogate() -> None:
    """A model's emoji cut in half (``parse_json`` reads ``"\\ud83d"`` as a lone surrogate,
    which UTF-8 cannot carry) is kept escaped, not refused."""
    value = {"response": {"output": [{"text": parse_json(b'"half \\ud83d"')}]}}
    assert json.loads(compact(value)) == value
