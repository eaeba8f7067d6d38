"""Prometheus metrics: their values after a known sequence of requests.

The sequence runs over real loopback upstreams with a frozen clock (so every
latency is 0 and falls in the first bucket) and a fixed ``usage`` on every
answer (1,200 input tokens of which 200 cached, 300 output: 0.00575 at the
prices below, see tests/router/test_cost.py). Histogram arithmetic is checked
separately with hand-made events.
"""

from __future__ import annotations

import asyncio
from typing import Any

import prometheus_client
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from router.clock import ManualClock
from router.cost import TokenUsage
from router.errors import BadRequestError
from router.events import CooldownEvent, EndUser, SuccessEvent
from router.metrics import PrometheusMetrics
from router.types import AttemptTrail
from tests.conftest import InOrder, openai_dep, wait_until

PRICED = {"input_cost_per_token": 2.5e-6, "output_cost_per_token": 1e-5,
          "cache_read_input_token_cost": 1.25e-6}
USAGE = {"input_tokens": 1200, "input_tokens_details": {"cached_tokens": 200},
         "output_tokens": 300, "output_tokens_details": {"reasoning_tokens": 0},
         "total_tokens": 1500}
COST = 0.00575


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


async def test_values_after_a_known_sequence(upstreams, make_router):
    a, b, c = await upstreams("a", "b", "c", extra_fields={"usage": USAGE})
    registry = CollectorRegistry()
    clock = ManualClock()
    router = make_router(
        [openai_dep(a, model_info=PRICED), openai_dep(b, model_info=PRICED), openai_dep(c, "g2")],
        metrics=registry, clock=clock, routing_strategy=InOrder(), num_retries=1,
        allowed_fails=100, fallbacks=[{"gpt-4o": ["g2"]}])
    a.faults.fail(500, times=1)
    await router.aresponses(model="gpt-4o", input="1")  # a fails, retried on b
    await router.aresponses(model="gpt-4o", input="2")  # a
    await router.aresponses(model="gpt-4o", input="3")  # a
    stream = await router.aresponses(model="gpt-4o", input="4", stream=True)  # a, streamed
    async for _ in stream:
        pass
    a.faults.fail(400, times=1)
    with pytest.raises(BadRequestError):
        await router.aresponses(model="gpt-4o", input="5")  # a: not retried
    a.faults.fail(429, retry_after=60, times=1)
    b.faults.fail(500, times=1)
    await router.aresponses(model="gpt-4o", input="6")  # a 429 (cools), b 500, falls back to c
    await router.drain_callbacks()

    def v(name: str, group: str = "gpt-4o", **labels: str) -> float | None:
        return value(registry, f"router_{name}", model_group=group, **labels)

    assert v("requests_total", deployment_id="a") == 4  # 3 served + 1 failed
    assert v("requests_total", deployment_id="b") == 1
    assert v("requests_total", "g2", deployment_id="c") == 1
    assert v("request_failures_total", deployment_id="a", error_class="BadRequestError") == 1
    assert v("attempt_errors_total", deployment_id="a", error_class="ServerError") == 1
    assert v("attempt_errors_total", deployment_id="a", error_class="BadRequestError") == 1
    assert v("attempt_errors_total", deployment_id="a", error_class="RateLimitError") == 1
    assert v("attempt_errors_total", deployment_id="b", error_class="ServerError") == 1
    assert v("retries_total", deployment_id="a") == 2  # b's failure led to a fallback instead
    assert v("retries_total", deployment_id="b") is None
    assert value(registry, "router_fallbacks_total", model_group="gpt-4o", to_group="g2") == 1
    assert v("request_duration_seconds_count", deployment_id="a") == 3
    assert v("request_duration_seconds_bucket", deployment_id="a", le="0.025") == 3
    assert v("request_duration_seconds_sum", deployment_id="a") == 0.0
    assert v("time_to_first_token_seconds_count", deployment_id="a") == 1
    assert v("time_to_first_token_seconds_count", deployment_id="b") is None
    assert v("tokens_total", deployment_id="a", kind="input") == 3 * 1200
    assert v("tokens_total", deployment_id="a", kind="output") == 3 * 300
    assert v("tokens_total", deployment_id="a", kind="cached_input") == 3 * 200
    assert v("tokens_total", "g2", deployment_id="c", kind="input") == 1200
    assert v("cost_total", deployment_id="a") == pytest.approx(3 * COST, rel=1e-12)
    assert v("cost_total", deployment_id="b") == pytest.approx(COST, rel=1e-12)
    assert v("cost_total", "g2", deployment_id="c") is None  # no prices: unknown, not 0
    assert v("cooldowns_total", deployment_id="a", reason="RateLimitError") == 1
    assert v("cooling_down", deployment_id="a") == 1
    assert v("cooldown_remaining_seconds", deployment_id="a") == 60
    assert v("cooling_down", deployment_id="b") == 0
    assert v("in_flight", deployment_id="a") == 0


