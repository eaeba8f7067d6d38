"""Where a retry may go: elsewhere, unless elsewhere is clearly worse.

A retry goes to a deployment that has not failed the request yet: the
failure was that deployment's. Taken as a rule without exception, that
piles retries onto whatever is left, however slow: a fast deployment that
fails 3 % of its requests sends every one of them to the one other
deployment, and when that one serves a request a second, every client ends
up queued there while the fast one is starved.

So a deployment whose failure was fast and transient stays a candidate if,
even counting the failure against it, it is still clearly better than every
other deployment that can serve now: twice the larger of its cost by the
strategy's own measure (:func:`router.strategies.base.cost_reader`:
``peak-ewma``'s expected latency, ``least-busy``'s requests in flight; for a
strategy without costs, requests in flight) and the seconds the failed
attempt took must stay below the lowest cost of the others. Doubling reads
the one failure as "it fails half its requests", the most one sample can
say; the failed attempt's own time keeps a slow failure (a 500 after a long
generation) from looking cheap.

Transient (:func:`failure_weight`) means a server error (not a 503, which
says the deployment is overloaded or down) or a broken connection, with no
``Retry-After``: a timeout, a malformed answer, a rate limit, an
authentication error or an unknown model never go back. A deployment goes
back at most once per request, never on the request's last try (the attempt
loop judges that by the fewest retries any error would allow), and never in a
group ranked by ``order``, where a failed deployment gives way to the next
order. So a fast deployment that is down for good costs a request one more
fast failure, never the request itself while another deployment could serve
it, and the cooldown (``allowed_fails``) soon takes it out of the group. A
retry that goes back goes at once, as one elsewhere would.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from router.errors import ConnectionError, ServerError, ServiceUnavailableError, UpstreamError

if TYPE_CHECKING:
    from router.deployment import Deployment
    from router.strategies.base import CostReader

__all__ = ["failure_weight", "note_failure", "retry_targets"]


def failure_weight(error: UpstreamError, elapsed: float) -> float:
    """What a deployment's first failure of a request leaves for :func:`retry_targets`:
    the seconds the attempt took after a transient failure, else infinity (never back)."""
    transient = (isinstance(error, (ServerError, ConnectionError))
                 and not isinstance(error, ServiceUnavailableError)
                 and error.retry_after is None)
    return elapsed if transient else math.inf


def note_failure(failed: dict[str, float], deployment_id: str, weight: float) -> None:
    """Record in ``failed`` that ``deployment_id`` failed the request: its
    :func:`failure_weight` the first time, infinity (never back) the second."""
    failed[deployment_id] = math.inf if deployment_id in failed else weight


def retry_targets(
    candidates: Sequence[Deployment],
    failed: Mapping[str, float],
    costs: CostReader | None,
    usable: Callable[[Sequence[Deployment]], Sequence[Deployment]] | None = None,
) -> Sequence[Deployment]:
    """The candidates of a retry; ``failed`` maps each deployment that failed this
    request to its :func:`failure_weight` (infinity after a second failure).

    Every candidate that has not failed, plus each failed one for which twice the
    larger of its cost and its weight is still below the lowest cost of the others
    that are ``usable`` (not cooling down). When every candidate failed, all of them
    (the caller decides whether the error allows going back). ``costs``: ``None``
    when no failed deployment may come back (the request's last try, ``order``).
    """
    others = [d for d in candidates if d.id not in failed]
    if not others:
        return candidates
    if costs is None or len(others) == len(candidates):
        return others
    again = [d for d in candidates if failed.get(d.id, math.inf) < math.inf]
    if not again:
        return others
    ready = others if usable is None else usable(others)
    if not ready:
        return others
    figures = costs([*ready, *again])
    best = min(figures[: len(ready)])
    back = [
        d for d, cost in zip(again, figures[len(ready):], strict=True)
        if 2 * max(cost, failed[d.id]) < best
    ]
    return [*others, *back] if back else others
