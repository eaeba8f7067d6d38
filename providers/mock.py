"""The ``mock`` provider: well-formed responses and streams, no network.

For examples and for users' own tests: ``model="mock/anything"`` on a
deployment, or ``mock_response="text"`` on a deployment or on one request
(which then skips the network even for a real deployment). Each deployment
keeps its own stored responses, as a real resource does, so
``previous_response_id`` continues only on the deployment that made the
response, and retrieve / delete / cancel / input_items work.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncGenerator, Mapping
from typing import TYPE_CHECKING, Any

from cachetools import LRUCache

from router.errors import BadRequestError, NotFoundError, PreviousResponseNotFoundError
from router.types import Record, Response, StreamEvent

if TYPE_CHECKING:
    from providers.http import ClientPool
    from router.config.models import DeploymentConfig
    from router.deployment import Deployment
    from router.request import RouteRequest

__all__ = ["DEFAULT_TEXT", "MockProvider", "mock_response_payload"]

DEFAULT_TEXT = "This is a mock response."
_MAX_STORED = 10_000


def _new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}{uuid.uuid4().hex[:16]}"


def mock_response_payload(model: str, params: Mapping[str, Any], text: str) -> dict[str, Any]:
    """A complete ``Response`` object (status ``completed``) saying ``text``."""
    words_in = len(str(params.get("input", "")).split())
    words_out = len(text.split())
    message = {
        "id": _new_id("msg"), "type": "message", "role": "assistant", "status": "completed",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }
    return {
        "id": _new_id("resp"), "object": "response", "created_at": int(time.time()),
        "status": "completed", "model": model, "output": [message],
        "error": None, "incomplete_details": None,
        "instructions": params.get("instructions"), "metadata": params.get("metadata") or {},
        "parallel_tool_calls": params.get("parallel_tool_calls", True),
        "temperature": params.get("temperature", 1.0), "top_p": params.get("top_p", 1.0),
        "tool_choice": params.get("tool_choice", "auto"), "tools": params.get("tools", []),
        "previous_response_id": params.get("previous_response_id"),
        "max_output_tokens": params.get("max_output_tokens"),
        "store": params.get("store", True), "background": False,
        "text": {"format": {"type": "text"}}, "reasoning": {"effort": None, "summary": None},
        "truncation": "disabled",
        "usage": {
            "input_tokens": words_in,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": words_out, "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": words_in + words_out,
        },
    }


def mock_stream_events(final: dict[str, Any]) -> list[dict[str, Any]]:
    """The SSE event objects that stream ``final``, in the API's order."""
    message = final["output"][0]
    part = message["content"][0]
    text: str = part["text"]
    pending = {**final, "status": "in_progress", "output": [], "usage": None}
    item_ref = {"item_id": message["id"], "output_index": 0}
    words = text.split(" ")
    deltas = [w if i == 0 else " " + w for i, w in enumerate(words)]
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": pending},
        {"type": "response.in_progress", "response": pending},
        {"type": "response.output_item.added", "output_index": 0,
         "item": {**message, "status": "in_progress", "content": []}},
        {"type": "response.content_part.added", **item_ref, "content_index": 0,
         "part": {**part, "text": ""}},
        *({"type": "response.output_text.delta", **item_ref, "content_index": 0,
           "delta": d, "logprobs": []} for d in deltas),
        {"type": "response.output_text.done", **item_ref, "content_index": 0,
         "text": text, "logprobs": []},
        {"type": "response.content_part.done", **item_ref, "content_index": 0, "part": part},
        {"type": "response.output_item.done", "output_index": 0, "item": message},
        {"type": "response.completed", "response": final},
    ]
    for number, event in enumerate(events):
        event["sequence_number"] = number
    return events


class MockProvider:
    """Answers from memory; one store per router, keyed by deployment."""

    name = "mock"

    def __init__(self, pool: ClientPool | None = None) -> None:
        """``pool`` is unused (the mock sends nothing); it is taken so the
        registry can build every provider the same way."""
        self._stored: LRUCache[str, tuple[str, dict[str, Any], list[Any]]] = LRUCache(_MAX_STORED)

    def prepare(self, config: DeploymentConfig) -> None:
        return None

    def state_domain(self, deployment: Deployment) -> str:
        return f"mock:{deployment.id}"

    async def create(
        self, deployment: Deployment, request: RouteRequest, timeout: float | None
    ) -> Response:
        return Response(self._make(deployment, request))

    async def stream(
        self, deployment: Deployment, request: RouteRequest, timeout: float | None
    ) -> AsyncGenerator[StreamEvent, None]:
        for event in mock_stream_events(self._make(deployment, request)):
            yield StreamEvent(event)

    async def call(
        self,
        deployment: Deployment,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        resource: str = "responses",
    ) -> Record:
        if resource != "responses":
            raise NotFoundError(f"the mock provider keeps no {resource}", status=404,
                                model_group=deployment.model_name, deployment_id=deployment.id)
        response_id, _, action = path.partition("/")
        _, data, items = self._lookup(deployment, response_id)
        if method == "DELETE":
            del self._stored[response_id]
            return Record({"id": response_id, "object": "response.deleted", "deleted": True})
        if action == "cancel":
            raise BadRequestError(
                "Only responses created with background=true can be cancelled.",
                status=400, model_group=deployment.model_name, deployment_id=deployment.id,
            )
        if action == "input_items":
            return Record(_page(items, query or {}))
        return Record(data)

    async def aclose(self) -> None:
        self._stored.clear()

    def _make(self, deployment: Deployment, request: RouteRequest) -> dict[str, Any]:
        # What an upstream would read: extra_body is merged into the body last.
        params = {**request.params, **request.extra_body} if request.extra_body else request.params
        previous = params.get("previous_response_id")
        if previous is not None and self._owner(previous) != deployment.id:
            raise PreviousResponseNotFoundError(
                f"Previous response with id '{previous}' not found.", status=400,
                code="previous_response_not_found", param="previous_response_id",
                model_group=deployment.model_name, deployment_id=deployment.id,
            )
        text = request.mock_response or deployment.mock_response or DEFAULT_TEXT
        data = mock_response_payload(deployment.upstream_model, params, text)
        if params.get("store", True):
            self._stored[data["id"]] = (deployment.id, data, _input_items(params.get("input")))
        return data

    def _owner(self, response_id: str) -> str | None:
        entry = self._stored.get(response_id)
        return entry[0] if entry else None

    def _lookup(
        self, deployment: Deployment, response_id: str
    ) -> tuple[str, dict[str, Any], list[Any]]:
        entry = self._stored.get(response_id)
        if entry is None or entry[0] != deployment.id:
            raise NotFoundError(
                f"Response with id '{response_id}' not found.", status=404,
                model_group=deployment.model_name, deployment_id=deployment.id,
            )
        return entry


def _input_items(value: Any) -> list[Any]:
    if isinstance(value, str):
        return [{"id": _new_id("msg"), "type": "message", "role": "user",
                 "content": [{"type": "input_text", "text": value}]}]
    return list(value) if isinstance(value, list) else []


def _page(items: list[Any], query: Mapping[str, Any]) -> dict[str, Any]:
    limit = int(query.get("limit", 20))
    ordered = items if query.get("order") == "asc" else list(reversed(items))
    data = ordered[:limit]
    return {
        "object": "list", "data": data, "has_more": len(ordered) > limit,
        "first_id": data[0].get("id") if data else None,
        "last_id": data[-1].get("id") if data else None,
    }
