"""A second router process for the conversation tests: a peer on the same Redis.

    python -m tests.router.conversations.peer API_BASE REDIS_URL PREFIX

Prints ``READY``; then for each ``turn PREVIOUS_ID TEXT`` line on stdin sends
one follow-up through its own router (``PREVIOUS_ID`` ``-`` starts a new
conversation) and prints one JSON line with the new response's id and text,
or the error's class name. ``quit`` ends it.
"""

from __future__ import annotations

import asyncio
import json
import sys

from router.errors import RouterError
from router.router import Router
from tests.router.conversations.harness import KEY


async def main(api_base: str, redis_url: str, prefix: str) -> None:
    router = Router([{"model_name": "m", "model_info": {"id": "peer-side"}, "litellm_params": {
        "model": "anthropic/claude-sonnet-4-5", "api_base": api_base, "api_key": KEY}}],
        redis_url=redis_url, redis_key_prefix=prefix)
    async with router:
        print("READY", flush=True)
        loop = asyncio.get_running_loop()
        while True:
            line = (await loop.run_in_executor(None, sys.stdin.readline)).strip().split(maxsplit=2)
            if not line or line[0] == "quit":
                return
            previous, text = line[1], line[2]
            extra = {} if previous == "-" else {"previous_response_id": previous}
            try:
                response = await router.aresponses(model="m", input=text, **extra)
            except RouterError as exc:
                print(json.dumps({"error": type(exc).__name__}), flush=True)
                continue
            print(json.dumps({"id": response.id, "text": response.output_text}), flush=True)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
