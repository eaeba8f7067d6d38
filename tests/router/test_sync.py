"""Sync twins run coroutines on a private loop thread (router/sync.py)."""

from __future__ import annotations

import asyncio
import gc
import inspect
import threading
import warnings

import pytest

from router.sync import LoopRunner


async def _where() -> tuple[str, int]:
    await asyncio.sleep(0)
    return threading.current_thread().name, id(asyncio.get_running_loop())


async def _fail() -> None:
    await asyncio.sleep(0)
    raise ValueError("inside")


def test_run_from_sync_code_on_a_private_loop() -> None:
    runner = LoopRunner(name="test-runner")
    try:
        assert not runner.started and runner.loop is None
        name, loop_id = runner.run(_where())
        assert name == "test-runner"
        assert name != threading.current_thread().name
        assert runner.started and runner.loop is not None
        # the same loop serves later calls (pooled connections stay usable)
        assert runner.run(_where())[1] == loop_id == id(runner.loop)
    finally:
        runner.stop()


def test_exceptions_propagate() -> None:
    runner = LoopRunner()
    try:
        with pytest.raises(ValueError, match="inside"):
            runner.run(_fail())
        assert runner.run(_where())  # still usable afterwards
    finally:
        runner.stop()


async def test_inside_a_running_loop_raises_and_closes_the_coroutine() -> None:
    runner = LoopRunner()
    coro = _where()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(RuntimeError, match=r"await router\.aresponses\(") as info:
            runner.run(coro, async_name="aresponses")
        del coro
        gc.collect()
    assert "running event loop" in str(info.value)
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)]
    assert not runner.started  # no thread was started for nothing


async def test_inside_a_running_loop_coroutine_state_is_closed() -> None:
    runner = LoopRunner()
    coro = _where()
    with pytest.raises(RuntimeError, match="use the async method"):
        runner.run(coro)
    assert inspect.getcoroutinestate(coro) == inspect.CORO_CLOSED


def test_stop_is_idempotent_and_joins_the_thread() -> None:
    runner = LoopRunner(name="stop-me")
    runner.stop()  # before start: a no-op
    runner.run(_where())
    loop = runner.loop
    assert loop is not None
    assert any(t.name == "stop-me" for t in threading.enumerate())
    runner.stop()
    runner.stop()
    assert not runner.started and runner.loop is None
    assert loop.is_closed()
    assert not any(t.name == "stop-me" for t in threading.enumerate())


def test_run_after_stop_starts_a_new_loop() -> None:
    runner = LoopRunner()
    try:
        runner.run(_where())
        first = runner.loop
        runner.stop()
        _, loop_id = runner.run(_where())
        assert runner.loop is not None and runner.loop is not first
        assert loop_id == id(runner.loop)
        assert not runner.loop.is_closed()
    finally:
        runner.stop()
