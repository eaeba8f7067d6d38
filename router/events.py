"""The events the router reports to callbacks, one immutable type per hook.

==============  ======================  ==========================================
hook            event                   when
==============  ======================  ==========================================
on_success      :class:`SuccessEvent`   a request was served (a stream: at its
                                        terminal event, with usage and cost)
on_failure      :class:`FailureEvent`   a request failed (the error the caller
                                        got; a stream also when it breaks or is
                                        closed before its end)
on_retry        :class:`RetryEvent`     an attempt failed and another will be made
on_fallback     :class:`FallbackEvent`  the request moves to a fallback group
on_cooldown     :class:`CooldownEvent`  a deployment starts (or extends) a cooldown
==============  ======================  ==========================================

Each event is built once and shared by every callback, so it is immutable:
a ``NamedTuple``, not a frozen dataclass, because it is built on the request
path and a tuple is several times cheaper to make (read its fields by name;
that it is also a tuple is an implementation detail). The events carry ids,
never secrets: their reprs are safe to log. How callbacks are called is
:mod:`router.observe`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple, Union

if TYPE_CHECKING:
    from router.cost import TokenUsage
    from router.types import AttemptTrail

__all__ = [
    "HOOKS",
    "Callback",
    "CooldownEvent",
    "EndUser",
    "Event",
    "FailureEvent",
    "FallbackEvent",
    "RetryEvent",
    "SuccessEvent",
]

HOOKS = ("on_success", "on_failure", "on_retry", "on_fallback", "on_cooldown")


class EndUser(NamedTuple):
    """Who the request was for, as the caller said in the Responses API body.

    ``user`` and ``safety_identifier`` are the body's fields; ``metadata`` a
    copy of its ``metadata`` object. ``None`` when the request did not say.
    """

    user: str | None = None
    safety_identifier: str | None = None
    metadata: Mapping[str, Any] | None = None

    @classmethod
    def of(cls, params: Mapping[str, Any]) -> EndUser:
        """The end user of a request body (the shared empty one when it names none)."""
        user = params.get("user")
        safety = params.get("safety_identifier")
        metadata = params.get("metadata")
        if user is None and safety is None and not metadata:
            return _NOBODY
        return cls(
            user if isinstance(user, str) else None,
            safety if isinstance(safety, str) else None,
            dict(metadata) if isinstance(metadata, Mapping) and metadata else None,
        )


_NOBODY = EndUser()


class SuccessEvent(NamedTuple):
    """A served request.

    ``latency``: seconds from the call to the response (a stream: to its
    terminal event), retries included; ``ttft``: for streams, seconds from the
    call to the first event being handed to the caller, else ``None``.
    ``attempt``: the serving attempt's number (1 = first try);
    ``response_status``: the Response's ``status`` (``"completed"``,
    ``"incomplete"``, ...). ``usage`` and
    ``cost`` are ``None`` when unknown (no usage, or a deployment without
    prices). ``trail`` lists every attempt.
    """

    requested_model: str
    model_group: str
    deployment_id: str
    provider: str
    attempt: int
    stream: bool
    latency: float
    ttft: float | None
    usage: TokenUsage | None
    cost: float | None
    response_id: str | None
    response_status: str | None
    end_user: EndUser
    trail: AttemptTrail


class FailureEvent(NamedTuple):
    """A request that failed: ``error`` is what the caller got (``None`` when a
    stream was closed by the caller before its end: ``error_class`` is then
    ``"StreamClosed"``). ``model_group``/``deployment_id`` are where it last
    ran (``deployment_id`` is ``None`` when no deployment was tried);
    ``attempt`` counts the attempts made. A stream that failed after its
    first event has ``ttft``, and ``usage``/``cost`` when its terminal
    ``response.failed`` event reported usage.
    """

    requested_model: str
    model_group: str
    deployment_id: str | None
    attempt: int
    stream: bool
    latency: float
    ttft: float | None
    error_class: str
    status: int | None
    message: str | None
    end_user: EndUser
    trail: AttemptTrail
    usage: TokenUsage | None = None
    cost: float | None = None
    error: BaseException | None = None


class RetryEvent(NamedTuple):
    """Attempt number ``attempt`` failed on ``deployment_id`` with ``error_class``
    and the router will try again in ``model_group`` after ``wait`` seconds.
    ``trail`` is the request's live trail (it grows while the request goes on)."""

    requested_model: str
    model_group: str
    deployment_id: str | None
    attempt: int
    error_class: str
    status: int | None
    wait: float
    end_user: EndUser
    trail: AttemptTrail


class FallbackEvent(NamedTuple):
    """``from_group`` gave up with ``error_class``; the request moves to ``to_group``
    after ``attempt`` attempts. ``trail`` is the live trail, as for retries."""

    requested_model: str
    from_group: str
    to_group: str
    attempt: int
    error_class: str
    end_user: EndUser
    trail: AttemptTrail


class CooldownEvent(NamedTuple):
    """``deployment_id`` (of ``model_group``) is out of rotation for ``seconds``
    more, until ``until_wall`` (Unix seconds), because of ``reason`` (an error
    class name; ``status`` its HTTP status). ``times``: the n-th consecutive
    cooldown. ``origin``: ``None`` when this router recorded it, else the
    instance id of the router process that did (shared through Redis)."""

    deployment_id: str
    model_group: str | None
    reason: str
    status: int | None
    seconds: float
    until_wall: float
    times: int
    origin: str | None


Event = Union[SuccessEvent, FailureEvent, RetryEvent, FallbackEvent, CooldownEvent]  # noqa: UP007


class Callback:
    """Optional base class of a callback: override the hooks you need, sync or async.

    The no-op methods here are never called: the router only calls methods a
    subclass overrides.
    """

    def on_success(self, event: SuccessEvent) -> Any:
        """A request was served."""

    def on_failure(self, event: FailureEvent) -> Any:
        """A request failed."""

    def on_retry(self, event: RetryEvent) -> Any:
        """An attempt failed and another will be made."""

    def on_fallback(self, event: FallbackEvent) -> Any:
        """The request moves to a fallback group."""

    def on_cooldown(self, event: CooldownEvent) -> Any:
        """A deployment cools down."""
