"""HTTPS over real loopback sockets: the default sender verifies, a caller's client may trust more.

The upstream here presents a certificate from a throwaway CA (``trustme``):
the default sender (certifi's CA bundle) must refuse it, and a caller's own
``httpx.AsyncClient`` that trusts that CA must get through the router.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator

import httpx
import pytest
import trustme
from aiohttp import web

from router.errors import ConnectionError
from router.router import Router
from tests.conftest import serve_routes

ANSWER = {
    "id": "resp_tls", "object": "response", "status": "completed", "model": "gpt-4o",
    "output": [{"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
                "content": [{"type": "output_text", "text": "over TLS", "annotations": []}]}],
}


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@contextlib.asynccontextmanager
async def tls_upstream(ca: trustme.CA) -> AsyncIterator[str]:
    """``POST /v1/responses`` over HTTPS with a certificate for 127.0.0.1 signed by ``ca``."""
    async def create(request: web.Request) -> web.StreamResponse:
        await request.read()
        return web.json_response(ANSWER)

    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_tls)
    async with serve_routes(tls=server_tls, v1__responses=create) as base:
        yield f"{base}/v1"


def model_list(base: str) -> list[dict[str, object]]:
    return [{"model_name": "gpt-4o", "litellm_params": {
        "model": "openai/gpt-4o", "api_base": base, "api_key": "sk-tls-test"}}]


async def test_the_default_sender_refuses_a_certificate_it_cannot_verify(ca: trustme.CA):
    async with tls_upstream(ca) as base:
        router = Router(model_list=model_list(base), num_retries=0)
        try:
            with pytest.raises(ConnectionError) as caught:
                await router.aresponses(model="gpt-4o", input="hi")
        finally:
            await router.aclose()

    assert "Certificate" in str(caught.value.__cause__)  # ClientConnectorCertificateError
    assert "sk-tls-test" not in str(caught.value)


async def test_a_callers_client_that_trusts_the_ca_gets_through(ca: trustme.CA):
    trusting = ssl.create_default_context()
    ca.configure_trust(trusting)
    async with tls_upstream(ca) as base, httpx.AsyncClient(verify=trusting) as client:
        router = Router(model_list=model_list(base), http_client=client)
        try:
            resp = await router.aresponses(model="gpt-4o", input="hi")
        finally:
            await router.aclose()

    assert resp.id == "resp_tls"
    assert resp.output_text == "over TLS"
