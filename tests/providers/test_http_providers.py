"""The HTTP providers over a real loopback upstream: URLs, auth, bodies, answers.

What the router sends (paths, query, headers, body) is read from the
upstream's request log; what it returns is checked against the official SDK's
types.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiohttp import web
from openai.types.responses import Response as OpenAIResponse

from providers import responses_http
from router.errors import AuthenticationError, BadRequestError, RateLimitError
from tests.conftest import (
    azure_dep,
    calls_leave_no_cycles,
    create_paths,
    openai_dep,
    serve_routes,
)


def only_create(up: Any) -> Any:
    """The single create request ``up`` received."""
    creates = [r for r in up.requests if r.method == "POST" and r.path.endswith("/responses")]
    assert len(creates) == 1, [r.path for r in up.requests]
    return creates[0]


# --------------------------------------------------------------------------- OpenAI


async def test_calls_leave_no_reference_cycles(upstreams, make_router):
    """A call's objects are freed as it ends, never left to the garbage collector."""
    east, west = await upstreams("east", "west")
    await calls_leave_no_cycles(make_router([openai_dep(east, "gpt"), azure_dep(west, "gpt")]),
                                "gpt")


async def test_openai_sends_bearer_key_to_v1_responses(upstreams, make_router):
    (up,) = await upstreams("east")
    router = make_router([openai_dep(up)])

    resp = await router.aresponses(model="gpt-4o", input="hello")

    req = only_create(up)
    assert req.path == "/v1/responses"
    assert req.query == {}
    assert req.headers["authorization"] == "Bearer k1"
    assert "api-key" not in req.headers
    assert "openai-organization" not in req.headers
    assert req.headers["content-type"].startswith("application/json")
    assert req.json["model"] == "gpt-4o"
    assert req.json["input"] == "hello"
    assert "stream" not in req.json
    assert resp.output_text == "[east] turn 1: hello"
    assert resp.routing.provider == "openai"


async def test_openai_organization_header(upstreams, make_router):
    (up,) = await upstreams("east")
    router = make_router([openai_dep(up, organization="org-test-42")])

    await router.aresponses(model="gpt-4o", input="hi")

    req = only_create(up)
    assert req.headers["openai-organization"] == "org-test-42"
    assert req.headers["authorization"] == "Bearer k1"


async def test_bare_model_name_is_openai_and_sent_unprefixed(upstreams, make_router):
    (up,) = await upstreams("east")
    router = make_router([openai_dep(up, model="gpt-4.1-mini")])

    resp = await router.aresponses(model="gpt-4o", input="hi")

    assert only_create(up).json["model"] == "gpt-4.1-mini"
    assert resp.model == "gpt-4.1-mini"
    assert resp.routing.provider == "openai"


async def test_wrong_key_is_an_authentication_error(upstreams, make_router):
    (up,) = await upstreams("east", api_key="the-right-key")
    router = make_router([openai_dep(up, api_key="the-wrong-key")], num_retries=0)

    with pytest.raises(AuthenticationError) as info:
        await router.aresponses(model="gpt-4o", input="hi")

    assert info.value.status == 401
    assert info.value.code == "invalid_api_key"
    assert info.value.request_id and info.value.request_id.startswith("req_")
    assert info.value.deployment_id == "east"
    assert "the-wrong-key" not in str(info.value)


async def test_caller_supplied_http_client_is_used_and_left_open(upstreams, make_router):
    east, west = await upstreams("east", "west")
    seen: list[str] = []

    async def note(request: httpx.Request) -> None:
        seen.append(f"{request.method} {request.url.path}")

    client = httpx.AsyncClient(event_hooks={"request": [note]})
    try:
        router = make_router([openai_dep(east), azure_dep(west, "other")], http_client=client)
        await router.aresponses(model="gpt-4o", input="a")
        await router.aresponses(model="other", input="b")
        await router.aclose()

        assert seen == ["POST /v1/responses", "POST /openai/v1/responses"]
        assert not client.is_closed  # the caller owns it
    finally:
        await client.aclose()


# --------------------------------------------------------------------------- Azure


