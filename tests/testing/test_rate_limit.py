"""The fake upstreams' request limit: a refilling bucket shown in OpenAI's headers."""

from __future__ import annotations

import pytest

from router.headroom import parse_duration, rate_limits
from router.testing.rate_limit import RequestBucket, duration


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("seconds", [0.0, 0.02, 0.999, 1.0, 1.25, 59.5, 60.0, 90.5, 3600.0])
def test_durations_read_back_as_written(seconds: float) -> None:
    assert parse_duration(duration(seconds)) == pytest.approx(seconds, abs=0.001)


def test_the_bucket_empties_refills_and_says_so() -> None:
    clock = Clock()
    bucket = RequestBucket(2, 10.0, clock=clock)  # one request back every 5 s
    seen: list[dict[str, str]] = []
    for _ in range(3):
        headers: dict[str, str] = {}
        seen.append(headers)
        bucket.take(headers)
    assert [h["x-ratelimit-remaining-requests"] for h in seen] == ["1", "0", "0"]
    assert "retry-after" not in seen[1] and seen[2]["retry-after-ms"] == "5000"
    assert bucket.refused == 1
    figures = rate_limits(seen[1], 0.0)
    assert figures is not None and figures.requests_limit == 2
    assert figures.requests_reset == pytest.approx(10.0)
    clock.now += 5.0
    assert bucket.take({})
    assert not bucket.take({})
    bucket.reset()
    assert bucket.refused == 0 and bucket.take({}) and bucket.take({})


def test_a_hidden_limit_shows_only_in_its_429s() -> None:
    bucket = RequestBucket(1, 1.0, headers=False, clock=Clock())
    first: dict[str, str] = {}
    second: dict[str, str] = {}
    assert bucket.take(first) and not bucket.take(second)
    assert first == {} and set(second) == {"retry-after", "retry-after-ms"}


@pytest.mark.parametrize(("limit", "window"), [(0, 1.0), (1, 0.0), (-1, 5.0)])
def test_a_limit_must_make_sense(limit: int, window: float) -> None:
    with pytest.raises(ValueError, match="request limit"):
        RequestBucket(limit, window)
