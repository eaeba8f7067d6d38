"""A closed router refuses calls with a clear error instead of reopening pools."""

from __future__ import annotations

from typing import Any

import pytest

from router.errors import InvalidRequestError
from router.router import Router


def _deps() -> list[dict[str, Any]]:
    return [{"model_name": "g", "litellm_params": {"model": "mock/m"},
             "model_info": {"id": "d"}}]


async def test_calls_after_aclose_say_the_router_is_closed() -> None:
    router = Router(_deps())
    made = await router.aresponses(model="g", input="hi")
    await router.aclose()
    with pytest.raises(InvalidRequestError, match="the router is closed"):
        await router.aresponses(model="g", input="again")
    with pytest.raises(InvalidRequestError, match="the router is closed"):
        await router.aget_responses(made.id)
    with pytest.raises(InvalidRequestError, match="the router is closed"):
        await router.adelete_responses(made.id)
    assert not router._parts.pool._senders  # nothing was reopened


async def test_leaving_the_context_closes_it() -> None:
    async with Router(_deps()) as router:
        await router.aresponses(model="g", input="hi")
    with pytest.raises(InvalidRequestError, match="the router is closed"):
        await router.aresponses(model="g", input="hi", stream=True)


def test_the_sync_twins_after_close_say_so_too() -> None:
    with Router(_deps()) as router:
        assert router.responses(model="g", input="hi").routing is not None
    with pytest.raises(InvalidRequestError, match="the router is closed"):
        router.responses(model="g", input="again")
