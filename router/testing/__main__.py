"""Run one fake upstream until SIGTERM / SIGINT.

    python -m router.testing --name east --port 0 [--latency 0.01 --capacity 4 --api-key K]

Prints ``READY http://127.0.0.1:PORT`` on stdout once it listens (what
:class:`router.testing.UpstreamProcess` waits for). Faults are set through the
upstream's ``/__control/...`` endpoints.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
from collections.abc import Sequence

from router.testing.upstream import Upstream


def _pair(text: str) -> tuple[float, float]:
    ttl, _, miss = text.partition(",")
    return float(ttl), float(miss or 0)


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m router.testing", description=__doc__)
    parser.add_argument("--name", default="upstream")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--latency", type=float, default=0.0, help="service time, seconds")
    parser.add_argument("--capacity", type=int, default=None, help="concurrent requests")
    parser.add_argument("--stream-chunks", type=int, default=4)
    parser.add_argument("--background-delay", type=float, default=0.2)
    parser.add_argument("--extra-fields", type=json.loads, default=None, help="JSON object")
    parser.add_argument("--no-record", action="store_true", help="do not keep request records")
    parser.add_argument("--prompt-cache", type=_pair, default=None, metavar="TTL,MISS",
                        help="a prompt cache: seconds a key stays cached, seconds a miss adds")
    parser.add_argument("--rate-limit", type=_pair, default=None, metavar="LIMIT,WINDOW",
                        help="at most LIMIT requests per WINDOW seconds (a refilling bucket)")
    parser.add_argument("--jitter", type=float, default=0.0,
                        help="service times spread over latency x (1 +- JITTER)")
    parser.add_argument("--seed", type=int, default=0, help="of the jitter")
    parser.add_argument("--hide-rate-limit", action="store_true",
                        help="no x-ratelimit-* headers: only the 429s show the limit")
    return parser.parse_args(argv)


async def _serve(args: argparse.Namespace) -> None:
    upstream = Upstream(
        args.name,
        api_key=args.api_key,
        port=args.port,
        latency=args.latency,
        capacity=args.capacity,
        extra_fields=args.extra_fields,
        stream_chunks=args.stream_chunks,
        background_delay=args.background_delay,
        record_requests=not args.no_record,
        prompt_cache=args.prompt_cache,
        rate_limit=None if args.rate_limit is None else (
            int(args.rate_limit[0]), args.rate_limit[1]),
        rate_limit_headers=not args.hide_rate_limit,
        jitter=args.jitter,
        seed=args.seed,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with upstream:
        print(f"READY {upstream.url}", flush=True)
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> None:
    asyncio.run(_serve(_parse(argv)))


if __name__ == "__main__":
    main()
