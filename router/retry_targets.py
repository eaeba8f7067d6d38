"""Where a retry may go: elsewhere, unless elsewhere is clearly worse.

A retry goes to a deployment that has not failed the request yet: the
failure was that deployment's. Taken as a rule without exception, that
piles retries onto whatever is left, however slow: a fast deployment that
fails 3 % of its requests sends every one of them to the one other
deployment, and when that one serves a request a second, every client ends
up queued there while the fast one is starved.

So a deployment that failed the request once stays a candidate if, even
counting the failure against it, it is still better by the strategy's own
cost (:func:`router.strategies.base.cost_reader`: ``peak-ewma``'s expected
latency, ``least-busy``'s requests in flight; for a strategy without costs,
requests in flight) than every other deployment that can serve now: its cost
is doubled for the comparison (one failure read as "it fails half its
requests", the most one sample can say). Never twice, and never on the last
try the request has: a deployment that is down for good costs a request at
most one extra fast failure, never the request itself while another
deployment could serve it, and the cooldown (``allowed_fails``) soon takes
it out of the group for everyone. Only transient errors allow it, those
retried on the same deployment and counted toward ``allowed_fails`` in
:data:`router.errors.ERROR_TABLE` (server errors, timeouts, broken
connections) that did not say when to come back: a rate limit or a
``Retry-After`` is waited for, an authentication error or an unknown model
never goes back. A retry that goes back goes at once, as one elsewhere
would.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from router.deployment import Deployment
    from router.strategies.base import CostReader

__all__ = ["retry_targets"]


def retry_targets(
    candidates: Sequence[Deployment],
    failed: Mapping[str, int],
    costs: CostReader | None,
    usable: Callable[[Sequence[Deployment]], Sequence[Deployment]] | None = None,
) -> Sequence[Deployment]:
    """The candidates of a retry, given how often each deployment ``failed`` this request.

    Every candidate that has not failed, plus each one that failed once and
    whose cost, doubled, is still below the lowest of the others that are
    ``usable`` (not cooling down). When every candidate failed, all of them
    (the caller decides whether the error allows going back). ``costs``:
    ``None`` when the request may not go back where it failed (the error is
    not transient, or this is its last try); then a failed deployment is
    never preferred.
    """
    others = [d for d in candidates if d.id not in failed]
    if not others:
        return candidates
    if costs is None or len(others) == len(candidates):
        return others
    ready = others if usable is None else usable(others)
    if not ready:
        return others
    again = [d for d in candidates if d.id in failed]
    figures = costs([*ready, *again])
    best = min(figures[: len(ready)])
    back = [
        d for d, cost in zip(again, figures[len(ready):], strict=True)
        if failed[d.id] == 1 and cost * 2 < best
    ]
    return [*others, *back] if back else others
