"""Redis by URL: one server, a Cluster or a Sentinel set, each in one string.

* ``redis://``, ``rediss://`` (TLS), ``unix://``: one server, exactly as redis-py
  reads it (``redis.Redis.from_url``).
* ``redis+cluster://[user:password@]host:port[,host:port...][/]``, or
  ``rediss+cluster://`` for TLS: a Redis Cluster from its startup nodes (one is
  enough; the client learns the others), as ``redis_startup_nodes`` gives them.
* ``redis+sentinel://[user:password@]host:port[,host:port...]/service[/db]``,
  or ``rediss+sentinel://``: a Sentinel set; ``service`` is the name the
  sentinels monitor the primary under (``service_name``), ``db`` the database
  (0). ``?sentinel_password=...`` authenticates on the sentinels (URL-encoded),
  the user and password before ``@`` on the data nodes. This is the form of
  the ``redis+sentinel`` URLs other Python tools read (Celery's and kombu's
  ``sentinel://`` lists are written as one URL per sentinel, this as one list).

Anything else is refused with a reason that never quotes a password. Parsed
without importing redis-py.
"""

from __future__ import annotations

from urllib.parse import parse_qs, unquote, urlsplit

from router.state.target import Node, RedisTarget, nodes_of

__all__ = ["SCHEMES", "target_from_url"]

#: Every scheme a ``redis_url`` may have.
SCHEMES = ("redis", "rediss", "unix", "redis+cluster", "rediss+cluster", "redis+sentinel",
           "rediss+sentinel")


def target_from_url(url: str) -> RedisTarget:
    """The :class:`RedisTarget` ``url`` names (raises ``ValueError`` saying why not)."""
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in SCHEMES:
        raise ValueError("must be a redis://, rediss://, unix://, redis+cluster:// or "
                         "redis+sentinel:// URL")
    if "+" not in scheme:
        return RedisTarget(url=url)
    ssl = scheme.startswith("rediss")
    where, _, query = rest.partition("?")
    where = where.partition("#")[0]
    userinfo, at, hosts_and_path = where.rpartition("@")
    username, password = _credentials(userinfo) if at else (None, None)
    hosts, _, path = hosts_and_path.partition("/")
    nodes = _nodes(hosts, scheme)
    options = parse_qs(query, keep_blank_values=True)
    if scheme.endswith("+cluster"):
        if path.strip("/") or options:
            raise ValueError(f"{scheme}:// takes host:port pairs only (no path, no options)")
        return RedisTarget(startup_nodes=nodes, username=username, password=password, ssl=ssl)
    service, db = _service(path)
    sentinel_password = _option(options, "sentinel_password")
    if set(options) - {"sentinel_password"}:
        unknown = ", ".join(sorted(set(options) - {"sentinel_password"}))
        raise ValueError(f"{scheme}:// has unknown options: {unknown}")
    return RedisTarget(sentinel_nodes=nodes, service_name=service, db=db, username=username,
                       password=password, sentinel_password=sentinel_password, ssl=ssl)


def _credentials(userinfo: str) -> tuple[str | None, str | None]:
    user, colon, password = userinfo.partition(":")
    return (unquote(user) or None, unquote(password) if colon else None)


def _nodes(hosts: str, scheme: str) -> tuple[Node, ...]:
    items = [h for h in hosts.split(",") if h]
    if not items:
        raise ValueError(f"{scheme}:// needs at least one host:port")
    for item in items:
        if ":" not in item.rsplit("]", 1)[-1]:
            raise ValueError(f"{scheme}:// node {item!r} needs a port")
        if urlsplit(f"//{item}").hostname is None:
            raise ValueError(f"{scheme}:// node {item!r} is not a host and port")
    return nodes_of(items, f"{scheme}:// node")


def _service(path: str) -> tuple[str, int]:
    parts = [p for p in path.split("/") if p]
    if not parts or len(parts) > 2:
        raise ValueError("a redis+sentinel:// URL names the service after the hosts "
                         "(redis+sentinel://host:26379/mymaster[/db])")
    db = 0
    if len(parts) == 2:
        if not parts[1].isdigit():
            raise ValueError(f"the database after the service must be a number, "
                             f"not {parts[1]!r}")
        db = int(parts[1])
    return unquote(parts[0]), db


def _option(options: dict[str, list[str]], name: str) -> str | None:
    values = options.get(name)
    return values[-1] if values else None
