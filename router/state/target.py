"""Where Redis is: one server (a URL), a Cluster (startup nodes) or a Sentinel set.

Kept apart from :mod:`router.state.redis` so that the configuration can
describe a Redis without importing a Redis client.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Node", "RedisTarget", "nodes_of"]

Node = tuple[str, int]


@dataclass(frozen=True, slots=True)
class RedisTarget:
    """Where Redis is: exactly one of ``url``, ``startup_nodes`` (Cluster) or
    ``sentinel_nodes`` with ``service_name`` (Sentinel).

    ``password``/``username`` authenticate on the data nodes of a Cluster or a
    Sentinel set (a URL carries its own); ``sentinel_password`` on the
    sentinels. Secrets never appear in the repr.
    """

    url: str | None = field(default=None, repr=False)
    startup_nodes: tuple[Node, ...] = ()
    sentinel_nodes: tuple[Node, ...] = ()
    service_name: str | None = None
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    sentinel_password: str | None = field(default=None, repr=False)
    ssl: bool = False

    def __post_init__(self) -> None:
        kinds = [bool(self.url), bool(self.startup_nodes), bool(self.sentinel_nodes)]
        if sum(kinds) != 1:
            raise ValueError("give exactly one of a Redis URL, cluster startup nodes "
                             "or sentinel nodes")
        if self.sentinel_nodes and not self.service_name:
            raise ValueError("sentinel_nodes need a service_name (the primary's name)")

    @property
    def kind(self) -> str:
        """``"server"``, ``"cluster"`` or ``"sentinel"``."""
        return "cluster" if self.startup_nodes else "sentinel" if self.sentinel_nodes else "server"


def nodes_of(value: Sequence[Any] | None, what: str) -> tuple[Node, ...]:
    """``[{"host": h, "port": p}]``, ``[[h, p]]`` or ``["h:p"]`` as ``((h, p), ...)``.

    Raises ``ValueError`` naming ``what`` and the item that is not a node.
    """
    found: list[Node] = []
    for i, item in enumerate(value or ()):
        try:
            found.append(_node(item))
        except (TypeError, ValueError, KeyError) as exc:
            raise ValueError(f"{what}[{i}] is not a host and port ({exc})") from None
    return tuple(found)


def _node(item: Any) -> Node:
    if isinstance(item, dict):
        host, port = item["host"], item["port"]
    elif isinstance(item, str):
        host, _, port = item.rpartition(":")
    else:
        host, port = item
    port = int(port)
    if not isinstance(host, str) or not host or not 0 < port < 65536:
        raise ValueError("host must be a name and port in 1..65535")
    return host.strip("[]"), port
