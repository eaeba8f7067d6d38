"""The mock provider, driven through the Router (providers/mock.py).

Each mock deployment keeps its own stored responses, as a real resource does,
so these tests also pin down how the router routes by response id.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from router.deployment import Deployment
from router.errors import (
    BadRequestError,
    PreviousResponseNotFoundError,
    ResponseNotFoundError,
)
from router.request import RouteRequest
from router.router import Router
from router.streaming import ResponseStream, SyncResponseStream
from router.types import Response

# isort: split
from providers.mock import DEFAULT_TEXT

ROOT = Path(__file__).resolve().parents[2]


class Chooser:
    """A strategy that picks the deployment named by ``target`` (else the first)."""

    def __init__(self, target: str | None = None) -> None:
        self.target = target

    def pick(self, candidates: Sequence[Deployment], request: RouteRequest) -> Deployment:
        for d in candidates:
            if d.id == self.target:
                return d
        return candidates[0]


def _dep(group: str, id: str, **params: Any) -> dict[str, Any]:
    return {"model_name": group, "litellm_params": {"model": f"mock/{id}", **params},
            "model_info": {"id": id}}


@pytest.fixture
async def router() -> AsyncIterator[Router]:
    r = Router([_dep("g", "d-a"), _dep("g", "d-b"), _dep("solo", "d-solo")],
               routing_strategy=Chooser("d-a"), rng=random.Random(0))
    async with r:
        yield r


def _chooser(router: Router) -> Chooser:
    strategy = router._parts.strategy
    assert isinstance(strategy, Chooser)
    return strategy


# -- import order ----------------------------------------------------------------------


_IMPORT_PROBE = """
import importlib, json, sys
result = {}
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m.split(".")[0] in ("router", "providers", "checks")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
        result[name] = "ok"
    except Exception as exc:
        result[name] = f"{type(exc).__name__}: {exc}"
