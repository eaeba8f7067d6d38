"""One pooled connection per upstream, and the default way requests are sent.

The router speaks httpx's types at its edges (a caller's
``httpx.AsyncClient``, httpx's exceptions). How a request is *sent* is a
:class:`Sender`, and what comes back is an :class:`Answer` (which
``httpx.Response`` meets):

* by default an :class:`providers.aiohttp_sender.AiohttpSender` per
  upstream origin: one ``aiohttp.ClientSession`` handed the prepared URL,
  headers and body, with no httpx objects built per request (httpx's own
  pool, and to a lesser degree its request and response objects, dominate
  a request's client CPU under concurrency: see ``benchmarks/transport.py``
  and the README);
* a caller's own ``httpx.AsyncClient`` (proxies, custom TLS, HTTP/2, event
  hooks) is honoured as given: every request goes through its ``send``.

Senders bind to the event loop they were created in, so the pool keys
them by loop as well as by upstream origin; the sync twins of the router run
on a loop of their own and get their own.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Protocol

import httpx

from providers.aiohttp_sender import KEEPALIVE_SECONDS, MAX_CONNECTIONS, AiohttpSender

__all__ = ["Answer", "ClientPool", "ClientSender", "Sender", "default_client", "origin_of"]

_LIMITS = httpx.Limits(
    max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_CONNECTIONS,
    keepalive_expiry=KEEPALIVE_SECONDS,
)


class Answer(Protocol):
    """An upstream's answer, its body still to read.

    ``httpx.Response`` meets it (so :class:`ClientSender` returns httpx's own),
    and so does :class:`providers.aiohttp_sender.AiohttpAnswer`; mypy checks
    both through :meth:`ClientPool.get`'s return type.
    """

    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]:
        """Case-insensitive."""
        ...

    @property
    def content(self) -> bytes:
        """The body, once :meth:`aread` has read it."""
        ...

    @property
    def text(self) -> str: ...

    async def aread(self) -> bytes: ...

    def aiter_text(self) -> AsyncIterator[str]:
        """The body as text, as it arrives (what ``httpx_sse.EventSource`` reads)."""
        ...

    def aiter_bytes(self) -> AsyncIterator[bytes]:
        """The body as bytes, as it arrives (binary stream framings such as AWS event-stream)."""
        ...

    async def aclose(self) -> None: ...


class Sender(Protocol):
    """Opens one HTTP exchange; the caller reads the answer's body and closes it."""

    async def send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        content: bytes | None = None,
        timeout: float | None = None,
        read_timeout: float | None = None,
    ) -> Answer:
        """Send the request (``url`` holds the whole query); the answer's body is left to read.

        ``timeout`` bounds connecting and waiting for a pooled connection
        (and writing, where the sender can: httpx can, aiohttp cannot);
        ``read_timeout`` (else ``timeout``) bounds each read. Transport
        failures raise httpx's exceptions.
        """
        ...

    async def aclose(self) -> None: ...


class ClientSender:
    """Sends through a caller's ``httpx.AsyncClient`` (its defaults, hooks and transport apply)."""

    __slots__ = ("_client",)

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        content: bytes | None = None,
        timeout: float | None = None,
        read_timeout: float | None = None,
    ) -> httpx.Response:
        request = self._client.build_request(
            method, url, headers=headers, content=content,
            timeout=httpx.Timeout(
                connect=timeout, read=read_timeout or timeout, write=timeout, pool=timeout
            ),
        )
        return await self._client.send(request, stream=True)

    async def aclose(self) -> None:
        """A caller's client is the caller's to close."""


def default_client() -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` over ``httpx_aiohttp``'s transport, without proxy variables.

    The fastest way found to keep httpx's own API (hooks, auth, proxies) and
    still get aiohttp's connection pool: pass it as ``Router(http_client=...)``
    when those matter more than the last third of the transport's CPU.
    """
    from httpx_aiohttp import AiohttpTransport  # only for callers who ask for this client

    return httpx.AsyncClient(
        transport=AiohttpTransport(limits=_LIMITS, trust_env=False), limits=_LIMITS,
        trust_env=False, timeout=None,
    )


class ClientPool:
    """Senders by (event loop, origin); a caller's client serves every origin."""

    def __init__(self, shared: httpx.AsyncClient | None = None) -> None:
        self._shared = None if shared is None else ClientSender(shared)
        self._senders: dict[tuple[int, str], Sender] = {}
        self._loops: dict[int, asyncio.AbstractEventLoop] = {}
        self._tls: ssl.SSLContext | None = None
        self._listener: Callable[[str, Mapping[str, str]], None] | None = None

    def listen(self, listener: Callable[[str, Mapping[str, str]], None] | None) -> None:
        """Give ``listener`` the headers of every answer to a create or stream call,
        with the deployment's id (the router's rate-limit headroom reads them)."""
        self._listener = listener

    def heard(self, deployment_id: str, headers: Mapping[str, str]) -> None:
        """Providers call this with each answer's headers, before reading its body."""
        listener = self._listener
        if listener is not None:
            listener(deployment_id, headers)

    def get(self, origin: str) -> Sender:
        """The sender for ``origin`` (scheme://host:port) in the running loop."""
        if self._shared is not None:
            return self._shared
        loop = asyncio.get_running_loop()
        key = (id(loop), origin)
        sender = self._senders.get(key)
        if sender is None:
            self._forget_closed_loops()
            self._loops[id(loop)] = loop
            tls = self._tls_context() if origin.startswith("https:") else None
            sender = self._senders[key] = AiohttpSender(tls)
        return sender

    def _forget_closed_loops(self) -> None:
        """Drop the senders of loops closed without :meth:`aclose` (e.g. each ``asyncio.run``).

        Their sockets can no longer be closed politely; dropping them lets
        them be collected instead of piling up (and a new loop reusing a
        closed one's id never gets its dead sender).
        """
        closed = {lid for lid, loop in self._loops.items() if loop.is_closed()}
        if closed:
            self._senders = {k: s for k, s in self._senders.items() if k[0] not in closed}
            self._loops = {lid: lp for lid, lp in self._loops.items() if lid not in closed}

    def _tls_context(self) -> ssl.SSLContext:
        """httpx's verifying context (certifi's CA bundle), built once per pool."""
        if self._tls is None:
            self._tls = httpx.create_ssl_context(trust_env=False)
        return self._tls

    async def aclose(self) -> None:
        """Close the running loop's senders (and forget the others').

        A sender bound to another loop cannot be closed from here; its loop
        owner (the router's sync runner) closes it there.
        """
        loop_id = id(asyncio.get_running_loop())
        mine = [s for (lid, _), s in self._senders.items() if lid == loop_id]
        self._senders = {k: s for k, s in self._senders.items() if k[0] != loop_id}
        self._loops.pop(loop_id, None)
        for sender in mine:
            await sender.aclose()


def origin_of(url: str) -> str:
    """``scheme://host:port`` of ``url``: the key of its connection pool."""
    parsed = httpx.URL(url)
    return f"{parsed.scheme}://{parsed.host}:{parsed.port or ''}"
