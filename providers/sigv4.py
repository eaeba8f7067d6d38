"""AWS Signature Version 4 for the one request shape the Bedrock provider sends.

botocore's ``SigV4Auth`` is general (any method, query, presigning, S3's
rules) and builds request and header objects per call; signing one Converse
request with it costs more CPU than the rest of the translated path. This
signer does exactly what SigV4Auth does for a POST with a JSON body and no
query, and caches the derived signing key per (secret, day, region,
service), which SigV4 allows since the key only changes with those, and the
canonical request's fixed parts per (URL, session token, headers), with the
SHA-256 state over all of it before the date. Per second (the date's
resolution) a form also keeps the hash states over everything but the
payload's hash: the canonical request's, and the HMAC's inner one over the
string to sign up to the canonical request's hash. A request then costs one
SHA-256 of the body, the last block or two of the canonical request's, and
one HMAC, taken from those states and the signing key's padded outer one (RFC
2104) rather than through :mod:`hmac`, which looks the digest up by name on
every call.

Those small hashes (a block or two each) run on CPython's own SHA-256, not
OpenSSL's: OpenSSL's is faster per byte but costs more per call, and far more
when its code is not in the CPU's caches, as in a router process whose every
request also runs aiohttp and the kernel's socket code between two
signatures. Measured through the router on loopback, the first OpenSSL hash
of a request (a 120-byte body) took 4.3 µs median against 0.7 µs in a tight
loop, and CPython's took 1.0 µs; the whole signature cost about 4 µs less a
request. A body's hash goes to OpenSSL above :data:`SMALL_BODY` bytes, where
its speed per byte wins (CPython's hashes some 210 MB/s here, OpenSSL's with
the CPU's SHA instructions several times that). A test holds the signer to
botocore's signature on generated requests (model ids with ``:`` and ``/``,
ARNs, session tokens, days, regions, extra headers, bodies on both sides of
:data:`SMALL_BODY`).

Credentials are resolved and refreshed by botocore
(:mod:`providers.bedrock`); this module only signs with the frozen ones.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from hashlib import sha256 as openssl_sha256
from importlib import import_module
from typing import cast
from urllib.parse import quote, urlsplit

__all__ = ["SMALL_BODY", "SigV4Signer", "SigningKeys"]


def _builtin_sha256() -> Callable[..., hashlib._Hash]:
    """CPython's own SHA-256 (``_sha2`` from 3.12, ``_sha256`` before); OpenSSL's in a
    build without it."""
    for module in ("_sha2", "_sha256"):
        try:
            return cast("Callable[..., hashlib._Hash]", import_module(module).sha256)
        except (ImportError, AttributeError):
            continue
    return openssl_sha256


#: The SHA-256 of the signature's small hashes (see the module docstring)
sha256 = _builtin_sha256()

#: Bodies up to this many bytes are hashed by CPython's SHA-256, larger ones by OpenSSL's
#: (see the module docstring).
SMALL_BODY = 512

#: Headers botocore never signs (hop-by-hop, tracing, the user agent).
UNSIGNED_HEADERS = frozenset({
    "baggage", "connection", "expect", "keep-alive", "proxy-authenticate",
    "proxy-authorization", "te", "traceparent", "tracestate", "trailer",
    "transfer-encoding", "upgrade", "user-agent", "x-amzn-trace-id", "authorization",
})

_ALGORITHM = "AWS4-HMAC-SHA256"
#: SHA-256's block size, and the byte maps that XOR a key with HMAC's inner and outer pads
_BLOCK = 64
_IPAD = bytes(b ^ 0x36 for b in range(256))
_OPAD = bytes(b ^ 0x5C for b in range(256))
_CACHE_LIMIT = 64


@dataclass(slots=True)
class SigningKeys:
    """Derived SigV4 keys by (secret, day, region, service); bounded, one per signer."""

    _keys: dict[tuple[str, str, str, str], bytes] = field(default_factory=dict)

    def get(self, secret: str, day: str, region: str, service: str) -> bytes:
        key = (secret, day, region, service)
        found = self._keys.get(key)
        if found is None:
            if len(self._keys) >= _CACHE_LIMIT:
                self._keys.clear()
            found = _derive(secret, day, region, service)
            self._keys[key] = found
        return found

    def __repr__(self) -> str:  # its keys are secrets, and derived from the secret key
        return f"SigningKeys({len(self._keys)} held)"


@dataclass(slots=True)
class _Form:
    """A canonical request's fixed parts: SHA-256 over all of it before the date (method,
    path, the header lines before ``x-amz-date``), the header lines after the date, the
    signed names, and the headers to send (less the date and signature); and the last
    second signed in with them (replaced when the second or the keys change)."""

    head: hashlib._Hash
    after: str
    names: str
    headers: Mapping[str, str]
    moment: _Moment | None = None


@dataclass(frozen=True, slots=True)
class _Day:
    """What every signature of one day with one secret key shares: the credential scope,
    and the signing key's inner and outer HMAC states (SHA-256 over the padded key)."""

    day: str
    secret_key: str = field(repr=False)  # a secret: never in a repr
    scope: str
    inner: hashlib._Hash
    outer: hashlib._Hash


@dataclass(frozen=True, slots=True)
class _Moment:
    """What every signature over one form in one second with one key pair shares: the
    ``X-Amz-Date``, SHA-256 over the canonical request up to the payload's hash, the
    HMAC's inner state over the string to sign up to the canonical request's hash, and
    the ``Authorization`` header up to the signature."""

    second: int
    access_key: str
    day: _Day = field(repr=False)  # holds the secret key
    stamp: str
    canonical: hashlib._Hash
    inner: hashlib._Hash
    authorization: str


