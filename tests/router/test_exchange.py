"""One attempt on one deployment (router/exchange.py): the time limit is applied and
mapped once, usage is reported to the slot, ownership is recorded when stored."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import pytest

from providers.mock import MockProvider
from router.deployment import Deployment
from router.errors import UpstreamConnectionError, UpstreamError, UpstreamTimeoutError
from router.exchange import Exchange
from router.request import RouteRequest
from router.router import Router
from router.types import Response, StreamEvent


class Hanging(MockProvider):
    """Never answers a plain call; a stream that ends before its first event."""

    async def create(self, deployment: Deployment, request: RouteRequest,
                     timeout: float | None) -> Response:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def stream(self, deployment: Deployment, request: RouteRequest,
                     timeout: float | None) -> AsyncGenerator[StreamEvent, None]:
        return
        yield  # an async generator that ends at once


@pytest.fixture
async def router() -> AsyncIterator[Router]:
    async with Router([{"model_name": "g", "litellm_params": {"model": "mock/m"},
                        "model_info": {"id": "d"}}]) as made:
        yield made


def _exchange(router: Router, mock: MockProvider | None = None) -> tuple[Exchange, list[Any]]:
    broken: list[tuple[Deployment, UpstreamError]] = []
    made = Exchange(router.services.ownership, mock or MockProvider(),
                    lambda d, e: broken.append((d, e)))
    return made, broken


def _request(**params: Any) -> RouteRequest:
    return RouteRequest(model="g", params={"input": "hi", **params}, mock_response="ok")


async def test_the_attempts_time_limit_becomes_the_routers_timeout_naming_the_deployment(
    router: Router,
) -> None:
    exchange, _ = _exchange(router, Hanging())
    deployment = router.deployments()[0]
    load = router.services.load
    with pytest.raises(UpstreamTimeoutError) as caught:
        async with load.acquire(deployment.id) as slot:
            await exchange.create(_request(), deployment, 0.01, slot)
    assert caught.value.deployment_id == "d" and caught.value.model_group == "g"
    assert load.in_flight("d") == 0


async def test_a_plain_answer_reports_its_usage_and_records_its_owner(router: Router) -> None:
    exchange, _ = _exchange(router)
    deployment = router.deployments()[0]
    async with router.services.load.acquire(deployment.id) as slot:
        response, usage = await exchange.create(_request(), deployment, None, slot)
    assert usage is not None and usage.total_tokens == response.raw["usage"]["total_tokens"]
    assert router.services.load.usage("d").tokens == usage.total_tokens
    assert await router.services.ownership.owner(response.id) is deployment


async def test_store_false_records_no_owner(router: Router) -> None:
    exchange, _ = _exchange(router)
    deployment = router.deployments()[0]
    async with router.services.load.acquire(deployment.id) as slot:
        response, _ = await exchange.create(_request(store=False), deployment, None, slot)
    assert await router.services.ownership.owner(response.id) is None


async def test_a_stream_takes_the_slot_over_and_gives_it_back_at_its_end(router: Router) -> None:
    exchange, _ = _exchange(router)
    deployment = router.deployments()[0]
    load = router.services.load
    async with load.acquire(deployment.id) as slot:
        stream = await exchange.open_stream(_request(), deployment, None, slot)
    assert load.in_flight("d") == 1
    events = [event async for event in stream]
    assert events[-1].type == "response.completed"
    assert load.in_flight("d") == 0 and load.ttft("d") is not None
    assert await router.services.ownership.owner(events[0].response.id) is deployment


async def test_a_stream_that_ends_before_its_first_event_is_a_connection_error(
    router: Router,
) -> None:
    exchange, _ = _exchange(router, Hanging())
    deployment = router.deployments()[0]
    with pytest.raises(UpstreamConnectionError, match="ConnectionResetError"):
        async with router.services.load.acquire(deployment.id) as slot:
            await exchange.open_stream(_request(), deployment, None, slot)
    assert router.services.load.in_flight("d") == 0
