"""Real router parts for check factories (a :class:`RouterServices` without a Router)."""

from __future__ import annotations

from router.clock import ManualClock
from router.config.models import RouterConfig
from router.cooldown import Cooldowns
from router.load import LoadTracker
from router.ownership import Ownership
from router.services import RouterServices
from router.shared_load import Admission
from router.state.memory import MemoryStore
from router.table import DeploymentTable


def services_for(
    config: RouterConfig, table: DeploymentTable, clock: ManualClock | None = None,
    load: LoadTracker | None = None,
) -> RouterServices:
    """Memory store, fresh load tracker and cooldowns, no limits admitted."""
    clock = clock or ManualClock()
    load = load or LoadTracker(clock)
    store = MemoryStore()
    return RouterServices(
        table=table, ownership=Ownership(store, table, ttl=60.0), store=store, clock=clock,
        load=load, cooldowns=Cooldowns(clock, allowed_fails=3, cooldown_time=5.0),
        config=config, admission=Admission(load, clock, {}),
    )
