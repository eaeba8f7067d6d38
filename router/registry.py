"""Name -> factory registries, resolved once at construction.

Config strings (``"simple-shuffle"``, ``"responses_api_deployment_check"``)
are turned into objects here, once; the request path never looks at names.
Each router builds its own registries from the built-in tables (immutable)
plus whatever the caller registers, so nothing is shared between routers.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from typing import Generic, TypeVar

from router.errors import ConfigError

__all__ = ["Registry"]

T = TypeVar("T")
C = TypeVar("C")


class Registry(Generic[C, T]):
    """Factories of ``T`` by name; a factory takes a context object ``C``."""

    def __init__(
        self,
        kind: str,
        builtins: Mapping[str, Callable[[C], T]],
        planned: frozenset[str] = frozenset(),
    ) -> None:
        self._kind = kind
        self._factories: dict[str, Callable[[C], T]] = dict(builtins)
        self._planned = planned

    def is_planned(self, name: str) -> bool:
        """A LiteLLM name this router accepts but does not implement yet."""
        return name in self._planned and name not in self._factories

    def register(self, name: str, factory: Callable[[C], T]) -> None:
        """Make ``name`` resolve to ``factory`` in this registry."""
        self._factories[name] = factory

    def names(self) -> list[str]:
        return sorted(self._factories)

    def create(self, name: str, context: C, *, where: str) -> T:
        """Build the object registered as ``name``; ``where`` names the setting."""
        factory = self._factories.get(name)
        if factory is None:
            close = difflib.get_close_matches(name, self._factories, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(
                f"{where}: unknown {self._kind} {name!r}{hint} "
                f"(known: {', '.join(self.names())})"
            )
        return factory(context)
