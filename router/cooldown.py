"""Cooldowns: take a failing deployment out of rotation for a while.

*Whether* an error cools a deployment, and which duration applies, is the
error's row of :data:`router.errors.ERROR_TABLE`:

* ``immediate`` (429 rate limit and quota, 401, 403, 404): at once;
* ``counted`` (408, 5xx, timeouts, broken connections, garbled answers): when
  more than ``allowed_fails`` (or the ``allowed_fails_policy`` entry for its
  kind) happened within ``FAIL_WINDOW`` seconds;
* ``none`` (400 and the other request errors): never.

*How long* (``duration`` column):

* ``default``: the n-th consecutive cooldown of a deployment lasts
  ``cooldown_time x n``, capped at ``max_cooldown_time`` (default
  ``DEFAULT_MAX_COOLDOWN_FACTOR x cooldown_time``), then moved by up to
  ``+-jitter`` (a fraction, from the injected ``rng``) so that router processes
  that cooled the same deployment at the same moment do not all send it traffic
  again at the same moment. n counts cooldowns that follow one another: it
  starts again at 1 after a success on the deployment (:meth:`record_success`)
  or after a quiet period of ``max_cooldown_time`` without a cooldown. A
  failure while a cooldown is in force does not start a new one (the ten
  requests in flight when a deployment dies would otherwise escalate it ten
  times at once); it can only extend the current one.
* ``retry-after``: the upstream's ``Retry-After`` exactly: not escalated (the
  upstream knows when its window reopens; waiting longer only wastes capacity)
  and not jittered (coming back earlier hits the limit again), capped at
  ``RETRY_AFTER_CAP`` so that a garbled header cannot take a deployment out
  until restart. It counts toward n. Without a ``Retry-After``: ``default``.
* ``long`` (an exhausted quota): ``max(QUOTA_COOLDOWN_FACTOR x cooldown_time,
  max_cooldown_time)``, jittered, not escalated. Quota comes back on a human's
  or a billing period's time, not in seconds; the router then probes with one
  request per period. It is never shorter than the longest escalated cooldown.

Refused credentials (401/403) and an unknown model (404) use ``default``, not
``long``: they usually need a configuration change, but 401s also come in
short bursts (an identity provider's hiccup, a key being rotated), and
escalation already keeps a deployment that goes on failing out for up to
``max_cooldown_time`` after a few rounds, while a blip costs one
``cooldown_time``.

**A ``Retry-After`` is a promise the router keeps.** A 429 or 503 that says
when to come back cools the deployment for exactly that long, even when it is
the only deployment of its group (the upstream itself says it is out; the
group-of-one rule below is for failures the router guesses at). When that
cooldown ends the deployment is *on probation* (half-open): one request, the
probe, may reach it; the probe puts a cooldown of one more interval on it, so
every other request waits (or is refused with the wait, see the dispatcher)
until the probe answers. A success ends the probation
(:meth:`Cooldowns.record_success`); another 429 starts over. The entry's
``probe`` field carries the interval, so a router that learns the cooldown
from another process (:mod:`router.shared_cooldowns`) keeps the same
promise; that module also makes the claim of the probe atomic across
processes.

A cooldown is only ever extended, never shortened, whatever the reason.
Entries carry both clock times (``until``, monotonic, for this process) and
Unix times (``until_wall``, for display and for other router processes, see
:mod:`router.shared_cooldowns`); :meth:`Cooldowns.merge` applies an entry
another router recorded. Listeners (``on_cooldown``) see every new or
extended cooldown. When every deployment of a group cools, :meth:`soonest`
names the one that recovers first (panic mode, in the dispatcher).

The dispatcher does not cool down the only deployment of a group (that would
turn one failure into an outage of the whole group), except for a
``Retry-After`` (:meth:`Cooldowns.promised`).
"""

from __future__ import annotations

import logging
import math
import random
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from router.errors import UpstreamError
from router.policies import policy_value

if TYPE_CHECKING:
    from router.clock import Clock
    from router.deployment import Deployment

__all__ = [
    "DEFAULT_MAX_COOLDOWN_FACTOR",
    "FAIL_WINDOW",
    "QUOTA_COOLDOWN_FACTOR",
    "RETRY_AFTER_CAP",
    "CooldownEntry",
    "CooldownListener",
    "Cooldowns",
]

log = logging.getLogger("router.cooldown")

FAIL_WINDOW = 60.0
QUOTA_COOLDOWN_FACTOR = 12.0
DEFAULT_MAX_COOLDOWN_FACTOR = 10.0
RETRY_AFTER_CAP = 3600.0


