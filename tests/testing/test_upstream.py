"""The fake upstream, over a real socket, checked against the official SDK's types."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import openai
import pytest
from openai.types.responses import Response, ResponseCompletedEvent, ResponseStreamEvent
from openai.types.responses.response_item_list import ResponseItemList
from pydantic import TypeAdapter

from router.testing import Upstream, UpstreamProcess

STREAM_EVENTS: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)
BODY = {"model": "gpt-4o", "input": "Hello there, how are you?"}
OPENAI_TYPES = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
    "response.output_text.delta",
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
    "response.completed",
]


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    async with Upstream("east", extra_fields={"x_future_field": {"a": 1}}) as up:
        yield up


@pytest.fixture
async def client(upstream: Upstream) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=upstream.url, timeout=5.0) as c:
        yield c


async def create(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    reply = await client.post("/v1/responses", json={**BODY, **body})
    assert reply.status_code == 200, reply.text
    data: dict[str, Any] = reply.json()
    return data


def parse_sse(text: str) -> list[tuple[str, str]]:
    """(event name, raw data) pairs of an SSE body."""
    events = []
    for block in text.split("\n\n"):
        if block.strip():
            name, data = block.split("\n", 1)
            events.append((name.removeprefix("event: "), data.removeprefix("data: ")))
    return events


def error_code(reply: httpx.Response) -> Any:
    return reply.json()["error"]["code"]


# --------------------------------------------------------------------------- create


async def test_create_validates_as_sdk_response(
    upstream: Upstream, client: httpx.AsyncClient
) -> None:
    reply = await client.post(
        "/v1/responses",
        json={**BODY, "temperature": 0.2, "metadata": {"k": "v"}, "brand_new_param": 7},
    )
    assert reply.status_code == 200
    data = reply.json()
    response = Response.model_validate(data)
    assert re.fullmatch(r"resp_[0-9a-f]{32,}", response.id)
    assert response.status == "completed"
    assert response.model == "gpt-4o"
    assert response.output_text == "[east] turn 1: Hello there, how are you?"
    assert response.temperature == 0.2 and response.metadata == {"k": "v"}
    assert response.usage is not None and response.usage.input_tokens == 5
    assert data["x_future_field"] == {"a": 1}
    assert reply.headers["x-upstream"] == "east"
    assert reply.headers["x-upstream-route"] == "openai"
    assert re.fullmatch(r"req_[0-9a-f]+", reply.headers["x-request-id"])
    assert upstream.requests[-1].json["brand_new_param"] == 7
    assert upstream.requests[-1].headers["content-type"] == "application/json"
    assert upstream.hits == 1
    assert data["id"] in upstream.stored


async def test_ids_are_unique(client: httpx.AsyncClient) -> None:
    ids = {(await create(client))["id"] for _ in range(5)}
    assert len(ids) == 5


async def test_text_quotes_the_last_input_text(client: httpx.AsyncClient) -> None:
    items = [
        {"role": "user", "content": "first"},
        {"role": "user", "content": [{"type": "input_text", "text": "x" * 60}]},
    ]
    data = await create(client, input=items)
    assert Response.model_validate(data).output_text == "[east] turn 1: " + "x" * 40


@pytest.mark.parametrize(
    ("body", "param"),
    [({"input": "hi"}, "model"), ({"model": "m"}, "input"), ({"model": "m", "input": 3}, "input")],
)
async def test_create_rejects_bad_bodies(
    client: httpx.AsyncClient, body: dict[str, Any], param: str
) -> None:
    reply = await client.post("/v1/responses", json=body)
    assert reply.status_code == 400
    assert reply.json()["error"]["param"] == param
    assert reply.json()["error"]["type"] == "invalid_request_error"


async def test_create_rejects_non_json(client: httpx.AsyncClient) -> None:
    reply = await client.post("/v1/responses", content=b"{nope")
    assert reply.status_code == 400


# --------------------------------------------------------------------------- stream


async def test_stream_events_validate_and_come_in_order(
    upstream: Upstream, client: httpx.AsyncClient
) -> None:
    reply = await client.post("/v1/responses", json={**BODY, "stream": True})
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/event-stream")
    assert reply.headers["x-upstream"] == "east"
    raw = parse_sse(reply.text)
    events = [STREAM_EVENTS.validate_python(json.loads(data)) for _, data in raw]
    assert [name for name, _ in raw] == [event.type for event in events]
    kinds = [event.type for event in events]
    assert kinds[:4] == OPENAI_TYPES[:4] and kinds[-4:] == OPENAI_TYPES[-4:]
    assert kinds.count("response.output_text.delta") == 4
    assert [event.sequence_number for event in events] == list(range(len(events)))
    assert events[0].response.status == "in_progress"
    final = events[-1].response
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == final.output_text == "[east] turn 1: Hello there, how are you?"
    assert "[DONE]" not in reply.text
    assert upstream.stored[final.id]["status"] == "completed"


async def test_the_official_sdk_talks_to_it(upstream: Upstream) -> None:
    sdk = openai.AsyncOpenAI(base_url=f"{upstream.url}/v1", api_key="unused", max_retries=0)
    first = await sdk.responses.create(model="gpt-4o", input="hi")
    stream = await sdk.responses.create(
        model="gpt-4o", input="next", stream=True, previous_response_id=first.id
    )
    events = [event async for event in stream]
    assert isinstance(events[-1], ResponseCompletedEvent)
    assert events[-1].response.output_text == "[east] turn 2: next"
    azure = openai.AsyncAzureOpenAI(
        azure_endpoint=upstream.url,
        api_key="unused",
        api_version="2025-03-01-preview",
        max_retries=0,
    )
    raw = await azure.responses.with_raw_response.create(model="deployment", input="hi")
    assert raw.headers["x-upstream-route"] == "azure-legacy"
    assert raw.parse().output_text == "[east] turn 1: hi"
    await sdk.close()
    await azure.close()


# --------------------------------------------------------------------------- path shapes and auth


@pytest.mark.parametrize(
    ("prefix", "query", "route"),
    [
        ("/v1", "", "openai"),
        ("/openai/v1", "", "azure-v1"),
        ("/openai/v1", "?api-version=preview", "azure-v1"),
        ("/openai", "?api-version=2025-03-01-preview", "azure-legacy"),
    ],
)
async def test_path_shapes(client: httpx.AsyncClient, prefix: str, query: str, route: str) -> None:
    reply = await client.post(f"{prefix}/responses{query}", json=BODY)
    assert reply.status_code == 200
    assert reply.headers["x-upstream-route"] == route
    rid = reply.json()["id"]
    got = await client.get(f"{prefix}/responses/{rid}{query}")
    assert got.status_code == 200 and got.json()["id"] == rid
    items = await client.get(f"{prefix}/responses/{rid}/input_items{query}")
    assert items.status_code == 200
    gone = await client.delete(f"{prefix}/responses/{rid}{query}")
    assert gone.json() == {"id": rid, "object": "response.deleted", "deleted": True}


async def test_azure_legacy_requires_api_version(client: httpx.AsyncClient) -> None:
    reply = await client.post("/openai/responses", json=BODY)
    assert reply.status_code == 404
    assert set(reply.json()["error"]) == {"message", "type", "param", "code"}
    assert reply.headers["x-upstream-route"] == "azure-legacy"


async def test_unknown_path_is_a_json_404(client: httpx.AsyncClient) -> None:
    reply = await client.post("/v2/somewhere", json=BODY)
    assert reply.status_code == 404
    assert reply.headers["x-upstream"] == "east"
    assert "error" in reply.json()


BAD_KEY = {
    "error": {
        "message": "Incorrect API key provided",
        "type": "invalid_request_error",
        "param": None,
        "code": "invalid_api_key",
    }
}


@pytest.mark.parametrize(
    ("path", "headers", "status"),
    [
        ("/v1/responses", {"authorization": "Bearer K"}, 200),
        ("/v1/responses", {"authorization": "Bearer wrong"}, 401),
        ("/v1/responses", {}, 401),
        ("/v1/responses", {"api-key": "K"}, 401),  # OpenAI knows no api-key header
        ("/openai/v1/responses", {"api-key": "K"}, 200),
        ("/openai/v1/responses", {"authorization": "Bearer K"}, 200),
        ("/openai/v1/responses", {"api-key": "wrong"}, 401),
        ("/openai/responses?api-version=2025-03-01-preview", {"api-key": "K"}, 200),
        ("/openai/responses?api-version=2025-03-01-preview", {}, 401),
    ],
)
async def test_auth(path: str, headers: dict[str, str], status: int) -> None:
    async with Upstream("k", api_key="K") as up, httpx.AsyncClient(base_url=up.url) as c:
        reply = await c.post(path, json=BODY, headers=headers)
    assert reply.status_code == status
    if status == 401:
        assert reply.json() == BAD_KEY


# --------------------------------------------------------------------------- state


async def test_previous_response_id_continues_the_conversation(
    client: httpx.AsyncClient,
) -> None:
    first = await create(client)
    second = await create(client, input="and then?", previous_response_id=first["id"])
    third = await create(client, input="more", previous_response_id=second["id"])
    assert Response.model_validate(second).output_text == "[east] turn 2: and then?"
    assert Response.model_validate(third).output_text.startswith("[east] turn 3:")
    assert second["previous_response_id"] == first["id"]


async def test_previous_response_id_unknown_here(client: httpx.AsyncClient) -> None:
    async with Upstream("west") as west, httpx.AsyncClient(base_url=west.url) as other:
        foreign = (await create(other))["id"]
    reply = await client.post("/v1/responses", json={**BODY, "previous_response_id": foreign})
    assert reply.status_code == 400
    assert reply.json() == {
        "error": {
            "message": f"Previous response with id '{foreign}' not found.",
            "type": "invalid_request_error",
            "param": "previous_response_id",
            "code": "previous_response_not_found",
        }
    }


async def test_previous_response_id_with_conversation_is_refused(
    client: httpx.AsyncClient,
) -> None:
    first = await create(client)
    body = {**BODY, "previous_response_id": first["id"], "conversation": "conv_1"}
    reply = await client.post("/v1/responses", json=body)
    assert reply.status_code == 400


async def test_store_false_keeps_nothing(upstream: Upstream, client: httpx.AsyncClient) -> None:
    data = await create(client, store=False)
    assert data["store"] is False and data["id"] not in upstream.stored
    assert (await client.get(f"/v1/responses/{data['id']}")).status_code == 404
    follow = await client.post("/v1/responses", json={**BODY, "previous_response_id": data["id"]})
    assert error_code(follow) == "previous_response_not_found"


async def test_retrieve_and_delete(upstream: Upstream, client: httpx.AsyncClient) -> None:
    data = await create(client)
    rid = data["id"]
    assert (await client.get(f"/v1/responses/{rid}")).json() == data
    deleted = await client.delete(f"/v1/responses/{rid}")
    assert deleted.json() == {"id": rid, "object": "response.deleted", "deleted": True}
    missing = await client.get(f"/v1/responses/{rid}")
    assert missing.status_code == 404
    assert missing.json() == {
        "error": {
            "message": f"Response with id '{rid}' not found.",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
    }
    assert (await client.delete(f"/v1/responses/{rid}")).status_code == 404
    assert rid not in upstream.stored


async def test_input_items_of_a_string_input(client: httpx.AsyncClient) -> None:
    rid = (await create(client))["id"]
    page = (await client.get(f"/v1/responses/{rid}/input_items")).json()
    ResponseItemList.model_validate(page)
    (item,) = page["data"]
    assert item["type"] == "message" and item["role"] == "user"
    assert item["content"] == [{"type": "input_text", "text": BODY["input"]}]
    assert item["id"].startswith("msg_")
    assert page["first_id"] == page["last_id"] == item["id"] and page["has_more"] is False


async def test_input_items_pagination(client: httpx.AsyncClient) -> None:
    items = [{"role": "user", "content": f"m{i}"} for i in range(5)]
    rid = (await create(client, input=items))["id"]
    url = f"/v1/responses/{rid}/input_items"

    async def texts(**query: Any) -> tuple[list[str], dict[str, Any]]:
        page = (await client.get(url, params=query)).json()
        ResponseItemList.model_validate(page)
        return [item["content"][0]["text"] for item in page["data"]], page

    assert (await texts())[0] == ["m4", "m3", "m2", "m1", "m0"]
    first, page = await texts(order="asc", limit=2)
    assert first == ["m0", "m1"] and page["has_more"] is True
    second, page = await texts(order="asc", limit=2, after=page["last_id"])
    assert second == ["m2", "m3"] and page["has_more"] is True
    last, page = await texts(order="asc", limit=2, after=page["last_id"])
    assert last == ["m4"] and page["has_more"] is False
    before, _ = await texts(order="asc", before=page["first_id"])
    assert before == ["m0", "m1", "m2", "m3"]
    for bad in ({"limit": 0}, {"limit": 101}, {"order": "up"}, {"after": "msg_nope"}):
        assert (await client.get(url, params=bad)).status_code == 400


# --------------------------------------------------------------------------- background


async def test_background_runs_queued_in_progress_completed() -> None:
    async with Upstream("bg", background_delay=0.4) as up, httpx.AsyncClient(base_url=up.url) as c:
        data = await create(c, background=True)
        assert data["status"] == "queued"
        Response.model_validate(data)
        seen = [data["status"]]
        deadline = time.monotonic() + 3.0
        while seen[-1] != "completed" and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
            seen.append((await c.get(f"/v1/responses/{data['id']}")).json()["status"])
        final = (await c.get(f"/v1/responses/{data['id']}")).json()
    assert seen[-1] == "completed" and "in_progress" in seen
    assert Response.model_validate(final).output_text.startswith("[bg] turn 1:")


async def test_background_cancel() -> None:
    async with Upstream("bg", background_delay=0.2) as up, httpx.AsyncClient(base_url=up.url) as c:
        rid = (await create(c, background=True))["id"]
        cancelled = await c.post(f"/v1/responses/{rid}/cancel")
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        await asyncio.sleep(0.3)
        assert (await c.get(f"/v1/responses/{rid}")).json()["status"] == "cancelled"
        again = await c.post(f"/v1/responses/{rid}/cancel")
        assert again.json()["status"] == "cancelled"
        plain = (await create(c))["id"]
        refused = await c.post(f"/v1/responses/{plain}/cancel")
        assert refused.status_code == 400
        assert "background=true" in refused.json()["error"]["message"]
        assert (await c.post("/v1/responses/resp_nope/cancel")).status_code == 404
        unstored = await c.post("/v1/responses", json={**BODY, "background": True, "store": False})
        assert unstored.status_code == 400


# --------------------------------------------------------------------------- faults


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (429, "rate_limit_exceeded"),
        (429, "insufficient_quota"),
        (401, "invalid_api_key"),
        (403, None),
        (404, "model_not_found"),
        (400, "context_length_exceeded"),
        (400, "content_filter"),
        (408, None),
        (500, None),
        (502, None),
        (503, None),
        (504, None),
    ],
)
async def test_fail(
    upstream: Upstream, client: httpx.AsyncClient, status: int, code: str | None
) -> None:
    upstream.faults.fail(status, code=code)
    reply = await client.post("/v1/responses", json=BODY)
    assert reply.status_code == status
    assert error_code(reply) == code
    assert set(reply.json()["error"]) == {"message", "type", "param", "code"}
    assert reply.headers["x-upstream"] == "east"
    assert "retry-after" not in reply.headers


async def test_fail_applies_to_every_responses_call(
    upstream: Upstream, client: httpx.AsyncClient
) -> None:
    rid = (await create(client))["id"]
    upstream.faults.fail(500)
    assert (await client.get(f"/v1/responses/{rid}")).status_code == 500


async def test_fail_retry_after_headers(upstream: Upstream, client: httpx.AsyncClient) -> None:
    upstream.faults.fail(
        429, retry_after=2, retry_after_ms=1500, headers={"x-ratelimit-remaining-requests": "0"}
    )
    reply = await client.post("/v1/responses", json=BODY)
    assert reply.headers["retry-after"] == "2"
    assert reply.headers["retry-after-ms"] == "1500"
    assert reply.headers["x-ratelimit-remaining-requests"] == "0"


async def test_fail_times(upstream: Upstream, client: httpx.AsyncClient) -> None:
    upstream.faults.fail(503, times=2)
    codes = [(await client.post("/v1/responses", json=BODY)).status_code for _ in range(3)]
    assert codes == [503, 503, 200]
    assert not upstream.faults.active


async def test_fail_rate_is_seeded(upstream: Upstream, client: httpx.AsyncClient) -> None:
    async def pattern() -> list[int]:
        upstream.faults.fail(500, rate=0.5, seed=7)
        return [(await client.post("/v1/responses", json=BODY)).status_code for _ in range(30)]

    first = await pattern()
    assert 5 <= first.count(500) <= 25 and first.count(200) == 30 - first.count(500)
    assert await pattern() == first


async def test_slow(upstream: Upstream, client: httpx.AsyncClient) -> None:
    upstream.faults.slow(0.3)
    started = time.monotonic()
    await create(client)
    async with client.stream("POST", "/v1/responses", json={**BODY, "stream": True}) as reply:
        await reply.aread()
    assert time.monotonic() - started >= 0.6


async def test_hang(upstream: Upstream, client: httpx.AsyncClient) -> None:
    upstream.faults.hang(times=1)
    with pytest.raises(httpx.ReadTimeout):
        await client.post("/v1/responses", json=BODY, timeout=0.2)
    await create(client)


async def test_hang_ends_when_the_upstream_stops(upstream: Upstream) -> None:
    upstream.faults.hang()
    async with httpx.AsyncClient(base_url=upstream.url) as c:
        pending = asyncio.create_task(c.post("/v1/responses", json=BODY, timeout=5.0))
        await asyncio.sleep(0.1)
        started = time.monotonic()
        await upstream.stop()
        with pytest.raises(httpx.TransportError):
            await pending
    assert time.monotonic() - started < 1.0


async def test_cut_stream(upstream: Upstream, client: httpx.AsyncClient) -> None:
    upstream.faults.cut_stream(3)
    received = []
    with pytest.raises(httpx.RemoteProtocolError):
        async with client.stream("POST", "/v1/responses", json={**BODY, "stream": True}) as r:
            assert r.status_code == 200
            async for line in r.aiter_lines():
                if line.startswith("event: "):
                    received.append(line)
    assert len(received) == 3
    await create(client)  # a plain create is not affected


async def test_malformed(upstream: Upstream, client: httpx.AsyncClient) -> None:
    upstream.faults.malformed()
    reply = await client.post("/v1/responses", json=BODY)
    assert reply.status_code == 200
    with pytest.raises(ValueError):
        reply.json()
    streamed = await client.post("/v1/responses", json={**BODY, "stream": True})
    assert streamed.status_code == 200
    ((_, data),) = parse_sse(streamed.text)
    with pytest.raises(ValueError):
        json.loads(data)


async def test_failed_response(upstream: Upstream, client: httpx.AsyncClient) -> None:
    upstream.faults.failed_response("rate_limit_exceeded")
    reply = await client.post("/v1/responses", json=BODY)
    failed = Response.model_validate(reply.json())
    assert reply.status_code == 200 and failed.status == "failed"
    assert failed.error is not None and failed.error.code == "rate_limit_exceeded"
    streamed = await client.post("/v1/responses", json={**BODY, "stream": True})
    events = [STREAM_EVENTS.validate_python(json.loads(d)) for _, d in parse_sse(streamed.text)]
    assert [e.type for e in events][-1] == "response.failed"
    assert events[-1].response.status == "failed"


async def test_clear_and_reset(upstream: Upstream, client: httpx.AsyncClient) -> None:
    rid = (await create(client))["id"]
    upstream.faults.fail(500)
    upstream.faults.slow(0.01)
    upstream.faults.clear()
    assert upstream.faults.delay == 0.0
    await create(client)
    upstream.faults.fail(500)
    upstream.reset()
    assert upstream.hits == 0 and upstream.requests == [] and rid in upstream.stored
    await create(client)


async def test_bad_fault_arguments_are_refused(upstream: Upstream) -> None:
    with pytest.raises(ValueError):
        upstream.faults.fail(500, times=0)
    with pytest.raises(ValueError):
        upstream.faults.fail(500, rate=2.0)


# --------------------------------------------------------------------------- latency, down/up


async def burst(up: Upstream, n: int) -> float:
    async with httpx.AsyncClient(base_url=up.url) as c:
        started = time.monotonic()
        await asyncio.gather(*(c.post("/v1/responses", json=BODY) for _ in range(n)))
        return time.monotonic() - started


async def test_capacity_queues_requests() -> None:
    async with Upstream("wide", latency=0.1) as wide:
        assert await burst(wide, 4) < 0.19
    async with Upstream("narrow", latency=0.1, capacity=2) as narrow:
        assert await burst(narrow, 4) >= 0.19


async def test_down_and_up(upstream: Upstream, client: httpx.AsyncClient) -> None:
    url = upstream.url
    rid = (await create(client))["id"]
    await upstream.down()
    with pytest.raises(httpx.ConnectError):
        await client.post("/v1/responses", json=BODY)
    await upstream.up()
    assert upstream.url == url
    assert (await client.get(f"/v1/responses/{rid}")).status_code == 200


# --------------------------------------------------------------------------- another process


async def test_upstream_process_and_control_endpoint() -> None:
    async with UpstreamProcess("remote", api_key="K") as proc:
        headers = {"authorization": "Bearer K"}
        async with httpx.AsyncClient(base_url=proc.url, headers=headers) as c:
            proc.faults.fail(503, times=1, retry_after=1)
            refused = await c.post("/v1/responses", json=BODY)
            assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
            served = await c.post("/v1/responses", json=BODY)
            assert served.status_code == 200 and served.headers["x-upstream"] == "remote"
            assert proc.stats() == {"name": "remote", "hits": 2, "stored": 1, "requests": 2,
                                "cache_hits": 0, "cache_misses": 0, "rate_limited": 0}
            with pytest.raises(ValueError):
                proc.faults.fail(500, times=0)
            proc.reset()
            assert proc.stats()["hits"] == 0
        url = proc.url
    async with httpx.AsyncClient() as c:
        with pytest.raises(httpx.ConnectError):
            await c.post(f"{url}/v1/responses", json=BODY)


async def test_prompt_cache_hits_misses_and_expiry() -> None:
    async with Upstream("cache", prompt_cache=(0.3, 0.05)) as up, httpx.AsyncClient() as c:
        url = f"{up.url}/v1/responses"

        async def cached(**body: Any) -> tuple[int, float]:
            t0 = time.perf_counter()
            answer = await c.post(url, json={"model": "m", "input": "hi", **body})
            usage = answer.json()["usage"]
            Response.model_validate(answer.json())
            return usage["input_tokens_details"]["cached_tokens"], time.perf_counter() - t0

        first, slow = await cached(prompt_cache_key="k")
        second, _ = await cached(prompt_cache_key="k")
        other, _ = await cached(prompt_cache_key="other")
        assert first == 0 and second > 0 and other == 0 and slow >= 0.05
        by_instructions, _ = await cached(instructions="same long prompt")
        again, _ = await cached(instructions="same long prompt")
        assert by_instructions == 0 and again > 0
        await asyncio.sleep(0.35)
        expired, _ = await cached(prompt_cache_key="k")
        assert expired == 0 and (up.cache_hits, up.cache_misses) == (2, 4)
        up.reset()
        assert (up.cache_hits, up.cache_misses) == (0, 0)
