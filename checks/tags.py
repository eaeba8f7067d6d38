"""Tag filtering (``enable_tag_filtering``): tagged requests go to tagged deployments.

LiteLLM's rules (``router_strategy/tag_based_routing.py``, with its default
``tag_filtering_match_any=True``):

* a request with tags goes to the deployments sharing at least one of them;
  when none does, to the deployments tagged ``"default"``; when there are
  none either, nowhere (the router reports that this check removed them all);
* a request without tags goes to the deployments tagged ``"default"`` when
  there are some, else to any deployment.

How a request carries its tags: the Responses API's ``metadata`` is a map of
strings to strings, so ``metadata={"tags": "free,batch"}`` (comma-separated,
spaces around names ignored) is the native form and is forwarded upstream
as it is. LiteLLM's form, a list (``metadata={"tags": ["free", "batch"]}``),
is accepted too; since an upstream would refuse a list in ``metadata``, the
check replaces it in the forwarded body by the comma-separated string. Tags
anywhere else (a top-level ``tags`` argument) are not read.

Not carried over from LiteLLM's proxy: ``!tag`` / ``&tag`` operators,
``tag_regex`` on headers and per-key tag policies.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from checks.base import CheckContext

if TYPE_CHECKING:
    from router.deployment import Deployment
    from router.request import RouteRequest

__all__ = ["DEFAULT_TAG", "TagFilter", "request_tags"]

DEFAULT_TAG = "default"


def request_tags(params: dict[str, Any]) -> tuple[str, ...]:
    """The request's tags from ``metadata.tags`` (a list becomes the forwarded string)."""
    metadata = params.get("metadata")
    if not isinstance(metadata, Mapping):
        return ()
    raw = metadata.get("tags")
    if isinstance(raw, str):
        parts: list[str] = raw.split(",")
    elif isinstance(raw, list | tuple):
        parts = [t for t in raw if isinstance(t, str)]
    else:
        return ()
    tags = tuple(dict.fromkeys(t.strip() for t in parts if t.strip()))
    if not isinstance(raw, str):
        params["metadata"] = {**metadata, "tags": ",".join(tags)}
    return tags


class TagFilter:
    """Keeps the deployments a request's tags select (LiteLLM's rules, above)."""

    name = "tag_filtering"

    @classmethod
    def from_context(cls, context: CheckContext) -> TagFilter:
        return cls()

    async def filter(
        self, candidates: list[Deployment], request: RouteRequest
    ) -> list[Deployment]:
        wanted = request_tags(request.params)
        defaults = [d for d in candidates if DEFAULT_TAG in d.config.litellm_params.tags]
        if not wanted:
            return defaults or candidates
        wanted_set = frozenset(wanted)
        matching = [
            d for d in candidates if not wanted_set.isdisjoint(d.config.litellm_params.tags)
        ]
        return matching or defaults
