"""What does translation cost? Each codec's added CPU against the native OpenAI path.

The same Responses create (same input, an answer of the same length, the same
number of stream events) goes through ``Router`` to:

* the native fake (``router.testing.UpstreamProcess``, OpenAI ``/v1/responses``):
  the reference, no translation;
* each translated provider's fake, run as ``python -m <fake module> --port 0``
  in its own process, so the router's process CPU is its own.

Each target's answers (plain and streamed) are first recorded from its live
fake, and the measured requests are then all served by one replay process
(:mod:`benchmarks.replay`) that sends those answers again, a stream as its
events. Otherwise a fake's own CPU leaks into the router's figure: on a
two-core machine a busy neighbour core slows the router's code. Here it
raised the native path's CPU per request by about a fifth. The fakes differ
widely in cost (the Bedrock fake checks each SigV4 signature with botocore).
``--upstream live`` measures against the live fakes instead; ``--upstream
in-process`` hands the recorded answers to the routers in their own process
as their sender (:class:`benchmarks.replay.ReplaySender`: no socket, no HTTP
client). That leaves the router's own work, about a fifth of a request's CPU
on the wire, so the same machine noise moves those figures far less.

For each, plain, ``stream=True`` (a stream is iterated to its last event) and
a long stream (:data:`LONG_INPUT` in about :data:`LONG_CHUNKS` deltas), the
router process's CPU time (``time.process_time``) per request is taken over
short batches, each codec batch paired with a native batch run right before
or right after it (the order alternates, and the targets' order rotates each
round). Reported per codec: the median, over all such pairs, of the added CPU per
plain request, per event of a short stream (the stream's added CPU over the
events the caller receives, the request's own added cost included), and per
further event (the slope from short to long streams, the codec's less
native's); the lowest and highest round medians, the user-time share, and
PASS/FAIL against the targets: <= 30 µs per request and <= 3 µs per stream
event over native. Those rows send ``store: false`` (native too),
so they measure translation alone; a second row per codec, "kept", sends the
default ``store: true``, under which the router also keeps each translated
response for follow-ups (:mod:`router.conversations`), measured against
native with ``store: true`` (which records each response's owner; its own row
shows what that costs over ``store: false``): its extra cost is that
feature's, shown beside the target rather than judged by it. Medians of
adjacent pairs keep the figures usable on a shared machine, where one batch
now and then runs slow. A control row measures the native path against
itself (a second router, the same answers): its "added" figures would be 0
on a quiet machine, so they show how far the run's noise reaches. On
loopback the router is pinned to one CPU and the replay processes to the
others, where the platform allows it.

Adding a codec is one :class:`Entry` in :data:`ENTRIES`: its fake's module,
its model prefix, how its ``api_base`` is made from the fake's URL, and any
other ``litellm_params`` it needs.

    .venv/bin/python benchmarks/translation.py [--quick] [--json PATH] [--rounds N]
        [--only chat,azure_ai]
        [--upstream replay|live|in-process]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

from providers.http import ClientPool
from router.router import Router
from router.testing import UpstreamProcess
from router.testing.process import spawn, terminate

if not __package__:  # run as a script: make the ``benchmarks`` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (
    API_KEY,
    INPUT,
    Sizes,
    fmt,
    markdown_table,
    parse_args,
    print_header,
    verdict,
    write_json,
)
from benchmarks.replay import Recorder, Recording, ReplaySender, save

DEFAULT = Sizes(serial=2000, parallel=2000, warmup=200, rounds=5)
QUICK = Sizes(serial=200, parallel=200, warmup=50, rounds=2)
CONCURRENCY = 4
BATCHES = 10
MAX_ADDED_REQUEST_US = 30.0
MAX_ADDED_EVENT_US = 3.0
GROUP = "bench"
#: The long streams' input: each fake echoes it in about :data:`LONG_CHUNKS` deltas.
LONG_INPUT = ("Tell me a long story about the sea, the ships that sail on it, the people "
              "who work on them, the fish below and the birds above, the storms that come "
              "in winter, and the calm days of summer when the water is as still as glass.")
LONG_CHUNKS = 48
#: What is measured: plain creates, short streams (:data:`INPUT`), long streams.
MODES = ("plain", "stream", "long")


@dataclass(frozen=True, slots=True)
class Entry:
    """One translated provider to measure.

    ``fake`` is the module run as ``python -m fake --port 0 --api-key K``
    (it prints ``READY <url>``); ``model`` the ``litellm_params.model``;
    ``api_base`` makes the deployment's ``api_base`` from the fake's URL;
    ``params`` are further ``litellm_params``; ``fake_args`` extra arguments
    of the fake (to make its streams as long as the native fake's);
    ``long_args`` those that make it stream :data:`LONG_INPUT` in many deltas.
    """

    name: str
    fake: str
    model: str
    api_base: Callable[[str], str]
    params: Mapping[str, Any] = field(default_factory=dict)
    fake_args: tuple[str, ...] = ()
    long_args: tuple[str, ...] = ("--stream-chunks", str(LONG_CHUNKS))


ENTRIES: tuple[Entry, ...] = (
    Entry("chat", "router.testing.chat", "hosted_vllm/llama", lambda url: f"{url}/v1",
          fake_args=("--api-key", API_KEY)),
    Entry("azure_ai", "router.testing.chat", "azure_ai/Llama-3.3-70B",
          lambda url: f"{url}/models", {"api_version": "2024-05-01-preview"},
          fake_args=("--api-key", API_KEY)),
    Entry("anthropic", "router.testing.anthropic", "anthropic/claude-sonnet-4-5",
          lambda url: url, fake_args=("--api-key", API_KEY, "--stream-chunks", "4")),
    Entry("gemini", "router.testing.gemini", "gemini/gemini-2.5-flash", lambda url: url,
          fake_args=("--api-key", API_KEY, "--stream-chunks", "4")),
    Entry("bedrock", "router.testing.bedrock",
          "bedrock/anthropic.claude-3-haiku-20240307-v1:0", lambda url: url,
          {"aws_access_key_id": "AKIDBENCH", "aws_secret_access_key": "bench-secret",
           "aws_region_name": "us-east-1"},
          fake_args=("--access-key", "AKIDBENCH", "--secret-key", "bench-secret",
                     "--region", "us-east-1", "--stream-chunk-words", "2"),
          long_args=("--stream-chunk-words", "1")),
)


class FakeProcess:
    """``python -m <module> --port 0 <args>`` until stopped; ``url`` once READY."""

    def __init__(self, module: str, args: tuple[str, ...] = ()) -> None:
        self.module = module
        self.args = args
        self.url = ""
        self.pid: int | None = None
        self._proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> FakeProcess:
        self._proc, self.url = spawn(self.module, ["--port", "0", *self.args])
        self.pid = self._proc.pid
        return self

    def __exit__(self, *exc_info: object) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            terminate(proc)


@dataclass(frozen=True, slots=True)
class Served:
    """Where a target's requests go."""

    url: str


def _in_process_url(long: bool) -> str:
    """The origin of in-process answers, short or long (never resolved)."""
    return f"http://{'long' if long else 'short'}.replay.invalid"


def _router(model: str, served: Served, api_base: Callable[[str], str],
            params: Mapping[str, Any]) -> Router:
    litellm_params = {"model": model, "api_base": api_base(served.url), "api_key": API_KEY,
                      **params}
    return Router([{"model_name": GROUP, "litellm_params": litellm_params}])


def _call(target: Target, mode: str) -> Callable[[], Any]:
    extra = {} if target.kept else {"store": False}
    router, text = (target.long_router, LONG_INPUT) if mode == "long" else (target.router, INPUT)

    async def plain() -> None:
        await router.aresponses(model=GROUP, input=text, **extra)

    async def streamed() -> None:
        async for _ in await router.aresponses(model=GROUP, input=text, stream=True, **extra):
            pass

    return plain if mode == "plain" else streamed


async def _events_per_stream(target: Target, mode: str) -> int:
    extra = {} if target.kept else {"store": False}
    router, text = (target.long_router, LONG_INPUT) if mode == "long" else (target.router, INPUT)
    return len([e async for e in await router.aresponses(
        model=GROUP, input=text, stream=True, **extra)])


@dataclass(slots=True)
class Target:
    """One router under measurement: the native path or one codec's.

    ``cpu[mode][round][batch]`` is ``(user + system, user)`` µs per request of one
    batch; ``base`` holds, in the same places, the batch of its baseline (see
    :func:`_baseline`) measured right before or right after each of those;
    ``events[mode]`` the events of one stream (short and long).
    """

    name: str
    router: Router
    #: the same deployment, on the upstream of long streams
    long_router: Router
    #: sends the default ``store: true`` (the router keeps translated responses)
    kept: bool = False
    events: dict[str, int] = field(default_factory=dict)
    cpu: dict[str, list[list[tuple[float, float]]]] = field(
        default_factory=lambda: {mode: [] for mode in MODES})
    base: dict[str, list[list[tuple[float, float]]]] = field(
        default_factory=lambda: {mode: [] for mode in MODES})


async def _batch(call: Callable[[], Any], requests: int) -> tuple[float, float]:
    """Run ``requests`` calls at :data:`CONCURRENCY`; (user + system, user) µs per call."""
    remaining = requests

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await call()

    # process_time is exact; getrusage's user/system split is sampled per clock tick,
    # so the user share is only trustworthy summed over many batches.
    before, cpu0 = resource.getrusage(resource.RUSAGE_SELF), time.process_time()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    cpu, after = time.process_time() - cpu0, resource.getrusage(resource.RUSAGE_SELF)
    return cpu * 1e6 / requests, (after.ru_utime - before.ru_utime) * 1e6 / requests


async def _round(targets: list[Target], sizes: Sizes, shift: int) -> None:
    """One round: plain, then short streams, then long ones, each in :data:`BATCHES`
    turns; in a turn every measured target (all but ``targets[0]``, the plain native
    path) runs one short batch right next to one of its baseline, the baseline first
    in every other pair.

    A pair's two batches run back to back, so a slow spell of a shared machine
    (which slows both alike) falls on both: measured in turns of all targets
    instead, a codec's batch and its native one were up to a dozen batches apart,
    and the noise of the time between them went into the difference.
    """
    measured = targets[1:]
    for mode in MODES:
        size = max(1, sizes.serial // BATCHES // (2 if mode == "long" else 1))
        for target in measured:
            target.cpu[mode].append([])
            target.base[mode].append([])
        for turn in range(BATCHES):
            at = shift % len(measured)
            for i, target in enumerate(measured[at:] + measured[:at]):
                baseline = _baseline(targets, target)
                if (turn + i) % 2:
                    mine = await _batch(_call(target, mode), size)
                    theirs = await _batch(_call(baseline, mode), size)
                else:
                    theirs = await _batch(_call(baseline, mode), size)
                    mine = await _batch(_call(target, mode), size)
                target.cpu[mode][-1].append(mine)
                target.base[mode][-1].append(theirs)


Added = tuple[float, list[float], float]


def _added(codec: Target, mode: str) -> Added:
    """The added µs (per request, or per event for streams): the median over every pair
    of adjacent batches, each round's median, and the user share from the round sums."""
    per = float(codec.events[mode]) if mode != "plain" else 1.0
    pairs: list[float] = []
    rounds: list[float] = []
    user = [0.0, 0.0]
    for mine, theirs in zip(codec.cpu[mode], codec.base[mode], strict=True):
        diffs = [(c[0] - n[0]) / per for c, n in zip(mine, theirs, strict=True)]
        pairs += diffs
        rounds.append(statistics.median(diffs))
        user[0] += sum(c[1] - n[1] for c, n in zip(mine, theirs, strict=True)) / per
        user[1] += len(diffs)
    return statistics.median(pairs), rounds, user[0] / user[1]


def _slopes(cpu: dict[str, list[list[tuple[float, float]]]], events: dict[str, int]
            ) -> list[list[float]]:
    """µs per further event: each long batch less its round's short batch of the same
    turn, over the events the long stream has more."""
    more = events["long"] - events["stream"]
    return [[(long[0] - short[0]) / more for long, short in zip(*pair, strict=True)]
            for pair in zip(cpu["long"], cpu["stream"], strict=True)]


def _marginal(native: Target, codec: Target) -> Added:
    """The added µs per further stream event (the codec's slope less its paired native
    batches'), as :func:`_added` gives its figures (the user share is not split out: 0)."""
    rounds = [[c - n for c, n in zip(mine, theirs, strict=True)]
              for mine, theirs in zip(_slopes(codec.cpu, codec.events),
                                      _slopes(codec.base, native.events), strict=True)]
    pairs = [d for r in rounds for d in r]
    return statistics.median(pairs), [statistics.median(r) for r in rounds], 0.0


def _spread(added: tuple[float, list[float], float], digits: int) -> str:
    median, rounds, _ = added
    return f"{median:+.{digits}f} ({min(rounds):+.{digits}f} .. {max(rounds):+.{digits}f})"


def _cpu(cpu: dict[str, list[list[tuple[float, float]]]]) -> float:
    return statistics.median(b[0] for r in cpu["plain"] for b in r)


def _baseline(targets: list[Target], target: Target) -> Target:
    """What ``target`` is measured against: native with ``store: false`` (``targets[0]``),
    or, for a kept codec, native kept (``targets[1]``): both then keep something per
    response (native records its owner), so the row shows what keeping translated
    responses costs beyond that."""
    native, native_kept = targets[0], targets[1]
    return native_kept if target.kept and target is not native_kept else native


def _row(native: Target, codec: Target) -> tuple[list[str], dict[str, Any]]:
    request, event = _added(codec, "plain"), _added(codec, "stream")
    marginal = _marginal(native, codec)
    judged = not codec.kept and not codec.name.startswith(CONTROL.name)
    cells = [
        codec.name, fmt(_cpu(codec.base)), fmt(_cpu(codec.cpu)),
        _spread(request, 1), f"{request[2]:+.1f}",
        verdict(request[0] <= MAX_ADDED_REQUEST_US) if judged else "-",
        f"{native.events['stream']} / {codec.events['stream']}",
        _spread(event, 2), f"{event[2]:+.2f}",
        verdict(event[0] <= MAX_ADDED_EVENT_US) if judged else "-",
        f"{native.events['long']} / {codec.events['long']}", _spread(marginal, 2),
        verdict(marginal[0] <= MAX_ADDED_EVENT_US) if judged else "-",
    ]
    data = {"codec": codec.name, "kept": codec.kept, "added_request_us": request[0],
            "added_request_us_rounds": request[1], "added_request_user_us": request[2],
            "added_event_us": event[0], "added_event_us_rounds": event[1],
            "added_event_user_us": event[2], "marginal_event_us": marginal[0],
            "marginal_event_us_rounds": marginal[1], "baseline": native.name,
            "native_cpu_us": codec.base,
            "codec_cpu_us": codec.cpu, "native_events": native.events["stream"],
            "codec_events": codec.events["stream"], "native_long_events": native.events["long"],
            "codec_long_events": codec.events["long"]}
    return cells, data


NATIVE = Entry("native openai", "", "openai/gpt-4o", lambda url: f"{url}/v1",
               long_args=("long",))
#: The control: the native path again (its own router, the same answers), measured as if it
#: were a codec. Its added figures are the run's noise floor: they would be 0 on a quiet
#: machine.
CONTROL = dataclasses.replace(NATIVE, name="native again (control)")


@contextlib.contextmanager
def _fakes(entries: list[Entry]) -> Iterator[dict[tuple[str, bool], str]]:
    """The live fakes (native, and each entry's, short and long), in their own
    processes: url by :func:`_fake_key`."""
    with contextlib.ExitStack() as stack:
        urls: dict[tuple[str, bool], str] = {}
        for long in (False, True):
            native = stack.enter_context(UpstreamProcess(
                "native", api_key=API_KEY, record_requests=False,
                stream_chunks=LONG_CHUNKS if long else 4))
            urls[_fake_key(NATIVE, long)] = native.url
            for entry in entries:
                if _fake_key(entry, long) not in urls:
                    args = (*entry.fake_args, *(entry.long_args if long else ()))
                    urls[_fake_key(entry, long)] = stack.enter_context(
                        FakeProcess(entry.fake, args)).url
        yield urls


def _fake_key(entry: Entry, long: bool) -> tuple[str, bool]:
    """Which fake process serves ``entry`` (entries may share one), short or long."""
    return " ".join((entry.fake, *entry.fake_args)), long


def _plan(entries: list[Entry]) -> list[tuple[Entry, bool]]:
    """Every target: native (``store: false``, then kept), the control, then each entry
    without and with kept conversations."""
    return [(NATIVE, False), (NATIVE, True), (CONTROL, False),
            *((entry, kept) for entry in entries for kept in (False, True))]


def _target(entry: Entry, kept: bool, short: Served, long: Served) -> Target:
    name = entry.name + (", kept" if kept else "")
    return Target(name, _router(entry.model, short, entry.api_base, entry.params),
                  _router(entry.model, long, entry.api_base, entry.params), kept=kept)


async def _record(
    entries: list[Entry], urls: dict[tuple[str, bool], str]
) -> tuple[dict[str, Recording], dict[str, Recording]]:
    """Each target's answers from its live fakes, through recorders: plain and short
    streams, and long streams (served apart: the same requests, longer answers)."""
    short: dict[str, Recording] = {}
    long: dict[str, Recording] = {}
    for entry, kept in _plan(entries):
        recorders = (await Recorder(urls[_fake_key(entry, False)]).start(),
                     await Recorder(urls[_fake_key(entry, True)]).start())
        target = _target(entry, kept, Served(recorders[0].url), Served(recorders[1].url))
        try:
            for mode in MODES:
                await _call(target, mode)()
        finally:
            await target.router.aclose()
            await target.long_router.aclose()
            for recorder in recorders:
                await recorder.stop()
        short.update(recorders[0].recordings)
        long.update(recorders[1].recordings)
    return short, long


@contextlib.asynccontextmanager
async def _upstreams(
    entries: list[Entry], how: str
) -> AsyncIterator[dict[tuple[str, bool], Served]]:
    """Where each target is measured (by :func:`_fake_key`): ``live``, its live fake;
    ``replay`` (the default), a replay process serving the fakes' recorded answers (one
    for plain and short streams, one for long streams; see :mod:`benchmarks.replay`);
    ``in-process``, the same answers from an HTTP client in the router's process, with no
    socket, so only the router's own work is measured."""
    with _fakes(entries) as urls:
        if how == "live":
            yield {key: Served(url) for key, url in urls.items()}
            return
        recordings = await _record(entries, urls)
    if how == "in-process":
        senders = [ReplaySender(kept) for kept in recordings]
        # Every router in this process then sends through the replay senders (by origin:
        # one for short answers, one for long), in place of its pooled HTTP client.
        with mock.patch.object(ClientPool, "get",
                               lambda pool, origin: senders["//long." in origin]):
            yield {key: Served(_in_process_url(key[1])) for key in urls}
        return
    with tempfile.TemporaryDirectory() as folder, contextlib.ExitStack() as stack:
        replays = []
        for name, kept in zip(("short", "long"), recordings, strict=True):
            path = Path(folder) / f"{name}.json"
            save(kept, path)
            replays.append(stack.enter_context(
                FakeProcess("benchmarks.replay", ("--recordings", str(path)))))
        stack.enter_context(_pinned([replay.pid for replay in replays]))
        yield {key: Served(replays[key[1]].url) for key in urls}


@contextlib.contextmanager
def _pinned(others: list[int | None]) -> Iterator[None]:
    """This process on its first CPU and ``others`` on the rest, for the block (where the
    platform lets a process choose its CPUs, and there are two or more): the router's
    caches then hold only its own work, and the scheduler cannot move it mid-batch."""
    setaffinity = getattr(os, "sched_setaffinity", None)
    mine = os.sched_getaffinity(0) if setaffinity is not None else set()
    if setaffinity is None or len(mine) < 2:
        yield
        return
    first, *rest = sorted(mine)
    try:
        setaffinity(0, {first})
        for pid in others:
            if pid is not None:
                with contextlib.suppress(OSError):  # it may have exited already
                    setaffinity(pid, set(rest))
        yield
    finally:
        setaffinity(0, mine)


@contextlib.asynccontextmanager
async def prepared_targets(
    entries: list[Entry], sizes: Sizes, how: str
) -> AsyncIterator[list[Target]]:
    async with _upstreams(entries, how) as served:
        targets = [_target(entry, kept, served[_fake_key(entry, False)],
                           served[_fake_key(entry, True)]) for entry, kept in _plan(entries)]
        try:
            for target in targets:
                for mode in ("stream", "long"):
                    target.events[mode] = await _events_per_stream(target, mode)
                for mode in MODES:
                    await _batch(_call(target, mode), sizes.warmup)
            yield targets
        finally:
            for target in targets:
                await target.router.aclose()
                await target.long_router.aclose()


def _extra(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--only", help="comma-separated codec names (default: all)")
    parser.add_argument("--upstream", choices=("replay", "live", "in-process"),
                        default="replay",
                        help="what answers: one replay process (default), the live fakes, "
                             "or the recorded answers in process (no sockets)")


async def main(argv: list[str] | None = None) -> None:
    args, sizes = parse_args(__doc__, DEFAULT, QUICK, extra=_extra, argv=argv)
    wanted = set(args.only.split(",")) if args.only else None
    entries = [e for e in ENTRIES if wanted is None or e.name in wanted]
    print_header("Translation: router CPU per request and per stream event over native",
                 sizes)
    started = time.perf_counter()
    async with prepared_targets(entries, sizes, args.upstream) as targets:
        for round_no in range(sizes.rounds):
            await _round(targets, sizes, round_no % len(targets))
        rows, data = zip(*(_row(_baseline(targets, t), t) for t in targets[1:]), strict=True)
    print(markdown_table(
        ["codec", "native CPU µs/req", "codec CPU µs/req", "added µs/req (rounds)",
         "of it user", f"<= {MAX_ADDED_REQUEST_US:.0f} µs", "events/stream native / codec",
         "added µs/event, whole stream (rounds)", "of it user",
         f"<= {MAX_ADDED_EVENT_US:.0f} µs", "events/long stream native / codec",
         "added µs per further event (rounds)", f"<= {MAX_ADDED_EVENT_US:.0f} µs"],
        list(rows)))
    print(f"\nCPU = the router process's user + system time; {sizes.serial} requests per "
          f"figure per round in {BATCHES} batches at concurrency {CONCURRENCY}, each run "
          f"back to back with a batch of its baseline, {sizes.rounds} rounds. Added = "
          f"median over every such pair of native and codec batches (in brackets: the "
          f"lowest and highest round median); user = the user-time share of it from the "
          f"round sums. Whole stream: a short stream's added "
          f"CPU over its events (the request's own added cost included); per further event: "
          f"the slope from short to long streams (half as many requests per batch), the "
          f"codec's less native's. {time.perf_counter() - started:.0f} s.")
    write_json(args.json, {"rows": list(data)})


if __name__ == "__main__":
    asyncio.run(main())
