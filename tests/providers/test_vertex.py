"""vertex_ai/ end to end (providers/vertex.py): URLs, shared OAuth tokens, the Router path.

A throwaway service account (a fresh RSA key) whose ``token_uri`` points at
the fake's ``/token`` makes google-auth do its real JWT-bearer exchange over
loopback; the fake then checks every request's bearer token.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from providers.vertex import REFRESH_MARGIN, TokenSource, _loader, vertex_host
from router.errors import AuthenticationError, ConfigError
from router.testing.gemini import GeminiUpstream


def service_account(token_uri: str) -> dict[str, Any]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    return {"type": "service_account", "project_id": "proj-1", "private_key_id": "k1",
            "private_key": pem, "client_email": "router@proj-1.iam.gserviceaccount.com",
            "client_id": "1", "token_uri": token_uri}


@pytest.fixture
async def fake() -> AsyncIterator[GeminiUpstream]:
    async with GeminiUpstream("vx") as up:
        yield up


def vertex_dep(up: GeminiUpstream, creds: dict[str, Any], *, name: str = "vx",
               location: str = "europe-west4", **params: Any) -> dict[str, Any]:
    return {"model_name": "flash",
            "litellm_params": {"model": "vertex_ai/gemini-2.5-flash", "api_base": up.url,
                               "vertex_location": location,
                               "vertex_credentials": json.dumps(creds), **params},
            "model_info": {"id": name}}


def test_hosts() -> None:
    assert vertex_host("us-central1") == "https://us-central1-aiplatform.googleapis.com"
    assert vertex_host("global") == "https://aiplatform.googleapis.com"


async def test_create_and_stream_with_a_shared_token(
    fake: GeminiUpstream, make_router: Callable[..., Any]
) -> None:
    creds = service_account(f"{fake.url}/token")
    router = make_router([vertex_dep(fake, creds, name="a"),
                          vertex_dep(fake, creds, name="b", location="us-east1")])
    answers = await asyncio.gather(
        *(router.aresponses(model="flash", input=f"q{i}") for i in range(8)))
    assert sorted(a.output_text for a in answers) == [f"[vx] echo: q{i}" for i in range(8)]
    stream = await router.aresponses(model="flash", input="streamed", stream=True)
    events = [event async for event in stream]
    assert events[-1].type == "response.completed"
    assert fake.token_fetches == 1  # nine requests, two deployments, one token
    paths = {r["headers"]["Authorization"] for r in fake.requests}
    assert len(paths) == 1
    assert {r["model"] for r in fake.requests} == {"gemini-2.5-flash"}


async def test_project_comes_from_the_credentials_or_config(
    fake: GeminiUpstream, make_router: Callable[..., Any]
) -> None:
    creds = service_account(f"{fake.url}/token")
    router = make_router([vertex_dep(fake, creds, vertex_project="other")])
    await router.aresponses(model="flash", input="x")
    assert fake.requests[-1]["model"] == "gemini-2.5-flash"
    with pytest.raises(ConfigError, match="vertex_project"):
        make_router([vertex_dep(fake, {k: v for k, v in creds.items() if k != "project_id"})])


def test_bad_credentials_are_a_config_error(make_router: Callable[..., Any]) -> None:
    params = {"model": "vertex_ai/gemini-2.5-flash", "vertex_project": "p",
              "vertex_credentials": "/nonexistent/sa.json"}
    with pytest.raises(ConfigError, match="vertex_credentials") as info:
        make_router([{"model_name": "m", "litellm_params": params}])
    assert "nonexistent" not in str(info.value)


async def test_expiring_token_is_refreshed_before_use(fake: GeminiUpstream) -> None:
    creds = service_account(f"{fake.url}/token")
    now = [0.0]
    source = TokenSource(_loader(creds), clock=lambda: now[0] + time.time())
    first = await source.token()
    assert await source.token() == first and fake.token_fetches == 1
    now[0] = fake.token_ttl - REFRESH_MARGIN + 1  # inside the margin, not yet expired
    second = await source.token()
    assert second != first and fake.token_fetches == 2


async def test_concurrent_waiters_cause_one_refresh(fake: GeminiUpstream) -> None:
    source = TokenSource(_loader(service_account(f"{fake.url}/token")))
    tokens = await asyncio.gather(*(source.token() for _ in range(20)))
    assert len(set(tokens)) == 1 and fake.token_fetches == 1 and source.fetches == 1


async def test_a_wrong_token_is_refused_by_the_fake(
    fake: GeminiUpstream, make_router: Callable[..., Any]
) -> None:
    creds = service_account(f"{fake.url}/nowhere")
    router = make_router([vertex_dep(fake, creds)], num_retries=0)
    with pytest.raises(AuthenticationError, match="access token"):
        await router.aresponses(model="flash", input="x")
    assert fake.requests == []
