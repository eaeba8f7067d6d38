"""Rate-limit headers in the load picture: skip a deployment before it answers 429.

Upstreams say how much of their rate limit is left on every answer:

* OpenAI and Azure OpenAI: ``x-ratelimit-remaining-requests`` and
  ``x-ratelimit-remaining-tokens``, with ``x-ratelimit-limit-requests`` and
  ``x-ratelimit-reset-requests`` / ``x-ratelimit-reset-tokens`` as durations
  (``1s``, ``6m0s``, ``20ms``, ``1m30.5s``); Azure often sends the remaining
  counts without a reset;
* Anthropic: ``anthropic-ratelimit-requests-remaining`` / ``-limit`` and the
  tokens, input-tokens and output-tokens variants (the smallest counts), each
  with a ``...-reset`` instant (RFC 3339).

Both document their limits as buckets refilled continuously, the reset being
when the bucket is full again. So :class:`Headroom` keeps, per deployment,
what the last answer said and how many attempts were sent there since, and
estimates the requests left at any instant as ``remaining`` plus the refill
since the answer (``limit - remaining`` spread evenly until the reset) less
the attempts sent since. A deployment with less than one request left, or,
before its token reset, fewer tokens left than the request needs (its input
as :func:`router.tokens.estimate_input_tokens` counts it, plus its
``max_output_tokens``), is out of room for it; without a limit or a reset a
figure holds as said for :data:`DEFAULT_RESET` seconds.

The attempt loop leaves a deployment with no room out of the candidates:
every strategy benefits, as from a cooldown. When every candidate is out of
room the request is sent anyway (the upstream may have refilled sooner, and
its 429 and ``Retry-After`` are what the rest of the router honours). A
pinned request ignores headroom: only its owner can serve it.

Figures are per process (each router process sees its own answers).
Parsing costs two header lookups per answer when the upstream sends none.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, NamedTuple

from router.tokens import estimate_input_tokens

if TYPE_CHECKING:
    from router.clock import Clock
    from router.deployment import Deployment
    from router.request import RouteRequest

__all__ = ["DEFAULT_RESET", "Headroom", "RateLimits", "parse_duration", "rate_limits"]

#: Seconds a "remaining" figure is trusted when the upstream sent no reset.
DEFAULT_RESET = 10.0

_OPENAI_REQUESTS = "x-ratelimit-remaining-requests"
_ANTHROPIC_REQUESTS = "anthropic-ratelimit-requests-remaining"
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


class RateLimits(NamedTuple):
    """What one answer said: counts left (``None``: not said), the request limit,
    and seconds to each reset."""

    requests: int | None
    tokens: int | None
    requests_reset: float | None
    tokens_reset: float | None
    requests_limit: int | None = None


def parse_duration(text: str) -> float | None:
    """OpenAI's reset durations (``"6m0s"``, ``"20ms"``, ``"1.5s"``, ``"2"``) in seconds."""
    text = text.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    total, at = 0.0, 0
    for match in _DURATION.finditer(text):
        if match.start() != at:
            return None
        total += float(match.group(1)) * _UNIT[match.group(2)]
        at = match.end()
    return total if at == len(text) and at else None


def rate_limits(headers: Mapping[str, str], wall: float) -> RateLimits | None:
    """The rate-limit figures in ``headers`` (case-insensitive), or ``None``.

    ``wall`` is the current Unix time (Anthropic's resets are instants).
    """
    if headers.get(_OPENAI_REQUESTS) is not None or \
            headers.get("x-ratelimit-remaining-tokens") is not None:
        return RateLimits(
            _count(headers.get(_OPENAI_REQUESTS)),
            _count(headers.get("x-ratelimit-remaining-tokens")),
            _seconds(headers.get("x-ratelimit-reset-requests")),
            _seconds(headers.get("x-ratelimit-reset-tokens")),
            _count(headers.get("x-ratelimit-limit-requests")))
    if headers.get(_ANTHROPIC_REQUESTS) is not None or \
            headers.get("anthropic-ratelimit-tokens-remaining") is not None:
        tokens = [_count(headers.get(f"anthropic-ratelimit-{kind}-remaining"))
                  for kind in ("tokens", "input-tokens", "output-tokens")]
        resets = [_instant(headers.get(f"anthropic-ratelimit-{kind}-reset"), wall)
                  for kind in ("tokens", "input-tokens", "output-tokens")]
        known = [t for t in tokens if t is not None]
        later = [r for r in resets if r is not None]
        return RateLimits(
            _count(headers.get(_ANTHROPIC_REQUESTS)), min(known) if known else None,
            _instant(headers.get("anthropic-ratelimit-requests-reset"), wall),
            max(later) if later else None,
            _count(headers.get("anthropic-ratelimit-requests-limit")))
    return None