print(json.dumps(result))
"""

_PROBED = ("providers", "providers.mock", "checks.base", "router", "router.errors")


@pytest.fixture(scope="module")
def first_imports() -> dict[str, str]:
    """What importing each module first, in a fresh interpreter state, gives."""
    done = subprocess.run([sys.executable, "-c", _IMPORT_PROBE, *_PROBED], cwd=ROOT,
                          capture_output=True, text=True, check=True)
    result: dict[str, str] = json.loads(done.stdout)
    return result


@pytest.mark.parametrize("module", ["router", "router.errors"])
def test_router_imports_on_its_own(first_imports: dict[str, str], module: str) -> None:
    assert first_imports[module] == "ok"


@pytest.mark.parametrize("module", ["providers", "providers.mock", "checks.base"])
def test_providers_import_on_their_own(first_imports: dict[str, str], module: str) -> None:
    assert first_imports[module] == "ok"


# -- create and stream -----------------------------------------------------------------


async def test_create(router: Router) -> None:
    resp = await router.aresponses(model="g", input="hello there", temperature=0.3,
                                   metadata={"k": "v"})
    assert isinstance(resp, Response)
    assert resp.output_text == DEFAULT_TEXT
    assert resp.status == "completed"
    assert resp.id.startswith("resp_")
    assert resp.model == "d-a"  # the upstream model name of mock/d-a
    assert resp.temperature == 0.3
    assert resp.metadata.k == "v"
    assert resp.usage.input_tokens == 2
    assert resp.routing is not None
    assert (resp.routing.model_group, resp.routing.deployment_id, resp.routing.provider) == \
        ("g", "d-a", "mock")
    assert [a.error for a in resp.routing.attempts] == [None]


async def test_stream(router: Router) -> None:
    stream = await router.aresponses(model="g", input="hi", stream=True)
    assert isinstance(stream, ResponseStream)
    events = [event async for event in stream]
    types = [e.type for e in events]
    assert types[0] == "response.created"
    assert types[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == DEFAULT_TEXT
    assert stream.response is not None
    assert stream.response.output_text == DEFAULT_TEXT
    assert stream.response.id == events[0].response.id
    assert stream.routing is not None and stream.routing.deployment_id == "d-a"
    assert router.services.load.total_in_flight() == 0


async def test_streamed_response_can_be_retrieved(router: Router) -> None:
    stream = await router.aresponses(model="g", input="hi", stream=True)
    async with stream:
        first = await stream.__anext__()
    got = await router.aget_responses(first.response.id)
    assert got.output_text == DEFAULT_TEXT


# -- previous_response_id ----------------------------------------------------------------


async def test_previous_response_continues_on_the_same_deployment(router: Router) -> None:
    first = await router.aresponses(model="g", input="one")
    follow = await router.aresponses(model="g", input="two", previous_response_id=first.id)
    assert follow.previous_response_id == first.id
    assert follow.routing.deployment_id == "d-a"
    assert follow.id != first.id


async def test_previous_response_on_another_deployment_is_not_found(router: Router) -> None:
    first = await router.aresponses(model="g", input="one")
    _chooser(router).target = "d-b"
    with pytest.raises(PreviousResponseNotFoundError) as info:
        await router.aresponses(model="g", input="two", previous_response_id=first.id)
    err = info.value
    assert err.deployment_id == "d-b"
    assert err.code == "previous_response_not_found"
    assert err.status == 400
    assert first.id in str(err)
    # not retryable: one attempt, and the trail reached the caller
    assert err.trail is not None
    assert [(a.deployment_id, a.error) for a in err.trail.attempts] == \
        [("d-b", "PreviousResponseNotFoundError")]


async def test_the_mock_reads_previous_response_id_as_an_upstream_would(router: Router) -> None:
    """``extra_body`` is merged into the body last: its id, or its null, is the one read."""
    first = await router.aresponses(model="g", input="one")  # on d-a
    _chooser(router).target = "d-b"
    cleared = await router.aresponses(model="g", input="two", previous_response_id=first.id,
                                      extra_body={"previous_response_id": None})
    assert cleared.previous_response_id is None
    with pytest.raises(PreviousResponseNotFoundError):
        await router.aresponses(model="g", input="three",
                                extra_body={"previous_response_id": first.id})


async def test_previous_response_across_groups_is_not_found(router: Router) -> None:
    first = await router.aresponses(model="g", input="one")
    with pytest.raises(PreviousResponseNotFoundError):
        await router.aresponses(model="solo", input="two", previous_response_id=first.id)


# -- by id ----------------------------------------------------------------------------------


async def test_retrieve_delete_and_input_items(router: Router) -> None:
    first = await router.aresponses(model="g", input="what is up")
    _chooser(router).target = "d-b"  # by-id calls ignore the strategy: they follow ownership

    got = await router.aget_responses(first.id)
    assert got.id == first.id
    assert got.output_text == first.output_text
    assert got.routing is not None and got.routing.deployment_id == "d-a"

    items = await router.alist_input_items(first.id)
    assert items.object == "list"
    assert items.has_more is False
    assert [i.content[0].text for i in items.data] == ["what is up"]

    deleted = await router.adelete_responses(first.id)
    assert deleted.deleted is True and deleted.id == first.id
    with pytest.raises(ResponseNotFoundError):
        await router.aget_responses(first.id)


async def test_input_items_page(router: Router) -> None:
    items = [{"type": "message", "role": "user", "id": f"m{i}",
              "content": [{"type": "input_text", "text": str(i)}]} for i in range(3)]
    first = await router.aresponses(model="g", input=items)
    page = await router.alist_input_items(first.id, limit=2)
    assert [i.id for i in page.data] == ["m2", "m1"]
    assert page.has_more is True
    page = await router.alist_input_items(first.id, order="asc")
    assert [i.id for i in page.data] == ["m0", "m1", "m2"]


async def test_cancel_is_refused_for_non_background(router: Router) -> None:
    first = await router.aresponses(model="g", input="x")
    with pytest.raises(BadRequestError, match="background"):
        await router.acancel_responses(first.id)


async def test_unstored_response_cannot_be_retrieved(router: Router) -> None:
    resp = await router.aresponses(model="g", input="x", store=False)
    with pytest.raises(ResponseNotFoundError):
        await router.aget_responses(resp.id)


# -- mock_response -----------------------------------------------------------------------


async def test_request_mock_response_overrides_text(router: Router) -> None:
    resp = await router.aresponses(model="g", input="x", mock_response="Canned answer.")
    assert resp.output_text == "Canned answer."
    stream = await router.aresponses(model="g", input="x", mock_response="a b", stream=True)
    assert [e.delta async for e in stream if e.type == "response.output_text.delta"] == \
        ["a", " b"]


async def test_deployment_mock_response() -> None:
    async with Router([_dep("g", "d", mock_response="From config.")]) as router:
        assert (await router.aresponses(model="g", input="x")).output_text == "From config."
        override = await router.aresponses(model="g", input="x", mock_response="Request wins.")
        assert override.output_text == "Request wins."


async def test_request_mock_response_can_be_retrieved(router: Router) -> None:
    resp = await router.aresponses(model="g", input="x", mock_response="Canned.")
    got = await router.aget_responses(resp.id)
    assert got.output_text == "Canned."


async def test_request_mock_response_can_be_continued(router: Router) -> None:
    resp = await router.aresponses(model="g", input="x", mock_response="Canned.")
    follow = await router.aresponses(model="g", input="y", previous_response_id=resp.id)
    assert follow.previous_response_id == resp.id


# -- sync twins ----------------------------------------------------------------------------


def test_sync_twins_from_plain_code() -> None:
    with Router([_dep("g", "d-a")], rng=random.Random(0)) as router:
        resp = router.responses(model="g", input="hello")
        assert resp.output_text == DEFAULT_TEXT
        assert router.get_responses(resp.id).id == resp.id
        items = router.list_input_items(resp.id)
        assert [i.content[0].text for i in items.data] == ["hello"]

        stream = router.responses(model="g", input="hello", stream=True)
        assert isinstance(stream, SyncResponseStream)
        types = [e.type for e in stream]
        assert types[0] == "response.created" and types[-1] == "response.completed"
        assert stream.response is not None and stream.response.output_text == DEFAULT_TEXT

        follow = router.responses(model="g", input="more", previous_response_id=resp.id)
        assert follow.previous_response_id == resp.id
    assert not router._runner.started


async def test_sync_twin_inside_a_running_loop_points_at_the_async_method(
    router: Router,
) -> None:
    with pytest.raises(RuntimeError, match="aresponses"):
        router.responses(model="g", input="x")
    with pytest.raises(RuntimeError, match="aget_responses"):
        router.get_responses("resp_1")
