"""providers/aws_eventstream.py decodes what botocore decodes, however the bytes arrive."""

from __future__ import annotations

import binascii
import json
import random
import struct
import uuid
from typing import Any

import pytest
from botocore.eventstream import EventStreamBuffer

from providers.aws_eventstream import EventStreamDecoder, EventStreamError
from router.testing.bedrock import event_message


def _typed_message(rng: random.Random) -> bytes:
    """A message with every header value type, encoded by hand after the format."""
    headers = b""
    values: list[bytes] = [
        b"\x00", b"\x01", b"\x02" + struct.pack(">b", -5), b"\x03" + struct.pack(">h", 300),
        b"\x04" + struct.pack(">i", -70000), b"\x05" + struct.pack(">q", 2**40),
        b"\x06" + struct.pack(">H", 3) + b"\x00\xff\x10",
        b"\x07" + struct.pack(">H", 5) + "héllo".encode()[:5],
        b"\x08" + struct.pack(">q", 1_700_000_000_000),
        b"\x09" + uuid.UUID(int=rng.getrandbits(128)).bytes,
    ]
    for i, value in enumerate(values):
        name = f"h{i}".encode()
        headers += struct.pack(">B", len(name)) + name + value
    payload = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 50)))
    total = 12 + len(headers) + len(payload) + 4
    prelude = struct.pack(">II", total, len(headers))
    prelude += struct.pack(">I", binascii.crc32(prelude))
    body = prelude + headers + payload
    return body + struct.pack(">I", binascii.crc32(body))


def _messages(seed: int) -> bytes:
    rng = random.Random(seed)
    parts = []
    for i in range(6):
        if rng.random() < 0.3:
            parts.append(_typed_message(rng))
        else:
            payload = json.dumps({"contentBlockDelta": {"delta": {"text": "x" * i}}}).encode()
            parts.append(event_message({":message-type": "event",
                                        ":event-type": "contentBlockDelta",
                                        ":content-type": "application/json"}, payload))
    return b"".join(parts)


def _botocore(data: bytes) -> list[tuple[dict[str, Any], bytes]]:
    buffer = EventStreamBuffer()
    buffer.add_data(data)
    return [(dict(m.headers), m.payload) for m in buffer]  # type: ignore[call-overload]


@pytest.mark.parametrize("seed", range(4))
def test_every_split_decodes_as_botocore_does(seed: int) -> None:
    data = _messages(seed)
    expected = _botocore(data)
    assert len(expected) == 6
    for cut in range(len(data) + 1):
        decoder = EventStreamDecoder()
        got = decoder.feed(data[:cut]) + decoder.feed(data[cut:])
        assert got == expected and decoder.pending == 0 and decoder.error is None


def test_byte_by_byte() -> None:
    data = _messages(9)
    decoder = EventStreamDecoder()
    got = [m for i in range(len(data)) for m in decoder.feed(data[i:i + 1])]
    assert got == _botocore(data)


def test_a_partial_message_waits() -> None:
    data = _messages(1)
    decoder = EventStreamDecoder()
    assert decoder.feed(data[:20]) == [] and decoder.pending == 20


@pytest.mark.parametrize(("where", "what"), [
    (lambda m: 8, "prelude"),  # the prelude's CRC
    (lambda m: len(m) - 1, "message"),  # the message's CRC
    (lambda m: 20, "message"),  # a byte of the headers (caught by the message CRC)
])
def test_a_corrupted_message_ends_the_stream_after_the_good_ones(where: Any, what: str) -> None:
    good = _messages(2)
    bad = bytearray(event_message({":message-type": "event", ":event-type": "x"}, b"{}"))
    bad[where(bad)] ^= 0xFF
    decoder = EventStreamDecoder()
    got = decoder.feed(good + bytes(bad))
    assert len(got) == 6 and decoder.error is not None and what in str(decoder.error)
    with pytest.raises(EventStreamError):
        decoder.feed(b"more")


def test_impossible_lengths_are_refused() -> None:
    prelude = struct.pack(">II", 8, 0)
    decoder = EventStreamDecoder()
    decoder.feed(prelude + struct.pack(">I", binascii.crc32(prelude)) + b"\x00" * 8)
    assert isinstance(decoder.error, EventStreamError)
    assert "impossible lengths" in str(decoder.error)
