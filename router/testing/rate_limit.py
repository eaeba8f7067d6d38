"""A fake upstream's request limit, shown the way OpenAI shows it: in headers.

OpenAI (and Azure OpenAI) limit requests per minute with a bucket that
refills continuously: ``limit`` requests, refilled at ``limit / window``
per second. Every answer says where the bucket stands
(``x-ratelimit-limit-requests``, ``x-ratelimit-remaining-requests``, and
``x-ratelimit-reset-requests``, the time until it is full again, as a
duration such as ``1.25s``); a request that finds it empty is answered 429
``rate_limit_exceeded`` with ``retry-after-ms`` and ``retry-after`` (the
wait for the next request, as Azure sends them). With ``headers=False`` the
limit is hidden: only the 429 and its ``Retry-After`` show it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, MutableMapping

__all__ = ["RequestBucket", "duration"]


def duration(seconds: float) -> str:
    """OpenAI's duration text: ``"20ms"`` under a second, else ``"1m2.5s"`` / ``"3.2s"``."""
    if seconds < 1:
        return f"{max(0, round(seconds * 1000))}ms"
    minutes, rest = divmod(seconds, 60)
    text = f"{rest:.3f}".rstrip("0").rstrip(".") + "s"
    return f"{int(minutes)}m{text}" if minutes else text


class RequestBucket:
    """``limit`` requests per ``window`` seconds, refilled continuously."""

    def __init__(
        self, limit: int, window: float, *, headers: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit < 1 or window <= 0:
            raise ValueError(f"a request limit needs limit >= 1 and window > 0, "
                             f"got {limit} per {window}")
        self.limit = limit
        self.window = window
        self.headers = headers
        self._clock = clock
        self._level = float(limit)
        self._at = clock()
        self.refused = 0

    def take(self, answer_headers: MutableMapping[str, str]) -> bool:
        """Take one request; False when the bucket is empty (the answer is a 429).

        Writes the limit's headers into ``answer_headers`` either way.
        """
        now = self._clock()
        rate = self.limit / self.window
        self._level = min(float(self.limit), self._level + (now - self._at) * rate)
        self._at = now
        taken = self._level >= 1
        if taken:
            self._level -= 1
        else:
            self.refused += 1
            wait = (1 - self._level) / rate
            answer_headers["retry-after-ms"] = str(max(1, math.ceil(wait * 1000)))
            answer_headers["retry-after"] = str(max(1, math.ceil(wait)))
        if self.headers:
            answer_headers["x-ratelimit-limit-requests"] = str(self.limit)
            answer_headers["x-ratelimit-remaining-requests"] = str(int(self._level))
            answer_headers["x-ratelimit-reset-requests"] = duration(
                (self.limit - self._level) / rate)
        return taken

    def reset(self) -> None:
        """Full again; nothing refused."""
        self._level, self._at, self.refused = float(self.limit), self._clock(), 0
