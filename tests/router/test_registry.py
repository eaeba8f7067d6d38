"""Name -> factory registries (router/registry.py)."""

from __future__ import annotations

import pytest

from router.errors import ConfigError
from router.registry import Registry
from router.strategies.base import strategy_registry


def _registry() -> Registry[str, tuple[str, str]]:
    return Registry("routing_strategy", {
        "simple-shuffle": lambda ctx: ("shuffle", ctx),
        "least-busy": lambda ctx: ("busy", ctx),
    })


def test_create_passes_the_context() -> None:
    assert _registry().create("least-busy", "ctx", where="routing_strategy") == ("busy", "ctx")


def test_unknown_name_suggests_the_nearest_and_lists_known() -> None:
    with pytest.raises(ConfigError) as info:
        _registry().create("simple-shufle", "ctx", where="router_settings.routing_strategy")
    text = str(info.value)
    assert text.startswith("router_settings.routing_strategy: unknown routing_strategy")
    assert "did you mean 'simple-shuffle'?" in text
    assert "known: least-busy, simple-shuffle" in text


def test_unknown_name_without_a_near_match_has_no_suggestion() -> None:
    with pytest.raises(ConfigError) as info:
        _registry().create("zzzzzz", "ctx", where="routing_strategy")
    assert "did you mean" not in str(info.value)
    assert "known: least-busy, simple-shuffle" in str(info.value)


def test_register_adds_and_replaces() -> None:
    reg = _registry()
    reg.register("mine", lambda ctx: ("mine", ctx))
    assert reg.create("mine", "c", where="w") == ("mine", "c")
    assert reg.names() == ["least-busy", "mine", "simple-shuffle"]
    reg.register("least-busy", lambda ctx: ("replaced", ctx))
    assert reg.create("least-busy", "c", where="w") == ("replaced", "c")


def test_builtins_mapping_is_not_mutated() -> None:
    builtins = {"a": lambda ctx: ctx}
    reg: Registry[str, str] = Registry("thing", builtins)
    reg.register("b", lambda ctx: ctx)
    assert list(builtins) == ["a"]


def test_two_registries_are_independent() -> None:
    one = strategy_registry()
    two = strategy_registry()
    one.register("custom", lambda ctx: object())  # type: ignore[arg-type,return-value]
    assert "custom" in one.names()
    assert "custom" not in two.names()
    assert "custom" not in strategy_registry().names()
    with pytest.raises(ConfigError):
        two.create("custom", None, where="routing_strategy")  # type: ignore[arg-type]
