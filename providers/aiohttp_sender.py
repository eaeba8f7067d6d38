"""The default sender: one ``aiohttp.ClientSession`` per upstream, no httpx layers.

Why not httpx: a request's client CPU under concurrency is dominated by
httpx's own pool, and even over ``httpx_aiohttp.AiohttpTransport`` a large
part is building ``httpx.Request`` and ``httpx.Response`` objects and
translating between them and aiohttp's (``benchmarks/transport.py`` and
``benchmarks/overhead.py`` measure it; the README has the figures). This
sender hands the router's prepared URL, headers and body straight to
aiohttp and returns aiohttp's answer behind the small
:class:`providers.http.Answer` interface, which ``httpx.Response`` also
meets (so a caller's own ``httpx.AsyncClient`` plugs in unchanged).

aiohttp's exceptions become httpx's here, in one place
(:func:`httpx_error`), so :func:`router.errors.error_from_transport` sees
one family whatever the sender. The httpx exception's text never holds a
URL (its query may carry a key) and aiohttp's exception is not chained as
its cause (its repr holds the request's headers); it stays reachable as
``__context__`` for debugging, hidden from tracebacks. Cookies are never kept (an upstream's
cookie must not follow a request to another deployment), proxy environment
variables are ignored, redirects are not followed, and HTTPS verifies with
httpx's CA bundle (certifi), as the httpx-based senders do.
"""

from __future__ import annotations

import codecs
import ssl
from collections.abc import AsyncIterator, Mapping

import aiohttp
import httpx
from aiohttp import http_exceptions

__all__ = ["AiohttpAnswer", "AiohttpSender", "httpx_error"]

#: Connections per upstream origin; a request beyond them waits for one (pool timeout).
MAX_CONNECTIONS = 1000
#: Seconds an idle keep-alive connection is kept.
KEEPALIVE_SECONDS = 30.0

_NO_TIMEOUT = aiohttp.ClientTimeout(total=None, connect=None, sock_connect=None, sock_read=None)


#: aiohttp's failures and the httpx exceptions that say the same, most specific first.
_AS_HTTPX: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...],
                       type[httpx.RequestError]], ...] = (
    (aiohttp.ConnectionTimeoutError, httpx.ConnectTimeout),  # connecting, or a pooled one
    (TimeoutError, httpx.ReadTimeout),  # aiohttp's read timeouts are TimeoutErrors
    (aiohttp.ClientConnectorError, httpx.ConnectError),
    ((aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError,
      aiohttp.ClientResponseError), httpx.RemoteProtocolError),  # cut or malformed answer
    (aiohttp.InvalidURL, httpx.UnsupportedProtocol),
    (aiohttp.ClientConnectionError, httpx.ReadError),
)


def httpx_error(exc: aiohttp.ClientError | TimeoutError) -> httpx.RequestError:
    """The httpx exception that says what ``exc`` (aiohttp's) says, without any URL."""
    cls: type[httpx.RequestError] = httpx.TransportError
    if isinstance(exc.__cause__, http_exceptions.ContentEncodingError):
        cls = httpx.DecodingError  # a compressed body that does not decompress
    else:
        cls = next((to for frm, to in _AS_HTTPX if isinstance(exc, frm)), cls)
    return cls(_describe(exc))


def _describe(exc: BaseException) -> str:
    """``exc``'s class and what it says, unless what it says may hold a URL."""
    name = type(exc).__name__
    if isinstance(exc, aiohttp.ClientResponseError | aiohttp.InvalidURL):
        return name  # their text is (or ends with) the URL, query and all
    if isinstance(exc, aiohttp.ClientConnectorError):
        why = exc.os_error.strerror or str(exc.os_error) or type(exc.os_error).__name__
        return f"{name}: cannot connect to {exc.host}:{exc.port}: {why}"
    text = str(exc).replace("\n", " ").strip()
    return f"{name}: {text}" if text else name


def _timeout(timeout: float | None, read: float | None) -> aiohttp.ClientTimeout:
    if timeout is None and read is None:
        return _NO_TIMEOUT
    return aiohttp.ClientTimeout(
        total=None, connect=timeout, sock_connect=timeout, sock_read=read or timeout
    )


class AiohttpAnswer:
    """An upstream's answer as aiohttp received it; the body is read on demand.

    Meets :class:`providers.http.Answer`. ``headers`` are aiohttp's
    case-insensitive headers; the body is decompressed as it is read.
    """

    __slots__ = ("_body", "_response")

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self._body: bytes | None = None

    @property
    def status_code(self) -> int:
        return self._response.status

    @property
    def headers(self) -> Mapping[str, str]:
        return self._response.headers

    @property
    def content(self) -> bytes:
        """The body, once :meth:`aread` has read it."""
        if self._body is None:
            raise httpx.ResponseNotRead()
        return self._body

    @property
    def text(self) -> str:
        """The body decoded by its declared charset (UTF-8 when it names no text encoding)."""
        content = self.content
        try:
            return content.decode(self._response.get_encoding(), errors="replace")
        except (LookupError, RuntimeError):
            return content.decode("utf-8", errors="replace")

    async def aread(self) -> bytes:
        if self._body is None:
            try:
                self._body = await self._response.read()
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise httpx_error(exc) from None
        return self._body

    async def aiter_text(self) -> AsyncIterator[str]:
        """The body as text, chunk by chunk as it arrives (UTF-8, as SSE always is)."""
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        try:
            async for chunk in self._response.content.iter_any():
                text = decoder.decode(chunk)
                if text:
                    yield text
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise httpx_error(exc) from None
        tail = decoder.decode(b"", final=True)
        if tail:
            yield tail

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        """The body's bytes, chunk by chunk as they arrive."""
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise httpx_error(exc) from None

    async def aclose(self) -> None:
        """Give the connection back (kept alive only when the body was read to its end)."""
        self._response.release()
        try:
            await self._response.wait_for_close()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise httpx_error(exc) from None


class AiohttpSender:
    """Sends over one pooled ``aiohttp.ClientSession``, bound to the running event loop."""

    __slots__ = ("_session",)

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        connector = aiohttp.TCPConnector(
            limit=MAX_CONNECTIONS, limit_per_host=0, keepalive_timeout=KEEPALIVE_SECONDS,
            ssl=ssl_context if ssl_context is not None else True,
        )
        self._session = aiohttp.ClientSession(
            connector=connector, cookie_jar=aiohttp.DummyCookieJar(), trust_env=False,
            timeout=_NO_TIMEOUT, raise_for_status=False,
        )

    async def send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        content: bytes | None = None,
        timeout: float | None = None,
        read_timeout: float | None = None,
    ) -> AiohttpAnswer:
        """Send the request; the answer's body is left to read (see ``providers.http.Sender``)."""
        try:
            response = await self._session.request(
                method, url, headers=headers, data=content, allow_redirects=False,
                timeout=_timeout(timeout, read_timeout),
            )
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise httpx_error(exc) from None
        return AiohttpAnswer(response)

    async def aclose(self) -> None:
        await self._session.close()