@dataclass(slots=True)
class SigV4Signer:
    """Signs POST requests for one service in one region."""

    region: str
    service: str
    keys: SigningKeys = field(default_factory=SigningKeys)
    _urls: dict[str, tuple[str, str]] = field(default_factory=dict)  # url -> (path, host)
    _day: _Day | None = None  # the last day and secret key signed with
    #: (url, token, headers) -> the canonical request's parts other than the date
    _forms: dict[tuple[str, str | None, tuple[tuple[str, str], ...]], _Form] = field(
        default_factory=dict)

    def __repr__(self) -> str:  # its caches hold the secret key, session tokens and keys
        return f"SigV4Signer(region={self.region!r}, service={self.service!r})"

    def sign(
        self,
        url: str,
        headers: Mapping[str, str],
        body: bytes,
        *,
        access_key: str,
        secret_key: str,
        token: str | None = None,
        now: float | None = None,
    ) -> dict[str, str]:
        """``headers`` plus ``X-Amz-Date``, the session token if any, and ``Authorization``.

        ``url`` must have no query (the caller refuses one); ``now`` is Unix
        time (default: the clock), for tests.
        """
        second = int(time.time() if now is None else now)
        key = (url, token, tuple(headers.items()))
        form = self._forms.get(key)
        if form is None:
            if len(self._forms) >= _CACHE_LIMIT:
                self._forms.clear()
            form = self._forms[key] = self._form(url, headers, token)
        moment = form.moment
        if (moment is None or moment.second != second or moment.access_key != access_key
                or moment.day.secret_key != secret_key):
            moment = form.moment = self._moment(form, second, access_key, secret_key)
        canonical = moment.canonical.copy()  # the hashes go on from the second's states
        payload = sha256(body) if len(body) <= SMALL_BODY else openssl_sha256(body)
        canonical.update(payload.hexdigest().encode())
        inner = moment.inner.copy()  # HMAC-SHA256 (RFC 2104) from the key's padded states
        inner.update(canonical.hexdigest().encode())
        outer = moment.day.outer.copy()
        outer.update(inner.digest())
        out = dict(form.headers)
        out["X-Amz-Date"] = moment.stamp
        out["Authorization"] = moment.authorization + outer.hexdigest()
        return out

    def _moment(self, form: _Form, second: int, access_key: str, secret_key: str) -> _Moment:
        """What signatures over ``form`` in ``second`` (Unix time) with these keys share."""
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(second))
        day = self._day_of(stamp[:8], secret_key)
        canonical = form.head.copy()
        canonical.update(f"{stamp}\n{form.after}\n{form.names}\n".encode())
        inner = day.inner.copy()
        inner.update(f"{_ALGORITHM}\n{stamp}\n{day.scope}\n".encode())
        return _Moment(second, access_key, day, stamp, canonical, inner,
                       f"{_ALGORITHM} Credential={access_key}/{day.scope}, "
                       f"SignedHeaders={form.names}, Signature=")

    def _day_of(self, day: str, secret_key: str) -> _Day:
        """What signatures of ``day`` with ``secret_key`` share (the last one kept at hand)."""
        last = self._day
        if last is None or last.day != day or last.secret_key != secret_key:
            key = self.keys.get(secret_key, day, self.region, self.service)
            last = self._day = _Day(day, secret_key,
                                    f"{day}/{self.region}/{self.service}/aws4_request",
                                    sha256(key.translate(_IPAD).ljust(_BLOCK, b"\x36")),
                                    sha256(key.translate(_OPAD).ljust(_BLOCK, b"\x5c")))
        return last

    def _form(self, url: str, headers: Mapping[str, str], token: str | None) -> _Form:
        """What a signature over these headers shares with every other over them."""
        out = {k: v for k, v in headers.items()
               if k.lower() not in ("authorization", "x-amz-date", "x-amz-security-token")}
        if token:
            out["X-Amz-Security-Token"] = token
        path, host = self._url(url)
        signed = {k.lower(): " ".join(v.split()) for k, v in out.items()
                  if k.lower() not in UNSIGNED_HEADERS}
        signed.setdefault("host", host)
        signed["x-amz-date"] = ""
        names = sorted(signed)
        at = names.index("x-amz-date")
        before = "".join(f"{n}:{signed[n]}\n" for n in names[:at])
        return _Form(sha256(f"POST\n{path}\n\n{before}x-amz-date:".encode()),
                     "".join(f"{n}:{signed[n]}\n" for n in names[at + 1:]), ";".join(names), out)

    def _url(self, url: str) -> tuple[str, str]:
        """The canonical path and the signed host of ``url`` (cached: a deployment has few)."""
        found = self._urls.get(url)
        if found is None:
            if len(self._urls) >= _CACHE_LIMIT:
                self._urls.clear()
            parts = urlsplit(url)
            found = (quote(_remove_dot_segments(parts.path or "/"), safe="/~"),
                     _host(parts.scheme, parts.netloc))
            self._urls[url] = found
        return found


def _derive(secret: str, day: str, region: str, service: str) -> bytes:
    key = f"AWS4{secret}".encode()
    for part in (day, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def _host(scheme: str, netloc: str) -> str:
    """The host header as botocore signs it: the default port is left out."""
    host = netloc.rsplit("@", 1)[-1]
    default = {"https": ":443", "http": ":80"}.get(scheme)
    return host[: -len(default)] if default and host.endswith(default) else host


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 dot-segment removal, as botocore normalises a path before signing."""
    if "/." not in path:
        return path
    out: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if len(out) > 1:
                out.pop()
        elif segment != ".":
            out.append(segment)
    joined = "/".join(out)
    if path.endswith(("/.", "/..")):
        joined += "/"
    return joined if joined.startswith("/") else "/" + joined
