"""Two workers behave as one router: conversations started on one worker continue on
the other, on the upstream that stores them (pins shared through Redis).

Two upstreams serve the group; each stored response lives only on the one
that made it (the other answers 400 ``previous_response_not_found``). Every
request uses a new connection, so the kernel spreads them over both workers.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator

import httpx
import openai
import pytest
import redis

from router.testing import UpstreamProcess
from tests.router.proxy.helpers import KEY_B, ServerProcess, server_config

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    from tests.redis_fixtures import redis_unavailable

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        redis_unavailable(f"redis at {REDIS_URL} does not answer: {exc}")
    prefix = f"rr-test:{uuid.uuid4().hex[:12]}:"
    east, west = UpstreamProcess("east", api_key="k1"), UpstreamProcess("west", api_key="k1")
    east.start()
    west.start()
    config = server_config(f"{east.url}/v1", redis_url=REDIS_URL, prefix=prefix,
                           extra_groups=False)
    second = {**config["model_list"][0], "model_info": {"id": "dep-west"}}
    second["litellm_params"] = {**second["litellm_params"], "api_base": f"{west.url}/v1"}
    config["model_list"].append(second)
    config["router_settings"]["optional_pre_call_checks"] = ["responses_api_deployment_check"]
    proc = ServerProcess(config, tmp_path_factory.mktemp("shared"), workers=2).start()
    try:
        yield proc
    finally:
        proc.stop()
        east.stop()
        west.stop()
        for key in client.scan_iter(match=prefix + "*", count=1000):
            client.delete(key)
        client.close()


def _call(server: ServerProcess, **params: object) -> openai.types.responses.Response:
    with openai.OpenAI(base_url=f"{server.url}/v1", api_key=KEY_B, max_retries=0) as c:
        return c.responses.create(model="gpt-4o", **params)  # type: ignore[call-overload, no-any-return]


def test_conversations_continue_across_workers(server: ServerProcess) -> None:
    for i in range(12):
        first = _call(server, input=f"conversation {i}")
        owner = re.match(r"\[(\w+)\]", first.output_text)
        assert owner is not None
        second = _call(server, input="go on", previous_response_id=first.id)
        third = _call(server, input="more", previous_response_id=second.id)
        assert third.output_text.startswith(f"[{owner.group(1)}] turn 3")
    text = httpx.get(f"{server.url}/metrics").text
    served = {w: sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                     if line.startswith("proxy_requests_total{")
                     and 'route="/responses"' in line and f'worker="{w}"' in line)
              for w in ("0", "1")}
    assert served["0"] + served["1"] == 36
    assert served["0"] > 0 and served["1"] > 0, served  # both workers took part
