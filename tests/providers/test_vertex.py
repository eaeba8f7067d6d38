"""vertex_ai/ end to end (providers/vertex.py): URLs, shared OAuth tokens, the Router path.

A throwaway service account (a fresh RSA key) whose ``token_uri`` points at
the fake's ``/token`` makes google-auth do its real JWT-bearer exchange over
loopback; the fake verifies the assertion (the account's key, audience, scope,
times) and then checks every request's bearer token.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from google.auth.exceptions import RefreshError

from providers.vertex import REFRESH_MARGIN, TokenSource, _loader, vertex_host
from router.errors import AuthenticationError, ConfigError
from router.testing.gemini import GeminiUpstream
from router.testing.process import spawn, terminate


def service_account(token_uri: str, trusted_by: GeminiUpstream | None = None,
                    email: str = "router@proj-1.iam.gserviceaccount.com") -> dict[str, Any]:
    """A new service account (its own RSA key) whose tokens come from ``token_uri``;
    ``trusted_by`` is the fake that will issue it tokens."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    account = {"type": "service_account", "project_id": "proj-1", "private_key_id": "k1",
               "private_key": pem, "client_email": email, "client_id": "1",
               "token_uri": token_uri}
    if trusted_by is not None:
        trusted_by.trust(account)
    return account


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
    creds = service_account(f"{fake.url}/token", fake)
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
    creds = service_account(f"{fake.url}/token", fake)
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
    creds = service_account(f"{fake.url}/token", fake)
    now = [0.0]
    source = TokenSource(_loader(creds), clock=lambda: now[0] + time.time())
    first = await source.token()
    assert await source.token() == first and fake.token_fetches == 1
    now[0] = fake.token_ttl - REFRESH_MARGIN + 1  # inside the margin, not yet expired
    second = await source.token()
    assert second != first and fake.token_fetches == 2


async def test_concurrent_waiters_cause_one_refresh(fake: GeminiUpstream) -> None:
    source = TokenSource(_loader(service_account(f"{fake.url}/token", fake)))
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


async def test_an_account_the_token_endpoint_does_not_trust_gets_no_token(
    fake: GeminiUpstream, make_router: Callable[..., Any]
) -> None:
    stranger = service_account(f"{fake.url}/token", email="other@proj-1.iam.gserviceaccount.com")
    router = make_router([vertex_dep(fake, stranger)], num_retries=0)
    with pytest.raises(AuthenticationError) as info:
        await router.aresponses(model="flash", input="x")
    assert "private_key" not in str(info.value) and "BEGIN" not in str(info.value)
    assert fake.token_fetches == 0 and fake.requests == []


def _jwt(header: dict[str, Any], claims: dict[str, Any], sign: Callable[[bytes], bytes]) -> str:
    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head = f"{part(json.dumps(header).encode())}.{part(json.dumps(claims).encode())}"
    return f"{head}.{part(sign(head.encode()))}"


@pytest.mark.parametrize(("change", "problem"), [
    ({}, None),
    ({"aud": "https://elsewhere/token"}, "audience"),
    ({"scope": ""}, "scope"),
    ({"exp": -10}, "short-lived"),  # expired
    ({"iat": 7200, "exp": 9000}, "short-lived"),  # from the future
    ({"exp": 7200}, "short-lived"),  # longer than an hour
    ({"iss": "other@proj-1.iam.gserviceaccount.com"}, "Signature"),  # not trusted
    ({"alg": "none"}, "Signature"),
    ({"forged": True}, "Signature"),  # claims changed after signing
])
async def test_the_token_endpoint_checks_assertions_as_google_does(
    fake: GeminiUpstream, change: dict[str, Any], problem: str | None
) -> None:
    account = service_account(f"{fake.url}/token", fake)
    key = serialization.load_pem_private_key(account["private_key"].encode(), None)
    assert isinstance(key, rsa.RSAPrivateKey)
    now = int(time.time())
    claims: dict[str, Any] = {"iss": account["client_email"], "aud": f"{fake.url}/token",
                              "scope": "https://www.googleapis.com/auth/cloud-platform",
                              "iat": now, "exp": now + 3600}
    for name in ("iat", "exp"):
        if name in change:
            claims[name] = now + change[name]
    claims.update({k: v for k, v in change.items()
                   if k in ("aud", "scope", "iss")})
    header = {"alg": change.get("alg", "RS256"), "typ": "JWT"}

    def sign(data: bytes) -> bytes:
        return key.sign(data, padding.PKCS1v15(), hashes.SHA256())

    assertion = _jwt(header, claims, sign)
    if change.get("forged"):
        assertion = _jwt(header, {**claims, "scope": "all"}, lambda _: sign(b"other"))
    async with httpx.AsyncClient() as client:
        answer = await client.post(f"{fake.url}/token", data={
            "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion})
    if problem is None:
        assert answer.status_code == 200 and answer.json()["access_token"]
    else:
        assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"
        assert problem in answer.json()["error_description"]


async def test_the_fake_in_its_own_process_trusts_the_accounts_it_is_given(
    tmp_path: Any,
) -> None:
    account = service_account("set below")
    path = tmp_path / "sa.json"
    path.write_text(json.dumps(account))
    proc, url = spawn("router.testing.gemini", ["--port", "0", "--trust", str(path)], 15)
    try:
        token = await TokenSource(_loader({**account, "token_uri": f"{url}/token"})).token()
        assert token.startswith("ya29.fake-")
        stranger = service_account(f"{url}/token", email="x@proj-1.iam.gserviceaccount.com")
        with pytest.raises(RefreshError, match="Invalid JWT Signature"):
            await TokenSource(_loader(stranger)).token()  # the provider maps it (above)
    finally:
        terminate(proc)
