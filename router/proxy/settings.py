"""The server's part of the config file: ``general_settings``, and where Redis is.

The Router reads ``model_list``, ``router_settings`` and ``litellm_settings``;
the server reads ``general_settings`` (the same file, so one file configures
both). Key names follow LiteLLM where it has them: ``master_key``,
``max_request_size_mb``, and per key ``key``, ``key_alias``, ``models``,
``rpm_limit``, ``tpm_limit``, ``max_parallel_requests`` (LiteLLM's
virtual-key fields). LiteLLM keeps
virtual keys in a database; here they are listed in the file
(``api_keys``), so there is nothing to run besides the server and Redis.
``os.environ/NAME`` values are read from the environment, as in the rest of
the file. Secrets are ``SecretStr``: no repr or error message shows them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from router.config.loading import resolve_env
from router.config.models import RouterSettings
from router.errors import ConfigError
from router.state.target import RedisTarget

__all__ = ["ApiKeySpec", "ServerSettings", "server_settings"]

_FROZEN = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)
_REDIS_KEYS = ("redis_url", "redis_host", "redis_port", "redis_password", "redis_db",
               "redis_key_prefix", "response_ownership_ttl", "redis_startup_nodes",
               "service_name", "sentinel_nodes", "sentinel_password")


#: The key id of the master key, and of every caller when no key is configured
#: (:mod:`router.proxy.auth`); no API key's alias may take either.
MASTER_ID = "master"
OPEN_ID = "anonymous"
_RESERVED_IDS = frozenset({MASTER_ID, OPEN_ID})


class ApiKeySpec(BaseModel):
    """One API key: who may call, which model groups, at what rate.

    ``models`` empty means every model group. ``rpm_limit`` / ``tpm_limit``
    (requests / tokens per minute) and ``max_parallel_requests`` (requests in
    flight, streams until their end) hold across all workers when Redis is
    configured; ``None`` means no limit. ``key_alias`` names the key in logs
    and metrics (default: a hash prefix of the key, never the key).
    """

    model_config = _FROZEN

    key: SecretStr
    key_alias: str | None = Field(default=None, min_length=1, max_length=64)
    models: tuple[str, ...] = ()
    rpm_limit: int | None = Field(default=None, ge=0)
    tpm_limit: int | None = Field(default=None, ge=0)
    max_parallel_requests: int | None = Field(default=None, ge=1)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("key_alias")
    @classmethod
    def _usable_alias(cls, alias: str | None) -> str | None:
        if alias is not None and not alias.isprintable():
            raise ValueError("printable characters only: it names the key in logs, metrics "
                             "and the responses it owns")
        if alias in _RESERVED_IDS:
            raise ValueError(f"{alias!r} is reserved: it names the master key, or every "
                             "caller when no key is configured")
        return alias


class ServerSettings(BaseModel):
    """What the server reads from ``general_settings`` plus the Redis it shares state in.

    Timeouts are seconds: ``idle_timeout`` closes a connection that sends no
    complete request head for that long (idle keep-alive or a slow head);
    ``body_timeout`` bounds reading a request body; ``write_timeout`` bounds
    each write to a client that does not read (a stalled stream);
    ``graceful_shutdown_timeout`` is how long SIGTERM waits for in-flight
    requests and streams.
    """

    model_config = _FROZEN

    master_key: SecretStr | None = None
    api_keys: tuple[ApiKeySpec, ...] = ()
    max_request_size_mb: float = Field(default=32.0, gt=0)
    idle_timeout: float = Field(default=30.0, gt=0)
    body_timeout: float = Field(default=30.0, gt=0)
    write_timeout: float = Field(default=60.0, gt=0)
    graceful_shutdown_timeout: float = Field(default=30.0, ge=0)
    #: Where the shared state lives (a server, a Cluster or a Sentinel set), or ``None``.
    redis_target: RedisTarget | None = Field(default=None, exclude=True)
    redis_key_prefix: str = "rr:"
    ownership_ttl: float = 2_592_000

    @property
    def max_request_bytes(self) -> int:
        return int(self.max_request_size_mb * 1024 * 1024)

    @property
    def auth_enabled(self) -> bool:
        return self.master_key is not None or bool(self.api_keys)


def server_settings(document: Mapping[str, Any], *, source: str) -> ServerSettings:
    """The server settings of a whole config document (validated; env resolved).

    Raises :class:`ConfigError` naming each bad field by path.
    """
    general = document.get("general_settings") or {}
    router = document.get("router_settings") or {}
    if not isinstance(general, Mapping) or not isinstance(router, Mapping):
        raise ConfigError(f"{source}: general_settings and router_settings must be mappings")
    ours = {k: v for k, v in general.items() if k in ServerSettings.model_fields and v is not None}
    values = resolve_env(ours, "general_settings")
    redis = _redis(router, source)
    values.update(redis_target=redis.redis_target(), redis_key_prefix=redis.redis_key_prefix,
                  ownership_ttl=redis.response_ownership_ttl)
    try:
        settings = ServerSettings.model_validate(values)
    except ValidationError as exc:
        raise ConfigError(f"invalid server settings in {source}", _problems(exc)) from None
    _check_unique(settings, source)
    return settings


def _redis(router: Mapping[str, Any], source: str) -> RouterSettings:
    raw = {k: router[k] for k in _REDIS_KEYS if router.get(k) is not None}
    try:
        return RouterSettings.model_validate(resolve_env(raw, "router_settings"))
    except ValidationError as exc:
        raise ConfigError(f"invalid Redis settings in {source}",
                          _problems(exc, "router_settings")) from None


def _problems(exc: ValidationError, prefix: str = "general_settings") -> list[str]:
    out = []
    for error in exc.errors(include_url=False, include_input=False, include_context=False):
        path = prefix
        for part in error["loc"]:
            path = f"{path}[{part}]" if isinstance(part, int) else f"{path}.{part}"
        out.append(f"{path}: {error['msg']}")
    return out


def _check_unique(settings: ServerSettings, source: str) -> None:
    seen: dict[str, int] = {}
    problems = []
    master = settings.master_key.get_secret_value() if settings.master_key else None
    for i, spec in enumerate(settings.api_keys):
        key = spec.key.get_secret_value()
        if key in seen:
            problems.append(
                f"general_settings.api_keys[{i}].key: same key as api_keys[{seen[key]}]")
        elif key == master:
            problems.append(f"general_settings.api_keys[{i}].key: same key as master_key")
        elif not key:
            problems.append(f"general_settings.api_keys[{i}].key: must not be empty")
        seen.setdefault(key, i)
    if problems:
        raise ConfigError(f"invalid server settings in {source}", problems)
