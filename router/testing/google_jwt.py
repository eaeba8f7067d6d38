"""Google's OAuth token endpoint, as strict as the real one about a service account's JWT.

A service account gets an access token by posting a JWT it signed with its
private key (RS256): ``iss`` its ``client_email``, ``aud`` Google's token
endpoint (google-auth always names :data:`GOOGLE_TOKEN_URI`, whatever the
account's ``token_uri``; the fake's own URL is accepted too),
``scope``, and ``iat`` / ``exp`` at most an hour apart around now.
:class:`TrustedAccounts` keeps the public keys of the accounts a fake trusts
and checks an assertion the way Google does, answering with Google's own
``invalid_grant`` descriptions. Needs the ``cryptography`` package (the
``[encryption]`` and ``[test]`` extras), imported when an account is trusted.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

__all__ = ["BAD_SIGNATURE", "BAD_TIMES", "GOOGLE_TOKEN_URI", "TrustedAccounts"]

GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"

BAD_SIGNATURE = "Invalid JWT Signature."
BAD_TIMES = ("Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable "
             "timeframe. Check your iat and exp values in the JWT claim.")
#: Seconds a signer's clock may be ahead of the endpoint's.
SKEW = 60.0


def _decode(piece: str) -> bytes:
    return base64.urlsafe_b64decode(piece + "=" * (-len(piece) % 4))


class TrustedAccounts:
    """The service accounts whose assertions a fake token endpoint accepts."""

    def __init__(self) -> None:
        self._keys: dict[str, Any] = {}

    def trust(self, account: Mapping[str, Any]) -> None:
        """Accept assertions signed by ``account`` (a service-account JSON, as parsed)."""
        from cryptography.hazmat.primitives import serialization

        key = serialization.load_pem_private_key(str(account["private_key"]).encode(), None)
        self._keys[str(account["client_email"])] = key.public_key()

    def problem(self, assertion: str, audiences: tuple[str, ...], now: float) -> str | None:
        """Why Google would refuse ``assertion`` (addressed to one of ``audiences``) at
        ``now``; ``None`` when it would not."""
        pieces = assertion.split(".")
        if len(pieces) != 3:
            return BAD_SIGNATURE
        try:
            header = json.loads(_decode(pieces[0]))
            claims = json.loads(_decode(pieces[1]))
            signature = _decode(pieces[2])
        except ValueError:
            return BAD_SIGNATURE
        if not isinstance(header, dict) or not isinstance(claims, dict) \
                or header.get("alg") != "RS256":
            return BAD_SIGNATURE
        key = self._keys.get(str(claims.get("iss")))
        if key is None or not _signed(key, f"{pieces[0]}.{pieces[1]}".encode(), signature):
            return BAD_SIGNATURE
        if claims.get("aud") not in audiences:
            return "Invalid JWT: Failed audience check."
        if not claims.get("scope"):
            return "Invalid OAuth scope or ID token audience provided."
        iat, exp = claims.get("iat"), claims.get("exp")
        if not isinstance(iat, int | float) or not isinstance(exp, int | float) \
                or iat > now + SKEW or exp <= now or exp - iat > 3600:
            return BAD_TIMES
        return None


def _signed(key: Any, message: bytes, signature: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    try:
        key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True
