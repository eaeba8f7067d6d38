"""The attempt loop: groups, retries, cooldowns, deadline; one concern per layer.

:meth:`Dispatcher.run` tries the requested group and then its fallbacks;
:meth:`Dispatcher._run_group` resolves the group's pin (:mod:`router.pinning`)
and retries inside the group, re-picking elsewhere than the deployments
that already failed this request unless elsewhere is clearly worse
(:mod:`router.retry_targets`); :meth:`_choose` narrows the group (the pin,
pre-call checks, then cooldowns) and asks the strategy. The loop owns each
attempt's load slot with one ``async with``: what an attempt *does* is the
``call`` passed in (:class:`router.exchange.Exchange`'s create, or open a
stream, which takes the slot over), so streaming and plain calls share
every rule here. Control only flows down: the call never calls back into
the loop or the router.

Decisions are logged at DEBUG on ``router.attempts`` (which check removed
which deployment, what was cooling down, what the strategy picked among which
candidates and their load figures, retries, fallbacks); retries and
fallbacks are also reported to the router's callbacks when any listens.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

from router.budget import Unlimited
from router.errors import (
    NoDeploymentAvailableError,
    PinnedDeploymentUnavailableError,
    RateLimitError,
    ResponseNotFoundError,
    RouterError,
    UpstreamError,
    UpstreamTimeoutError,
)
from router.pinning import PIN_CHECK_NAME
from router.retry_targets import failure_weight, note_failure, retry_targets
from router.shared_load import Admission, Refusal
from router.strategies.base import cost_reader
from router.types import Attempt, AttemptTrail

if TYPE_CHECKING:
    from checks.base import PreCallCheck
    from router.budget import Budget, RetryBudgets
    from router.cache_affinity import CacheAffinity
    from router.clock import Clock
    from router.config.models import PanicMode
    from router.cooldown import Cooldowns
    from router.deployment import Deployment
    from router.fallbacks import FallbackPlan
    from router.headroom import Headroom
    from router.load import LoadHandle, LoadTracker
    from router.observe import Observers
    from router.order import OrderTiers
    from router.pinning import Pin, PinResolver
    from router.request import RouteRequest
    from router.retry import RetryPolicy
    from router.strategies.base import CostReader, Strategy
    from router.table import DeploymentTable

__all__ = ["RETRY_AFTER_PENDING", "AttemptCall", "Dispatcher", "ProbeClaims", "Served"]

T = TypeVar("T")

log = logging.getLogger("router.attempts")

#: One attempt: (deployment, seconds it may take or None, its load slot) -> result.
#: The loop releases the slot when the call returns or raises; the call reports
#: the response's usage to it, or hands it over to a stream that outlives the call.
AttemptCall = Callable[["Deployment", "float | None", "LoadHandle"], Awaitable[T]]


#: The ``code`` of the :class:`RateLimitError` a caller gets, before any upstream
#: call, while every deployment it could use keeps an upstream's ``Retry-After``.
RETRY_AFTER_PENDING = "retry_after_pending"


class ProbeClaims(Protocol):
    """Claims the one probe of a deployment on probation, across router processes."""

    async def claim_probe(self, deployment_id: str, interval: float) -> bool: ...


@dataclass(frozen=True, slots=True)
class Served(Generic[T]):
    """A result, the deployment that produced it, and the request's trail."""

    result: T
    deployment: Deployment
    trail: AttemptTrail


