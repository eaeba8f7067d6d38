"""A second router process for the Retry-After tests: a peer on the same Redis.

    python -m tests.faults.retry_after_peer UPSTREAM_URL REDIS_URL PREFIX

Prints ``READY`` once its router has loaded the shared cooldowns; then, for
each ``burst N`` line on stdin, sends N concurrent requests (no retries) and
prints one JSON line: how many were served, refused with the pending wait
(no upstream call), or refused by the upstream itself. ``quit`` ends it.
"""

from __future__ import annotations

import asyncio
import json
import sys

from router.attempts import RETRY_AFTER_PENDING
from router.errors import RateLimitError
from router.router import Router


async def _one(router: Router, i: int) -> str:
    try:
        await router.aresponses(model="gpt-4o", input=f"peer {i}", num_retries=0)
    except RateLimitError as exc:
        return "pending" if exc.code == RETRY_AFTER_PENDING else "upstream"
    return "served"


async def main(upstream: str, redis_url: str, prefix: str) -> None:
    router = Router([{"model_name": "gpt-4o", "litellm_params": {
        "model": "openai/gpt-4o", "api_base": f"{upstream}/v1", "api_key": "sk-test"},
        "model_info": {"id": "only"}}],
        redis_url=redis_url, redis_key_prefix=prefix, retry_budget=False)
    async with router:
        print("READY", flush=True)
        loop = asyncio.get_running_loop()
        while True:
            line = (await loop.run_in_executor(None, sys.stdin.readline)).split()
            if not line or line[0] == "quit":
                return
            outcomes = await asyncio.gather(*(_one(router, i) for i in range(int(line[1]))))
            print(json.dumps({k: outcomes.count(k) for k in ("served", "pending",
                                                               "upstream")}), flush=True)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
