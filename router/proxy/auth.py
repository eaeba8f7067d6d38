"""Who is calling: the master key and the configured API keys.

A presented key is hashed once and compared with every configured key's
hash by :func:`hmac.compare_digest`, always against all of them, so neither
the comparison nor the loop's length tells a caller how close a guess was.
Keys are never logged: a caller is named by its :attr:`Principal.key_id`
(the key's alias, or a prefix of its SHA-256), which is also what owns
responses and counts toward limits.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from router.proxy.settings import MASTER_ID, OPEN_ID, ApiKeySpec, ServerSettings

__all__ = ["MASTER_ID", "OPEN_ID", "KeyRing", "Principal", "presented_key"]


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller.

    ``models`` empty: every model group. ``admin``: the master key, which may
    read and manage every stored response. ``rpm_limit``, ``tpm_limit``,
    ``max_parallel``: ``None`` is no limit.
    """

    key_id: str
    models: frozenset[str] = frozenset()
    rpm_limit: int | None = None
    tpm_limit: int | None = None
    max_parallel: int | None = None
    admin: bool = False

    def may_use(self, model: str) -> bool:
        return not self.models or model in self.models

    def may_see(self, owner: str | None) -> bool:
        """Whether a response owned by ``owner`` (``None``: unknown) exists for this caller."""
        return self.admin or owner == self.key_id


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


def _principal(spec: ApiKeySpec) -> Principal:
    key = spec.key.get_secret_value()
    key_id = spec.key_alias or "key-" + hashlib.sha256(key.encode()).hexdigest()[:16]
    return Principal(key_id, frozenset(spec.models), spec.rpm_limit, spec.tpm_limit,
                     spec.max_parallel_requests)


class KeyRing:
    """The keys the server accepts; :meth:`authenticate` maps a presented key to a caller.

    With no master key and no API keys configured, every caller is let in as
    :data:`OPEN_ID` (a server for a trusted network only; each worker warns at start).
    """

    def __init__(self, settings: ServerSettings) -> None:
        entries: list[tuple[bytes, Principal]] = []
        if settings.master_key is not None:
            entries.append((_digest(settings.master_key.get_secret_value()),
                            Principal(MASTER_ID, admin=True)))
        entries += [(_digest(s.key.get_secret_value()), _principal(s)) for s in settings.api_keys]
        self._entries = tuple(entries)
        self.open = not entries

    def authenticate(self, presented: str | None) -> Principal | None:
        """The caller holding ``presented``, or ``None`` when it is no configured key."""
        if self.open:
            return Principal(OPEN_ID, admin=True)
        if not presented:
            return None
        digest = _digest(presented)
        found: Principal | None = None
        for known, principal in self._entries:  # no early exit: constant work per key
            if hmac.compare_digest(digest, known):
                found = principal
        return found

    def __repr__(self) -> str:
        return f"KeyRing(keys={len(self._entries)}, open={self.open})"


def presented_key(authorization: str | None, api_key: str | None) -> str | None:
    """The key from ``Authorization: Bearer KEY``, else from ``api-key: KEY`` (Azure's header)."""
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
        return None
    return api_key or None
