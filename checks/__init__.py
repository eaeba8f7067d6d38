"""Pre-call checks: narrow the candidate deployments before the strategy picks.

A check is any object with a ``name`` and
``async filter(candidates, request) -> candidates``. Config names resolve
through :func:`checks.registry.check_registry`, per router.
"""

from checks.base import CheckContext, PreCallCheck
from checks.registry import check_registry

__all__ = ["CheckContext", "PreCallCheck", "check_registry"]
