"""Encryption at rest of kept conversation content (the ``[encryption]`` extra).

``conversation_encryption_keys`` lists Fernet keys (``cryptography``'s
authenticated encryption: AES-128-CBC with an HMAC-SHA256), newest first.
New content is sealed with the first key; content sealed with any listed key
opens, so keys rotate by adding the new key at the front and dropping an old
one only once everything it sealed has expired (``conversation_ttl``).
Only content is sealed (input items and responses); the links between
responses (ids) stay readable so a chain is walked without any key.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from router.errors import ConfigError

__all__ = ["FernetSealer", "PlainSealer", "Sealer", "SealingError", "sealer_for"]

SETTING = "conversation_encryption_keys"


class SealingError(Exception):
    """Stored content could not be opened (no listed key sealed it, or it was altered)."""


class Sealer(Protocol):
    """Turns content (text) into what is stored (text without newlines), and back."""

    def seal(self, content: str) -> str: ...

    def open(self, sealed: str) -> str: ...


class PlainSealer:
    """No encryption: content (compact JSON, which has no raw newline) is stored as it is."""

    def seal(self, content: str) -> str:
        return content

    def open(self, sealed: str) -> str:
        return sealed


class FernetSealer:
    """Fernet with rotation (``MultiFernet``): seals with ``keys[0]``, opens with any."""

    def __init__(self, keys: Sequence[str]) -> None:
        try:
            from cryptography.fernet import Fernet, MultiFernet
        except ImportError:
            raise ConfigError(
                f"{SETTING}: encryption needs the cryptography package; "
                "install responses-router[encryption]") from None
        fernets = []
        for i, key in enumerate(keys):
            try:
                fernets.append(Fernet(key.encode()))
            except (ValueError, TypeError):
                raise ConfigError(  # never echo the key
                    f"{SETTING}[{i}]: not a Fernet key (32 url-safe base64-encoded bytes; "
                    "make one with cryptography.fernet.Fernet.generate_key())") from None
        self._fernet = MultiFernet(fernets)

    def seal(self, content: str) -> str:
        return self._fernet.encrypt(content.encode()).decode()

    def open(self, sealed: str) -> str:
        from cryptography.fernet import InvalidToken

        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            raise SealingError(
                "stored conversation content does not open with any key in "
                f"{SETTING} (sealed with a key since removed, or altered)") from None

    def __repr__(self) -> str:
        return "FernetSealer(<keys hidden>)"


def sealer_for(keys: Sequence[str]) -> Sealer:
    """A :class:`FernetSealer` for ``keys``, or :class:`PlainSealer` when none are given."""
    return FernetSealer(keys) if keys else PlainSealer()
