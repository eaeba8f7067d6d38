"""The workers' event loop: uvloop's by default when installed, asyncio's on request; each
serves creates, streams and by-id calls, keeping responses to their key (memory state)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import openai
import pytest

from router.errors import ConfigError
from router.proxy.worker import loop_factory
from router.testing import UpstreamProcess
from tests.router.proxy.helpers import (
    KEY_A,
    KEY_B,
    ServerProcess,
    refused_start,
    server_config,
)


def test_loop_factory_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    import uvloop

    assert loop_factory("asyncio") is None
    assert loop_factory("auto") is uvloop.new_event_loop
    assert loop_factory("uvloop") is uvloop.new_event_loop
    monkeypatch.setitem(sys.modules, "uvloop", None)  # as if it were not installed
    assert loop_factory("auto") is None
    with pytest.raises(ConfigError, match=r"--loop uvloop: uvloop is not installed"):
        loop_factory("uvloop")
    with pytest.raises(ConfigError, match=r"--loop: expected one of auto, uvloop, asyncio, "
                                          r"got 'trio'"):
        loop_factory("trio")


def test_unknown_loop_is_a_startup_error(tmp_path: Path) -> None:
    done = refused_start(server_config("http://127.0.0.1:9/v1"), tmp_path, "--loop", "trio")
    assert done.returncode == 1
    assert "--loop: expected one of auto, uvloop, asyncio, got 'trio'" in done.stderr


@pytest.mark.parametrize(("args", "loop"), [((), "uvloop"), (("--loop", "asyncio"), "asyncio")])
async def test_server_serves_on_either_loop(tmp_path: Path, args: tuple[str, ...],
                                            loop: str) -> None:
    with UpstreamProcess(name="loop") as up:
        server = ServerProcess(server_config(f"{up.url}/v1"), tmp_path, args=args)
        await asyncio.to_thread(server.start)
        try:
            async with openai.AsyncOpenAI(base_url=f"{server.url}/v1", api_key=KEY_A,
                                          max_retries=0) as client, openai.AsyncOpenAI(
                    base_url=f"{server.url}/v1", api_key=KEY_B, max_retries=0) as other:
                first = await client.responses.create(model="gpt-4o", input="Hello")
                events = [e.type async for e in await client.responses.create(
                    model="gpt-4o", input="More", previous_response_id=first.id,
                    stream=True)]
                assert (await client.responses.retrieve(first.id)).id == first.id
                with pytest.raises(openai.NotFoundError):  # memory state: still its key's
                    await other.responses.retrieve(first.id)
                with pytest.raises(openai.BadRequestError):
                    await other.responses.create(model="gpt-4o", input="x",
                                                 previous_response_id=first.id)
                with pytest.raises(openai.BadRequestError) as bad:  # as with Redis state
                    await client.responses.create(model="gpt-4o", input="x",
                                                  previous_response_id="bad id!")
                assert bad.value.param == "previous_response_id"
        finally:
            await asyncio.to_thread(server.stop)
    assert first.status == "completed"
    assert events[0] == "response.created" and events[-1] == "response.completed"
    assert any(f"event loop {loop}" in line for line in server.output), server.output
