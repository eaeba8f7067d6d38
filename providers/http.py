"""One pooled httpx client per upstream, and the default transport choice.

The router speaks httpx's API everywhere, but the default client runs over
the aiohttp transport (``httpx-aiohttp``): on this project's benchmark
(``benchmarks/transport.py``) httpx's own connection pool costs several
milliseconds of CPU per request at concurrency 32, an order of magnitude more
than the aiohttp transport under the same httpx API. A caller who needs
httpx's own transport (proxies, custom TLS, HTTP/2) passes ``http_client``.

Clients bind to the event loop they were created in, so the pool keys them by
loop as well as by upstream origin; the sync twins of the router run on a
loop of their own and get their own clients.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
from httpx_aiohttp import AiohttpTransport

__all__ = ["ClientPool", "default_client", "origin_of"]

_LIMITS = httpx.Limits(max_connections=1000, max_keepalive_connections=1000, keepalive_expiry=30)


def default_client() -> httpx.AsyncClient:
    """A new httpx client over the aiohttp transport, pooled, without env proxies."""
    return httpx.AsyncClient(
        transport=AiohttpTransport(limits=_LIMITS, trust_env=False),
        limits=_LIMITS,
        trust_env=False,
        timeout=None,
    )


class ClientPool:
    """Clients by (event loop, origin); a user-supplied client serves every origin."""

    def __init__(
        self,
        shared: httpx.AsyncClient | None = None,
        factory: Callable[[], httpx.AsyncClient] = default_client,
    ) -> None:
        self._shared = shared
        self._factory = factory
        self._clients: dict[tuple[int, str], httpx.AsyncClient] = {}

    def get(self, origin: str) -> httpx.AsyncClient:
        """The client for ``origin`` (scheme://host:port) in the running loop."""
        if self._shared is not None:
            return self._shared
        key = (id(asyncio.get_running_loop()), origin)
        client = self._clients.get(key)
        if client is None:
            client = self._clients[key] = self._factory()
        return client

    async def aclose(self) -> None:
        """Close the clients of the running loop (and forget the others').

        A client bound to another loop cannot be closed from here; its loop
        owner (the router's sync runner) closes it there.
        """
        loop_id = id(asyncio.get_running_loop())
        mine = [c for (lid, _), c in self._clients.items() if lid == loop_id]
        self._clients = {k: c for k, c in self._clients.items() if k[0] != loop_id}
        for client in mine:
            await client.aclose()


def origin_of(url: str) -> str:
    """``scheme://host:port`` of ``url``: the key of its connection pool."""
    parsed = httpx.URL(url)
    return f"{parsed.scheme}://{parsed.host}:{parsed.port or ''}"
