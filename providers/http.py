"""One pooled connection per upstream, and the default way requests are sent.

The router speaks httpx's types everywhere (``httpx.Request``,
``httpx.Response``, httpx's exceptions). How a request is *sent* is a
:class:`Sender`:

* by default an ``httpx_aiohttp.AiohttpTransport`` per upstream origin, handed
  each ``httpx.Request`` directly. On this project's benchmark
  (``benchmarks/transport.py``) httpx's own connection pool costs several
  milliseconds of CPU per request at concurrency 32; the aiohttp transport
  under an ``httpx.AsyncClient`` cuts that roughly five-fold, and handing it
  the request without the ``AsyncClient`` layers (redirects, cookies, auth
  flows, event hooks: none of which the router uses) cuts the rest by
  another third or more;
* a caller's own ``httpx.AsyncClient`` (proxies, custom TLS, HTTP/2, event
  hooks) is honoured as given: every request goes through its ``send``.

Transports bind to the event loop they were created in, so the pool keys
them by loop as well as by upstream origin; the sync twins of the router run
on a loop of their own and get their own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Protocol

import httpx
from httpx_aiohttp import AiohttpTransport

__all__ = [
    "ClientPool", "ClientSender", "Sender", "TransportSender", "default_client",
    "default_transport", "origin_of",
]

_LIMITS = httpx.Limits(max_connections=1000, max_keepalive_connections=1000, keepalive_expiry=30)
_NO_TIMEOUT: dict[str, float | None] = {"connect": None, "read": None, "write": None, "pool": None}


class Sender(Protocol):
    """Opens one HTTP exchange; the caller reads the answer's body and closes it."""

    async def send(
        self,
        method: str,
        url: httpx.URL,
        *,
        headers: Mapping[str, str],
        content: bytes | None = None,
        timeout: float | None = None,
        read_timeout: float | None = None,
    ) -> httpx.Response:
        """Send the request (``url`` holds the whole query); the answer's body is left to read.

        ``timeout`` bounds connecting, writing and waiting for a pooled
        connection; ``read_timeout`` (else ``timeout``) bounds each read.
        """
        ...

    async def aclose(self) -> None: ...


def _timeouts(timeout: float | None, read: float | None) -> dict[str, float | None]:
    if timeout is None and read is None:
        return _NO_TIMEOUT
    return {"connect": timeout, "read": read or timeout, "write": timeout, "pool": timeout}


class TransportSender:
    """Hands ``httpx.Request`` objects straight to an httpx transport."""

    __slots__ = ("_transport",)

    def __init__(self, transport: httpx.AsyncBaseTransport) -> None:
        self._transport = transport

    async def send(
        self,
        method: str,
        url: httpx.URL,
        *,
        headers: Mapping[str, str],
        content: bytes | None = None,
        timeout: float | None = None,
        read_timeout: float | None = None,
    ) -> httpx.Response:
        request = httpx.Request(
            method, url, headers=headers, content=content,
            extensions={"timeout": _timeouts(timeout, read_timeout)},
        )
        return await self._transport.handle_async_request(request)

    async def aclose(self) -> None:
        await self._transport.aclose()


class ClientSender:
    """Sends through a caller's ``httpx.AsyncClient`` (its defaults, hooks and transport apply)."""

    __slots__ = ("_client",)

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def send(
        self,
        method: str,
        url: httpx.URL,
        *,
        headers: Mapping[str, str],
        content: bytes | None = None,
        timeout: float | None = None,
        read_timeout: float | None = None,
    ) -> httpx.Response:
        request = self._client.build_request(
            method, url, headers=headers, content=content,
            timeout=httpx.Timeout(**_timeouts(timeout, read_timeout)),
        )
        return await self._client.send(request, stream=True)

    async def aclose(self) -> None:
        """A caller's client is the caller's to close."""


def default_transport() -> httpx.AsyncBaseTransport:
    """A new pooled aiohttp transport that ignores proxy environment variables."""
    return AiohttpTransport(limits=_LIMITS, trust_env=False)


def default_client() -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` over :func:`default_transport` (for callers and benchmarks)."""
    return httpx.AsyncClient(
        transport=default_transport(), limits=_LIMITS, trust_env=False, timeout=None
    )


class ClientPool:
    """Senders by (event loop, origin); a caller's client serves every origin."""

    def __init__(
        self,
        shared: httpx.AsyncClient | None = None,
        factory: Callable[[], httpx.AsyncBaseTransport] = default_transport,
    ) -> None:
        self._shared = None if shared is None else ClientSender(shared)
        self._factory = factory
        self._senders: dict[tuple[int, str], Sender] = {}

    def get(self, origin: str) -> Sender:
        """The sender for ``origin`` (scheme://host:port) in the running loop."""
        if self._shared is not None:
            return self._shared
        key = (id(asyncio.get_running_loop()), origin)
        sender = self._senders.get(key)
        if sender is None:
            sender = self._senders[key] = TransportSender(self._factory())
        return sender

    async def aclose(self) -> None:
        """Close the running loop's transports (and forget the others').

        A transport bound to another loop cannot be closed from here; its loop
        owner (the router's sync runner) closes it there.
        """
        loop_id = id(asyncio.get_running_loop())
        mine = [s for (lid, _), s in self._senders.items() if lid == loop_id]
        self._senders = {k: s for k, s in self._senders.items() if k[0] != loop_id}
        for sender in mine:
            await sender.aclose()


def origin_of(url: str) -> str:
    """``scheme://host:port`` of ``url``: the key of its connection pool."""
    parsed = httpx.URL(url)
    return f"{parsed.scheme}://{parsed.host}:{parsed.port or ''}"
