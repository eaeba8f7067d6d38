"""providers/sigv4.py signs exactly as botocore's SigV4Auth, on generated requests."""

from __future__ import annotations

import datetime
import random
from urllib.parse import quote

import botocore.auth
import pytest
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from providers.sigv4 import SigningKeys, SigV4Signer

MODELS = (
    "anthropic.claude-3-haiku-20240307-v1:0",
    "us.anthropic.claude-3-7-sonnet-20250219-v1:0",
    "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.meta.llama3-70b",
    "amazon.nova-pro-v1:0",
    "model with spaces~and-tilde",
)
HOSTS = ("https://bedrock-runtime.{region}.amazonaws.com", "http://127.0.0.1:8123",
         "https://vpce.example.com:443", "http://localhost:80")


def _botocore(url: str, headers: dict[str, str], body: bytes, creds: Credentials,
              region: str, when: int, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    moment = datetime.datetime.fromtimestamp(when, datetime.UTC).replace(tzinfo=None)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: moment)
    request = AWSRequest(method="POST", url=url, headers=dict(headers), data=body)
    botocore.auth.SigV4Auth(creds, "bedrock", region).add_auth(request)
    return dict(request.headers.items())


@pytest.mark.parametrize("seed", range(8))
def test_same_signature_as_botocore(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(seed)
    signer_by_region: dict[str, SigV4Signer] = {}
    for i in range(60):
        region = rng.choice(["us-east-1", "eu-west-3", "ap-south-1"])
        model = rng.choice(MODELS)
        url = (rng.choice(HOSTS).format(region=region) + "/model/" + quote(model, safe=":")
               + rng.choice(["/converse", "/converse-stream"]))
        body = rng.randbytes(rng.choice([rng.randint(0, 400), rng.randint(400, 1500)]))
        headers = {"content-type": "application/json",
                   "accept": rng.choice(["application/json", "application/vnd.amazon.eventstream"]),
                   "X-Custom": "  spaced   value "}
        if rng.random() < 0.3:
            headers["user-agent"] = "not signed"
        token = rng.choice([None, "session/token+=="])
        creds = Credentials(f"AKID{i}", f"secret/{seed}/{i}", token)
        when = rng.randint(1_600_000_000, 1_900_000_000)
        expected = _botocore(url, headers, body, creds, region, when, monkeypatch)
        signer = signer_by_region.setdefault(region, SigV4Signer(region, "bedrock"))
        got = signer.sign(url, headers, body, access_key=creds.access_key,
                          secret_key=creds.secret_key, token=token, now=when)
        assert got == expected, url


def test_a_repeated_request_form_still_signs_as_botocore(monkeypatch: pytest.MonkeyPatch) -> None:
    """Same URL and headers (the cached canonical form), new body, moment, keys and token."""
    rng = random.Random(7)
    signer = SigV4Signer("us-east-1", "bedrock")
    url = "https://bedrock-runtime.us-east-1.amazonaws.com/model/amazon.nova-pro-v1:0/converse"
    headers = {"content-type": "application/json", "Accept": "application/json"}
    for i in range(40):
        body = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 200)))
        token = rng.choice([None, "t1", "t2"])
        creds = Credentials(f"AKID{i % 3}", f"secret{i % 2}", token)
        when = 1_700_000_000 + rng.randint(0, 3) * 86_400 + rng.randint(0, 2)
        expected = _botocore(url, headers, body, creds, "us-east-1", when, monkeypatch)
        assert signer.sign(url, headers, body, access_key=creds.access_key,
                           secret_key=creds.secret_key, token=token, now=when) == expected
    assert headers == {"content-type": "application/json", "Accept": "application/json"}
    assert len(signer._forms) == 3  # one form per token


def test_signing_keys_are_cached_and_bounded() -> None:
    keys = SigningKeys()
    first = keys.get("s", "20261203", "us-east-1", "bedrock")
    assert keys.get("s", "20261203", "us-east-1", "bedrock") is first
    assert keys.get("s", "20261204", "us-east-1", "bedrock") != first
    for day in range(100):
        keys.get("s", f"2026{day:04d}", "us-east-1", "bedrock")
    assert len(keys._keys) <= 64


def test_a_stale_authorization_is_replaced() -> None:
    signer = SigV4Signer("us-east-1", "bedrock")
    url = "https://bedrock-runtime.us-east-1.amazonaws.com/model/m/converse"
    once = signer.sign(url, {"content-type": "application/json"}, b"{}", access_key="A",
                       secret_key="S", now=1_700_000_000)
    again = signer.sign(url, once, b"{}", access_key="A", secret_key="S", now=1_700_000_001)
    assert again["X-Amz-Date"] == "20231114T221321Z"
    assert again["Authorization"] != once["Authorization"]
    assert list(again).count("Authorization") == 1


def test_no_secret_in_a_signers_repr() -> None:
    """The caches hold the secret key, derived keys and session tokens; reprs show none."""
    signer = SigV4Signer("us-east-1", "bedrock")
    signer.sign("https://bedrock-runtime.us-east-1.amazonaws.com/model/m/converse",
                {"content-type": "application/json"}, b"{}", access_key="AKIDREPR",
                secret_key="secret-in-repr", token="token-in-repr", now=1_700_000_000)
    shown = repr(signer) + repr(signer.keys) + str(signer) + repr(signer._day)
    assert "secret-in-repr" not in shown and "token-in-repr" not in shown
    assert signer.keys.get("secret-in-repr", "20231114", "us-east-1", "bedrock").hex() \
        not in shown
    assert shown.startswith("SigV4Signer(region='us-east-1', service='bedrock')")


def test_without_cpythons_sha256_openssls_signs(monkeypatch: pytest.MonkeyPatch) -> None:
    """A build without CPython's own SHA-256 (FIPS) signs with OpenSSL's alone, as
    botocore does."""
    import hashlib

    from providers import sigv4

    def missing(name: str) -> object:
        raise ImportError(name)

    assert sigv4.sha256 is not hashlib.sha256  # this build has CPython's own
    with monkeypatch.context() as patched:
        patched.setattr(sigv4, "import_module", missing)
        fallback = sigv4._builtin_sha256()
    assert fallback is hashlib.sha256
    monkeypatch.setattr(sigv4, "sha256", fallback)
    url = "https://bedrock-runtime.us-east-1.amazonaws.com/model/amazon.nova-pro-v1:0/converse"
    headers = {"content-type": "application/json"}
    creds = Credentials("AKIDFIPS", "fips-secret", "token")
    for size in (0, 100, sigv4.SMALL_BODY, sigv4.SMALL_BODY + 1):
        body = bytes(range(256)) * (size // 256) + bytes(size % 256)
        expected = _botocore(url, headers, body, creds, "us-east-1", 1_700_000_000, monkeypatch)
        signer = SigV4Signer("us-east-1", "bedrock")
        assert signer.sign(url, headers, body, access_key="AKIDFIPS", secret_key="fips-secret",
                           token="token", now=1_700_000_000) == expected