async def test_azure_v1_shape_api_key_header_and_deployment_name(upstreams, make_router):
    (up,) = await upstreams("east")
    router = make_router([azure_dep(up, deployment="my-deployment")])

    resp = await router.aresponses(model="gpt-4o", input="hi")

    req = only_create(up)
    assert req.path == "/openai/v1/responses"
    assert "api-version" not in req.query
    assert req.headers["api-key"] == "k1"
    assert "authorization" not in req.headers
    assert req.json["model"] == "my-deployment"
    assert resp.model == "my-deployment"
    assert resp.routing.provider == "azure"


async def test_azure_legacy_shape_with_api_version(upstreams, make_router):
    (up,) = await upstreams("east")
    router = make_router(
        [azure_dep(up, deployment="gpt4o-prod", api_version="2025-03-01-preview")]
    )

    resp = await router.aresponses(model="gpt-4o", input="hi")

    req = only_create(up)
    assert req.path == "/openai/responses"
    assert req.query == {"api-version": "2025-03-01-preview"}
    assert req.headers["api-key"] == "k1"
    assert req.json["model"] == "gpt4o-prod"
    assert resp.output_text == "[east] turn 1: hi"


@pytest.mark.parametrize("suffix", ["/", "/openai", "/openai/v1", "/openai/v1/"])
async def test_azure_api_base_with_openai_suffix_is_normalised(upstreams, make_router, suffix):
    (up,) = await upstreams("east")
    router = make_router([azure_dep(up, api_base=up.url + suffix)])

    await router.aresponses(model="gpt-4o", input="hi")

    assert create_paths(up) == ["/openai/v1/responses"]


async def test_azure_preview_version_uses_v1_path_with_query(upstreams, make_router):
    (up,) = await upstreams("east")
    router = make_router([azure_dep(up, api_version="preview")])

    await router.aresponses(model="gpt-4o", input="hi")

    req = only_create(up)
    assert req.path == "/openai/v1/responses"
    assert req.query == {"api-version": "preview"}


@pytest.mark.parametrize(
    ("api_version", "prefix", "query"),
    [
        (None, "/openai/v1/responses", {}),
        ("2025-03-01-preview", "/openai/responses", {"api-version": "2025-03-01-preview"}),
    ],
)
async def test_azure_by_id_calls_use_the_same_url_shape(
    upstreams, make_router, api_version, prefix, query
):
    (up,) = await upstreams("east")
    params = {"api_version": api_version} if api_version else {}
    router = make_router([azure_dep(up, **params)])
    created = await router.aresponses(model="gpt-4o", input="hi")
    rid = created.id

    got = await router.aget_responses(rid)
    items = await router.alist_input_items(rid, limit=5)
    deleted = await router.adelete_responses(rid)

    assert got.id == rid and got.routing.deployment_id == "east"
    assert items.object == "list" and items.data[0].content[0].text == "hi"
    assert deleted.deleted is True
    by_id = [(r.method, r.path, r.query) for r in up.requests[1:]]
    assert by_id == [
        ("GET", f"{prefix}/{rid}", query),
        ("GET", f"{prefix}/{rid}/input_items", {**query, "limit": "5"}),
        ("DELETE", f"{prefix}/{rid}", query),
    ]
    assert all(r.headers["api-key"] == "k1" for r in up.requests)


async def test_azure_wrong_key_is_an_authentication_error(upstreams, make_router):
    (up,) = await upstreams("east", api_key="azure-key")
    router = make_router([azure_dep(up, api_key="not-the-key")], num_retries=0)

    with pytest.raises(AuthenticationError):
        await router.aresponses(model="gpt-4o", input="hi")


# --------------------------------------------------------------------------- pass-through


async def test_unknown_and_known_params_reach_the_body_untouched(upstreams, make_router):
    (up,) = await upstreams("east")
    router = make_router([openai_dep(up)])
    tools = [{"type": "function", "name": "lookup", "description": "d",
              "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
              "strict": False}]
    sent = {
        "some_future_param": {"a": 1, "nested": [1, {"b": None}]},
        "reasoning": {"effort": "high", "summary": "auto"},
        "metadata": {"team": "search", "trace": "t-1"},
        "tools": tools,
        "tool_choice": "auto",
        "instructions": "be brief",
        "max_output_tokens": 64,
        "temperature": 0.3,
        "text": {"format": {"type": "text"}, "verbosity": "low"},
        "prompt_cache_key": "user-7",
        "include": ["reasoning.encrypted_content"],
        "store": True,
    }

    resp = await router.aresponses(model="gpt-4o", input=[{"role": "user", "content": "x"}],
                                   **sent)

    body = only_create(up).json
    for key, value in sent.items():
        assert body[key] == value, key
    assert body["input"] == [{"role": "user", "content": "x"}]
    assert body["model"] == "gpt-4o"
    assert set(body) == {*sent, "input", "model"}
    assert resp.metadata.team == "search"
    assert resp.tools[0].name == "lookup"


