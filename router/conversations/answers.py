"""By-id calls on responses the router keeps, answered from the store in OpenAI's shapes.

* retrieve: the response as it was returned (``include`` is accepted as the
  OpenAI SDK sends it; what a response included was chosen when it was made);
* input items: the items the response's own request sent, each with an id
  (made from the response id and the item's place, so cursors are stable),
  paged with ``after``, ``before``, ``limit`` (1-100, default 20) and
  ``order`` (``desc`` by default), as OpenAI pages them;
* delete: removes the content (a follow-up then fails with a clear error) and
  answers ``{"id", "object": "response.deleted", "deleted": true}``;
* cancel: as OpenAI treats a response that is not a running background one:
  a 400 saying it cannot be cancelled.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from router.conversations.links import Link
from router.errors import InvalidRequestError

__all__ = ["cancel_refusal", "deleted", "input_items_page", "retrieved"]

Json = dict[str, Any]


def retrieved(link: Link, query: Mapping[str, Any]) -> Json:
    """``GET /responses/{id}``: the kept response."""
    include = query.get("include", query.get("include[]"))
    if include is not None and not (
            isinstance(include, (list, tuple, str))
            and all(isinstance(v, str) for v in ([include] if isinstance(include, str)
                                                 else include))):
        raise InvalidRequestError("include: expected a list of strings")
    return dict(link.response)


def deleted(response_id: str) -> Json:
    return {"id": response_id, "object": "response.deleted", "deleted": True}


def cancel_refusal(link: Link) -> InvalidRequestError:
    status = link.response.get("status")
    return InvalidRequestError(
        f"response {link.id!r} cannot be cancelled: only background responses can be, "
        f"while they run (its status is {status!r})", model_group=link.group)


def input_items_page(link: Link, query: Mapping[str, Any]) -> Json:
    """``GET /responses/{id}/input_items``: one page of the response's input items."""
    items = [_with_id(item, link.id, i) for i, item in enumerate(link.input)]
    limit = _limit(query.get("limit", 20))
    order = query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise InvalidRequestError(f"order: expected 'asc' or 'desc', got {order!r}")
    seq = items if order == "asc" else items[::-1]
    ids = [item["id"] for item in seq]
    start = _cursor(ids, query, "after") + 1 if query.get("after") is not None else 0
    end = _cursor(ids, query, "before") if query.get("before") is not None else len(seq)
    window = seq[start:end]
    data = window[:limit]
    return {"object": "list", "data": data,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": len(window) > limit}


def _with_id(item: Mapping[str, Any], response_id: str, index: int) -> Json:
    out = dict(item)
    if "id" not in out:
        kind = out.get("type", "message")
        tag = "msg" if kind == "message" else "item"
        out["id"] = f"{tag}_{response_id.removeprefix('resp_')}_{index}"
    if out.get("type") == "message":
        out.setdefault("status", "completed")
    return out


def _limit(value: Any) -> int:
    try:
        limit = int(value)
    except (TypeError, ValueError):
        limit = 0
    if isinstance(value, bool) or not 1 <= limit <= 100:
        raise InvalidRequestError(f"limit: expected an integer from 1 to 100, got {value!r}")
    return limit


def _cursor(ids: list[str], query: Mapping[str, Any], name: str) -> int:
    try:
        return ids.index(query[name])
    except ValueError:
        raise InvalidRequestError(f"{name}: no input item with id {query[name]!r}") from None
