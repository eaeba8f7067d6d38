"""Redis helpers for the tests: a private key space on the shared Redis, and a
private ``redis-server`` process that a test may kill and restart.

Use from a test module with ``pytest_plugins = ("tests.redis_fixtures",)``.

* ``redis_space``: the Redis at ``REDIS_URL`` (default
  ``redis://127.0.0.1:6379/0``) with a key prefix unique to the test; every key
  under it is deleted afterwards. When Redis does not answer the test is
  skipped, or fails when ``REQUIRE_REDIS=1`` (CI must never skip it silently).
* ``private_redis``: a ``redis-server --port <free port> --save "" --appendonly
  no`` child of the test, stopped afterwards; :meth:`PrivateRedis.stop` and
  :meth:`PrivateRedis.start` kill and restart it on the same port.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NoReturn

import pytest
import redis

__all__ = [
    "REDIS_URL",
    "PrivateRedis",
    "RedisSpace",
    "free_port",
    "private_redis",
    "redis_space",
    "redis_unavailable",
]

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


def redis_unavailable(reason: str) -> NoReturn:
    """Skip the test, or fail it when ``REQUIRE_REDIS=1``."""
    if os.environ.get("REQUIRE_REDIS") == "1":
        pytest.fail(f"REQUIRE_REDIS=1 but {reason}")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class RedisSpace:
    """A key prefix of its own on the shared Redis, and a sync client to look."""

    url: str
    prefix: str
    client: redis.Redis

    def keys(self) -> list[str]:
        """Every key under the prefix, prefix included."""
        return sorted(self.client.scan_iter(match=self.prefix + "*", count=1000))

    def get(self, key: str) -> str | None:
        """The value of ``prefix + key``."""
        value = self.client.get(self.prefix + key)
        return None if value is None else str(value)

    def pttl(self, key: str) -> int:
        return int(self.client.pttl(self.prefix + key))

    def clear(self) -> None:
        for key in self.keys():
            self.client.delete(key)


@pytest.fixture
def redis_space() -> Iterator[RedisSpace]:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2, decode_responses=True)
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        redis_unavailable(f"redis at {REDIS_URL} does not answer: {exc}")
    space = RedisSpace(REDIS_URL, f"rr-test:{uuid.uuid4().hex[:12]}:", client)
    try:
        yield space
    finally:
        space.clear()
        client.close()


class PrivateRedis:
    """A ``redis-server`` child process on 127.0.0.1, without persistence."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_connect_timeout=1, decode_responses=True)

    def start(self, timeout: float = 5.0) -> None:
        """Start (again, on the same port) and wait until it answers PING."""
        if self.running:
            return
        binary = shutil.which("redis-server")
        if binary is None:
            redis_unavailable("redis-server is not on PATH")
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        with self.client() as probe:
            while True:
                try:
                    probe.ping()
                    return
                except redis.RedisError:
                    if self.proc.poll() is not None or time.monotonic() > deadline:
                        self.stop()
                        redis_unavailable(f"private redis-server on port {self.port} did not start")
                    time.sleep(0.02)

    def stop(self) -> None:
        """Terminate the server (kill it when it does not exit in 5 s)."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=5.0)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    server.start()
    try:
        yield server
    finally:
        server.stop()
