"""A ``StateStore`` on Redis (``redis.asyncio``): one server, a Cluster or a Sentinel set.

Every Redis user of a router (ownership records, shared load, shared
cooldowns) reaches Redis through one :class:`RedisStore`: its client, its key
prefix and its :class:`router.state.breaker.Breaker`, so the first timeout of
any of them opens the breaker for all (a request pays one Redis timeout at
most, see :mod:`router.state.breaker`).

Where Redis is (:class:`RedisTarget`):

* one server: a ``redis://``, ``rediss://`` or ``unix://`` URL;
* a Cluster: its startup nodes (``redis.asyncio.RedisCluster``); keys that a
  command or a transaction uses together carry one hash tag (see
  :func:`hash_tag`), so each stays in one slot;
* a Sentinel set: the sentinels and the service name; the client asks the
  sentinels for the primary and follows a failover by itself.

One connection pool per event loop (redis-py's asyncio connections belong to
the loop that made them; the router's sync twins run on a loop of their
own). Socket timeouts are short: a slow Redis must not hold a request, and
:class:`router.state.resilient.ResilientStore` turns failures into a memory
fallback.

**Acknowledged writes.** ``wait_replicas`` > 0 (the default with Sentinel)
makes :meth:`RedisStore.set` send ``WAIT`` in the same round trip: a record
counts as acknowledged once the primary and that many replicas hold it, so a
Sentinel failover (which promotes a replica) keeps it. When the replicas do
not confirm in time, writes are acknowledged by the primary alone for
``retry_interval`` seconds (one warning) rather than each paying the wait.
With 0 (the default elsewhere; a Cluster's ``WAIT`` has no key to route by) a
write is acknowledged by the primary alone, and a failover may lose the
writes of its last moments.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, ClusterPipeline, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from router.clock import SystemClock
from router.state.breaker import DEFAULT_DEADLINE, Breaker
from router.state.source import RedisSource, connected, hash_tag
from router.state.target import RedisTarget

if TYPE_CHECKING:
    from router.clock import Clock

__all__ = ["RedisSource", "RedisStore", "RedisTarget", "connected", "hash_tag"]

log = logging.getLogger("router.state")

SOCKET_TIMEOUT = DEFAULT_DEADLINE
#: Connections per Cluster node (redis-py's default of 100 fails commands beyond it).
CLUSTER_MAX_CONNECTIONS = 4096
#: Milliseconds ``WAIT`` may take for the replicas (below the breaker's deadline).
WAIT_TIMEOUT_MS = 200

class RedisStore:
    """Keys under ``prefix``; values are short strings; TTL in milliseconds precision.

    ``where`` is a URL or a :class:`RedisTarget`. ``clock`` and
    ``retry_interval`` drive the shared :attr:`breaker`; ``deadline`` is the
    seconds one call (and a socket read or connect) may take before the
    breaker opens (default :data:`SOCKET_TIMEOUT`).
    """

    def __init__(
        self,
        where: str | RedisTarget,
        *,
        prefix: str = "rr:",
        clock: Clock | None = None,
        retry_interval: float = 5.0,
        wait_replicas: int | None = None,
        deadline: float = DEFAULT_DEADLINE,
        **client_options: Any,
    ) -> None:
        self._target = RedisTarget(url=where) if isinstance(where, str) else where
        if self._target.kind == "cluster":
            _require_cluster_transactions()
        self._prefix = prefix
        self._options: dict[str, Any] = {
            "socket_timeout": deadline,
            "socket_connect_timeout": deadline,
            "decode_responses": True,
            **client_options,
        }
        wait = int(self._target.kind == "sentinel") if wait_replicas is None else wait_replicas
        self._wait = 0 if self._target.kind == "cluster" else wait  # WAIT has no key to route by
        self._clock = clock or SystemClock()
        self._retry_interval = retry_interval
        self._wait_off_until: float | None = None  # replicas lagging: primary-only until then
        self.breaker = Breaker(self._clock, retry_interval, deadline=deadline,
                               what=f"Redis ({self._target.kind})", log=log)
        self._clients: dict[int, _Clients] = {}

    @property
    def prefix(self) -> str:
        return self._prefix

    @property
    def target(self) -> RedisTarget:
        return self._target

    def client(self) -> aioredis.Redis:
        """The client of the running event loop (a ``RedisCluster`` for a Cluster)."""
        main: aioredis.Redis = self._loop_clients().main
        return main

    async def ready(self) -> aioredis.Redis:
        """:meth:`client`, initialised: a Cluster client learns the slot map once
        per event loop before any command (redis-py's cluster client, first used
        by many commands at once, can break a connection it is still opening)."""
        clients = self._loop_clients()
        if not clients.ready:
            async with clients.lock:
                if not clients.ready:
                    await clients.main.initialize()
                    clients.ready = True
        main: aioredis.Redis = clients.main
        return main

    def bus(self) -> aioredis.Redis:
        """The client for ``PUBLISH`` and ``SUBSCRIBE`` (classic pub/sub).

        On a Cluster, one node's client: a classic message published on any
        node reaches the subscribers of every node, and a plain client works
        with every redis-py version. Elsewhere :meth:`client` itself.
        """
        clients = self._loop_clients()
        if clients.bus is None:
            clients.bus = self._node_client()
        bus: aioredis.Redis = clients.bus
        return bus

    def drop_bus(self) -> None:
        """Forget this loop's Cluster bus client (its node failed): the next picks anew."""
        clients = self._clients.get(id(asyncio.get_running_loop()))
        if clients is not None and clients.bus is not clients.main:
            clients.bus = None
            clients.bus_turn += 1

    def _loop_clients(self) -> _Clients:
        loop_id = id(asyncio.get_running_loop())
        found = self._clients.get(loop_id)
        if found is None:
            found = self._clients[loop_id] = self._connect()
        return found

    def _connect(self) -> _Clients:
        t = self._target
        if t.kind == "cluster":
            return _Clients(RedisCluster(
                startup_nodes=[ClusterNode(h, p) for h, p in t.startup_nodes],
                username=t.username, password=t.password, ssl=t.ssl,
                max_connections=CLUSTER_MAX_CONNECTIONS, **self._options), ready=False)
        retries: dict[str, Any] = {
            "retry": Retry(NoBackoff(), 1), "retry_on_error": [RedisConnectionError]}
        if t.kind == "sentinel":
            sentinel = Sentinel(  # type: ignore[no-untyped-call, unused-ignore]  # typed from redis-py 7
                list(t.sentinel_nodes), sentinel_kwargs=self._sentinel_options(),
                username=t.username, password=t.password, db=t.db, ssl=t.ssl,
                **self._options, **retries)
            main = sentinel.master_for(t.service_name or "")
            return _Clients(main, main, sentinel)
        # A pooled connection that Redis closed (a restart) fails its next
        # command: retry once on a fresh one. Timeouts are not retried.
        main = aioredis.Redis.from_url(t.url or "", **self._options, **retries)
        return _Clients(main, main)

    def _sentinel_options(self) -> dict[str, Any]:
        found: dict[str, Any] = {
            "socket_timeout": self._options["socket_timeout"],
            "socket_connect_timeout": self._options["socket_connect_timeout"],
        }
        if self._target.sentinel_password is not None:
            found["password"] = self._target.sentinel_password
        return found

    def _node_client(self) -> aioredis.Redis:
        clients = self._loop_clients()
        nodes = self._target.startup_nodes
        host, port = nodes[clients.bus_turn % len(nodes)]
        t = self._target
        return aioredis.Redis(host=host, port=port, username=t.username, password=t.password,
                              ssl=t.ssl, **self._options)

    async def get(self, key: str) -> str | None:
        value = await (await self.ready()).get(self._prefix + key)
        return None if value is None else str(value)

    async def set(self, key: str, value: str, ttl: float) -> None:
        await self.set_many(((key, value),), ttl)

    async def set_many(self, items: Sequence[tuple[str, str]], ttl: float, *,
                       durable: bool = False) -> None:
        """Write every key in one round trip; with ``wait_replicas``, also wait for the
        replicas (in the same round trip). Every write here is awaited (``durable``).

        When the replicas do not confirm within ``WAIT_TIMEOUT_MS`` (none is
        connected, say after a failover), writes are acknowledged by the primary
        alone for ``retry_interval`` seconds (one warning), rather than each
        paying the wait.
        """
        px = max(1, int(ttl * 1000))
        client = await self.ready()
        waits = self._waits()
        if len(items) == 1 and not waits:
            key, value = items[0]
            await client.set(self._prefix + key, value, px=px)
            return
        pipe = client.pipeline(transaction=False)
        for key, value in items:
            pipe.set(self._prefix + key, value, px=px)
        if not waits:
            await pipe.execute()
            return
        pipe.execute_command("WAIT", self._wait, WAIT_TIMEOUT_MS)
        replicas = (await pipe.execute())[-1]
        if int(replicas) < self._wait:
            if self._wait_off_until is None:
                log.warning("Redis: %s of %s replicas confirmed a write; writes are "
                            "acknowledged by the primary alone, retrying every %gs",
                            replicas, self._wait, self._retry_interval)
            self._wait_off_until = self._clock.now() + self._retry_interval
        elif self._wait_off_until is not None:
            self._wait_off_until = None
            log.warning("Redis: the replicas confirm writes again")

    def _waits(self) -> bool:
        """Whether this write waits for the replicas."""
        off = self._wait_off_until
        return bool(self._wait) and (off is None or self._clock.now() >= off)

    async def delete(self, key: str) -> None:
        await (await self.ready()).delete(self._prefix + key)

    async def delete_many(self, keys: Sequence[str]) -> None:
        """Delete every key in one round trip (a pipeline, so a Cluster's keys may live in
        different slots)."""
        pipe = (await self.ready()).pipeline(transaction=False)
        for key in keys:
            pipe.delete(self._prefix + key)
        await pipe.execute()

    async def aclose(self) -> None:
        """Close this event loop's clients."""
        clients = self._clients.pop(id(asyncio.get_running_loop()), None)
        if clients is not None:
            await clients.aclose()

    def __repr__(self) -> str:  # the URL may carry a password
        return f"RedisStore({self._target.kind}, prefix={self._prefix!r})"


@dataclass
class _Clients:
    """One event loop's clients: the main one, the pub/sub one, the sentinel manager."""

    main: Any
    bus: Any = None
    sentinel: Sentinel | None = None
    bus_turn: int = 0
    ready: bool = True  # a Cluster client: False until its slot map is loaded
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def aclose(self) -> None:
        closing = [self.main] + ([self.bus] if self.bus not in (None, self.main) else [])
        for client in closing:
            await client.aclose()
        for node in self.sentinel.sentinels if self.sentinel is not None else ():
            await node.aclose()


def _require_cluster_transactions() -> None:
    """Shared load reserves in a MULTI transaction on one slot: redis-py must support it."""
    if "transaction" not in inspect.signature(ClusterPipeline.__init__).parameters:
        raise ValueError("Redis Cluster needs a redis-py whose asyncio cluster pipelines "
                         "support transactions (the tests use redis 8.1)")