def _count(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return max(0, int(float(value)))
    except ValueError:
        return None


def _seconds(value: str | None) -> float | None:
    return None if value is None else parse_duration(value)


def _instant(value: str | None, wall: float) -> float | None:
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
    return max(0.0, when - wall)


@dataclass(slots=True)
class _Room:
    """One deployment's last figures, with instants on the router's clock."""

    requests: int | None
    tokens: int | None
    limit: int | None
    at: float  # when they were said
    requests_until: float
    tokens_until: float
    sent: int = 0  # attempts sent since these figures

    def requests_left(self, now: float) -> float:
        """Requests left at ``now``: the figure, refilled evenly until the reset, less
        those sent since (infinite once the figure is past its reset, or never said)."""
        if self.requests is None or now >= self.requests_until:
            return float("inf")
        left = float(self.requests)
        if self.limit is not None and self.limit > left:
            left += (self.limit - left) * (now - self.at) / (self.requests_until - self.at)
        return left - self.sent

    def tokens_said(self, now: float) -> bool:
        """Whether a token figure holds at ``now`` (said, and before its reset)."""
        return self.tokens is not None and now < self.tokens_until

    def full(self, now: float, need: int = 1) -> bool:
        """No request left, or fewer tokens left than ``need``."""
        if self.requests_left(now) < 1:
            return True
        return self.tokens_said(now) and self.tokens is not None and self.tokens < need


class Headroom:
    """Each deployment's rate-limit room, from the answers' headers (see the module)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._rooms: dict[str, _Room] = {}
        self._lock = threading.Lock()  # the sync twins run a loop of their own

    @property
    def active(self) -> bool:
        """False until some answer carried rate-limit headers."""
        return bool(self._rooms)

    def saw(self, deployment_id: str, headers: Mapping[str, str]) -> None:
        """An answer from ``deployment_id`` (success or error) carried ``headers``."""
        found = rate_limits(headers, self._clock.wall())
        if found is None:
            return
        now = self._clock.now()
        room = _Room(
            found.requests, found.tokens, found.requests_limit, now,
            now + (DEFAULT_RESET if found.requests_reset is None else found.requests_reset),
            now + (DEFAULT_RESET if found.tokens_reset is None else found.tokens_reset))
        if found.requests_reset is None:
            room.limit = None  # no reset to spread the refill over: the figure holds as said
        with self._lock:
            self._rooms[deployment_id] = room

    def sent(self, deployment_id: str) -> None:
        """An attempt was sent to ``deployment_id`` (it uses up one request of the room)."""
        room = self._rooms.get(deployment_id)
        if room is not None:
            with self._lock:
                room.sent += 1

    def requests_left(self, deployment_id: str) -> float | None:
        """The requests ``deployment_id`` has left now, as estimated; ``None`` when no
        answer said, or what it said is past its reset."""
        room = self._rooms.get(deployment_id)
        if room is None:
            return None
        left = room.requests_left(self._clock.now())
        return None if left == float("inf") else left

    def has_room(self, deployment_id: str) -> bool:
        room = self._rooms.get(deployment_id)
        return room is None or not room.full(self._clock.now())

    def available(
        self, candidates: Sequence[Deployment], request: RouteRequest | None = None
    ) -> Sequence[Deployment]:
        """``candidates`` less those with no room for ``request``; all of them when none
        has room. The request's tokens (its input as estimated, plus its
        ``max_output_tokens``) are counted only when some candidate said how many
        tokens it has left."""
        rooms = self._rooms
        now = self._clock.now()
        need = 0  # the request's tokens: counted when a candidate first says its own
        full = []
        for d in candidates:
            room = rooms.get(d.id)
            if room is None:
                continue
            if not need and room.tokens_said(now):
                need = _tokens_needed(request)
            if room.full(now, max(1, need)):
                full.append(d)
        if not full or len(full) == len(candidates):
            return candidates
        return [d for d in candidates if d not in full]


def _tokens_needed(request: RouteRequest | None) -> int:
    """The tokens ``request`` will use of a deployment's budget, as estimated (at least 1)."""
    if request is None:
        return 1
    output = request.params.get("max_output_tokens")
    output = output if isinstance(output, int) and not isinstance(output, bool) else 0
    return max(1, estimate_input_tokens(request.params) + max(0, output))
