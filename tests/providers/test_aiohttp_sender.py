"""The default sender over real loopback sockets: answers, bodies, errors, pooling.

Each test serves a small aiohttp app on 127.0.0.1 that does what the test
needs (chunks cut mid-character, cookies, redirects, a cut body, a stall),
since these are the transport's own behaviours, not the Responses API's.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import httpx
import pytest
from aiohttp import http_exceptions, web
from httpx_sse import EventSource

from providers.aiohttp_sender import AiohttpSender, httpx_error
from providers.http import ClientPool
from providers.responses_http import sse_messages
from router import errors
from tests.conftest import sender_connections_in_use
from tests.conftest import serve_routes as serve

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@contextlib.asynccontextmanager
async def sender() -> AsyncIterator[AiohttpSender]:
    s = AiohttpSender()
    try:
        yield s
    finally:
        await s.aclose()


async def echo(request: web.Request) -> web.StreamResponse:
    body = await request.read()
    return web.json_response(
        {"method": request.method, "query": dict(request.query), "body": body.decode(),
         "authorization": request.headers.get("authorization"),
         "cookie": request.headers.get("cookie"), "peer": request.transport.get_extra_info(
             "peername")[1] if request.transport else None},
        headers={"X-Request-Id": "req_1", "Set-Cookie": "affinity=east; Path=/"},
    )


async def test_sends_method_url_headers_and_body_and_reads_the_answer():
    async with serve(echo=echo) as base, sender() as s:
        answer = await s.send(
            "POST", f"{base}/echo?api-version=v1", headers={"authorization": "Bearer k"},
            content=b'{"input": "hi"}',
        )
        assert answer.status_code == 200
        assert answer.headers["x-request-id"] == "req_1"  # any case
        assert answer.headers["X-REQUEST-ID"] == "req_1"
        body = await answer.aread()
        await answer.aclose()

    assert answer.content == body
    got = httpx.Response(200, content=body).json()
    assert got["method"] == "POST"
    assert got["query"] == {"api-version": "v1"}
    assert got["body"] == '{"input": "hi"}'
    assert got["authorization"] == "Bearer k"
    assert answer.text == body.decode()


async def test_content_before_reading_is_an_error():
    async with serve(echo=echo) as base, sender() as s:
        answer = await s.send("GET", f"{base}/echo", headers={})
        with pytest.raises(httpx.ResponseNotRead):
            _ = answer.content
        await answer.aclose()


async def test_cookies_are_never_kept_between_requests():
    async with serve(echo=echo) as base, sender() as s:
        # by name: aiohttp's usual cookie jar ignores cookies set by an IP address
        named = base.replace("127.0.0.1", "localhost")
        for _ in range(2):
            answer = await s.send("GET", f"{named}/echo", headers={})
            await answer.aread()
            await answer.aclose()
        assert answer.headers["set-cookie"].startswith("affinity=")

    assert httpx.Response(200, content=answer.content).json()["cookie"] is None


async def test_a_connection_read_to_its_end_is_reused_and_given_back():
    async with serve(echo=echo) as base, sender() as s:
        peers = []
        for _ in range(3):
            answer = await s.send("GET", f"{base}/echo", headers={})
            peers.append(httpx.Response(200, content=await answer.aread()).json()["peer"])
            await answer.aclose()
            assert sender_connections_in_use(s) == 0

    assert len(set(peers)) == 1


async def test_a_body_left_unread_closes_its_connection():
    async def big(request: web.Request) -> web.StreamResponse:
        answer = web.StreamResponse()
        await answer.prepare(request)
        for _ in range(64):
            await answer.write(b"x" * 65536)
        return answer

    async with serve(echo=echo, big=big) as base, sender() as s:
        first = await s.send("GET", f"{base}/big", headers={})
        assert sender_connections_in_use(s) == 1
        await first.aclose()
        assert sender_connections_in_use(s) == 0
        after = await s.send("GET", f"{base}/echo", headers={})
        await after.aread()
        await after.aclose()

    assert after.status_code == 200


async def test_redirects_are_returned_not_followed():
    async def moved(request: web.Request) -> web.StreamResponse:
        raise web.HTTPTemporaryRedirect("/echo")

    async with serve(echo=echo, moved=moved) as base, sender() as s:
        answer = await s.send("POST", f"{base}/moved", headers={}, content=b"{}")
        await answer.aread()
        await answer.aclose()

    assert answer.status_code == 307
    assert answer.headers["location"] == "/echo"


async def test_proxy_environment_variables_are_ignored(monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:9")
    async with serve(echo=echo) as base, sender() as s:
        answer = await s.send("GET", f"{base}/echo", headers={})
        await answer.aread()
        await answer.aclose()

    assert answer.status_code == 200


async def test_text_chunks_cut_inside_a_character_decode_whole():
    async def split(request: web.Request) -> web.StreamResponse:
        answer = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await answer.prepare(request)
        data = "data: {\"delta\": \"caf\u00e9 \u2603\"}\n\n".encode()
        cut = data.index("\u00e9".encode()) + 1  # between the two bytes of é
        for part in (data[:cut], data[cut:]):
            await answer.write(part)
            await asyncio.sleep(0.01)  # separate reads
        return answer

    async with serve(split=split) as base, sender() as s:
        answer = await s.send("GET", f"{base}/split", headers={})
        text = "".join([t async for t in answer.aiter_text()])
        await answer.aclose()

    assert text == "data: {\"delta\": \"caf\u00e9 \u2603\"}\n\n"


async def test_httpx_sse_parses_events_from_the_sender_answer():
    """``sse_messages`` hands httpx-sse an :class:`AiohttpAnswer`: it must read only
    ``headers`` and ``aiter_text()`` (pins the duck typing across httpx-sse versions)."""
    async def sse(request: web.Request) -> web.StreamResponse:
        answer = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await answer.prepare(request)
        await answer.write(b"event: a\r\ndata: {\"n\": 1}\r\n\r\ndata: {\"n\": 2}\n\n")
        return answer

    async with serve(sse=sse) as base, sender() as s:
        answer = await s.send("GET", f"{base}/sse", headers={})
        got = [(e.event, e.data) async for e in sse_messages(answer)]
        await answer.aclose()

    assert got == [("a", '{"n": 1}'), ("message", '{"n": 2}')]


async def test_a_stream_that_is_not_sse_is_refused_by_httpx_sse():
    async with serve(echo=echo) as base, sender() as s:
        answer = await s.send("GET", f"{base}/echo", headers={})
        with pytest.raises(httpx.TransportError):  # httpx_sse.SSEError
            async for _ in EventSource(answer).aiter_sse():  # type: ignore[arg-type]
                pass
        await answer.aclose()


# --------------------------------------------------------------------------- failures


async def test_a_refused_connection_is_a_connect_error():
    async with serve() as base:
        pass  # the port is free again
    async with sender() as s:
        with pytest.raises(httpx.ConnectError) as caught:
            await s.send("GET", f"{base}/echo", headers={})

    assert caught.value.__cause__ is None  # aiohttp's repr holds the request headers
    assert isinstance(caught.value.__context__, aiohttp.ClientConnectorError)
    assert str(caught.value).startswith("ClientConnectorError: cannot connect to 127.0.0.1:")
    assert type(errors.error_from_transport(caught.value)) is errors.ConnectionError


async def test_no_answer_within_the_read_timeout_is_a_read_timeout():
    async def stall(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(5)
        return web.Response()

    async with serve(stall=stall) as base, sender() as s:
        with pytest.raises(httpx.ReadTimeout) as caught:
            await s.send("GET", f"{base}/stall", headers={}, timeout=5, read_timeout=0.1)

    assert type(errors.error_from_transport(caught.value)) is errors.TimeoutError


async def _cut(request: web.Request) -> web.StreamResponse:
    answer = web.StreamResponse(headers={"content-length": "1000"})
    await answer.prepare(request)
    await answer.write(b"{\"partial\": ")
    assert request.transport is not None
    request.transport.close()
    return answer


async def _bad_gzip_body(request: web.Request) -> web.StreamResponse:
    return web.Response(body=b"not gzip", headers={"content-encoding": "gzip"})


@pytest.mark.parametrize(("handler", "as_httpx", "as_router"), [
    (_cut, httpx.RemoteProtocolError, errors.ConnectionError),  # cut short
    (_bad_gzip_body, httpx.DecodingError, errors.MalformedResponseError),  # does not decompress
])
async def test_a_body_that_fails_while_read(
    handler: Handler, as_httpx: type[Exception], as_router: type[Exception]
):
    async with serve(body=handler) as base, sender() as s:
        answer = await s.send("GET", f"{base}/body", headers={})
        with pytest.raises(as_httpx) as caught:
            await answer.aread()
        await answer.aclose()

    assert type(errors.error_from_transport(caught.value)) is as_router  # type: ignore[arg-type]


async def test_a_server_that_closes_before_answering_is_a_remote_protocol_error():
    async def hang_up(request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        request.transport.close()
        await asyncio.sleep(0.1)
        return web.Response()

    async with serve(hang_up=hang_up) as base, sender() as s:
        with pytest.raises(httpx.RemoteProtocolError):
            await s.send("GET", f"{base}/hang_up", headers={})


def _bad_status_line() -> aiohttp.ClientResponseError:
    info: Any = type("Info", (), {"real_url": "http://h/x?api-key=SECRET"})()
    return aiohttp.ClientResponseError(info, (), status=400, message="Bad status line")


def _bad_gzip() -> aiohttp.ClientPayloadError:
    error = aiohttp.ClientPayloadError("Can not decode content-encoding: gzip")
    error.__cause__ = http_exceptions.ContentEncodingError("gzip")
    return error


def _connector_error() -> aiohttp.ClientConnectorError:
    key: Any = type("Key", (), {"host": "h", "port": 1, "ssl": False})()
    return aiohttp.ClientConnectorError(key, OSError(111, "refused"))


@pytest.mark.parametrize(("raised", "as_httpx", "as_router"), [
    (aiohttp.ConnectionTimeoutError(), httpx.ConnectTimeout, errors.TimeoutError),
    (aiohttp.SocketTimeoutError(), httpx.ReadTimeout, errors.TimeoutError),
    (aiohttp.ServerTimeoutError(), httpx.ReadTimeout, errors.TimeoutError),
    (_connector_error(), httpx.ConnectError, errors.ConnectionError),
    (aiohttp.ServerDisconnectedError(), httpx.RemoteProtocolError, errors.ConnectionError),
    (aiohttp.ClientPayloadError("cut"), httpx.RemoteProtocolError, errors.ConnectionError),
    (aiohttp.InvalidURL("ftp://x"), httpx.UnsupportedProtocol, errors.ConnectionError),
    (aiohttp.ClientOSError(104, "reset"), httpx.ReadError, errors.ConnectionError),
    (aiohttp.ClientConnectionError("gone"), httpx.ReadError, errors.ConnectionError),
    (aiohttp.ClientError("other"), httpx.TransportError, errors.ConnectionError),
    (_bad_status_line(), httpx.RemoteProtocolError, errors.ConnectionError),
    (_bad_gzip(), httpx.DecodingError, errors.MalformedResponseError),
])
def test_every_aiohttp_failure_maps_to_the_most_specific_httpx_and_router_error(
    raised: Exception, as_httpx: type[Exception], as_router: type[Exception]
):
    mapped = httpx_error(raised)  # type: ignore[arg-type]
    mapped.__context__ = raised  # as ``raise ... from None`` inside ``except`` sets it
    mapped.__suppress_context__ = True

    assert type(mapped) is as_httpx
    assert str(mapped)  # never an empty message
    assert "SECRET" not in str(mapped)  # no URL (a query may carry a key)
    assert type(errors.error_from_transport(mapped)) is as_router


async def test_a_malformed_status_line_names_no_url():
    async def garbage(request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        request.transport.write(b"HTTP/1.1 2x0 WHAT\r\n\r\n")
        request.transport.close()
        await asyncio.sleep(0.1)
        return web.Response()

    key = "-".join(["sk", "query", "key"])  # built: a traceback shows source lines
    token = "-".join(["sk", "header", "key"])
    async with serve(garbage=garbage) as base, sender() as s:
        with pytest.raises(httpx.RemoteProtocolError) as caught:
            await s.send("GET", f"{base}/garbage?api-key={key}",
                         headers={"authorization": f"Bearer {token}"})

    shown = "".join(traceback.format_exception(caught.value))
    assert key not in shown and token not in shown  # aiohttp's repr has both


# --------------------------------------------------------------------------- the pool


async def test_the_pool_gives_one_sender_per_origin_and_tls_only_to_https():
    pool = ClientPool()
    try:
        plain = pool.get("http://a:80")
        assert pool.get("http://a:80") is plain
        secure = pool.get("https://b:443")
        assert secure is not plain
        assert isinstance(pool._tls, ssl.SSLContext)
        assert pool._tls.verify_mode == ssl.CERT_REQUIRED
        assert pool.get("https://c:443") is not secure
        assert pool._tls_context() is pool._tls  # built once
    finally:
        await pool.aclose()
    assert pool._senders == {}


async def test_text_decodes_by_the_declared_charset_and_survives_a_non_text_one():
    async def latin(request: web.Request) -> web.StreamResponse:
        return web.Response(body="café".encode("latin-1"),
                            headers={"content-type": "text/plain; charset=latin-1"})

    async def bogus(request: web.Request) -> web.StreamResponse:
        # aiohttp itself falls back to UTF-8 for an unknown name; base64 is a
        # codec but not a text encoding, so bytes.decode raises LookupError
        return web.Response(body="café".encode(),
                            headers={"content-type": "text/plain; charset=base64"})

    async with serve(latin=latin, bogus=bogus) as base, sender() as s:
        texts = []
        for name in ("latin", "bogus"):
            answer = await s.send("GET", f"{base}/{name}", headers={})
            await answer.aread()
            await answer.aclose()
            texts.append(answer.text)

    assert texts == ["café", "café"]


def test_senders_of_a_loop_closed_without_aclose_are_dropped():
    pool = ClientPool()

    async def use() -> int:
        pool.get("http://a:80")
        return id(asyncio.get_running_loop())

    first = asyncio.run(use())  # no pool.aclose(): the loop is gone, its sender stays
    assert [k[0] for k in pool._senders] == [first]
    second = asyncio.run(use())
    assert [k[0] for k in pool._senders] == [second]  # the dead loop's sender was dropped

    async def close() -> None:
        pool.get("http://a:80")
        await pool.aclose()

    asyncio.run(close())
    assert pool._senders == {} and pool._loops == {}
