"""The router's log lines: one INFO line per request, one per cooldown.

Loggers (one ``router.*`` hierarchy; configure ``router`` to get them all):

* ``router.request``: INFO, one line per routed request, success or failure,
  with every field of the request's event as structured ``extra`` (below);
* ``router.cooldown``: INFO, a deployment starts or extends a cooldown;
* ``router.attempts``: DEBUG, the routing decisions: which pre-call check
  removed which deployment, which deployments were cooling down, what the
  strategy picked among which candidates (with their load figures), retries
  and fallbacks;
* ``router.observe``: a callback that failed, timed out or was dropped
  (ERROR/WARNING, once per callback);
* ``router.state``, ``router.shared_load``, ``router.shared_cooldowns``: Redis trouble.

``extra`` keys of a request line: ``outcome`` (``"success"``/``"failure"``),
``requested_model``, ``model_group``, ``deployment_id``, ``provider``,
``attempt``, ``retries``, ``fallbacks``, ``stream``, ``latency``, ``ttft``,
``input_tokens``, ``output_tokens``, ``cached_tokens``, ``total_tokens``,
``cost``, ``response_id``, ``user``, ``safety_identifier``, ``metadata``,
``error_class``, ``status`` (HTTP, failures), ``response_status``
(the Response's ``status``, successes), ``trail`` (the attempt trail as one string).
Missing values are ``None``. Nothing secret is ever logged: events carry
deployment ids, never keys, URLs with credentials or headers.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from router.events import CooldownEvent, FailureEvent, SuccessEvent

__all__ = ["RequestLog"]

request_log = logging.getLogger("router.request")
cooldown_log = logging.getLogger("router.cooldown")


class RequestLog:
    """The built-in observer that writes the request and cooldown lines."""

    def __init__(
        self, logger: logging.Logger = request_log, cooldowns: logging.Logger = cooldown_log
    ) -> None:
        self._log = logger
        self._cooldowns = cooldowns

    def enabled(self) -> bool:
        """Whether request lines are wanted now (INFO enabled on the logger)."""
        return self._log.isEnabledFor(logging.INFO)

    def on_success(self, event: SuccessEvent) -> None:
        if not self._log.isEnabledFor(logging.INFO):
            return
        usage = event.usage
        self._log.info(
            "%s ok: %s/%s in %.3fs%s, attempt %d%s%s%s",
            event.requested_model, event.model_group, event.deployment_id, event.latency,
            "" if event.ttft is None else f" (first event {event.ttft:.3f}s)", event.attempt,
            "" if usage is None else f", tokens {usage.input_tokens}/{usage.output_tokens}",
            "" if event.cost is None else f", cost {event.cost:.6g}",
            _who(event),
            extra=_fields(event, "success"),
        )

    def on_failure(self, event: FailureEvent) -> None:
        if not self._log.isEnabledFor(logging.INFO):
            return
        self._log.info(
            "%s failed: %s%s in %.3fs after %d attempt(s) [%s]%s",
            event.requested_model, event.error_class,
            f" [{event.status}]" if event.status else "", event.latency, event.attempt,
            event.trail, _who(event),
            extra=_fields(event, "failure"),
        )

    def on_cooldown(self, event: CooldownEvent) -> None:
        self._cooldowns.info(
            "deployment %r (%s) cooling down for %.1fs: %s%s, cooldown %d in a row%s",
            event.deployment_id, event.model_group, event.seconds, event.reason,
            f" [{event.status}]" if event.status else "", event.times,
            f" (recorded by router {event.origin})" if event.origin else "",
            extra={"deployment_id": event.deployment_id, "model_group": event.model_group,
                   "reason": event.reason, "status": event.status,
                   "cooldown_seconds": event.seconds, "until_wall": event.until_wall,
                   "times": event.times, "origin": event.origin},
        )


def _who(event: SuccessEvent | FailureEvent) -> str:
    user = event.end_user
    return "" if user.user is None else f", user {user.user!r}"


def _fields(event: SuccessEvent | FailureEvent, outcome: str) -> dict[str, Any]:
    usage, user, trail = event.usage, event.end_user, event.trail
    return {
        "outcome": outcome,
        "requested_model": event.requested_model,
        "model_group": event.model_group,
        "deployment_id": event.deployment_id,
        "provider": getattr(event, "provider", None),
        "attempt": event.attempt,
        "retries": trail.retries,
        "fallbacks": list(trail.fallbacks),
        "stream": event.stream,
        "latency": event.latency,
        "ttft": event.ttft,
        "input_tokens": None if usage is None else usage.input_tokens,
        "output_tokens": None if usage is None else usage.output_tokens,
        "cached_tokens": None if usage is None else usage.cached_tokens,
        "total_tokens": None if usage is None else usage.total_tokens,
        "cost": event.cost,
        "response_id": getattr(event, "response_id", None),
        "user": user.user,
        "safety_identifier": user.safety_identifier,
        "metadata": None if user.metadata is None else dict(user.metadata),
        "error_class": getattr(event, "error_class", None),
        "status": getattr(event, "status", None),
        "response_status": getattr(event, "response_status", None),
        "trail": str(trail),
    }