class Dispatcher:
    """Runs attempts for one router; holds no per-request state."""

    def __init__(
        self,
        *,
        table: DeploymentTable,
        strategy: Strategy,
        checks: Sequence[PreCallCheck],
        cooldowns: Cooldowns,
        load: LoadTracker,
        retry: RetryPolicy,
        fallbacks: FallbackPlan,
        clock: Clock,
        rng: random.Random,
        admission: Admission | None = None,
        order: OrderTiers | None = None,
        budgets: RetryBudgets | None = None,
        panic_mode: PanicMode = "fail",
        observers: Observers | None = None,
        pinning: PinResolver | None = None,
        probes: ProbeClaims | None = None,
        affinity: CacheAffinity | None = None,
        headroom: Headroom | None = None,
    ) -> None:
        self._table = table
        self._strategy = strategy
        self._costs = cost_reader(strategy, load)
        self._checks = tuple(checks)
        self._cooldowns = cooldowns
        self._load = load
        self._retry = retry
        self._fallbacks = fallbacks
        self._clock = clock
        self._rng = rng
        self._admission = admission or Admission(load, clock, {})
        self._order = order if order is not None and order.active else None
        self._budgets = budgets
        self._panic_mode = panic_mode
        self._observers = observers
        self._pinning = pinning
        self._probes = probes
        self._affinity = affinity
        self._headroom = headroom

    async def run(self, request: RouteRequest, call: AttemptCall[T]) -> Served[T]:
        """Serve ``request`` from its group or a fallback; raise the last error with the trail."""
        trail = AttemptTrail(request.model)
        started = self._clock.now()
        pins: list[Pin] = []
        try:
            try:
                return await self._run_group(request.model, request, call, trail, started, pins)
            except RouterError as first:
                error = first
            source = request.model
            for group in self._fallbacks.groups_after(request, error):
                if self._expired(request):
                    break
                self._falling_back(request, trail, source, group, error)
                trail.fallbacks.append(group)
                source = group
                try:
                    return await self._run_group(group, request, call, trail, started, pins)
                except NoDeploymentAvailableError as exc:
                    trail.notes.append(f"fallback {group!r}: {exc.message}")
                except RateLimitError as exc:
                    if exc.code != RETRY_AFTER_PENDING:
                        error = exc
                        continue
                    trail.notes.append(f"fallback {group!r}: {exc.message}")
                except RouterError as exc:
                    error = exc
                    if exc.fallback is None:
                        break
            raise _final(error, trail, pins[-1] if pins else None)
        finally:
            trail.duration = self._clock.now() - started

    async def _run_group(
        self,
        group: str,
        request: RouteRequest,
        call: AttemptCall[T],
        trail: AttemptTrail,
        started: float,
        pins: list[Pin],
    ) -> Served[T]:
        deployments = self._table.group(group)
        budget = self._budget(deployments[0].model_name)  # a wildcard's one budget
        budget.deposit()
        pin = await self._pin(group, deployments, request, pins, trail)
        failed: dict[str, float] = {}  # deployment id: see retry_targets.failure_weight
        refused: dict[str, str] = {}
        last: UpstreamError | None = None
        tries = refusals = 0
        admission = self._admission if self._admission.active else None
        while True:
            if pin is not None and request.continuation is not None and self._pin_lost(
                    pin, failed):  # conversation failover: any deployment of the group
                trail.notes.append(f"the owner of {request.previous_response_id!r} cannot "
                                   "serve: its conversation is replayed on the group")
                pin = None
                pins.pop()  # a later failure is the replay's, not the owner's
            back = self._costs if last is not None and self._may_go_back(
                group, tries, request) else None
            deployment, eligible = await self._choose(
                group, deployments if pin is None else pin, request, failed, last, refused,
                trail, admission, pinned=pin is not None, back=back)
            if not await self._probe_claimed(deployment, trail):
                continue  # another request (or router) probes it: choose again
            timeout = self._attempt_timeout(deployment, request, group)
            if last is not None:
                self._check_time_for_retry(deployment, request, last, trail)
            slot = await self._claim(deployment, request, admission)
            if isinstance(slot, Refusal):
                refusals += 1
                if slot.kind == "rate" or refusals > 2 * len(deployments):
                    refused[slot.deployment_id] = slot.reason
                continue  # "parallel": the checks now see it full and wait for a slot
            if self._headroom is not None:
                self._headroom.sent(deployment.id)
            t0 = self._clock.now()
            try:
                async with slot:
                    result = await call(deployment, timeout, slot)
            except UpstreamError as exc:
                self._record(trail, group, deployment, t0, started, exc)
                if isinstance(exc, UpstreamTimeoutError) and _callers_limit(
                        deployment, request, timeout):
                    trail.notes.append(f"{deployment.id!r} timed out under the caller's own "
                                       "shorter limit: not counted against it")
                else:
                    self._on_failure(deployment, exc, len(deployments))
                tries += 1
                if tries > self._retry.retries_for(exc, request.num_retries):
                    raise
                note_failure(failed, deployment.id, failure_weight(exc, self._clock.now() - t0))
                last = exc
                await self._backoff(tries - 1, exc, request, eligible, failed, budget, trail)
                continue
            self._cooldowns.record_success(deployment.id)
            self._record(trail, group, deployment, t0, started, None)
            if self._affinity is not None:
                self._affinity.served(request, deployment)
            return Served(result, deployment, trail)

    def _may_go_back(self, group: str, tries: int, request: RouteRequest) -> bool:
        """Whether a deployment that failed may be tried again (:mod:`router.retry_targets`):
        never on the last try whatever fails next, nor in a group ranked by ``order``
        (a failed deployment there gives way to the next order)."""
        if tries >= self._retry.fewest_retries(request.num_retries):
            return False
        return self._order is None or not self._order.ranks(group)

    def _pin_lost(self, pin: Sequence[Deployment], failed: Mapping[str, float]) -> bool:
        """Every pinned deployment failed this request or is cooling down."""
        left = [d for d in pin if d.id not in failed]
        return not left or not self._cooldowns.available(left)

    async def _claim(
        self, deployment: Deployment, request: RouteRequest, admission: Admission | None
    ) -> LoadHandle | Refusal:
        """The load slot of the attempt on ``deployment``, or why it has no room.

        Admission and acquiring have no ``await`` in between, so a limit
        checked is a limit kept within this process.
        """
        if admission is None:
            return self._load.acquire(deployment.id)
        outcome = await admission.admit(deployment, request)
        return outcome if isinstance(outcome, Refusal) else admission.acquire(outcome)

    async def _pin(
        self, group: str, deployments: Sequence[Deployment], request: RouteRequest,
        pins: list[Pin], trail: AttemptTrail,
    ) -> list[Deployment] | None:
        """The deployments of ``group`` that can read the request's previous response;
        ``None`` when the request is not pinned (or pinning is off)."""
        if self._pinning is None or (request.previous_response_id is None
                                     and request.conversation_id is None):
            return None
        continuation = request.continuation
        if continuation is not None and continuation.kind == "kept":
            return None  # the router keeps this conversation: any deployment can go on
        try:
            pin = await self._pinning.resolve(group, request)
        except ResponseNotFoundError:
            if continuation is None:
                raise
            return None  # the owner is gone from the config: failover replays the history
        if pin is None:
            return None
        kept = pin.narrow(deployments)
        if not kept:
            removed = {PIN_CHECK_NAME: [d.id for d in deployments]}
            raise NoDeploymentAvailableError(
                f"no deployment of {group!r} passed the pre-call checks: "
                f"{PIN_CHECK_NAME} removed {', '.join(removed[PIN_CHECK_NAME])}",
                reason="checks_rejected", model_group=group, details=removed,
            )
        pins.append(pin)
        trail.notes.append(f"pinned to {pin.owner!r}, which holds {pin.response_id!r}")
        return kept

    async def _choose(
        self,
        group: str,
        deployments: Sequence[Deployment],
        request: RouteRequest,
        failed: Mapping[str, float],
        last: UpstreamError | None,
        refused: dict[str, str],
        trail: AttemptTrail,
        admission: Admission | None,
        *,
        pinned: bool,
        back: CostReader | None = None,
    ) -> tuple[Deployment, Sequence[Deployment]]:
        """The deployment to try, and every deployment the checks allow.

        ``deployments``: the group, or its pinned part (which outranks cooldown);
        ``back``: the costs by which a deployment that failed may be tried again
        (:func:`retry_targets`), ``None`` when none may.
        """
        if admission is not None and admission.shared is not None:
            await admission.refresh([d.id for d in deployments])
        eligible = (
            await self._apply_checks(group, deployments, request) if self._checks else deployments
        )
        candidates = eligible
        if refused:  # limits reached since the checks' figures were read
            candidates = [d for d in candidates if d.id not in refused]
            if not candidates:
                raise NoDeploymentAvailableError(
                    f"no deployment of {group!r} has room: "
                    + "; ".join(f"{k}: {v}" for k, v in refused.items()),
                    reason="checks_rejected", model_group=group, details=dict(refused),
                )
        pool = candidates
        if failed:  # elsewhere when possible, unless elsewhere is clearly worse
            candidates = retry_targets(candidates, failed, back, self._cooldowns.available)
        available = self._cooldowns.available(candidates)
        if not available:
            candidates = await self._keep_promises(group, candidates, request, trail)
            available = self._cooldowns.available(candidates)
        if not available and last is not None and last.retry_same:
            # no other can serve: the error allows the one that failed again ("same")
            again = self._cooldowns.available([d for d in pool if d.id in failed])
            if again:
                candidates = available = again
        if not available:
            if pinned:
                available = candidates  # the pin outranks cooldown: only the owner can serve
            elif last is not None:
                raise last  # this request already failed here: no panic, the caller learns why
            else:
                available = await self._panic(group, candidates, request, trail)
        headroom = self._headroom
        if headroom is not None and headroom.active and not pinned:
            available = headroom.available(available, request)  # all when none has room
        if self._order is not None:
            available = self._order.narrow(available)
        picked = self._strategy.pick(available, request)
        if self._affinity is not None and not pinned:
            picked = self._affinity.choose(available, request, picked)
        if log.isEnabledFor(logging.DEBUG):
            self._log_pick(group, picked, candidates, available, failed, pinned)
        return picked, eligible

    def _log_pick(
        self, group: str, picked: Deployment, candidates: Sequence[Deployment],
        available: Sequence[Deployment], failed: Mapping[str, float], pinned: bool,
    ) -> None:
        """Why ``picked``: the candidates the strategy saw, with the figures it reads."""
        seen = ", ".join(
            f"{d.id} (in flight {self._load.in_flight(d.id)}, "
            f"latency {_seconds(self._load.latency(d.id))})" for d in available)
        kept = {d.id for d in available}
        cooling = [d.id for d in candidates if d.id not in kept]
        log.debug(
            "%r: %s picked %r among %s%s%s%s", group, type(self._strategy).__name__,
            picked.id, seen,
            f"; left out (cooling down, lower order or no rate-limit room): {cooling}"
            if cooling else "", f"; failed this request: {sorted(failed)}" if failed else "",
            "; pinned to the response's owner" if pinned else "",
        )

    def _falling_back(
        self, request: RouteRequest, trail: AttemptTrail, source: str, target: str,
        error: RouterError,
    ) -> None:
        log.debug("%r gave up (%s); falling back to %r", source, type(error).__name__, target)
        observers = self._observers
        if observers is not None and observers.fallback:
            observers.falling_back(request, trail, source, target, error)

    async def _panic(
        self, group: str, candidates: Sequence[Deployment], request: RouteRequest,
        trail: AttemptTrail,
    ) -> Sequence[Deployment]:
        """Every candidate cools down: ``panic_mode`` says fail, send to the soonest, or wait."""
        soonest = self._cooldowns.soonest(candidates)
        if soonest is None:
            return candidates  # recovered in the meantime
        first = [d for d in candidates if d.id == soonest.deployment_id]
        if self._panic_mode == "soonest":
            trail.notes.append(f"{group!r}: every deployment cooling down; sent to "
                               f"{soonest.deployment_id!r}, the first to recover")
            return first
        now = self._clock.now()
        wait = max(0.0, soonest.until - now)
        left = request.time_left(now)
        if self._panic_mode == "wait" and (left is None or wait < left):
            trail.notes.append(f"{group!r}: every deployment cooling down; waited {wait:.2f}s "
                               f"for {soonest.deployment_id!r}")
            await self._clock.sleep(wait)
            return self._cooldowns.available(candidates) or first
        raise self._all_cooled(group, candidates)

    async def _apply_checks(
        self, group: str, candidates: Sequence[Deployment], request: RouteRequest
    ) -> Sequence[Deployment]:
        """``candidates`` narrowed by every check.

        The group's own tuple is returned unchanged when no check removed
        anything: strategies cache per-group figures by that tuple's identity.
        """
        removed: dict[str, list[str]] = {}
        for check in self._checks:
            kept = await check.filter(list(candidates), request)
            if len(kept) == len(candidates):
                continue
            ids = {d.id for d in kept}
            removed[check.name] = [d.id for d in candidates if d.id not in ids]
            log.debug("%r: check %s removed %s", group, check.name, removed[check.name])
            candidates = kept
            if not candidates:
                raise NoDeploymentAvailableError(
                    f"no deployment of {group!r} passed the pre-call checks: "
                    + "; ".join(f"{k} removed {', '.join(v)}" for k, v in removed.items()),
                    reason="checks_rejected", model_group=group, details=removed,
                )
        return candidates

    def _all_cooled(
        self, group: str, candidates: Sequence[Deployment]
    ) -> NoDeploymentAvailableError:
        ids = {d.id for d in candidates}
        entries = [e for e in self._cooldowns.active() if e.deployment_id in ids]
        soonest = min((e.until for e in entries), default=self._clock.now())
        wait = max(0.0, soonest - self._clock.now())
        return NoDeploymentAvailableError(
            f"every deployment of {group!r} is cooling down; the first recovers in {wait:.1f}s",
            reason="all_cooled_down", model_group=group,
            details={e.deployment_id: e.reason for e in entries},
        )

    def _attempt_timeout(
        self, deployment: Deployment, request: RouteRequest, group: str
    ) -> float | None:
        left = request.time_left(self._clock.now())
        if left is not None and left <= 0:
            raise UpstreamTimeoutError(
                "the request's timeout passed before another attempt could start",
                model_group=group, deployment_id=deployment.id,
            )
        limit = deployment.timeout
        if left is None:
            return limit
        return left if limit is None else min(limit, left)

    def _check_time_for_retry(
        self,
        deployment: Deployment,
        request: RouteRequest,
        last: UpstreamError,
        trail: AttemptTrail,
    ) -> None:
        """Do not start a retry the deadline leaves no time to finish.

        "Time to finish" is the deployment's latency EWMA of successful
        requests; an unmeasured deployment is always tried.
        """
        left = request.time_left(self._clock.now())
        usual = self._load.latency(deployment.id)
        if left is not None and usual is not None and usual > left:
            trail.notes.append(
                f"retry on {deployment.id!r} not started: {left:.2f}s left, "
                f"it usually takes {usual:.2f}s"
            )
            raise last

    def _on_failure(self, deployment: Deployment, error: UpstreamError, group_size: int) -> None:
        if group_size > 1 or self._cooldowns.promised(error):
            self._cooldowns.record_failure(deployment.id, error)

    async def _keep_promises(
        self, group: str, candidates: Sequence[Deployment], request: RouteRequest,
        trail: AttemptTrail,
    ) -> Sequence[Deployment]:
        """Every candidate cools down: leave out those keeping an upstream's ``Retry-After``.

        They are never sent to early, not even for a pin or in panic. When all
        of them keep one, the caller gets a :class:`RateLimitError` carrying
        the wait, or with ``panic_mode="wait"`` waits for it within the
        deadline (and is then sent to the deployment, as its probe).
        """
        promised = [e for e in (self._cooldowns.get(d.id) for d in candidates)
                    if e is not None and e.probe is not None]
        if not promised:
            return candidates
        held = {e.deployment_id for e in promised}
        rest = [d for d in candidates if d.id not in held]
        if rest:
            return rest
        soonest = min(promised, key=lambda e: e.until)
        now = self._clock.now()
        wait = max(0.0, soonest.until - now)
        left = request.time_left(now)
        if self._panic_mode == "wait" and (left is None or wait < left):
            trail.notes.append(f"{group!r}: waited {wait:.2f}s for {soonest.deployment_id!r}, "
                               "as its Retry-After asked")
            await self._clock.sleep(wait)
            return candidates
        raise RateLimitError(
            f"every deployment of {group!r} asked to be left alone (Retry-After); "
            f"{soonest.deployment_id!r} may be tried again in {wait:.2f}s",
            status=429, code=RETRY_AFTER_PENDING, retry_after=wait, model_group=group,
            deployment_id=soonest.deployment_id,
        )

    async def _probe_claimed(self, deployment: Deployment, trail: AttemptTrail) -> bool:
        """A deployment on probation takes one request (the probe); claim it, or say no."""
        interval = self._cooldowns.on_probation(deployment.id)
        if interval is None:
            return True
        won = True if self._probes is None else await self._probes.claim_probe(
            deployment.id, interval)
        self._cooldowns.start_probe(deployment.id, reason="probe" if won else "probe elsewhere")
        if not won:
            trail.notes.append(f"{deployment.id!r} is on probation after a Retry-After and "
                               "another router sends its probe")
        return won

    def record_failure(self, deployment: Deployment, error: UpstreamError) -> None:
        """Count a failure found after the attempt loop (a stream broken mid-way)."""
        self._on_failure(deployment, error, len(self._table.group(deployment.model_name)))

    async def _backoff(
        self,
        retry: int,
        error: UpstreamError,
        request: RouteRequest,
        eligible: Sequence[Deployment],
        failed: Mapping[str, float],
        budget: Budget,
        trail: AttemptTrail,
    ) -> None:
        others = any(d.id not in failed for d in self._cooldowns.available(eligible))
        if not others and not error.retry_same:
            raise error
        wait = self._retry.wait(retry, error, same_deployment=not others, rng=self._rng)
        left = request.time_left(self._clock.now())
        if left is not None and wait >= left:
            raise error
        if not budget.withdraw():
            trail.notes.append(f"retry budget exhausted: {type(error).__name__} from "
                               f"{error.deployment_id!r} not retried")
            log.debug("%s", trail.notes[-1])
            raise error
        log.debug("retrying %r after %s from %r (attempt %d), in %.3fs%s", error.model_group,
                  type(error).__name__, error.deployment_id, len(trail.attempts), wait,
                  "" if others else " on the same deployment")
        observers = self._observers
        if observers is not None and observers.retry:
            observers.retrying(request, trail, error, wait)
        if wait > 0:
            await self._clock.sleep(wait)

    def _budget(self, group: str) -> Budget:
        return _NO_BUDGET if self._budgets is None else self._budgets.for_group(group)

    def _expired(self, request: RouteRequest) -> bool:
        left = request.time_left(self._clock.now())
        return left is not None and left <= 0

    def _record(
        self,
        trail: AttemptTrail,
        group: str,
        deployment: Deployment,
        t0: float,
        started: float,
        error: UpstreamError | None,
    ) -> None:
        trail.attempts.append(Attempt(
            model_group=group,
            deployment_id=deployment.id,
            started=t0 - started,
            duration=self._clock.now() - t0,
            error=None if error is None else type(error).__name__,
            status=None if error is None else error.status,
            message=None if error is None else error.message[:200],
        ))


