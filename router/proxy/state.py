"""What the server remembers: which key owns each stored response (the owner the
Router recorded with it, read back here) and each conversation (the server's own
record), and each key's requests and tokens this minute.

Two implementations of one small interface, :class:`ServerState`:
:class:`MemoryState` for a single worker without Redis, and
:class:`RedisState`, shared by every worker (and every server) on the same
Redis and key prefix, so ownership and limits hold across them.

Limits are fixed one-minute windows (``rpm``: requests started this minute;
``tpm``: tokens reported by responses that ended this minute), as LiteLLM's
``rpm_limit``/``tpm_limit`` are. A request is admitted when the key is
below both; its tokens are added when its response (or stream) ends, so a
burst may overshoot ``tpm_limit`` by the requests in flight.
``max_parallel_requests`` is a counting semaphore (:meth:`enter` /
:meth:`leave` with a token per request); in Redis a sorted set of tokens
by start time, whose entries older than :data:`MAX_REQUEST_AGE` are
dropped, so a worker that dies mid-request cannot hold a slot for ever.

When Redis fails, limits fail open (the request is served, and
:attr:`RedisState.failures` counts it) while reading an owner fails closed:
one that cannot be read raises :class:`StateUnavailable`, because answering
"yours" without knowing would hand one key's conversation to another (a
conversation's claim that cannot be read or written is a 503 too). The
breaker logs one warning when Redis fails and one when it answers again.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import redis.asyncio as aioredis
from cachetools import TTLCache

from router.clock import Clock
from router.ownership import OWNER_PREFIX
from router.state.breaker import Breaker, failures
from router.state.redis import RedisStore
from router.state.target import RedisTarget

__all__ = ["Admission", "MemoryState", "RedisState", "ServerState", "StateUnavailable"]

log = logging.getLogger("router.proxy")

Wall = Callable[[], float]
T = TypeVar("T")
#: Reads the owner the Router recorded with a response (``Router.aresponse_owner``).
OwnerReader = Callable[[str], Awaitable[str | None]]

#: Seconds after which an in-flight entry of a crashed worker no longer counts.
MAX_REQUEST_AGE = 3600.0


class StateUnavailable(Exception):
    """The shared state (Redis) could not be read."""


@dataclass(frozen=True, slots=True)
class Admission:
    """The answer to "may this key start a request now?"; ``retry_after`` in seconds."""

    allowed: bool
    reason: str = ""
    retry_after: float = 0.0


class ServerState(Protocol):
    async def response_owner(self, response_id: str) -> str | None: ...
    async def claim_conversation(self, conversation_id: str, key_id: str) -> str: ...
    async def forget(self, response_id: str) -> None: ...
    async def admit(self, key_id: str, rpm_limit: int | None, tpm_limit: int | None
                    ) -> Admission: ...
    async def add_tokens(self, key_id: str, tokens: int) -> None: ...
    async def enter(self, key_id: str, token: str, limit: int) -> bool: ...
    async def leave(self, key_id: str, token: str) -> None: ...
    async def ping(self) -> bool: ...
    async def aclose(self) -> None: ...


def _window(wall: float) -> tuple[int, float]:
    """This minute's number and the seconds left in it."""
    minute = int(wall // 60)
    return minute, (minute + 1) * 60 - wall


def _verdict(requests: int, tokens: int, rpm: int | None, tpm: int | None,
             left: float) -> Admission:
    if rpm is not None and requests > rpm:
        return Admission(False, f"rate limit reached: {rpm} requests per minute", left)
    if tpm is not None and tokens >= tpm:
        return Admission(False, f"rate limit reached: {tpm} tokens per minute", left)
    return Admission(True)


class MemoryState:
    """One process's state: conversation owners in a TTL cache, counters per minute.

    A response's owner is the one the Router recorded with it (in the Router's
    memory), read through ``responses``.
    """

    def __init__(self, wall: Wall, responses: OwnerReader, *, ttl: float,
                 max_conversations: int = 1_000_000) -> None:
        self._wall = wall
        self._responses = responses
        self._conversations: TTLCache[str, str] = TTLCache(max_conversations, ttl, timer=wall)
        self._counts: dict[tuple[str, str, int], int] = {}
        self._parallel: dict[str, int] = {}

    async def response_owner(self, response_id: str) -> str | None:
        return await self._responses(response_id)

    async def claim_conversation(self, conversation_id: str, key_id: str) -> str:
        owner = self._conversations.get(conversation_id, key_id)
        self._conversations[conversation_id] = owner  # claimed, or its claim renewed by use
        return owner

    async def forget(self, response_id: str) -> None:
        """Nothing to do: in memory the Router alone records a response's owner."""

    async def admit(self, key_id: str, rpm_limit: int | None, tpm_limit: int | None
                    ) -> Admission:
        if rpm_limit is None and tpm_limit is None:
            return Admission(True)
        minute, left = _window(self._wall())
        self._drop_old(minute)
        requests = self._bump(("rpm", key_id, minute), 1)
        tokens = self._counts.get(("tpm", key_id, minute), 0)
        return _verdict(requests, tokens, rpm_limit, tpm_limit, left)

    async def add_tokens(self, key_id: str, tokens: int) -> None:
        if tokens > 0:
            self._bump(("tpm", key_id, _window(self._wall())[0]), tokens)

    async def enter(self, key_id: str, token: str, limit: int) -> bool:
        if self._parallel.get(key_id, 0) >= limit:
            return False
        self._parallel[key_id] = self._parallel.get(key_id, 0) + 1
        return True

    async def leave(self, key_id: str, token: str) -> None:
        self._parallel[key_id] = max(0, self._parallel.get(key_id, 0) - 1)

    def _bump(self, key: tuple[str, str, int], amount: int) -> int:
        value = self._counts.get(key, 0) + amount
        self._counts[key] = value
        return value

    def _drop_old(self, minute: int) -> None:
        if len(self._counts) > 1024:
            self._counts = {k: v for k, v in self._counts.items() if k[2] >= minute}

    async def ping(self) -> bool:
        return True

    async def aclose(self) -> None:
        return None


class RedisState:
    """State shared through Redis under ``prefix + "proxy:"``.

    A response's owner is the one the Router recorded with it, in the same
    write as its deployment (``<prefix>owner:<response id>``, see
    :mod:`router.ownership`), read here strictly (Redis down is
    :class:`StateUnavailable`, never "no owner"); an owner recorded by an
    earlier version of the server (``proxy:owner:<response id>``) is read in
    the same round trip. Conversation owners: ``proxy:conv:<conversation
    id>`` with the ownership TTL (an earlier server's ``proxy:owner:<id>``
    read in the same round trip). The two never share a key: a caller that
    names a response's id as a conversation cannot become its owner. Counters:
    ``proxy:rpm:<key id>:<minute>`` and ``proxy:tpm:...``, expiring after two
    minutes. Admission is one pipelined round trip (INCR, EXPIRE, GET).
    Requests in flight: ``proxy:parallel:<key id>``, a sorted set (one
    round trip to enter, one to leave; only for keys with a limit).

    Calls go through a :class:`~router.state.breaker.Breaker`: after a
    failure Redis is skipped for ``retry_interval`` seconds, so an outage
    costs each request nothing rather than a connection timeout.
    """

    def __init__(self, where: str | RedisTarget, *, prefix: str, ttl: float, clock: Clock,
                 timeout: float = 1.0, retry_interval: float = 5.0) -> None:
        # a server, a Cluster or a Sentinel set, one client per event loop
        self._store = RedisStore(where, prefix=prefix, clock=clock, wait_replicas=0,
                                 socket_timeout=timeout, socket_connect_timeout=timeout)
        self._prefix = prefix + "proxy:"
        self._router_owner = prefix + OWNER_PREFIX
        self._ttl = max(1, int(ttl))
        self._wall = clock.wall
        self._breaker = Breaker(clock, retry_interval, what="the server's Redis state", log=log)
        self.failures = 0  #: limit checks and counts skipped (failed open) so far

    @property
    def _redis(self) -> aioredis.Redis:
        return self._store.client()

    async def _call(self, op: Callable[[], Awaitable[T]]) -> T:
        """``op()`` unless the breaker is open; a failure is :class:`StateUnavailable`."""
        if not self._breaker.allows():
            raise StateUnavailable("Redis is skipped after a recent failure")
        epoch = self._breaker.epoch
        try:
            await self._store.ready()  # a Cluster client learns the slots first
            result = await op()
        except failures() as exc:
            self._breaker.trip(exc)
            raise StateUnavailable(type(exc).__name__) from None
        self._breaker.succeeded(epoch)
        return result

    async def _piped(self, fill: Callable[[Any], object], *, transaction: bool = False
                     ) -> list[Any]:
        """The replies of the commands ``fill`` queues on a pipeline: one round trip,
        through :meth:`_call`."""
        async def run() -> list[Any]:
            async with self._redis.pipeline(transaction=transaction) as pipe:
                fill(pipe)
                return list(await pipe.execute())

        return await self._call(run)

    async def response_owner(self, response_id: str) -> str | None:
        """The owner the Router recorded, else an earlier server's record: one round trip."""
        mine, earlier = await self._piped(lambda pipe: (
            pipe.get(self._router_owner + response_id),
            pipe.get(self._prefix + "owner:" + response_id)))
        found = mine if mine is not None else earlier
        return None if found is None else str(found)

    async def claim_conversation(self, conversation_id: str, key_id: str) -> str:
        """The conversation's owner: the key that claimed it first (``SET NX``: of two
        keys naming a new conversation at once, one wins, and both learn which).

        Each use renews the claim's TTL (whoever names it: renewing another
        key's claim only keeps it that key's), so a conversation in use never
        becomes claimable. One round trip for a known conversation, two for a
        new one (or one an earlier server recorded, which moves to its new key).
        """
        key = self._prefix + "conv:" + conversation_id
        earlier_key = self._prefix + "owner:" + conversation_id  # an earlier server's
        found, _, earlier = await self._piped(lambda pipe: (
            pipe.get(key), pipe.expire(key, self._ttl), pipe.get(earlier_key)))
        if found is not None:
            return str(found)
        claimant = key_id if earlier is None else str(earlier)
        _, owner = await self._piped(lambda pipe: (
            pipe.set(key, claimant, ex=self._ttl, nx=True), pipe.get(key)))
        return claimant if owner is None else str(owner)

    async def forget(self, response_id: str) -> None:
        """Drop an earlier server's record of a response's owner (the Router drops its
        own with the response)."""
        with self._open_on_failure():
            await self._call(lambda: self._redis.delete(self._prefix + "owner:" + response_id))

    async def admit(self, key_id: str, rpm_limit: int | None, tpm_limit: int | None
                    ) -> Admission:
        if rpm_limit is None and tpm_limit is None:
            return Admission(True)
        minute, left = _window(self._wall())
        rpm_key = f"{self._prefix}rpm:{key_id}:{minute}"
        tpm_key = f"{self._prefix}tpm:{key_id}:{minute}"
        with self._open_on_failure():
            requests, _, tokens = await self._piped(lambda pipe: (
                pipe.incr(rpm_key), pipe.expire(rpm_key, 120), pipe.get(tpm_key)))
            return _verdict(int(requests), int(tokens or 0), rpm_limit, tpm_limit, left)
        return Admission(True)

    async def add_tokens(self, key_id: str, tokens: int) -> None:
        if tokens <= 0:
            return
        key = f"{self._prefix}tpm:{key_id}:{_window(self._wall())[0]}"
        with self._open_on_failure():
            await self._piped(lambda pipe: (pipe.incrby(key, tokens), pipe.expire(key, 120)))

    async def enter(self, key_id: str, token: str, limit: int) -> bool:
        key = f"{self._prefix}parallel:{key_id}"
        now = self._wall()
        with self._open_on_failure():
            _, _, count, _ = await self._piped(lambda pipe: (
                pipe.zremrangebyscore(key, "-inf", now - MAX_REQUEST_AGE),
                pipe.zadd(key, {token: now}), pipe.zcard(key),
                pipe.expire(key, int(MAX_REQUEST_AGE))), transaction=True)
            if int(count) <= limit:
                return True
            await self._call(lambda: self._redis.zrem(key, token))
            return False
        return True

    async def leave(self, key_id: str, token: str) -> None:
        with self._open_on_failure():
            await self._call(lambda: self._redis.zrem(f"{self._prefix}parallel:{key_id}", token))

    @contextlib.contextmanager
    def _open_on_failure(self) -> Iterator[None]:
        """Limits and counters fail open: an unavailable Redis is counted, not raised."""
        try:
            yield
        except StateUnavailable:
            self.failures += 1

    async def ping(self) -> bool:
        """Whether Redis answers now (asked even while the breaker is open)."""
        try:
            return bool(await (await self._store.ready()).ping())
        except failures():
            return False

    async def aclose(self) -> None:
        await self._store.aclose()
