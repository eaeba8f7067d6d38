"""``order``: lower orders first, higher ones when the lower cannot serve (router/order.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from router.config import DeploymentConfig
from router.deployment import Deployment
from router.order import OrderTiers
from router.table import DeploymentTable

# isort: split
from providers.mock import MockProvider


def table(*orders: tuple[str, int | None]) -> DeploymentTable:
    """One deployment per ``(group, order)``, ids ``{group}-{i}``."""
    configs = []
    for i, (group, order) in enumerate(orders):
        params: dict[str, Any] = {"model": f"mock/m{i}"}
        if order is not None:
            params["order"] = order
        configs.append(DeploymentConfig.model_validate({
            "model_name": group, "litellm_params": params, "model_info": {"id": f"{group}-{i}"},
        }))
    return DeploymentTable(configs, {"mock": MockProvider()})


def ids(deployments: Sequence[Deployment]) -> list[str]:
    return [d.id for d in deployments]


def test_only_the_lowest_order_available_is_offered() -> None:
    t = table(("g", 2), ("g", 1), ("g", 1), ("g", None))
    tiers = OrderTiers(t.all())
    group = t.group("g")
    assert ids(tiers.narrow(group)) == ["g-1", "g-2"]
    # order 1 cooling down / failed / filtered out: order 2 serves
    assert ids(tiers.narrow([group[0], group[3]])) == ["g-0"]
    # then deployments without an order, last
    assert ids(tiers.narrow([group[3]])) == ["g-3"]
    assert tiers.narrow([]) == []


def test_groups_without_order_are_untouched() -> None:
    t = table(("g", 1), ("g", 2), ("plain", None), ("plain", None))
    tiers = OrderTiers(t.all())
    plain = t.group("plain")
    assert tiers.narrow(plain) is plain
    assert tiers.active
    assert not OrderTiers(table(("plain", None)).all()).active


def test_a_tier_that_loses_nobody_returns_the_same_sequence() -> None:
    t = table(("g", 1), ("g", 1), ("g", 2))
    available = t.group("g")[:2]
    assert OrderTiers(t.all()).narrow(available) is available
