"""A fake upstream in its own OS process: start it, wait for ``READY <url>``, stop it.

Every fake in this package runs as ``python -m router.testing.<api> --port 0``
and prints ``READY <url>`` once it listens. Benchmarks need them out of the
client's process (their CPU must not count as the router's); the helpers
here are the one way to start and stop such a child.
"""

from __future__ import annotations

import os
import selectors
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = ["spawn", "terminate"]


def spawn(module: str, argv: Sequence[str], timeout: float = 15.0) -> tuple[
        subprocess.Popen[str], str]:
    """Run ``python -m module *argv``; the child and the url it printed when ready.

    The child is terminated again when it does not get ready in ``timeout``
    seconds (``TimeoutError``) or exits first (``RuntimeError``).
    """
    proc = subprocess.Popen([sys.executable, "-m", module, *argv], stdout=subprocess.PIPE,
                            text=True, env=_child_env())
    try:
        return proc, _await_ready(proc, timeout)
    except BaseException:
        terminate(proc)
        raise


def terminate(proc: subprocess.Popen[str]) -> None:
    """Stop the child (killed when it does not exit within 5 s) and close its pipe."""
    proc.terminate()
    try:
        proc.wait(timeout=5.0)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


def _child_env() -> dict[str, str]:
    """The environment, with this checkout importable first."""
    root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


def _await_ready(proc: subprocess.Popen[str], timeout: float) -> str:
    """The url from the child's ``READY <url>`` line."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        while (left := deadline - time.monotonic()) > 0:
            if not selector.select(left):
                break
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError(f"fake upstream process exited early (code {proc.poll()})")
            if line.startswith("READY "):
                return line.split()[1]
    raise TimeoutError(f"fake upstream process not ready after {timeout} s")
