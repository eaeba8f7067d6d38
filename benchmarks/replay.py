"""Record fake upstreams' answers once, then serve them all again from one cheap process.

Why: ``benchmarks/translation.py`` measures the router's CPU per request, and on
a small machine the upstream's own CPU leaks into that figure. With the fake on
the other core busy, the same router code takes longer: a busy second core
raised the native path's CPU per request here by a fifth. The fakes differ
widely in their own cost (the Bedrock fake checks every SigV4 signature with
botocore), so measured against the live fakes a codec was charged for its
fake's work. Served from one replay process, every target gets the same
upstream at the same cost, and the difference is the router's.

* :class:`Recorder` is a pass-through proxy in front of a live fake, run in
  the benchmark's process before anything is measured. It forwards each request
  unchanged (the ``Host`` header too, so a SigV4 signature still verifies), and
  it keeps the answer's status, headers and body. A stream is kept as its events
  (SSE events, AWS event-stream frames), one write each, so the replay sends
  them as the fake did.
* ``python -m benchmarks.replay --port 0 --recordings FILE`` serves those
  answers (it prints ``READY <url>``). A request is matched by method, path
  and whether its JSON body asks to stream. An unknown request gets a 404 that
  names it.
* :class:`ReplaySender` gives the same answers to a router in the caller's
  own process, as the router's sender (:class:`providers.http.Sender`),
  with no socket and no HTTP client at all (a stream as its events, one
  chunk each).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import struct
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

__all__ = ["Recorder", "Recording", "ReplayAnswer", "ReplaySender", "events", "request_key",
           "save"]

#: Response headers the replay must not copy (the server sets its own).
_OWN_HEADERS = frozenset({"content-length", "transfer-encoding", "connection", "date",
                          "server", "keep-alive"})
#: Request headers not forwarded by the recorder (its client sets them).
_HOP_HEADERS = frozenset({"content-length", "transfer-encoding", "connection"})


@dataclass(frozen=True, slots=True)
class Recording:
    """One recorded answer: status, headers, body chunks; ``sized`` had a Content-Length."""

    status: int
    headers: tuple[tuple[str, str], ...]
    chunks: tuple[bytes, ...]
    sized: bool

    def as_json(self) -> dict[str, Any]:
        return {"status": self.status, "headers": [list(h) for h in self.headers],
                "chunks": [base64.b64encode(c).decode() for c in self.chunks],
                "sized": self.sized}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Recording:
        return cls(data["status"], tuple((k, v) for k, v in data["headers"]),
                   tuple(base64.b64decode(c) for c in data["chunks"]), data["sized"])


def request_key(method: str, path: str, body: bytes) -> str:
    """What a recording is found by: method, path, and whether the body asks to stream."""
    streamed = b'"stream": true' in body or b'"stream":true' in body
    return f"{method} {path} {'stream' if streamed else 'plain'}"


def events(content_type: str, body: bytes) -> tuple[bytes, ...]:
    """A streamed body as the writes that make it up: SSE events, or event-stream frames."""
    if content_type.startswith("text/event-stream"):
        parts = body.split(b"\n\n")
        chunks = [p + b"\n\n" for p in parts[:-1]]
        return tuple(chunks + ([parts[-1]] if parts[-1] else []))
    if content_type.startswith("application/vnd.amazon.eventstream"):
        frames, at = [], 0
        while at + 4 <= len(body):
            (length,) = struct.unpack_from(">I", body, at)
            frames.append(body[at:at + length])
            at += length
        return tuple(frames)
    return (body,)


@dataclass(slots=True)
class Recorder:
    """A pass-through proxy to ``target`` (a fake's base url) that keeps each answer."""

    target: str
    recordings: dict[str, Recording] = field(default_factory=dict)
    url: str = ""
    _runner: web.AppRunner | None = None
    _session: aiohttp.ClientSession | None = None

    async def start(self) -> Recorder:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        self._session = aiohttp.ClientSession(auto_decompress=False)
        return self

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _forward(self, request: web.Request) -> web.Response:
        assert self._session is not None
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS}
        async with self._session.request(request.method, self.target + request.path_qs,
                                         headers=headers, data=body) as answer:
            content = await answer.read()
            kept = tuple((k, v) for k, v in answer.headers.items()
                         if k.lower() not in _OWN_HEADERS)
            recording = Recording(answer.status, kept,
                                  events(answer.headers.get("content-type", ""), content),
                                  "content-length" in answer.headers)
        self.recordings[request_key(request.method, request.path, body)] = recording
        return web.Response(status=recording.status, headers=dict(recording.headers),
                            body=content)


class ReplaySender:
    """A :class:`providers.http.Sender` that answers from ``recordings`` in process."""

    def __init__(self, recordings: dict[str, Recording]) -> None:
        self._recordings = recordings

    async def send(self, method: str, url: str, *, headers: Mapping[str, str],
                   content: bytes | None = None, timeout: float | None = None,
                   read_timeout: float | None = None) -> ReplayAnswer:
        key = request_key(method, urlsplit(url).path, content or b"")
        recording = self._recordings.get(key)
        if recording is None:
            missing = json.dumps({"error": f"nothing recorded for {key}"}).encode()
            return ReplayAnswer(Recording(404, (("content-type", "application/json"),),
                                          (missing,), sized=True))
        return ReplayAnswer(recording)

    async def aclose(self) -> None:
        """Nothing to close."""


class ReplayAnswer:
    """A recorded answer as a :class:`providers.http.Answer` (a stream chunk by chunk)."""

    def __init__(self, recording: Recording) -> None:
        self._recording = recording
        self.status_code = recording.status
        self.headers = CIMultiDict(recording.headers)
        self.content = b""

    @property
    def text(self) -> str:
        return self.content.decode()

    async def aread(self) -> bytes:
        self.content = b"".join(self._recording.chunks)
        return self.content

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        for chunk in self._recording.chunks:
            yield chunk

    async def aiter_text(self) -> AsyncIterator[str]:
        for chunk in self._recording.chunks:
            yield chunk.decode()

    async def aclose(self) -> None:
        """Nothing to release."""


def save(recordings: dict[str, Recording], path: Path) -> None:
    """Write ``recordings`` for ``python -m benchmarks.replay --recordings path``."""
    path.write_text(json.dumps({k: r.as_json() for k, r in recordings.items()}))


def _app(recordings: dict[str, Recording]) -> web.Application:
    async def answer(request: web.Request) -> web.StreamResponse:
        key = request_key(request.method, request.path, await request.read())
        recording = recordings.get(key)
        if recording is None:
            return web.json_response({"error": f"nothing recorded for {key}"}, status=404)
        if recording.sized:
            return web.Response(status=recording.status, headers=recording.headers,
                                body=b"".join(recording.chunks))
        response = web.StreamResponse(status=recording.status, headers=recording.headers)
        await response.prepare(request)
        for chunk in recording.chunks:
            await response.write(chunk)
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    return app


async def _serve(port: int, recordings: dict[str, Recording]) -> None:
    runner = web.AppRunner(_app(recordings), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print(f"READY http://127.0.0.1:{runner.addresses[0][1]}", flush=True)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--recordings", type=Path, required=True)
    args = parser.parse_args()
    data = json.loads(args.recordings.read_text())
    asyncio.run(_serve(args.port, {k: Recording.from_json(v) for k, v in data.items()}))


if __name__ == "__main__":
    main()
