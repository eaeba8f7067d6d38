"""SSE framing as OpenAI's: an event line named by type, one data line, a blank line."""

from __future__ import annotations

import json

from router.proxy.sse import frame


def test_frame() -> None:
    data = {"type": "response.output_text.delta", "delta": "a\nb", "sequence_number": 3}
    text = frame(data).decode()
    assert text.endswith("\n\n")
    event, payload, *rest = text.split("\n")
    assert event == "event: response.output_text.delta"
    assert json.loads(payload.removeprefix("data: ")) == data
    assert rest == ["", ""]


def test_frame_without_type() -> None:
    assert frame({"x": 1}).startswith(b"event: message\n")
