"""The server end to end: a real ``responses-router serve`` with 2 workers and Redis,
a fake upstream in its own process, and the official ``openai`` SDK as the client.

One server serves the whole module (starting one costs about a second), so
tests that arm upstream faults arm them for one request (``times=1``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
import redis

from router.proxy.app import request_ids
from router.testing import UpstreamProcess
from router.testing.process import spawn, terminate
from tests.router.proxy.helpers import (
    KEY_A,
    KEY_B,
    KEY_LIMITED,
    KEY_TOKENS,
    KEY_TOKENS_STREAM,
    MASTER,
    ServerProcess,
    refused_start,
    server_config,
)

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(scope="module")
def redis_prefix() -> Iterator[str]:
    from tests.redis_fixtures import redis_unavailable

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        redis_unavailable(f"redis at {REDIS_URL} does not answer: {exc}")
    prefix = f"rr-test:{uuid.uuid4().hex[:12]}:"
    yield prefix
    for key in client.scan_iter(match=prefix + "*", count=1000):
        client.delete(key)
    client.close()


@pytest.fixture(scope="module")
def upstream() -> Iterator[UpstreamProcess]:
    up = UpstreamProcess("east", api_key="k1")
    up.start()
    yield up
    up.stop()


@pytest.fixture(scope="module")
def chat_url() -> Iterator[str]:
    """A Chat Completions server (no stored responses: the router keeps them)."""
    proc, url = spawn("router.testing.chat", ["--port", "0", "--api-key", "k1"])
    yield url
    terminate(proc)


@pytest.fixture(scope="module")
def server(upstream: UpstreamProcess, chat_url: str, redis_prefix: str,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    config = server_config(f"{upstream.url}/v1", redis_url=REDIS_URL, prefix=redis_prefix,
                           general={"max_request_size_mb": 1, "body_timeout": 1,
                                    "idle_timeout": 1})
    config["model_list"].append({"model_name": "llama", "litellm_params": {
        "model": "hosted_vllm/llama", "api_base": f"{chat_url}/v1", "api_key": "k1"}})
    config["router_settings"]["disable_cooldowns"] = True
    proc = ServerProcess(config, tmp_path_factory.mktemp("proxy"), workers=2).start()
    yield proc
    assert proc.stop() == 0


def client(server: ServerProcess, key: str = KEY_A) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0)


def sync_client(server: ServerProcess, key: str = KEY_A) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0)


# -- every endpoint through the SDK --------------------------------------------------


async def test_async_sdk_every_endpoint(server: ServerProcess) -> None:
    async with client(server) as c:
        first = await c.responses.create(model="gpt-4o", input="hello")
        assert first.status == "completed" and "hello" in first.output_text
        follow = await c.responses.create(model="gpt-4o", input="more",
                                          previous_response_id=first.id)
        assert "turn 2" in follow.output_text
        got = await c.responses.retrieve(first.id)
        assert got.id == first.id and got.output_text == first.output_text
        items = await c.responses.input_items.list(follow.id)
        assert [i.type for i in items.data] == ["message"]
        background = await c.responses.create(model="gpt-4o", input="long", background=True)
        cancelled = await c.responses.cancel(background.id)
        assert cancelled.id == background.id and cancelled.status == "cancelled"
        deleted = await c.responses.delete(first.id)
        assert deleted is None  # the SDK returns None for a 200 delete
        with pytest.raises(openai.NotFoundError):
            await c.responses.retrieve(first.id)
        models = await c.models.list()
        assert [m.id for m in models.data] == ["gpt-4o"]


async def test_async_sdk_stream(server: ServerProcess) -> None:
    async with client(server) as c:
        stream = await c.responses.create(model="gpt-4o", input="stream me", stream=True)
        types = [event.type async for event in stream]
    assert types[0] == "response.created" and types[-1] == "response.completed"
    assert "response.output_text.delta" in types


async def test_stream_continues_and_is_owned(server: ServerProcess) -> None:
    async with client(server) as c, client(server, KEY_B) as other:
        async with c.responses.stream(model="gpt-4o", input="hi") as stream:
            final = await stream.get_final_response()
        follow = await c.responses.create(model="gpt-4o", input="again",
                                          previous_response_id=final.id)
        assert "turn 2" in follow.output_text
        with pytest.raises(openai.NotFoundError):
            await other.responses.retrieve(final.id)


def test_sync_sdk_every_endpoint(server: ServerProcess) -> None:
    with sync_client(server) as c:
        first = c.responses.create(model="gpt-4o", input="sync")
        assert c.responses.retrieve(first.id).id == first.id
        events = list(c.responses.create(model="gpt-4o", input="s", stream=True,
                                         previous_response_id=first.id))
        assert events[-1].type == "response.completed"
        assert "turn 2" in events[-1].response.output_text
        assert c.responses.input_items.list(first.id).data[0].type == "message"
        background = c.responses.create(model="gpt-4o", input="bg", background=True)
        assert c.responses.cancel(background.id).status == "cancelled"
        c.responses.delete(first.id)
        assert [m.id for m in c.models.list().data] == ["gpt-4o"]


async def test_paths_without_v1(server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=server.url,
                                 headers={"Authorization": f"Bearer {KEY_A}"}) as http:
        created = await http.post("/responses", json={"model": "gpt-4o", "input": "x"})
        assert created.status_code == 200
        rid = created.json()["id"]
        assert (await http.get(f"/responses/{rid}")).json()["id"] == rid
        assert (await http.get(f"/responses/{rid}/input_items")).status_code == 200
        assert (await http.get("/models")).json()["data"][0]["id"] == "gpt-4o"
        assert (await http.get("/models/gpt-4o")).json()["id"] == "gpt-4o"
        assert (await http.get("/models/other")).status_code == 404  # not this key's
        included = await http.get(f"/responses/{rid}", params={
            "include[]": ["message.output_text.logprobs", "reasoning.encrypted_content"]})
        assert included.status_code == 200 and included.json()["id"] == rid
        assert (await http.get(f"/responses/{rid}", params={"bogus": "1"})).status_code == 400
        assert (await http.delete(f"/responses/{rid}")).json()["deleted"] is True


async def test_request_id_on_every_answer(server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=server.url,
                                 headers={"Authorization": f"Bearer {KEY_A}"}) as http:
        mine = await http.post("/v1/responses", json={"model": "gpt-4o", "input": "x"},
                               headers={"x-request-id": "trace-123"})
        made = await http.post("/v1/responses", json={"model": "gpt-4o", "input": 1})
        async with http.stream("POST", "/v1/responses", json={
                "model": "gpt-4o", "input": "x", "stream": True}) as streamed:
            await streamed.aread()
    assert mine.headers["x-request-id"] == "trace-123"
    assert made.status_code == 400 and len(made.headers["x-request-id"]) == 32
    assert streamed.headers["x-request-id"] != made.headers["x-request-id"]
    assert mine.headers["x-router-deployment-id"] == "dep-main"


def test_request_ids_are_unique_per_worker_and_uuid_sized() -> None:
    one, other = request_ids(), request_ids()  # two workers
    ids = [next(one) for _ in range(1000)] + [next(other) for _ in range(1000)]
    assert len(set(ids)) == 2000
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)


# -- auth and ownership ------------------------------------------------------------------


async def test_wrong_or_missing_key_is_401(server: ServerProcess) -> None:
    async with client(server, "sk-wrong") as c:
        with pytest.raises(openai.AuthenticationError) as info:
            await c.responses.create(model="gpt-4o", input="x")
    assert info.value.code == "invalid_api_key"
    assert "sk-wrong" not in str(info.value.body)
    async with httpx.AsyncClient(base_url=server.url) as http:
        missing = await http.post("/v1/responses", json={"model": "gpt-4o", "input": "x"})
    assert missing.status_code == 401


async def test_ownership_matrix(server: ServerProcess, upstream: UpstreamProcess) -> None:
    """A response (and its conversation) exists only for the key that made it, and master."""
    async with client(server, KEY_A) as a, client(server, KEY_B) as b, \
            client(server, MASTER) as master:
        mine = await a.responses.create(model="gpt-4o", input="secret")
        background = await a.responses.create(model="gpt-4o", input="bg", background=True)
        for call in (lambda: b.responses.retrieve(mine.id),
                     lambda: b.responses.delete(mine.id),
                     lambda: b.responses.cancel(background.id),
                     lambda: b.responses.input_items.list(mine.id)):
            with pytest.raises(openai.NotFoundError):
                await call()
        with pytest.raises(openai.BadRequestError) as info:
            await b.responses.create(model="gpt-4o", input="x", previous_response_id=mine.id)
        assert info.value.code == "previous_response_not_found"
        assert (await master.responses.retrieve(mine.id)).id == mine.id
        assert (await a.responses.retrieve(mine.id)).id == mine.id
        follow = await a.responses.create(model="gpt-4o", input="y",
                                          previous_response_id=mine.id)
        with pytest.raises(openai.NotFoundError):
            await b.responses.retrieve(follow.id)
        # a conversation belongs to the key whose request first named it
        async with httpx.AsyncClient() as http:  # made on the upstream, as with its own SDK
            made = await http.post(f"{upstream.url}/v1/conversations", json={},
                                   headers={"authorization": "Bearer k1"})
        conversation = made.json()["id"]
        await a.responses.create(model="gpt-4o", input="z", conversation=conversation)
        with pytest.raises(openai.NotFoundError) as theirs:
            await b.responses.create(model="gpt-4o", input="z", conversation=conversation)
        assert theirs.value.body["param"] == "conversation"  # type: ignore[index]


async def test_a_response_named_as_a_conversation_is_not_taken_over(
        server: ServerProcess) -> None:
    """Key B names key A's response id as its ``conversation``: B gains nothing on it (the
    conversation's owner record is not the response's)."""
    async with client(server, KEY_A) as a, client(server, KEY_B) as b:
        mine = await a.responses.create(model="gpt-4o", input="secret")
        with contextlib.suppress(openai.APIStatusError):  # the upstream knows no such thing
            await b.responses.create(model="gpt-4o", input="x", conversation=mine.id)
        with pytest.raises(openai.NotFoundError):
            await b.responses.retrieve(mine.id)
        with pytest.raises(openai.BadRequestError):
            await b.responses.create(model="gpt-4o", input="x", previous_response_id=mine.id)
        assert (await a.responses.retrieve(mine.id)).id == mine.id


async def test_a_response_the_router_keeps_is_its_keys_only(server: ServerProcess) -> None:
    """A Chat Completions deployment holds nothing: the router keeps the response, and the
    Router records its owner without a deployment record."""
    async with client(server, KEY_B) as b, client(server, KEY_A) as a:
        kept = await b.responses.create(model="llama", input="secret")
        follow = await b.responses.create(model="llama", input="more",
                                          previous_response_id=kept.id)
        assert (await b.responses.retrieve(kept.id)).id == kept.id
        for rid in (kept.id, follow.id):
            with pytest.raises(openai.NotFoundError):
                await a.responses.retrieve(rid)
            with pytest.raises(openai.BadRequestError):
                await a.responses.create(model="gpt-4o", input="x", previous_response_id=rid)


async def test_a_master_keys_response_is_no_other_keys(server: ServerProcess) -> None:
    async with client(server, MASTER) as master, client(server, KEY_A) as a, \
            client(server, KEY_B) as b:
        made = await master.responses.create(model="gpt-4o", input="admin")
        streamed = await master.responses.create(model="gpt-4o", input="admin", stream=True)
        async for event in streamed:
            if event.type == "response.completed":
                streamed_id = event.response.id
        for rid in (made.id, streamed_id):
            # B names it as a conversation (a group the router keeps takes any id): that
            # claims the conversation, not the response
            await b.responses.create(model="llama", input="x", conversation=rid)
            for other in (a, b):
                with pytest.raises(openai.NotFoundError):
                    await other.responses.retrieve(rid)
                with pytest.raises(openai.BadRequestError):
                    await other.responses.create(model="gpt-4o", input="x",
                                                 previous_response_id=rid)
            assert (await master.responses.retrieve(rid)).id == rid
        # a conversation the master key named first is no other key's
        await master.responses.create(model="llama", input="x", conversation="conv_master_1")
        with pytest.raises(openai.NotFoundError):
            await b.responses.create(model="llama", input="x", conversation="conv_master_1")


async def test_key_models_and_unknown_model(server: ServerProcess) -> None:
    async with client(server, KEY_A) as a, client(server, KEY_B) as b:
        with pytest.raises(openai.BadRequestError) as refused:
            await a.responses.create(model="other", input="x")
        with pytest.raises(openai.BadRequestError) as unknown:
            await b.responses.create(model="no-such-model", input="x")
        assert sorted(m.id for m in (await b.models.list()).data) == ["gpt-4o", "llama",
                                                                       "other"]
    for info in (refused, unknown):
        assert info.value.status_code == 400 and info.value.param == "model"
        assert info.value.code == "model_not_found"


async def _inside_one_minute() -> None:
    """Start at least 5 s before the next minute: limits count in one-minute windows."""
    left = 60 - time.time() % 60
    if left < 5:
        await asyncio.sleep(left + 0.1)


async def test_key_rpm_limit_holds_across_workers(server: ServerProcess) -> None:
    await _inside_one_minute()  # the four requests must fall in one one-minute window
    statuses = []
    for _ in range(4):  # a new connection each time: the requests spread over workers
        async with client(server, KEY_LIMITED) as c:
            try:
                await c.responses.create(model="gpt-4o", input="x")
                statuses.append(200)
            except openai.RateLimitError as exc:
                statuses.append(429)
                assert int(exc.response.headers["retry-after"]) >= 1
    assert statuses == [200, 200, 200, 429]


@pytest.mark.parametrize(("key", "stream"), [(KEY_TOKENS, False),
                                             (KEY_TOKENS_STREAM, True)])
async def test_key_tpm_limit_counts_tokens_across_workers(server: ServerProcess, key: str,
                                                          stream: bool) -> None:
    await _inside_one_minute()  # both requests must fall in one one-minute window
    async with client(server, key) as c:  # the first answer's tokens pass the limit of 1
        if stream:
            async for event in await c.responses.create(model="gpt-4o", input="x",
                                                        stream=True):
                if event.type == "response.completed":
                    assert event.response.usage is not None
                    assert event.response.usage.total_tokens > 1
        else:
            first = await c.responses.create(model="gpt-4o", input="x")
            assert first.usage is not None and first.usage.total_tokens > 1
    async with client(server, key) as c:  # a new connection: maybe the other worker
        with pytest.raises(openai.RateLimitError) as refused:
            await c.responses.create(model="gpt-4o", input="x")
    assert "1 tokens per minute" in refused.value.message
    assert int(refused.value.response.headers["retry-after"]) >= 1


# -- malformed requests ----------------------------------------------------------------------


@pytest.mark.parametrize(("body", "param"), [
    (b"{not json", None),
    (b"[1, 2]", None),
    (b'"a string"', None),
    (b'{"model": "gpt-4o", "input": 42}', "input"),
    (b'{"model": 7, "input": "x"}', "model"),
    (b'{"input": "x"}', "model"),
    (b'{"model": "gpt-4o", "input": "x", "stream": "yes"}', "stream"),
    (b'{"model": "gpt-4o", "input": "x", "fallbacks": ["other"]}', "fallbacks"),
    (b'{"model": "gpt-4o", "input": "x", "response_owner": "team-b"}', "response_owner"),
    (b'{"model": "gpt-4o", "input": "x", "conversation": "bad id!"}', "conversation"),
    (b'{"model": "gpt-4o", "input": "x", "previous_response_id": "bad id!"}',
     "previous_response_id"),
])
async def test_malformed_requests_are_400(server: ServerProcess, body: bytes,
                                          param: str | None) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        answer = await http.post("/v1/responses", content=body, headers={
            "Authorization": f"Bearer {KEY_B}", "Content-Type": "application/json"})
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param
    assert set(error) == {"message", "type", "param", "code"}


async def test_wrong_type_through_sdk(server: ServerProcess) -> None:
    async with client(server) as c:
        with pytest.raises(openai.BadRequestError) as info:
            await c.responses.create(model="gpt-4o", input=42)  # type: ignore[arg-type]
    assert info.value.param == "input"


async def test_huge_body_is_413(server: ServerProcess) -> None:
    async with client(server) as c:
        with pytest.raises(openai.APIStatusError) as info:
            await c.responses.create(model="gpt-4o", input="x" * (2 * 1024 * 1024))
    assert info.value.status_code == 413
    assert info.value.code == "request_too_large"


# -- upstream failures ---------------------------------------------------------------------------


async def test_upstream_429_is_rate_limit_error(server: ServerProcess,
                                                upstream: UpstreamProcess) -> None:
    upstream.faults.fail(429, times=1, retry_after=7)
    async with client(server) as c:
        with pytest.raises(openai.RateLimitError) as info:
            await c.responses.create(model="gpt-4o", input="x")
    assert info.value.response.headers["retry-after"] == "7"


async def test_upstream_auth_failure_is_not_the_callers_401(server: ServerProcess,
                                                            upstream: UpstreamProcess) -> None:
    upstream.faults.fail(401, times=1)
    async with client(server) as c:
        with pytest.raises(openai.APIStatusError) as info:
            await c.responses.create(model="gpt-4o", input="x")
    assert info.value.status_code == 502
    assert "k1" not in str(info.value.body)


async def test_stream_failing_after_first_event_ends_with_error_event(
        server: ServerProcess, upstream: UpstreamProcess) -> None:
    upstream.faults.cut_stream(2, times=1)
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http, http.stream(
            "POST", "/v1/responses", json={"model": "gpt-4o", "input": "x", "stream": True},
            headers={"Authorization": f"Bearer {KEY_A}"}) as answer:
        text = (await answer.aread()).decode()
    events = [line.removeprefix("event: ") for line in text.splitlines()
              if line.startswith("event: ")]
    assert events[0] == "response.created" and events[-1] == "error"
    assert '"type":"error"' in text and '"sequence_number"' in text


# -- slow clients ------------------------------------------------------------------------------


def _host_port(server: ServerProcess) -> tuple[str, int]:
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


def test_idle_client_with_partial_head_is_dropped(server: ServerProcess) -> None:
    with socket.create_connection(_host_port(server), timeout=10) as sock:
        sock.sendall(b"POST /v1/responses HTTP/1.1\r\nHost: x\r\n")  # no end of head
        started = time.monotonic()
        assert sock.recv(1024) == b""  # the server closed the connection
    assert time.monotonic() - started < 8  # idle_timeout is 1 s; generous bound


def test_slow_body_is_408(server: ServerProcess) -> None:
    with socket.create_connection(_host_port(server), timeout=10) as sock:
        sock.sendall(b"POST /v1/responses HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n"
                     b"Authorization: Bearer " + KEY_A.encode() + b"\r\n\r\n{\"model\"")
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:100]


# -- health and metrics ----------------------------------------------------------------------------


async def test_health_and_metrics_of_all_workers(server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        assert (await http.get("/health/liveliness")).json() == {"status": "alive"}
        ready = (await http.get("/health/readiness")).json()
        assert ready["redis"] == "connected" and ready["deployments"]["total"] == 3
        text = ""
        for _ in range(50):  # until both workers have registered their metrics socket
            text = (await http.get("/metrics")).text
            if 'worker="1"' in text and 'worker="0"' in text:
                break
            await asyncio.sleep(0.1)
    assert 'worker="0"' in text and 'worker="1"' in text
    assert "router_in_flight" in text and "proxy_requests_total" in text


def test_workers_without_redis_is_a_startup_error(tmp_path: Path) -> None:
    done = refused_start(server_config("http://127.0.0.1:9/v1"), tmp_path, "--workers", "2")
    assert done.returncode != 0
    assert "--workers 2 needs Redis" in done.stderr and "redis_url" in done.stderr


def test_invalid_config_is_a_startup_error_naming_the_field(tmp_path: Path) -> None:
    config = server_config("http://127.0.0.1:9/v1")
    config["general_settings"]["api_keys"][0]["rpm_limit"] = -1
    config["router_settings"]["num_retries"] = "many"
    done = refused_start(config, tmp_path)
    assert done.returncode == 78
    assert "router_settings.num_retries" in done.stderr
    assert "general_settings.api_keys[0].rpm_limit" in done.stderr


def test_keys_never_in_output(server: ServerProcess) -> None:
    """Whatever the server printed or logged (at INFO) during this module's tests."""
    joined = "\n".join(server.output)
    assert "READY" in joined
    for secret in (KEY_A, KEY_B, MASTER, "k1"):
        assert secret not in joined
