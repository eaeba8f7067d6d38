"""Translation's added cost as instruction counts: repeatable where timings are not.

On a shared two-core machine ``benchmarks/translation.py``'s µs figures move by
a third from one minute to the next (the native path itself measured 29 to 86
µs a request on one day). Instructions executed do not move: this runs each
target's plain ``store: false`` requests in process (the recorded answers of
``translation.py --upstream in-process``, no sockets) under valgrind's
callgrind, at two request counts, and reports the instructions per request
(the difference over the difference, which cancels start-up and recording)
and each codec's added instructions over the native path.

Python's hash seed changes dict probing by a few thousand instructions, so
every run sets ``PYTHONHASHSEED=0``; two runs of the same code then agree
within about 2,000 instructions a request. Instructions are not µs: SHA-256
runs in software under valgrind (the CPU's SHA instructions are hidden), so
Bedrock's signature counts several times what it costs, and system calls
(``getrandom`` for ids) are not counted at all.

    .venv/bin/python benchmarks/translation_count.py [--only chat,bedrock]
        [--requests 200,700]

Each valgrind run takes one to two minutes; ``--drive NAME N`` is the
measured process itself (N plain requests of target NAME).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

if not __package__:  # run as a script: make the ``benchmarks`` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import translation
from benchmarks.common import INPUT, Sizes, markdown_table

NATIVE = "native"
_COLLECTED = re.compile(r"Collected\s*:\s*(\d+)")


async def drive(name: str, requests: int) -> int:
    """``requests`` plain ``store: false`` creates of target ``name`` (or the native path),
    in process; how many came back completed."""
    entries = [e for e in translation.ENTRIES if e.name == name] if name != NATIVE else []
    if name != NATIVE and not entries:
        raise SystemExit(f"--drive: no codec named {name!r}")
    sizes = Sizes(serial=1, parallel=1, warmup=10, rounds=1)
    async with translation.prepared_targets(entries, sizes, "in-process") as targets:
        wanted = translation.NATIVE.name if name == NATIVE else name
        target = next(t for t in targets if t.name == wanted)
        completed = 0
        for _ in range(requests):
            response = await target.router.aresponses(
                model=translation.GROUP, input=INPUT, store=False)
            completed += response["status"] == "completed"
        return completed


def collected(stderr: str) -> int:
    """The instruction total callgrind printed (``==pid== Collected : N``)."""
    found = _COLLECTED.findall(stderr)
    if not found:
        raise RuntimeError(f"callgrind printed no instruction total: {stderr[-300:]!r}")
    return int(found[-1])


def count(name: str, requests: int) -> int:
    """Instructions of one ``--drive`` process under callgrind."""
    with tempfile.TemporaryDirectory() as folder:
        run = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={folder}/out",
             sys.executable, __file__, "--drive", name, str(requests)],
            capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "0"},
            check=False)
    if run.returncode:
        raise RuntimeError(f"{name}: the measured process failed: {run.stderr[-500:]}")
    return collected(run.stderr)


def per_request(name: str, low: int, high: int) -> float:
    """Instructions per request: the difference of two runs over their request counts."""
    return (count(name, high) - count(name, low)) / (high - low)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", help="comma-separated codec names (default: all)")
    parser.add_argument("--requests", default="200,700", help="the two request counts")
    parser.add_argument("--drive", nargs=2, metavar=("NAME", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.drive:
        asyncio.run(drive(args.drive[0], int(args.drive[1])))
        return
    low, high = (int(n) for n in args.requests.split(","))
    names = [e.name for e in translation.ENTRIES
             if not args.only or e.name in args.only.split(",")]
    native = per_request(NATIVE, low, high)
    rows = [[NATIVE, f"{native:,.0f}", "-", "-"]]
    for name in names:
        mine = per_request(name, low, high)
        rows.append([name, f"{mine:,.0f}", f"{mine - native:+,.0f}",
                     f"{(mine - native) / native:.2f}x"])
    print("## Translation in instructions per plain request (callgrind, PYTHONHASHSEED=0)\n")
    print(markdown_table(["target", "instructions/req", "added", "added / native"], rows))
    print(f"\n{low} and {high} requests per run; read the figures as +-2,000.")


if __name__ == "__main__":
    main()
