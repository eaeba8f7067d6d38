"""Checks of the objects ``Router(...)`` takes besides settings (strategy, checks, clock...).

Why: these arguments are Python objects, not config values, so pydantic
never sees them; a wrong one (``routing_strategy=5``, a check name given as a
bare string, ``rng="x"``) would otherwise pass construction and fail on
every request with a bare ``AttributeError``. Each problem is reported by
argument name in one :class:`~router.errors.ConfigError`, as for settings.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

import httpx

from router.errors import ConfigError

__all__ = ["check_objects"]


def _kind(value: Any) -> str:
    if isinstance(value, str):
        return "a string"
    name = type(value).__name__
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"


def _has(value: Any, *methods: str) -> bool:
    return all(callable(getattr(value, m, None)) for m in methods)


def _strategy(value: Any) -> str | None:
    if isinstance(value, str) or _has(value, "pick"):
        return None
    return ("expected a strategy name or an object with pick(candidates, request), "
            f"got {_kind(value)}")


def _checks(value: Any) -> str | None:
    if isinstance(value, str):
        return f"expected a list of check names or objects, got a string (write [{value[:60]!r}])"
    if not isinstance(value, Sequence):
        return f"expected a list of check names or objects, got {_kind(value)}"
    for i, item in enumerate(value):
        if not isinstance(item, str) and not _has(item, "filter"):
            return f"[{i}]: expected a check name or an object with filter(), got {_kind(item)}"
    return None


def _registry(value: Any) -> str | None:
    if not isinstance(value, Mapping):
        return f"expected a mapping of names to factories, got {_kind(value)}"
    for name, factory in value.items():
        if not isinstance(name, str) or not callable(factory):
            return f"[{name!r}]: expected a name and a callable factory, got {_kind(factory)}"
    return None


def _callbacks(value: Any) -> str | None:
    if isinstance(value, str) or not isinstance(value, Sequence):
        return f"expected a list of callback objects, got {_kind(value)}"
    return None


def _instance(kind: type, what: str) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        return None if isinstance(value, kind) else f"expected {what}, got {_kind(value)}"

    return check


def _clock(value: Any) -> str | None:
    if _has(value, "now", "wall", "sleep"):
        return None
    return f"expected a clock with now(), wall() and sleep(), got {_kind(value)}"


_CHECKS: Mapping[str, Callable[[Any], str | None]] = MappingProxyType({
    "routing_strategy": _strategy,
    "optional_pre_call_checks": _checks,
    "http_client": _instance(httpx.AsyncClient, "an httpx.AsyncClient"),
    "clock": _clock,
    "rng": _instance(random.Random, "a random.Random"),
    "strategies": _registry,
    "checks": _registry,
    "callbacks": _callbacks,
})


def check_objects(**objects: Any) -> None:
    """Raise :class:`ConfigError` naming each argument in ``objects`` of the wrong kind.

    ``None`` means "the default" and is always accepted; names without a rule
    are not checked.
    """
    problems = []
    for name, value in objects.items():
        rule = _CHECKS.get(name)
        problem = None if value is None or rule is None else rule(value)
        if problem is not None:
            sep = "" if problem.startswith("[") else ": "
            problems.append(f"{name}{sep}{problem}")
    if problems:
        count = len(problems)
        raise ConfigError(
            f"invalid Router(...) arguments ({count} problem{'' if count == 1 else 's'})",
            problems)
