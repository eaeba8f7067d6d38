"""Helpers for the server tests: the server as a real process, and a slow-streaming upstream.

* :class:`ServerProcess` runs ``python -m router.proxy.cli serve --port 0``
  with a config written to a temporary file, and waits for its ``READY``
  line; :meth:`ServerProcess.stop` sends SIGTERM and waits for the exit.
  Everything the server prints (stdout and its INFO log) is kept in
  :attr:`ServerProcess.output`.
* :class:`SlowUpstream` is an OpenAI-shaped upstream in a thread of its own
  whose streams send one event every ``interval`` seconds, so a test can act
  while a stream is in flight (disconnect, SIGTERM). It counts the streams
  it is writing (``open_streams``) and the ones whose client went away.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

MASTER = "sk-master-test"
KEY_A = "sk-team-a-0123456789"
KEY_B = "sk-team-b-0123456789"
KEY_LIMITED = "sk-limited-0123456789"
KEY_SERIAL = "sk-serial-0123456789"
KEY_TOKENS = "sk-tokens-0123456789"
KEY_TOKENS_STREAM = "sk-tokens-stream-0123456789"


def server_config(api_base: str, *, redis_url: str | None = None, prefix: str = "rr:",
                  general: dict[str, Any] | None = None, extra_groups: bool = True
                  ) -> dict[str, Any]:
    """A config with group ``gpt-4o`` (and ``other``) at ``api_base``, a master key and
    six API keys (one limited to ``gpt-4o``, one free, one at 3 rpm, one at 1 parallel,
    two at 1 token per minute)."""
    def dep(name: str, model_id: str) -> dict[str, Any]:
        return {"model_name": name, "litellm_params": {
            "model": "openai/gpt-4o", "api_base": api_base, "api_key": "k1"},
            "model_info": {"id": model_id}}

    model_list = [dep("gpt-4o", "dep-main")] + ([dep("other", "dep-other")] if extra_groups
                                                  else [])
    router: dict[str, Any] = {"num_retries": 0, "redis_key_prefix": prefix}
    if redis_url:
        router["redis_url"] = redis_url
    settings: dict[str, Any] = {
        "master_key": MASTER,
        "api_keys": [
            {"key": KEY_A, "key_alias": "team-a", "models": ["gpt-4o"]},
            {"key": KEY_B, "key_alias": "team-b"},
            {"key": KEY_LIMITED, "key_alias": "limited", "rpm_limit": 3},
            {"key": KEY_SERIAL, "key_alias": "serial", "max_parallel_requests": 1},
            {"key": KEY_TOKENS, "key_alias": "tokens", "tpm_limit": 1},
            {"key": KEY_TOKENS_STREAM, "key_alias": "tokens-stream", "tpm_limit": 1},
        ],
        "graceful_shutdown_timeout": 10,
        **(general or {}),
    }
    return {"model_list": model_list, "router_settings": router, "general_settings": settings}


def refused_start(config: dict[str, Any], directory: Path, *args: str
                  ) -> subprocess.CompletedProcess[str]:
    """``serve`` with a config (and arguments) it must refuse: the finished process."""
    path = directory / "refused.yaml"
    path.write_text(yaml.safe_dump(config))
    return subprocess.run(
        [sys.executable, "-m", "router.proxy.cli", "serve", "--config", str(path),
         "--port", "0", *args], capture_output=True, text=True, timeout=30)


class ServerProcess:
    """``responses-router serve`` in a child process on a free loopback port."""

    def __init__(self, config: dict[str, Any], directory: Path, *, workers: int = 1,
                 args: tuple[str, ...] = ()) -> None:
        self.path = directory / f"server-{id(self)}.yaml"
        self.path.write_text(yaml.safe_dump(config))
        self.workers = workers
        self.args = args
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        self.output: list[str] = []

    def start(self, timeout: float = 30.0) -> ServerProcess:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "router.proxy.cli", "serve", "--config", str(self.path),
             "--port", "0", "--workers", str(self.workers), *self.args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "RESPONSES_ROUTER_LOG": "INFO"})
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, args=(lines,), daemon=True).start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=0.1)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            if line.startswith("READY "):
                self.url = line.split()[1]
                return self
        self.stop()
        raise RuntimeError(f"server did not start: {self.output}")

    def _read(self, lines: queue.Queue[str]) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line.rstrip())
            lines.put(line)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def worker_pids(self) -> list[int]:
        found = subprocess.run(["pgrep", "-P", str(self.pid)], capture_output=True, text=True)
        return [int(p) for p in found.stdout.split()]

    def terminate(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 30.0) -> int | None:
        if self.proc is None:
            return None
        self.terminate()
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def _response(rid: str, status: str, text: str) -> dict[str, Any]:
    output = [] if status != "completed" else [{
        "id": "msg_" + rid, "type": "message", "role": "assistant", "status": "completed",
        "content": [{"type": "output_text", "text": text, "annotations": []}]}]
    return {"id": rid, "object": "response", "created_at": 1, "status": status,
            "model": "gpt-4o", "output": output, "error": None, "incomplete_details": None,
            "instructions": None, "metadata": {}, "parallel_tool_calls": True,
            "temperature": 1.0, "tool_choice": "auto", "tools": [], "top_p": 1.0,
            "usage": {"input_tokens": 1, "output_tokens": 1, "total_tokens": 2,
                      "input_tokens_details": {"cached_tokens": 0},
                      "output_tokens_details": {"reasoning_tokens": 0}}
            if status == "completed" else None}


class SlowUpstream:
    """A Responses upstream whose streams send ``events`` deltas of ``size`` characters,
    ``interval`` s apart."""

    def __init__(self, *, events: int = 10, interval: float = 0.2, size: int = 2) -> None:
        self.events = events
        self.interval = interval
        self.size = size
        self.open_streams = 0
        self.finished = 0
        self.abandoned = 0
        self._count = 0
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self.url = ""

    def start(self) -> SlowUpstream:
        threading.Thread(target=self._loop.run_forever, daemon=True).start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/responses", self._create)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}/v1"

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)

    async def _create(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self._count += 1
        rid = f"resp_slow{self._count:06d}"
        if not body.get("stream"):
            try:
                await asyncio.sleep(self.interval * self.events)
            except asyncio.CancelledError:
                self.abandoned += 1
                raise
            return web.json_response(_response(rid, "completed", "done"))
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        self.open_streams += 1
        try:
            await self._send(resp, rid)
        except (asyncio.CancelledError, ConnectionError):
            self.abandoned += 1
            raise
        finally:
            self.open_streams -= 1
        self.finished += 1
        return resp

    async def _send(self, resp: web.StreamResponse, rid: str) -> None:
        seq = 0

        async def send(data: dict[str, Any]) -> None:
            nonlocal seq
            data["sequence_number"] = seq
            seq += 1
            await resp.write(f"event: {data['type']}\ndata: {json.dumps(data)}\n\n".encode())

        await send({"type": "response.created", "response": _response(rid, "in_progress", "")})
        for i in range(self.events):
            await asyncio.sleep(self.interval)
            await send({"type": "response.output_text.delta", "item_id": "msg_" + rid,
                        "output_index": 0, "content_index": 0,
                        "delta": f"{i} ".rjust(self.size, "x"),
                        "logprobs": []})
        text = "".join(f"{i} ".rjust(self.size, "x") for i in range(self.events))
        await send({"type": "response.completed", "response": _response(rid, "completed", text)})
        await resp.write_eof()
