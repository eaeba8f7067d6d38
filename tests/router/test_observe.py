"""How callbacks are called: after the response, sync or async, bounded, never fatal.

Through a Router with mock deployments (no network): the order of "caller
has the response" and "callback ran"; a failing callback (logged once, the
request unharmed); a slow one (the response does not wait); overflow (dropped,
counted, logged once); timeouts; which hooks an object gets; and that with
nothing listening no event is built and no task is made.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Any

import pytest

import router.observe as observe
from router.clock import ManualClock
from router.events import Callback, FailureEvent, RetryEvent, SuccessEvent
from router.observe import CallbackLimits, CallbackStats, Observers


def mock_dep(name: str, group: str = "m") -> dict[str, Any]:
    return {"model_name": group, "litellm_params": {"model": "mock/x"}, "model_info": {"id": name}}


def observers(*callbacks: object, **limits: Any) -> Observers:
    return Observers(callbacks, clock=ManualClock(), group_of=lambda _: None,
                     limits=CallbackLimits(**limits))


async def test_sync_callbacks_run_after_the_caller_has_the_response(make_router):
    order: list[str] = []
    router = make_router([mock_dep("m1")], callbacks=[lambda e: order.append("callback")])
    await router.aresponses(model="m", input="hi")
    order.append("caller has the response")  # no await since the call returned
    await router.drain_callbacks()
    assert order == ["caller has the response", "callback"]


async def test_async_callbacks_run_in_the_background(make_router):
    order: list[str] = []

    async def callback(event: Any) -> None:
        order.append("async callback")

    router = make_router([mock_dep("m1")], callbacks=[callback])
    await router.aresponses(model="m", input="hi")
    order.append("caller has the response")
    await router.drain_callbacks()
    assert order == ["caller has the response", "async callback"]


async def test_a_slow_callback_never_delays_the_response(make_router):
    gate = asyncio.Event()
    finished: list[Any] = []

    async def slow(event: Any) -> None:
        await gate.wait()  # as slow as the test wants
        finished.append(event)

    router = make_router([mock_dep("m1")], callbacks=[slow])
    answers = [await router.aresponses(model="m", input="hi") for _ in range(3)]
    assert len(answers) == 3 and finished == []  # served while every callback still waits
    assert await router.drain_callbacks(timeout=0.01) is False
    gate.set()
    assert await router.drain_callbacks() is True
    assert [e.response_id for e in finished] == [a.id for a in answers]


async def test_a_failing_callback_is_logged_once_and_never_breaks_a_request(make_router, caplog):
    calls: list[Any] = []

    def broken(event: Any) -> None:
        calls.append(event)
        raise RuntimeError("callback bug")

    router = make_router([mock_dep("m1")], callbacks=[broken, calls.append])
    caplog.set_level(logging.ERROR, logger="router.observe")
    for _ in range(3):
        assert (await router.aresponses(model="m", input="hi")).status == "completed"
    await router.drain_callbacks()
    assert len(calls) == 6  # the callback after the broken one still ran each time
    records = [r for r in caplog.records if r.name == "router.observe"]
    assert len(records) == 1
    assert "broken" in records[0].getMessage() and "RuntimeError" in records[0].getMessage()
    assert records[0].exc_info is not None
    assert router.callback_stats() == CallbackStats(errors=3, timeouts=0, dropped=0)


async def test_a_failing_async_callback_is_logged_once_too(make_router, caplog):
    async def broken(event: Any) -> None:
        raise ValueError("async bug")

    router = make_router([mock_dep("m1")], callbacks=[broken])
    caplog.set_level(logging.ERROR, logger="router.observe")
    for _ in range(2):
        await router.aresponses(model="m", input="hi")
    await router.drain_callbacks()
    assert len([r for r in caplog.records if r.name == "router.observe"]) == 1
    assert router.callback_stats().errors == 2


async def test_overflow_drops_events_counts_them_and_logs_once(make_router, caplog):
    gate = asyncio.Event()
    ran: list[Any] = []

    async def blocked(event: Any) -> None:
        await gate.wait()
        ran.append(event)

    router = make_router([mock_dep("m1")], callbacks=[blocked],
                         callback_limits=CallbackLimits(max_pending=2))
    caplog.set_level(logging.WARNING, logger="router.observe")
    for _ in range(5):
        await router.aresponses(model="m", input="hi")
    assert router.callback_stats().dropped == 3
    gate.set()
    await router.drain_callbacks()
    assert len(ran) == 2
    warnings = [r for r in caplog.records if r.name == "router.observe"]
    assert len(warnings) == 1 and "dropped" in warnings[0].getMessage()


async def test_an_async_callback_past_its_timeout_is_stopped(make_router, caplog):
    never = asyncio.Event()

    async def stuck(event: Any) -> None:
        await never.wait()

    router = make_router([mock_dep("m1")], callbacks=[stuck],
                         callback_limits=CallbackLimits(timeout=0.01))
    caplog.set_level(logging.ERROR, logger="router.observe")
    await router.aresponses(model="m", input="hi")
    assert await router.drain_callbacks(timeout=5) is True
    assert router.callback_stats() == CallbackStats(errors=0, timeouts=1, dropped=0)
    assert "took longer" in caplog.records[0].getMessage()


async def test_an_object_gets_only_the_hooks_it_defines(make_router):
    class OnSuccess(Callback):
        def __init__(self) -> None:
            self.events: list[Any] = []

        async def on_success(self, event: SuccessEvent) -> None:
            self.events.append(event)

    class Duck:  # no base class needed
        def __init__(self) -> None:
            self.failures: list[Any] = []

        def on_failure(self, event: FailureEvent) -> None:
            self.failures.append(event)

    ok, duck = OnSuccess(), Duck()
    router = make_router([mock_dep("m1")], callbacks=[ok, duck])
    await router.aresponses(model="m", input="hi")
    with pytest.raises(Exception, match="unknown model"):
        await router.aresponses(model="other", input="hi")
    await router.drain_callbacks()
    assert [type(e) for e in ok.events] == [SuccessEvent]
    assert [type(e) for e in duck.failures] == [FailureEvent]


def test_only_listeners_of_a_request_end_make_requests_report(caplog):
    caplog.set_level(logging.WARNING, logger="router.request")

    class RetriesOnly(Callback):
        def on_retry(self, event: RetryEvent) -> None: ...

    assert not observers(RetriesOnly()).watching()
    assert observers(RetriesOnly()).retry
    assert observers(lambda e: None).watching()
    assert not observers().watching()
    caplog.set_level(logging.INFO, logger="router.request")
    assert observers().watching()  # the INFO request line wants each request's end


async def test_a_sync_callable_returning_a_coroutine_is_awaited(make_router):
    seen: list[Any] = []

    async def record(tag: str, event: Any) -> None:
        seen.append((tag, type(event).__name__))

    router = make_router([mock_dep("m1")], callbacks=[functools.partial(record, "partial"),
                                                      lambda e: record("lambda", e)])
    await router.aresponses(model="m", input="hi")
    await router.drain_callbacks()
    assert sorted(seen) == [("lambda", "SuccessEvent"), ("partial", "SuccessEvent")]


def test_a_callback_that_is_neither_callable_nor_an_observer_is_refused():
    with pytest.raises(TypeError, match=r"callbacks\[1\] is a str"):
        observers(print, "not a callback")


def test_without_a_running_loop_sync_handlers_run_inline_and_async_ones_drop(caplog):
    seen: list[object] = []

    async def later(event: object) -> None:
        seen.append(("async", event))

    hub = observers(seen.append, later)
    hub.emit(hub.success, "event")
    assert seen == ["event"]
    assert hub.stats().dropped == 1


def test_callback_limits_are_validated():
    with pytest.raises(ValueError, match="max_pending"):
        CallbackLimits(max_pending=0)
    with pytest.raises(ValueError, match="timeout"):
        CallbackLimits(timeout=0)


async def test_nothing_listening_builds_no_event_and_makes_no_task(make_router, monkeypatch,
                                                                  caplog):
    def forbidden(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("an event was built with nothing listening")

    for name in ("SuccessEvent", "FailureEvent", "RetryEvent", "FallbackEvent"):
        monkeypatch.setattr(observe, name, forbidden)
    monkeypatch.setattr(Observers, "emit", forbidden)
    caplog.set_level(logging.WARNING, logger="router.request")
    router = make_router([mock_dep("m1"), mock_dep("m2")], num_retries=1)
    tasks_before = len(asyncio.all_tasks())
    await router.aresponses(model="m", input="hi")
    stream = await router.aresponses(model="m", input="hi", stream=True)
    async for _ in stream:
        pass
    with pytest.raises(Exception, match="unknown model"):
        await router.aresponses(model="other", input="hi")
    assert len(asyncio.all_tasks()) == tasks_before


async def test_close_drains_pending_callbacks(make_router):
    done: list[Any] = []

    async def later(event: Any) -> None:
        await asyncio.sleep(0)
        done.append(event)

    router = make_router([mock_dep("m1")], callbacks=[later])
    await router.aresponses(model="m", input="hi")
    await router.aclose()
    assert len(done) == 1