async def test_extra_headers_query_and_body_reach_the_upstream(upstreams, make_router):
    (up,) = await upstreams("east")
    router = make_router([openai_dep(up)])

    await router.aresponses(
        model="gpt-4o", input="hi",
        extra_headers={"x-trace-id": "trace-9", "x-tenant": "acme"},
        extra_query={"debug": "1"},
        extra_body={"beta_feature": {"on": True}, "temperature": 0.1},
    )

    req = only_create(up)
    assert req.headers["x-trace-id"] == "trace-9"
    assert req.headers["x-tenant"] == "acme"
    assert req.headers["authorization"] == "Bearer k1"
    assert req.query == {"debug": "1"}
    assert req.json["beta_feature"] == {"on": True}
    assert req.json["temperature"] == 0.1
    for name in ("extra_headers", "extra_query", "extra_body"):
        assert name not in req.json


async def test_deployment_extra_headers_query_and_body(upstreams, make_router):
    (up,) = await upstreams("east")
    router = make_router([azure_dep(
        up, api_version="2025-03-01-preview",
        extra_headers={"x-deployment": "d1"}, extra_query={"region": "eu"},
        extra_body={"service_tier": "flex"},
    )])

    await router.aresponses(model="gpt-4o", input="hi", extra_query={"debug": "1"})

    req = only_create(up)
    assert req.headers["x-deployment"] == "d1"
    assert req.query == {"api-version": "2025-03-01-preview", "region": "eu", "debug": "1"}
    assert req.json["service_tier"] == "flex"


async def test_router_params_do_not_reach_the_upstream(upstreams, make_router):
    east, mini = await upstreams("east", "mini")
    router = make_router([openai_dep(east), openai_dep(mini, "gpt-4o-mini")])

    await router.aresponses(
        model="gpt-4o", input="hi", timeout=5, num_retries=1,
        fallbacks=["gpt-4o-mini"], disable_fallbacks=False, stream_timeout=3,
    )

    req = only_create(east)
    consumed = {"timeout", "num_retries", "fallbacks", "disable_fallbacks", "stream_timeout",
                "mock_response", "extra_headers", "extra_query", "extra_body"}
    assert not consumed & set(req.json)
    assert not consumed & set(req.query)
    assert set(req.json) == {"model", "input"}
    assert mini.hits == 0


async def test_mock_response_skips_the_network(upstreams, make_router):
    (up,) = await upstreams("east")
    router = make_router([openai_dep(up)])

    resp = await router.aresponses(model="gpt-4o", input="hi", mock_response="canned answer")

    assert resp.output_text == "canned answer"
    assert up.hits == 0
    assert resp.routing.deployment_id == "east"
    assert "mock_response" not in resp.model_dump()


async def test_stream_body_and_accept_header(upstreams, make_router):
    (up,) = await upstreams("east")
    router = make_router([openai_dep(up)])

    stream = await router.aresponses(model="gpt-4o", input="hi", stream=True,
                                     some_future_param=[1, 2], timeout=5)
    async with stream:
        types = [event.type async for event in stream]

    req = only_create(up)
    assert req.json["stream"] is True
    assert req.json["some_future_param"] == [1, 2]
    assert "timeout" not in req.json
    assert req.headers["accept"] == "text/event-stream"
    assert types[-1] == "response.completed"


# --------------------------------------------------------------------------- answers


async def test_response_validates_as_the_sdk_type(upstreams, make_router):
    (up,) = await upstreams("east")
    router = make_router([openai_dep(up)])

    resp = await router.aresponses(model="gpt-4o", input="validate me", metadata={"k": "v"})

    dumped = resp.model_dump()
    sdk = OpenAIResponse.model_validate(dumped)
    assert sdk.id == resp.id
    assert sdk.output_text == resp.output_text == "[east] turn 1: validate me"
    assert "routing" not in dumped
    assert resp.routing.deployment_id == "east"
    assert resp.usage.total_tokens == dumped["usage"]["total_tokens"]
    assert resp.output[0].content[0].type == "output_text"
    assert resp["status"] == "completed"


