"""``/metrics`` over workers: each worker's families merged, samples labelled by worker."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, generate_latest

from router.proxy.metrics import gather_workers, socket_path


async def _worker(run_dir: Path, index: int, count: int) -> web.AppRunner:
    registry = CollectorRegistry()
    Counter("things", "things done", registry=registry).inc(count)

    async def local(request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(registry))

    app = web.Application()
    app.router.add_get("/metrics", local)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.UnixSite(runner, str(socket_path(run_dir, index))).start()
    return runner


@pytest.fixture
async def run_dir(tmp_path: Path) -> AsyncIterator[Path]:
    runners = [await _worker(tmp_path, 0, 2), await _worker(tmp_path, 1, 3)]
    yield tmp_path
    for runner in runners:
        await runner.cleanup()


async def test_families_merged_by_worker(run_dir: Path) -> None:
    text = (await gather_workers(run_dir)).decode()
    assert text.count("# TYPE things_total counter") == 1 or text.count("# TYPE things") == 1
    assert 'things_total{worker="0"} 2.0' in text
    assert 'things_total{worker="1"} 3.0' in text
    assert "proxy_metrics_workers_missing 0.0" in text


async def test_a_dead_worker_is_left_out(run_dir: Path) -> None:
    socket_path(run_dir, 7).touch()  # a socket file nobody listens on
    text = (await gather_workers(run_dir)).decode()
    assert 'worker="0"' in text and 'worker="7"' not in text
    assert "proxy_metrics_workers_missing 1.0" in text