async def test_a_request_that_reached_no_deployment_is_counted_without_one(make_router):
    registry = CollectorRegistry()
    router = make_router([{"model_name": "m", "litellm_params": {"model": "mock/x"}}],
                         metrics=registry)
    with pytest.raises(Exception, match="unknown model"):
        await router.aresponses(model="nope", input="hi")
    await router.drain_callbacks()
    assert value(registry, "router_requests_total", model_group="nope", deployment_id="") == 1
    assert value(registry, "router_request_failures_total", model_group="nope",
                 deployment_id="", error_class="UnknownModelError") == 1


async def test_in_flight_is_read_live(upstreams, make_router):
    (up,) = await upstreams("a")
    up.faults.hang()
    metrics = PrometheusMetrics()
    router = make_router([openai_dep(up)], metrics=metrics)
    task = asyncio.create_task(router.aresponses(model="gpt-4o", input="hi"))
    assert await wait_until(lambda: bool(up.requests))  # the upstream holds the request
    labels = {"model_group": "gpt-4o", "deployment_id": "a"}
    assert metrics.registry.get_sample_value("router_in_flight", labels) == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert metrics.registry.get_sample_value("router_in_flight", labels) == 0


def event(latency: float, ttft: float | None) -> SuccessEvent:
    return SuccessEvent(
        requested_model="m", model_group="m", deployment_id="d", provider="mock", attempt=1,
        stream=ttft is not None, latency=latency, ttft=ttft,
        usage=TokenUsage(10, 20, 30), cost=None, response_id=None, response_status=None,
        end_user=EndUser(), trail=AttemptTrail("m"))


def test_histograms_with_hand_made_events():
    metrics = PrometheusMetrics(latency_buckets=(0.1, 1.0, 10.0), ttft_buckets=(0.05, 0.5))
    for latency, ttft in ((0.05, None), (0.3, 0.07), (2.0, 0.6), (30.0, None)):
        metrics.on_success(event(latency, ttft))
    r = metrics.registry

    def bucket(name: str, le: str) -> float | None:
        return r.get_sample_value(f"router_{name}_bucket",
                                  {"model_group": "m", "deployment_id": "d", "le": le})

    assert [bucket("request_duration_seconds", le) for le in ("0.1", "1.0", "10.0", "+Inf")] == [
        1, 2, 3, 4]
    labels = {"model_group": "m", "deployment_id": "d"}
    assert r.get_sample_value("router_request_duration_seconds_sum", labels) == pytest.approx(
        32.35)
    assert [bucket("time_to_first_token_seconds", le) for le in ("0.05", "0.5", "+Inf")] == [
        0, 1, 2]
    assert r.get_sample_value("router_tokens_total", {**labels, "kind": "output"}) == 80
    assert r.get_sample_value("router_cost_total", labels) is None


def test_the_global_registry_is_used_only_when_asked():
    metrics = PrometheusMetrics()
    metrics.on_success(event(0.1, None))
    assert metrics.registry is not prometheus_client.REGISTRY
    assert prometheus_client.REGISTRY.get_sample_value(
        "router_requests_total", {"model_group": "m", "deployment_id": "d"}) is None


async def test_metrics_accepts_a_registry_or_an_instance_and_nothing_else(make_router):
    registry = CollectorRegistry()
    make_router([{"model_name": "m", "litellm_params": {"model": "mock/x"}}], metrics=registry)
    assert b"router_in_flight" in generate_latest(registry)
    with pytest.raises(TypeError, match=r"metrics=.*got dict"):
        make_router([{"model_name": "m", "litellm_params": {"model": "mock/x"}}], metrics={})


async def test_one_metrics_object_reports_one_router(make_router):
    metrics = PrometheusMetrics()
    deps = [{"model_name": "m", "litellm_params": {"model": "mock/x"}}]
    make_router(deps, metrics=metrics)
    with pytest.raises(ValueError, match="already reports a router"):
        make_router(deps, metrics=metrics)


async def test_two_routers_share_a_registry_with_distinct_namespaces(make_router):
    registry = CollectorRegistry()
    deps = [{"model_name": "m", "litellm_params": {"model": "mock/x"}, "model_info": {"id": "d"}}]
    one = make_router(deps, metrics=PrometheusMetrics(registry, namespace="one"))
    two = make_router(deps, metrics=PrometheusMetrics(registry, namespace="two"))
    await one.aresponses(model="m", input="hi")
    for _ in range(2):
        await two.aresponses(model="m", input="hi")
    await one.drain_callbacks()
    labels: dict[str, Any] = {"model_group": "m", "deployment_id": "d"}
    assert registry.get_sample_value("one_requests_total", labels) == 1
    assert registry.get_sample_value("two_requests_total", labels) == 2


def test_cooldowns_recorded_by_another_router_process_are_not_counted_twice():
    metrics = PrometheusMetrics()
    mine = CooldownEvent(deployment_id="d", model_group="m", reason="RateLimitError",
                         status=429, seconds=5.0, until_wall=0.0, times=1, origin=None)
    metrics.on_cooldown(mine)
    metrics.on_cooldown(mine._replace(origin="router-2"))  # merged from Redis
    assert metrics.registry.get_sample_value("router_cooldowns_total", {
        "model_group": "m", "deployment_id": "d", "reason": "RateLimitError"}) == 1