@dataclass(frozen=True, slots=True, kw_only=True)
class CooldownEntry:
    """``deployment_id`` is out of rotation until ``until`` because of ``reason``.

    ``until`` and ``started`` are clock times (``Clock.now()``, this process
    only); ``until_wall`` is the same end in Unix seconds. ``reason`` is the
    error class name and ``status`` its HTTP status (``None`` when it had
    none). ``times``: this is the deployment's n-th consecutive cooldown.
    ``origin`` is ``None`` when this router recorded it, else the instance id
    of the router that did. ``probe``: the upstream's ``Retry-After`` in
    seconds when this cooldown keeps that promise (the deployment is then on
    probation when it ends), else ``None``.
    """

    deployment_id: str
    until: float
    until_wall: float
    reason: str
    status: int | None
    times: int
    started: float
    origin: str | None = None
    probe: float | None = None


CooldownListener = Callable[[CooldownEntry], None]


class Cooldowns:
    """Cooldown state of one router (memory; see :mod:`router.shared_cooldowns`)."""

    def __init__(
        self,
        clock: Clock,
        *,
        allowed_fails: int,
        cooldown_time: float,
        disabled: bool = False,
        allowed_fails_policy: Mapping[str, int] | None = None,
        max_cooldown_time: float | None = None,
        jitter: float = 0.0,
        rng: random.Random | None = None,
        on_cooldown: CooldownListener | None = None,
    ) -> None:
        cap = DEFAULT_MAX_COOLDOWN_FACTOR * cooldown_time if max_cooldown_time is None \
            else max_cooldown_time
        if cap < cooldown_time:
            raise ValueError("max_cooldown_time must be at least cooldown_time")
        if not 0.0 <= jitter < 1.0:
            raise ValueError("cooldown jitter must be a fraction in [0, 1)")
        self._clock = clock
        self._allowed_fails = allowed_fails
        self._policy = dict(allowed_fails_policy or {})
        self._cooldown_time = cooldown_time
        self._max = cap
        self._long = max(QUOTA_COOLDOWN_FACTOR * cooldown_time, cap)
        self._jitter = jitter
        self._rng = rng or random.Random()
        self._disabled = disabled
        self._entries: dict[str, CooldownEntry] = {}
        self._earliest = math.inf  # no entry expires before this clock time
        self._fails: dict[str, deque[float]] = {}
        self._streaks: dict[str, tuple[int, float]] = {}  # id -> (times, last until)
        self._listeners: list[CooldownListener] = [on_cooldown] if on_cooldown else []
        self._probation: dict[str, float] = {}  # id -> probe interval, after a Retry-After

    # -- reading ---------------------------------------------------------------------------

    def available(self, deployments: Sequence[Deployment]) -> Sequence[Deployment]:
        """``deployments`` minus those cooling down now (the same object when none is)."""
        if not self._entries:
            return deployments
        self._expire(self._clock.now())
        if not self._entries:
            return deployments
        kept = [d for d in deployments if d.id not in self._entries]
        return deployments if len(kept) == len(deployments) else kept

    def active(self) -> list[CooldownEntry]:
        """Cooldowns in force now, soonest recovery first."""
        self._expire(self._clock.now())
        return sorted(self._entries.values(), key=lambda e: e.until)

    def get(self, deployment_id: str) -> CooldownEntry | None:
        """The cooldown in force for ``deployment_id``, or ``None``."""
        self._expire(self._clock.now())
        return self._entries.get(deployment_id)

    def soonest(self, deployments: Sequence[Deployment]) -> CooldownEntry | None:
        """The cooldown that ends first among ``deployments``' (``None``: none cools)."""
        if not self._entries:
            return None
        self._expire(self._clock.now())
        best: CooldownEntry | None = None
        for d in deployments:
            entry = self._entries.get(d.id)
            if entry is not None and (best is None or entry.until < best.until):
                best = entry
        return best

    # -- recording -------------------------------------------------------------------------

    def listen(self, listener: CooldownListener) -> None:
        """Call ``listener`` with every new or extended cooldown (local or merged).

        Listeners run on the request path: they must be quick and must not
        block; an exception they raise is logged, never propagated.
        """
        self._listeners.append(listener)

    def record_failure(self, deployment_id: str, error: UpstreamError) -> CooldownEntry | None:
        """Account for ``error`` on ``deployment_id``.

        Returns the cooldown in force afterwards when the error started or
        touched one (the current one, unchanged, when it would have ended
        sooner), else ``None``.
        """
        policy = error.policy
        promised = self.promised(error)
        if self._disabled or (policy.cooldown == "none" and not promised):
            return None
        now = self._clock.now()
        if (policy.cooldown == "counted" and not promised
                and not self._count_failure(deployment_id, now, error)):
            return None
        current = self._live(deployment_id, now)
        times = current.times if current else self._next_times(deployment_id, now)
        duration = (min(error.retry_after or 0.0, RETRY_AFTER_CAP) if promised
                    else self._duration(error, times))
        if duration <= 0:
            return None
        if current is not None and current.until >= now + duration:
            return current
        return self._put(CooldownEntry(
            deployment_id=deployment_id, until=now + duration,
            until_wall=self._clock.wall() + duration, reason=type(error).__name__,
            status=error.status, times=times, started=current.started if current else now,
            probe=duration if promised else None,
        ), times)

    @staticmethod
    def promised(error: UpstreamError) -> bool:
        """``error`` carries a ``Retry-After`` the router must keep (a 429 or 503 that said)."""
        if error.retry_after is None:
            return False
        return error.policy.duration == "retry-after" or error.status == 503

    def on_probation(self, deployment_id: str) -> float | None:
        """The probe interval when ``deployment_id`` is half-open (its next request is a probe)."""
        if not self._probation:
            return None
        self._expire(self._clock.now())
        if deployment_id in self._entries:
            return None
        return self._probation.get(deployment_id)

    def start_probe(self, deployment_id: str, reason: str = "probe") -> CooldownEntry | None:
        """The next request to a deployment on probation goes: hold the others for an interval.

        Returns the entry that holds them (shared like any cooldown), or ``None``
        when the deployment is not on probation.
        """
        interval = self.on_probation(deployment_id)
        if interval is None:
            return None
        now = self._clock.now()
        streak, _ = self._streaks.get(deployment_id, (1, 0.0))
        return self._put(CooldownEntry(
            deployment_id=deployment_id, until=now + interval,
            until_wall=self._clock.wall() + interval, reason=reason, status=None,
            times=streak, started=now, probe=interval,
        ), streak)

    def record_success(self, deployment_id: str) -> None:
        """A request succeeded on ``deployment_id``: its next cooldown counts as the first.

        O(1) and allocation-free; it does not end a cooldown in force (a success
        that started before a 429 says nothing about the limit now).
        """
        if self._streaks and deployment_id in self._streaks:
            del self._streaks[deployment_id]
        if self._probation and self._probation.pop(deployment_id, None) is not None:
            entry = self._entries.get(deployment_id)
            if entry is not None and entry.reason == "probe":  # the probe itself answered
                del self._entries[deployment_id]

    def merge(self, entry: CooldownEntry) -> CooldownEntry | None:
        """Apply a cooldown recorded elsewhere (``entry.until`` already in this clock's time).

        Extends, never shortens; returns ``entry`` when it changed anything.
        """
        if self._disabled:
            return None
        current = self._live(entry.deployment_id, self._clock.now())
        if entry.until <= self._clock.now() or (current and current.until >= entry.until):
            return None
        known, _ = self._streaks.get(entry.deployment_id, (0, 0.0))
        return self._put(entry, max(known, entry.times))

    # -- internals ---------------------------------------------------------------------------

    def _count_failure(self, deployment_id: str, now: float, error: UpstreamError) -> bool:
        """Count a failure; True when it is one too many for the window."""
        allowed = policy_value(self._policy, "AllowedFails", error)
        allowed = self._allowed_fails if allowed is None else allowed
        fails = self._fails.setdefault(deployment_id, deque())
        fails.append(now)
        while fails and fails[0] <= now - FAIL_WINDOW:
            fails.popleft()
        if len(fails) > allowed:
            fails.clear()
            return True
        return False

    def _next_times(self, deployment_id: str, now: float) -> int:
        times, last_until = self._streaks.get(deployment_id, (0, -math.inf))
        return 1 if now - last_until > self._max else times + 1

    def _duration(self, error: UpstreamError, times: int) -> float:
        kind = error.policy.duration
        if kind == "retry-after" and error.retry_after is not None:
            return min(error.retry_after, RETRY_AFTER_CAP)
        if kind == "long":
            return self._jittered(self._long)
        return self._jittered(min(self._cooldown_time * times, self._max))

    def _jittered(self, seconds: float) -> float:
        if not self._jitter:
            return seconds
        return seconds * (1.0 + self._rng.uniform(-self._jitter, self._jitter))

    def _live(self, deployment_id: str, now: float) -> CooldownEntry | None:
        self._expire(now)
        return self._entries.get(deployment_id)

    def _put(self, entry: CooldownEntry, streak: int) -> CooldownEntry:
        self._entries[entry.deployment_id] = entry
        self._earliest = min(self._earliest, entry.until)
        self._streaks[entry.deployment_id] = (streak, entry.until)
        for listener in self._listeners:
            try:
                listener(entry)
            except Exception:
                log.exception("cooldown listener %r failed", listener)
        return entry

    def _expire(self, now: float) -> None:
        if now < self._earliest:
            return
        expired = [k for k, e in self._entries.items() if e.until <= now]
        for key in expired:
            entry = self._entries.pop(key)
            if entry.probe is not None:
                self._probation[key] = entry.probe
        self._earliest = min((e.until for e in self._entries.values()), default=math.inf)