_NO_BUDGET = Unlimited()


def _callers_limit(deployment: Deployment, request: RouteRequest, timeout: float | None) -> bool:
    """Whether the limit an attempt ran under was the caller's own, shorter one.

    A timeout under it is the request's doing (a per-call ``timeout`` or
    ``stream_timeout`` below what the router and the deployment allow), so it
    never counts toward the deployment's cooldown.
    """
    if request.caller_timeout and timeout is not None and (
            deployment.timeout is None or timeout < deployment.timeout):
        return True
    limit = request.stream_timeout
    return request.stream and limit is not None and (
        deployment.stream_timeout is None or limit < deployment.stream_timeout)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}s"


def _final(error: RouterError, trail: AttemptTrail, pin: Pin | None) -> RouterError:
    """The error the caller gets: with the trail, and naming the pin when one failed."""
    if pin is not None and isinstance(error, UpstreamError) and (
        error.retryable or error.cools_down
    ):
        wrapped = PinnedDeploymentUnavailableError(
            f"deployment {pin.owner!r}, the only one holding response "
            f"{pin.response_id!r}, failed: {type(error).__name__}: {error.message}",
            response_id=pin.response_id,
            model_group=error.model_group, deployment_id=pin.owner,
        )
        wrapped.__cause__ = error
        error = wrapped
    error.trail = trail
    return error
