"""N worker processes on one port, kept running, stopped gracefully.

The supervisor binds the listening socket once and forks every worker
from itself after the server's code is imported (and the config checked),
so a worker starts in milliseconds instead of importing everything again,
and N workers on a few cores do not compete to import at start. Each worker
accepts from the same socket: no connection is refused while one worker
restarts, and ``--port 0`` means one port for all. The supervisor never runs
an event loop or a thread, so forking it is safe.

* Ready: it prints ``READY http://HOST:PORT (N workers)`` once every worker
  has said so on the readiness pipe.
* A worker that exits while the server runs is restarted (after a short
  pause that grows when it keeps crashing; after 10 crashes within a minute
  the supervisor gives up and exits with status 1). A worker that exits with
  :data:`EX_CONFIG` stops the server with that status.
* SIGTERM or SIGINT: the supervisor closes its copy of the socket and
  forwards SIGTERM to every worker; each drains within the grace period; a
  worker still alive 5 s after that is killed.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import tempfile
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType

__all__ = ["EX_CONFIG", "Supervisor", "SupervisorOptions", "WorkerSpec"]

#: A worker's exit status for an unusable configuration (sysexits' EX_CONFIG).
EX_CONFIG = 78
_POLL = 0.05
_KILL_MARGIN = 5.0
_CRASH_WINDOW = 60.0
_MAX_CRASHES = 10


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """What a worker is told: its listening socket, readiness pipe, index, run directory."""

    config: str
    fd: int
    ready_fd: int
    index: int
    run_dir: str


@dataclass(frozen=True, slots=True)
class SupervisorOptions:
    """``target`` runs one worker in the forked child and returns its exit status."""

    target: Callable[[WorkerSpec], int]
    config: str
    host: str
    port: int
    workers: int
    grace: float
    backlog: int = 2048
    say: Callable[[str], None] = print


@dataclass
class _Slot:
    index: int
    pid: int | None = None
    restart_at: float | None = None
    crashes: deque[float] = field(default_factory=deque)


def _listen(host: str, port: int, backlog: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    return sock


def _exit_status(pid: int) -> int | None:
    """The exit status of child ``pid`` if it has ended (reaping it), else ``None``."""
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return 1
    return None if done == 0 else os.waitstatus_to_exitcode(status)


class Supervisor:
    """Runs the workers until a signal asks it to stop; :meth:`run` returns the exit status."""

    def __init__(self, opts: SupervisorOptions) -> None:
        self._opts = opts
        self._sock = _listen(opts.host, opts.port, opts.backlog)
        self._ready_r, self._ready_w = os.pipe()
        os.set_blocking(self._ready_r, False)
        self._run_dir = tempfile.mkdtemp(prefix="responses-router-")
        self._slots = [_Slot(i) for i in range(opts.workers)]
        self._stopping = False
        self._ready: set[int] = set()
        self._announced = False

    @property
    def url(self) -> str:
        host, port = self._sock.getsockname()[:2]
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        try:
            for slot in self._slots:
                self._spawn(slot)
            status = self._loop()
            self._sock.close()  # with the workers' copies closed too, new connections are refused
            self._drain()
            return status
        finally:
            self._sock.close()
            os.close(self._ready_r)
            os.close(self._ready_w)
            shutil.rmtree(self._run_dir, ignore_errors=True)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._stopping = True

    def _spawn(self, slot: _Slot) -> None:
        spec = WorkerSpec(self._opts.config, self._sock.fileno(), self._ready_w, slot.index,
                          self._run_dir)
        pid = os.fork()
        if pid == 0:
            os._exit(self._child(spec))
        slot.pid = pid
        slot.restart_at = None

    def _child(self, spec: WorkerSpec) -> int:
        """In the forked worker: default signal handling, then the worker itself."""
        try:
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, signal.SIG_DFL)
            os.close(self._ready_r)
            return self._opts.target(spec)
        except SystemExit as exc:
            return exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            traceback.print_exc()
            return 1

    def _loop(self) -> int:
        while not self._stopping:
            self._read_ready()
            now = time.monotonic()
            for slot in self._slots:
                status = self._check(slot, now)
                if status is not None:
                    return status
            time.sleep(_POLL)
        return 0

    def _check(self, slot: _Slot, now: float) -> int | None:
        """Restart ``slot``'s worker when it died; an exit status when the server must stop."""
        if slot.pid is None:
            if slot.restart_at is not None and now >= slot.restart_at:
                self._spawn(slot)
            return None
        code = _exit_status(slot.pid)
        if code is None:
            return None
        slot.pid = None
        self._ready.discard(slot.index)
        if code == EX_CONFIG:
            self._opts.say("the configuration is invalid (see the worker's message); stopping")
            return EX_CONFIG
        slot.crashes.append(now)
        while slot.crashes and slot.crashes[0] < now - _CRASH_WINDOW:
            slot.crashes.popleft()
        if len(slot.crashes) >= _MAX_CRASHES:
            self._opts.say(f"worker {slot.index} keeps crashing (exit {code}); giving up")
            return 1
        pause = min(0.1 * 2 ** (len(slot.crashes) - 1), 5.0)
        self._opts.say(f"worker {slot.index} exited with status {code}; restarting")
        slot.restart_at = now + pause
        return None

    def _read_ready(self) -> None:
        try:
            data = os.read(self._ready_r, 4096)
        except BlockingIOError:
            return
        for line in data.decode().splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] == "ready":
                self._ready.add(int(parts[1]))
        if not self._announced and len(self._ready) == len(self._slots):
            self._announced = True
            self._opts.say(f"READY {self.url} ({len(self._slots)} workers)")

    def _drain(self) -> None:
        """Forward SIGTERM; wait for the grace period (plus a margin); kill the rest."""
        pids = [s.pid for s in self._slots if s.pid is not None]
        for pid in pids:
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + self._opts.grace + _KILL_MARGIN
        while pids and time.monotonic() < deadline:
            pids = [pid for pid in pids if _exit_status(pid) is None]
            time.sleep(_POLL)
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
