"""The server under real-world conditions: clients that leave, SIGTERM mid-stream,
a worker that crashes, and Redis that is down.

Each test starts its own one-worker server (these tests stop or break it),
pointed at a :class:`SlowUpstream` whose streams take about two seconds.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.router.proxy.helpers import (
    KEY_A,
    KEY_SERIAL,
    MASTER,
    ServerProcess,
    SlowUpstream,
    server_config,
)


@pytest.fixture(scope="module")
def slow() -> Iterator[SlowUpstream]:
    up = SlowUpstream(events=10, interval=0.2).start()
    yield up
    up.stop()


@pytest.fixture
def server(slow: SlowUpstream, tmp_path: Path) -> Iterator[ServerProcess]:
    proc = ServerProcess(server_config(slow.url), tmp_path).start()
    yield proc
    proc.stop()


def _wait_for(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


def _in_flight(server: ServerProcess) -> float:
    text = httpx.get(f"{server.url}/metrics").text
    values = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
              if line.startswith("router_in_flight{") and 'deployment_id="dep-main"' in line]
    return sum(values)


def _stream_request(server: ServerProcess) -> dict[str, object]:
    return {"method": "POST", "url": f"{server.url}/v1/responses",
            "json": {"model": "gpt-4o", "input": "x", "stream": True},
            "headers": {"Authorization": f"Bearer {KEY_A}"}}


async def test_disconnect_mid_stream_cancels_upstream_and_frees_slot(
        server: ServerProcess, slow: SlowUpstream) -> None:
    before = slow.abandoned
    async with httpx.AsyncClient(timeout=10) as http, http.stream(
            **_stream_request(server)) as answer:  # type: ignore[arg-type]
        lines = answer.aiter_lines()
        assert (await anext(lines)) == "event: response.created"
        assert _in_flight(server) == 1
    # the client is gone: the upstream stream is abandoned and the slot freed
    assert await asyncio.to_thread(_wait_for, lambda: slow.abandoned == before + 1)
    assert await asyncio.to_thread(_wait_for, lambda: _in_flight(server) == 0)


async def test_disconnect_before_answer_cancels_upstream(
        server: ServerProcess, slow: SlowUpstream) -> None:
    before = slow.abandoned
    async with openai.AsyncOpenAI(base_url=f"{server.url}/v1", api_key=KEY_A,
                                  max_retries=0, timeout=0.5) as c:
        with pytest.raises(openai.APITimeoutError):
            await c.responses.create(model="gpt-4o", input="slow")
    assert await asyncio.to_thread(_wait_for, lambda: slow.abandoned == before + 1)
    assert await asyncio.to_thread(_wait_for, lambda: _in_flight(server) == 0)


def test_reader_that_stops_reading_is_dropped(tmp_path: Path) -> None:
    """Backpressure: the server stops reading the upstream while the client does not
    read, then drops the client after write_timeout (and the upstream call with it)."""
    big = SlowUpstream(events=5000, interval=0, size=8192).start()  # about 40 MB
    server = ServerProcess(server_config(big.url, general={"write_timeout": 1}),
                           tmp_path).start()
    try:
        host, port = server.url.removeprefix("http://").rsplit(":", 1)
        body = b'{"model": "gpt-4o", "input": "x", "stream": true}'
        with socket.create_connection((host, int(port))) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.sendall(b"POST /v1/responses HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                         + KEY_A.encode() + b"\r\nContent-Type: application/json\r\n"
                         b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
            # never read: the server must give up on this client, not buffer 40 MB
            assert _wait_for(lambda: big.abandoned == 1, timeout=20)
        assert big.finished == 0
        assert 'proxy_streams_dropped_total{worker="0"} 1.0' in httpx.get(
            f"{server.url}/metrics").text
    finally:
        server.stop()
        big.stop()


def test_max_parallel_requests_holds_while_a_stream_runs(server: ServerProcess) -> None:
    request = _stream_request(server)
    request["headers"] = {"Authorization": f"Bearer {KEY_SERIAL}"}
    with openai.OpenAI(base_url=f"{server.url}/v1", api_key=KEY_SERIAL, max_retries=0) as c:
        with httpx.Client(timeout=15) as http, http.stream(**request) as answer:  # type: ignore[arg-type]
            lines = answer.iter_lines()  # kept: a dropped iterator closes the answer
            assert next(lines) == "event: response.created"
            with pytest.raises(openai.RateLimitError, match="1 parallel requests"):
                c.responses.create(model="gpt-4o", input="second")
        # the client closed the stream: once the server sees it, the slot is free again
        assert _wait_for(lambda: _admitted(c))


def _admitted(client: openai.OpenAI) -> bool:
    try:
        return client.responses.create(model="gpt-4o", input="again").status == "completed"
    except openai.RateLimitError:
        return False


def test_sigterm_mid_stream_drains_then_exits(server: ServerProcess) -> None:
    with httpx.Client(timeout=15) as http, http.stream(
            **_stream_request(server)) as answer:  # type: ignore[arg-type]
        lines = answer.iter_lines()
        assert next(lines) == "event: response.created"
        server.terminate()
        time.sleep(0.5)
        with pytest.raises(httpx.ConnectError):  # no new connections while draining
            httpx.get(f"{server.url}/health/liveliness", timeout=2)
        rest = list(lines)  # the stream is served to its end
    assert "event: response.completed" in rest
    assert server.proc is not None and server.proc.wait(timeout=15) == 0


def test_stream_past_the_grace_period_ends_with_error_event(slow: SlowUpstream,
                                                           tmp_path: Path) -> None:
    config = server_config(slow.url, general={"graceful_shutdown_timeout": 0.5})
    server = ServerProcess(config, tmp_path).start()
    try:
        with httpx.Client(timeout=15) as http, http.stream(
                **_stream_request(server)) as answer:  # type: ignore[arg-type]
            lines = answer.iter_lines()
            assert next(lines) == "event: response.created"
            server.terminate()
            events = [line for line in lines if line.startswith("event: ")]
        assert events[-1] == "event: error" and "event: response.completed" not in events
    finally:
        assert server.stop() == 0


def test_crashed_worker_is_restarted(server: ServerProcess) -> None:
    (worker,) = server.worker_pids()
    os.kill(worker, signal.SIGKILL)
    assert _wait_for(lambda: server.worker_pids() not in ([], [worker]))
    assert _wait_for(lambda: _alive(server))
    with openai.OpenAI(base_url=f"{server.url}/v1", api_key=KEY_A, max_retries=0) as c:
        assert c.models.list().data[0].id == "gpt-4o"


def _alive(server: ServerProcess) -> bool:
    try:
        return httpx.get(f"{server.url}/health/liveliness", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_redis_down(slow: SlowUpstream, tmp_path: Path) -> None:
    """Readiness says so; a create is still served; ownership fails closed (503)."""
    from tests.redis_fixtures import free_port

    config = server_config(slow.url, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    server = ServerProcess(config, tmp_path).start()
    try:
        ready = httpx.get(f"{server.url}/health/readiness", timeout=10)
        assert ready.status_code == 503 and ready.json()["redis"] == "unreachable"
        assert httpx.get(f"{server.url}/health/liveliness").status_code == 200
        with openai.OpenAI(base_url=f"{server.url}/v1", api_key=KEY_A, max_retries=0) as c:
            created = c.responses.create(model="gpt-4o", input="x")
            assert created.status == "completed"
            with pytest.raises(openai.InternalServerError) as info:
                c.responses.retrieve(created.id)
            assert info.value.status_code == 503
        with openai.OpenAI(base_url=f"{server.url}/v1", api_key=MASTER, max_retries=0) as m:
            assert m.models.list().data
    finally:
        assert server.stop() == 0
