"""Pre-flight for `make test`: say whether Redis answers at REDIS_URL.

With REQUIRE_REDIS=1 (set by .ci/run) a silent Redis is a failure, so the
Redis integration tests can never be skipped in CI; otherwise it only warns
and those tests skip.
"""

from __future__ import annotations

import os
import sys

import redis


def main() -> int:
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        required = os.environ.get("REQUIRE_REDIS") == "1"
        print(f"redis at {url} does not answer: {exc}", file=sys.stderr)
        if required:
            print("REQUIRE_REDIS=1: failing instead of skipping the Redis tests", file=sys.stderr)
            return 1
        print("the Redis integration tests will be skipped", file=sys.stderr)
        return 0
    print(f"redis at {url}: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
