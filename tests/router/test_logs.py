"""The router's log lines, and the rule that no secret ever reaches one.

One INFO line per request (success and failure) with structured ``extra``;
DEBUG lines for routing decisions; an INFO line per cooldown. The last test
gives every credential a distinctive value, drives successes, failures,
retries, cooldowns, fallbacks and streams with every logger at DEBUG, and
scans every log record, event, error, repr and the metrics exposition.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from router.errors import RouterError
from tests.conftest import InOrder, azure_dep, openai_dep


def request_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "router.request"]


async def test_one_info_line_per_served_request_with_structured_fields(upstreams, make_router,
                                                                       caplog):
    (up,) = await upstreams("a")
    caplog.set_level(logging.INFO, logger="router.request")
    router = make_router([openai_dep(up, model_info={"input_cost_per_token": 1e-6,
                                                     "output_cost_per_token": 2e-6})])
    answer = await router.aresponses(model="gpt-4o", input="one two", user="u-1",
                                     safety_identifier="sid", metadata={"k": "v"})
    await router.drain_callbacks()
    [line] = request_lines(caplog)
    assert line.levelno == logging.INFO
    usage = answer.usage
    expected = {
        "outcome": "success", "requested_model": "gpt-4o", "model_group": "gpt-4o",
        "deployment_id": "a", "provider": "openai", "attempt": 1, "retries": 0,
        "fallbacks": [], "stream": False, "ttft": None,
        "input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens,
        "cached_tokens": 0, "total_tokens": usage.total_tokens, "cost": answer.routing.cost,
        "response_id": answer.id, "user": "u-1", "safety_identifier": "sid",
        "metadata": {"k": "v"}, "error_class": None, "status": None,
        "response_status": "completed", "trail": "gpt-4o/a: ok",
    }
    assert {key: line.__dict__[key] for key in expected} == expected
    assert "gpt-4o ok: gpt-4o/a" in line.getMessage() and "user 'u-1'" in line.getMessage()


async def test_one_info_line_per_failed_request(upstreams, make_router, caplog):
    a, b = await upstreams("a", "b")
    a.faults.fail(500)
    b.faults.fail(503)
    caplog.set_level(logging.INFO, logger="router.request")
    router = make_router([openai_dep(a), openai_dep(b)], routing_strategy=InOrder(),
                         num_retries=1)
    with pytest.raises(RouterError):
        await router.aresponses(model="gpt-4o", input="hi")
    await router.drain_callbacks()
    [line] = request_lines(caplog)
    fields = line.__dict__
    assert (fields["outcome"], fields["error_class"], fields["status"]) == (
        "failure", "ServiceUnavailableError", 503)
    assert (fields["deployment_id"], fields["attempt"], fields["retries"]) == ("b", 2, 1)
    assert fields["trail"] == "gpt-4o/a: ServerError [500]; gpt-4o/b: ServiceUnavailableError [503]"
    assert "failed: ServiceUnavailableError [503]" in line.getMessage()


async def test_no_request_line_below_info(make_router, caplog):
    caplog.set_level(logging.WARNING, logger="router.request")
    router = make_router([{"model_name": "m", "litellm_params": {"model": "mock/x"}}])
    await router.aresponses(model="m", input="hi")
    await router.drain_callbacks()
    assert request_lines(caplog) == []


class DropA:
    """A pre-call check that removes deployment ``a``."""

    name = "drop_a"

    async def filter(self, candidates: list[Any], request: Any) -> list[Any]:
        return [d for d in candidates if d.id != "a"]


async def test_debug_lines_say_which_check_removed_what_and_what_was_picked(
    upstreams, make_router, caplog
):
    a, b, c = await upstreams("a", "b", "c")
    caplog.set_level(logging.DEBUG, logger="router.attempts")
    router = make_router([openai_dep(a), openai_dep(b), openai_dep(c)],
                         optional_pre_call_checks=[DropA()], routing_strategy=InOrder())
    await router.aresponses(model="gpt-4o", input="hi")
    messages = [r.getMessage() for r in caplog.records if r.name == "router.attempts"]
    assert "'gpt-4o': check drop_a removed ['a']" in messages
    [pick] = [m for m in messages if "picked" in m]
    assert pick.startswith("'gpt-4o': InOrder picked 'b' among b (in flight 0")
    assert ", c (in flight 0" in pick


async def test_debug_lines_for_retries_and_cooling_deployments(upstreams, make_router, caplog):
    a, b = await upstreams("a", "b")
    a.faults.fail(429, retry_after=30, times=1)
    caplog.set_level(logging.DEBUG, logger="router.attempts")
    router = make_router([openai_dep(a), openai_dep(b)], routing_strategy=InOrder(),
                         num_retries=1)
    await router.aresponses(model="gpt-4o", input="first")
    await router.aresponses(model="gpt-4o", input="second")
    messages = [r.getMessage() for r in caplog.records if r.name == "router.attempts"]
    assert any(m.startswith("retrying 'gpt-4o' after RateLimitError from 'a'") for m in messages)
    left_out = "left out (cooling down, lower order or no rate-limit room): ['a']"
    assert any("InOrder picked 'b'" in m and left_out in m for m in messages)


async def test_a_cooldown_is_one_info_line(upstreams, make_router, caplog):
    a, b = await upstreams("a", "b")
    a.faults.fail(429, retry_after=30, times=1)
    caplog.set_level(logging.INFO, logger="router.cooldown")
    router = make_router([openai_dep(a), openai_dep(b)], routing_strategy=InOrder(),
                         num_retries=1)
    await router.aresponses(model="gpt-4o", input="hi")
    await router.drain_callbacks()
    [line] = [r for r in caplog.records if r.name == "router.cooldown"]
    assert line.getMessage().startswith("deployment 'a' (gpt-4o) cooling down for 30.0s: "
                                        "RateLimitError [429], cooldown 1 in a row")
    assert (line.__dict__["deployment_id"], line.__dict__["reason"]) == ("a", "RateLimitError")


SECRETS = ("sk-SECRET-east-8c1f", "sk-SECRET-west-44aa", "az-SECRET-9d3e", "hdr-SECRET-77b2")


async def test_no_secret_in_any_log_record_event_error_or_repr(upstreams, make_router, caplog):
    east, azure, spare = await upstreams("east", "azure", "spare", api_key=SECRETS[0])
    (west,) = await upstreams("west", api_key=SECRETS[1])
    events: list[Any] = []
    registry = CollectorRegistry()
    caplog.set_level(logging.DEBUG)
    router = make_router(
        [openai_dep(east, api_key=SECRETS[0], extra_headers={"x-extra-auth": SECRETS[3]}),
         openai_dep(west, api_key=SECRETS[1]),
         azure_dep(azure, api_key=SECRETS[2]),  # refused: azure expects SECRETS[0]
         openai_dep(spare, "spare", api_key=SECRETS[0])],
        callbacks=[events.append], metrics=registry, routing_strategy=InOrder(),
        num_retries=3, fallbacks=[{"gpt-4o": ["spare"]}], allowed_fails=0)
    shown: list[str] = [repr(router)]
    for i in range(6):
        answer = await router.aresponses(model="gpt-4o", input=f"q{i}", user="u")
        shown.append(repr(answer.routing))
    stream = await router.aresponses(model="gpt-4o", input="s", stream=True)
    async for event in stream:
        shown.append(repr(event))
    for up in (east, west):
        up.faults.fail(500)
    await router.aresponses(model="gpt-4o", input="falls back")
    spare.faults.fail(401)
    with pytest.raises(RouterError) as caught:
        await router.aresponses(model="gpt-4o", input="fails")
    shown += [repr(caught.value), str(caught.value), str(caught.value.trail)]
    await router.drain_callbacks()
    shown += [repr(e) for e in events]
    shown += [repr(router.inspect()), repr(router.cooldowns()), repr(router.deployments())]
    shown.append(generate_latest(registry).decode())
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    shown += [formatter.format(r) + repr(r.__dict__) for r in caplog.records]
    assert {type(e).__name__ for e in events} >= {
        "SuccessEvent", "FailureEvent", "RetryEvent", "FallbackEvent", "CooldownEvent"}
    assert any(r.name == "router.request" for r in caplog.records)
    assert any(r.name == "router.attempts" for r in caplog.records)
    assert any("AuthenticationError" in text for text in shown)  # the refused key's path ran
    leaks = [text for text in shown if "SECRET" in text]
    assert leaks == []
