"""Server-Sent Events framed as OpenAI frames Responses streams.

Each event is ``event: <type>`` then ``data: <one line of JSON>`` then a
blank line; there is no ``[DONE]`` line (the stream ends after its terminal
event), so every OpenAI SDK parses it as it parses OpenAI's own.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["HEADERS", "frame"]

#: Answer headers of a stream (no proxy buffering, no caching).
HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}


def frame(data: dict[str, Any]) -> bytes:
    """One event; its ``event:`` line is the data's ``type`` (``message`` when it has none)."""
    kind = data.get("type")
    name = kind if isinstance(kind, str) and kind and "\n" not in kind else "message"
    payload = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return f"event: {name}\ndata: {payload}\n\n".encode()
