"""The router's shared parts, typed: what check and strategy factories are given.

One frozen object instead of the router itself, so an extension sees exactly
the parts it may use (and mypy checks it uses them right). Built once by the
composition root (:mod:`router.assembly`); ``Router.services`` is the same
object, for tests and inspection.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from router.clock import Clock
    from router.config.models import RouterConfig
    from router.cooldown import Cooldowns
    from router.load import LoadTracker
    from router.ownership import Ownership
    from router.shared_load import Admission
    from router.state.base import BatchStore
    from router.table import DeploymentTable

__all__ = ["RouterServices"]


@dataclass(frozen=True, slots=True)
class RouterServices:
    """The deployment table, response ownership, state store, clock, load figures,
    cooldowns, validated config and admission of one router."""

    table: DeploymentTable
    ownership: Ownership
    store: BatchStore
    clock: Clock
    load: LoadTracker
    cooldowns: Cooldowns
    config: RouterConfig
    admission: Admission
