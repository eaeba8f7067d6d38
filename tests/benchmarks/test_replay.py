"""benchmarks/replay.py: a recorded answer comes back byte for byte, a stream as its events."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import pytest

from benchmarks.replay import Recorder, Recording, ReplaySender, events, request_key, save
from router.testing import Upstream
from router.testing.bedrock import event_message
from router.testing.process import spawn, terminate


def test_sse_is_split_into_its_events() -> None:
    body = b"event: a\ndata: {}\n\nevent: b\ndata: {}\n\n"
    assert events("text/event-stream; charset=utf-8", body) == (
        b"event: a\ndata: {}\n\n", b"event: b\ndata: {}\n\n")
    assert b"".join(events("text/event-stream", body + b"data: tail")) == body + b"data: tail"


def test_event_stream_is_split_into_its_frames() -> None:
    frames = [event_message({":event-type": "messageStart"}, b'{"role":"assistant"}'),
              event_message({":event-type": "messageStop"}, b'{"stopReason":"end_turn"}')]
    assert events("application/vnd.amazon.eventstream", b"".join(frames)) == tuple(frames)


def test_a_plain_body_is_one_chunk() -> None:
    assert events("application/json", b'{"a": 1}') == (b'{"a": 1}',)


@pytest.mark.parametrize(("body", "kind"), [
    (b'{"input": "x", "stream": true}', "stream"), (b'{"stream":true}', "stream"),
    (b'{"input": "x", "stream": false}', "plain"), (b"", "plain"),
])
def test_requests_are_told_apart_by_streaming(body: bytes, kind: str) -> None:
    assert request_key("POST", "/v1/responses", body) == f"POST /v1/responses {kind}"


def test_a_recording_survives_its_json_form() -> None:
    recording = Recording(200, (("content-type", "text/event-stream"),),
                          (b"data: 1\n\n", b"\x00\xff"), sized=False)
    assert Recording.from_json(recording.as_json()) == recording


async def test_the_replay_process_answers_as_the_recorded_upstream(tmp_path: Path) -> None:
    upstream = Upstream("live")
    await upstream.start()
    recorder = await Recorder(upstream.url).start()
    answers: dict[bool, tuple[int, str, bytes]] = {}
    try:
        async with aiohttp.ClientSession() as session:
            for stream in (False, True):
                async with session.post(f"{recorder.url}/v1/responses",
                                        json={"model": "m", "input": "hi", "stream": stream,
                                              "store": False}) as got:
                    answers[stream] = (got.status, got.content_type, await got.read())
    finally:
        await recorder.stop()
        await upstream.stop()
    assert set(recorder.recordings) == {"POST /v1/responses plain",
                                        "POST /v1/responses stream"}
    streamed = recorder.recordings["POST /v1/responses stream"]
    assert len(streamed.chunks) > 3 and not streamed.sized  # one write per SSE event
    sender = ReplaySender(recorder.recordings)
    for stream in (False, True):
        body = json.dumps({"input": "other", "stream": stream}).encode()
        got = await sender.send("POST", "http://replay.invalid/v1/responses?x=1",
                                headers={}, content=body)
        assert (got.status_code, got.headers["Content-Type"].split(";")[0],
                await got.aread()) == answers[stream]
    got = await sender.send("POST", "http://replay.invalid/v1/responses", headers={},
                            content=b'{"stream": true}')
    assert [c async for c in got.aiter_bytes()] == list(streamed.chunks)
    assert "".join([t async for t in got.aiter_text()]) == answers[True][2].decode()
    missing = await sender.send("GET", "http://replay.invalid/v1/models", headers={})
    assert missing.status_code == 404 and b"GET /v1/models plain" in await missing.aread()
    save(recorder.recordings, tmp_path / "r.json")
    proc, url = spawn("benchmarks.replay", ["--port", "0", "--recordings",
                                            str(tmp_path / "r.json")])
    try:
        async with aiohttp.ClientSession() as session:
            for stream in (False, True):
                async with session.post(f"{url}/v1/responses",
                                        json={"input": "other", "stream": stream}) as got:
                    assert (got.status, got.content_type, await got.read()) == answers[stream]
            async with session.get(f"{url}/v1/models") as missing:
                assert missing.status == 404
                assert "GET /v1/models plain" in (await missing.json())["error"]
    finally:
        terminate(proc)
