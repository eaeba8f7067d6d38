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
* ``redis_cluster`` (one per test module): three ``redis-server
  --cluster-enabled yes`` masters on free loopback ports, joined by
  ``redis-cli --cluster create``; stopped (by process) afterwards.
* ``redis_sentinel`` (one per test): a primary, a replica and one ``redis-server
  --sentinel`` monitoring them as ``mymaster`` (quorum 1, down after 1 s), so a
  killed primary is replaced within seconds.

Everything runs from a temporary directory (cluster and sentinel config files)
and needs nothing but ``redis-server`` and ``redis-cli``.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import pytest
import redis

__all__ = [
    "REDIS_URL",
    "PrivateCluster",
    "PrivateRedis",
    "PrivateSentinel",
    "RedisSpace",
    "free_port",
    "private_redis",
    "redis_cluster",
    "redis_sentinel",
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


# --------------------------------------------------------------------------- cluster and sentinel


def _binary(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        redis_unavailable(f"{name} is not on PATH")
    return found


def _wait(what: str, ready: Callable[[], bool], timeout: float = 15.0,
          *, fail: bool = False) -> None:
    """Poll ``ready`` (errors count as not yet); skip the test when it never is
    (a machine that cannot run the servers), or fail it when ``fail``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if ready():
                return
        except (redis.RedisError, OSError):
            pass
        if time.monotonic() > deadline:
            message = f"{what} was not ready within {timeout:g} s"
            if fail:
                pytest.fail(message)
            redis_unavailable(message)
        time.sleep(0.05)


@dataclass
class _Processes:
    """Child ``redis-server`` processes in a temporary directory, stopped by process."""

    workdir: Path
    procs: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    def spawn(self, port: int, *args: str) -> None:
        with open(self.workdir / f"redis-{port}.log", "ab") as log:
            self.procs[port] = subprocess.Popen(
                [_binary("redis-server"), *args], cwd=self.workdir,
                stdout=log, stderr=subprocess.STDOUT)

    def kill(self, port: int) -> None:
        """SIGKILL the process on ``port`` (a crash: nothing is flushed or handed over)."""
        proc = self.procs.pop(port)
        proc.kill()
        proc.wait()

    def stop_all(self) -> None:
        for proc in self.procs.values():
            proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=5.0)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs.clear()


def _free_cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is free too, so both fit in 65535."""
    for _ in range(200):
        port = random.randint(20000, 50000)
        try:
            with socket.socket() as one, socket.socket() as bus:
                one.bind(("127.0.0.1", port))
                bus.bind(("127.0.0.1", port + 10000))
        except OSError:
            continue
        return port
    redis_unavailable("no free pair of ports for a cluster node")


def _client(port: int) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=port, socket_timeout=2, decode_responses=True)


@dataclass
class PrivateCluster:
    """Three masters of a Redis Cluster on 127.0.0.1 (no replicas)."""

    ports: tuple[int, ...]
    processes: _Processes

    @property
    def startup_nodes(self) -> list[dict[str, object]]:
        """LiteLLM's ``redis_startup_nodes``."""
        return [{"host": "127.0.0.1", "port": p} for p in self.ports]

    def cluster(self) -> redis.RedisCluster:
        return redis.RedisCluster(host="127.0.0.1", port=self.ports[0], decode_responses=True)

    def start(self) -> None:
        for port in self.ports:
            self.processes.spawn(
                port, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--cluster-enabled", "yes",
                "--cluster-config-file", f"nodes-{port}.conf", "--cluster-node-timeout", "2000")
        for port in self.ports:
            _wait(f"cluster node {port}", lambda p=port: bool(_client(p).ping()))
        subprocess.run(
            [_binary("redis-cli"), "--cluster", "create",
             *(f"127.0.0.1:{p}" for p in self.ports), "--cluster-yes"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
        for port in self.ports:
            _wait(f"cluster state on {port}",
                  lambda p=port: _client(p).cluster("info")["cluster_state"] == "ok")


@pytest.fixture(scope="module")
def redis_cluster() -> Iterator[PrivateCluster]:
    with tempfile.TemporaryDirectory(prefix="rr-cluster-") as workdir:
        processes = _Processes(Path(workdir))
        cluster = PrivateCluster(tuple(_free_cluster_port() for _ in range(3)), processes)
        try:
            cluster.start()
            yield cluster
        finally:
            processes.stop_all()


SENTINEL_SERVICE = "mymaster"


@dataclass
class PrivateSentinel:
    """A primary, a replica and one sentinel watching them as :data:`SENTINEL_SERVICE`."""

    primary: int
    replica: int
    sentinel: int
    processes: _Processes

    @property
    def sentinel_nodes(self) -> list[list[object]]:
        """LiteLLM's ``sentinel_nodes``."""
        return [["127.0.0.1", self.sentinel]]

    def primary_port(self) -> int:
        """The port of the primary the sentinel names now."""
        _, port = _client(self.sentinel).sentinel_get_master_addr_by_name(SENTINEL_SERVICE)
        return int(port)

    def start(self) -> None:
        common = ("--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
        self.processes.spawn(self.primary, "--port", str(self.primary), *common)
        self.processes.spawn(self.replica, "--port", str(self.replica), *common,
                             "--replicaof", "127.0.0.1", str(self.primary))
        conf = self.processes.workdir / "sentinel.conf"
        conf.write_text(
            f"port {self.sentinel}\nbind 127.0.0.1\n"
            f"sentinel monitor {SENTINEL_SERVICE} 127.0.0.1 {self.primary} 1\n"
            f"sentinel down-after-milliseconds {SENTINEL_SERVICE} 1000\n"
            f"sentinel failover-timeout {SENTINEL_SERVICE} 3000\n")
        self.processes.spawn(self.sentinel, str(conf), "--sentinel")
        _wait("the replica's sync",
              lambda: _client(self.replica).info("replication")["master_link_status"] == "up")
        _wait("the sentinel", lambda: self.primary_port() == self.primary and int(
            _client(self.sentinel).sentinel_master(SENTINEL_SERVICE)["num-slaves"]) == 1)

    def kill_primary(self) -> int:
        """SIGKILL the primary; the port of the primary that replaces it, once promoted."""
        old = self.primary_port()
        self.processes.kill(old)
        _wait("the failover", lambda: self.primary_port() != old and _client(
            self.primary_port()).info("replication")["role"] == "master", timeout=30.0, fail=True)
        return self.primary_port()


@pytest.fixture
def redis_sentinel() -> Iterator[PrivateSentinel]:
    with tempfile.TemporaryDirectory(prefix="rr-sentinel-") as workdir:
        processes = _Processes(Path(workdir))
        ports = [free_port() for _ in range(3)]
        found = PrivateSentinel(ports[0], ports[1], ports[2], processes)
        try:
            found.start()
            yield found
        finally:
            processes.stop_all()