async def test_unknown_response_fields_survive(upstreams, make_router):
    extra = {"future_field": {"x": 1, "tags": ["a"]}, "brand_new_flag": True}
    (up,) = await upstreams("east", extra_fields=extra)
    router = make_router([openai_dep(up)])

    resp = await router.aresponses(model="gpt-4o", input="hi")

    dumped = resp.model_dump()
    assert dumped["future_field"] == {"x": 1, "tags": ["a"]}
    assert dumped["brand_new_flag"] is True
    assert resp.future_field.x == 1
    assert resp.future_field.tags == ["a"]
    assert resp.brand_new_flag is True
    sdk = OpenAIResponse.model_validate(dumped)
    assert sdk.model_dump()["future_field"] == {"x": 1, "tags": ["a"]}
    got = await router.aget_responses(resp.id)
    assert got.future_field.x == 1


async def test_retry_after_ms_is_read_from_the_error(upstreams, make_router):
    (up,) = await upstreams("east")
    up.faults.fail(429, retry_after_ms=250, times=1)
    router = make_router([openai_dep(up)], num_retries=0)

    with pytest.raises(RateLimitError) as info:
        await router.aresponses(model="gpt-4o", input="hi")

    assert info.value.status == 429
    assert info.value.retry_after == pytest.approx(0.25)


async def test_upstream_error_body_fields_are_mapped(upstreams, make_router):
    (up,) = await upstreams("east")
    up.faults.fail(400, code="invalid_value", message="bad 'temperature'", times=1)
    router = make_router([openai_dep(up)])

    with pytest.raises(BadRequestError) as info:
        await router.aresponses(model="gpt-4o", input="hi", temperature=9)

    err = info.value
    assert err.status == 400
    assert err.code == "invalid_value"
    assert err.message == "bad 'temperature'"
    assert err.type == "invalid_request_error"
    assert err.body["error"]["code"] == "invalid_value"
    assert up.hits == 1


# --------------------------------------------------------------------------- after the last event


def _sse_body(*events: dict[str, Any]) -> bytes:
    return b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events)


@contextlib.asynccontextmanager
async def _raw_sse_server(tail: bytes, *, hold_open: bool) -> AsyncIterator[str]:
    """An upstream that sends created + completed, then ``tail``, then ends or holds the body."""
    release = asyncio.Event()
    final = {"id": "resp_raw", "object": "response", "status": "completed", "output": []}

    async def handle(request: web.Request) -> web.StreamResponse:
        answer = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await answer.prepare(request)
        await answer.write(_sse_body(
            {"type": "response.created", "response": {**final, "status": "in_progress"}},
            {"type": "response.completed", "response": final},
        ) + tail)
        if hold_open:
            await release.wait()
        return answer

    async with serve_routes(v1__responses=handle) as base:
        try:
            yield f"{base}/v1"
        finally:
            release.set()


async def test_a_done_sentinel_after_the_terminal_event_is_ignored(make_router):
    async with _raw_sse_server(b"data: [DONE]\n\n", hold_open=False) as base:
        router = make_router([{"model_name": "gpt-4o", "litellm_params": {
            "model": "openai/gpt-4o", "api_base": base, "api_key": "k"}}])
        stream = await router.aresponses(model="gpt-4o", input="hi", stream=True)
        kinds = [e.type async for e in stream]

    assert kinds == ["response.created", "response.completed"]
    assert stream.response is not None and stream.response.id == "resp_raw"


async def test_a_body_held_open_after_the_terminal_event_ends_the_stream(
    make_router, monkeypatch
):
    monkeypatch.setattr(responses_http, "DRAIN_SECONDS", 0.2)
    async with _raw_sse_server(b"", hold_open=True) as base:
        router = make_router([{"model_name": "gpt-4o", "litellm_params": {
            "model": "openai/gpt-4o", "api_base": base, "api_key": "k"}}])
        stream = await router.aresponses(model="gpt-4o", input="hi", stream=True)
        kinds = await asyncio.wait_for(_kinds(stream), timeout=10)

    assert kinds == ["response.created", "response.completed"]
    assert router.services.load.total_in_flight() == 0


async def _kinds(stream: Any) -> list[str]:
    return [e.type async for e in stream]
