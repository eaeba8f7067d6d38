"""An incremental decoder of AWS event-stream messages (Bedrock's ConverseStream).

Each message is a 12-byte prelude (total length, headers length, CRC-32 of
the two), typed headers, a payload and a CRC-32 of everything before it.
botocore's ``EventStreamBuffer`` decodes the same format, but builds several
objects per message and costs more per stream event than the rest of the
translated path; this decoder does the same checks (both CRCs, length
bounds) with ``struct`` and ``zlib.crc32`` over whole slices. A test holds it
to botocore's decoder on generated messages fed in every possible split.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

__all__ = ["MAX_HEADERS_LENGTH", "MAX_MESSAGE_LENGTH", "EventStreamDecoder",
           "EventStreamError"]

#: The format's limits (as botocore enforces them).
MAX_MESSAGE_LENGTH = 16 * 1024 * 1024
MAX_HEADERS_LENGTH = 128 * 1024

_PRELUDE = struct.Struct(">III")
_CRC = struct.Struct(">I")
_MINIMUM = 16  # prelude and message CRC
_KNOWN_BLOCKS = 64


class EventStreamError(ValueError):
    """A message that breaks the format (a CRC, a length, a header type)."""


class EventStreamDecoder:
    """Feed bytes as they arrive; get back each complete ``(headers, payload)``.

    A broken message ends the stream: :meth:`feed` returns the whole messages
    before it and sets :attr:`error`; any later :meth:`feed` raises it.
    """

    __slots__ = ("_buffer", "_known", "error")

    def __init__(self) -> None:
        self._buffer = b""
        self.error: EventStreamError | None = None
        #: header blocks already decoded (a stream repeats a few: one per event type)
        self._known: dict[bytes, dict[str, Any]] = {}

    @property
    def pending(self) -> int:
        """Bytes of an incomplete message held back."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[tuple[dict[str, Any], bytes]]:
        """The messages completed by ``data`` (see the class docstring for errors)."""
        if self.error is not None:
            raise self.error
        buffer = self._buffer + data if self._buffer else data
        messages: list[tuple[dict[str, Any], bytes]] = []
        try:
            self._buffer = buffer[self._parse(buffer, messages):]
        except EventStreamError as exc:
            self.error = exc
            self._buffer = b""
        return messages

    def _parse(self, buffer: bytes, messages: list[tuple[dict[str, Any], bytes]]) -> int:
        """Append the whole messages of ``buffer`` to ``messages``; where the rest starts."""
        start, size = 0, len(buffer)
        while size - start >= 12:
            total, headers_length, prelude_crc = _PRELUDE.unpack_from(buffer, start)
            if zlib.crc32(buffer[start:start + 8]) != prelude_crc:
                raise EventStreamError("the prelude's CRC-32 does not match")
            if (total < _MINIMUM or total > MAX_MESSAGE_LENGTH
                    or headers_length > MAX_HEADERS_LENGTH
                    or headers_length > total - _MINIMUM):
                raise EventStreamError(f"impossible lengths (message {total}, "
                                       f"headers {headers_length})")
            end = start + total
            if end > size:
                break
            (message_crc,) = _CRC.unpack_from(buffer, end - 4)
            if zlib.crc32(buffer[start:end - 4]) != message_crc:
                raise EventStreamError("the message's CRC-32 does not match")
            body = start + 12 + headers_length
            messages.append((self._headers(buffer[start + 12:body]), buffer[body:end - 4]))
            start = end
        return start

    def _headers(self, block: bytes) -> dict[str, Any]:
        known = self._known.get(block)
        if known is None:
            if len(self._known) >= _KNOWN_BLOCKS:
                self._known.clear()
            known = self._known[block] = _headers(block, 0, len(block))
        return dict(known)


def _headers(data: bytes, position: int, end: int) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    try:
        while position < end:
            length = data[position]
            name = data[position + 1:position + 1 + length].decode()
            kind = data[position + 1 + length]
            position += 2 + length
            reader = _READERS.get(kind)
            if reader is None:
                raise EventStreamError(f"unknown header value type {kind}")
            headers[name], position = reader(data, position)
    except (IndexError, struct.error, UnicodeDecodeError) as exc:
        raise EventStreamError(f"malformed headers ({type(exc).__name__})") from None
    if position != end:
        raise EventStreamError("headers overrun their length")
    return headers


def _fixed(fmt: str) -> Callable[[bytes, int], tuple[Any, int]]:
    shape = struct.Struct(fmt)

    def read(data: bytes, position: int) -> tuple[Any, int]:
        return shape.unpack_from(data, position)[0], position + shape.size

    return read


def _sized(decode: bool) -> Callable[[bytes, int], tuple[Any, int]]:
    def read(data: bytes, position: int) -> tuple[Any, int]:
        (length,) = struct.unpack_from(">H", data, position)
        raw = data[position + 2:position + 2 + length]
        if len(raw) != length:
            raise IndexError("value past the end")
        return (raw.decode() if decode else raw), position + 2 + length

    return read


def _uuid(data: bytes, position: int) -> tuple[Any, int]:
    raw = data[position:position + 16]
    if len(raw) != 16:
        raise IndexError("uuid past the end")
    return raw, position + 16  # the raw 16 bytes, as botocore gives them


#: Header value type -> reader (the format's types 0-9; 8 is a timestamp in ms, 9 a UUID).
_READERS: Mapping[int, Callable[[bytes, int], tuple[Any, int]]] = MappingProxyType({
    0: lambda data, position: (True, position),
    1: lambda data, position: (False, position),
    2: _fixed(">b"), 3: _fixed(">h"), 4: _fixed(">i"), 5: _fixed(">q"),
    6: _sized(False), 7: _sized(True), 8: _fixed(">q"), 9: _uuid,
})
