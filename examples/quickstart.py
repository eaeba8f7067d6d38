"""`make demo`: three local deployments, routing, a pinned conversation, failover.

Starts three fake Responses API upstreams on 127.0.0.1 (real HTTP and SSE,
see router/testing/upstream.py) standing in for two Azure resources and one
OpenAI-compatible server, puts a Router in front of them and shows:

1. how 30 requests spread over the three deployments (simple-shuffle);
2. a 3-turn conversation with previous_response_id, each turn pinned to the
   deployment that stored the previous response (responses_api_deployment_check),
   streamed on the last turn;
3. one upstream taken down: requests fail over to the others, and a
   conversation whose owner is down gets a clear error instead of a
   previous_response_not_found from a stranger;
4. a provider without a Responses API: a fake vLLM-style Chat Completions
   server (router/testing/chat.py) behind ``hosted_vllm/``, reached through
   the same ``aresponses`` call, plain and streamed, by translation.

State is kept in memory (no Redis needed). Run: python examples/quickstart.py
"""

from __future__ import annotations

import asyncio
from collections import Counter

from router import PinnedDeploymentUnavailableError, Router
from router.testing import Upstream
from router.testing.chat import ChatUpstream


def model_list(east: Upstream, west: Upstream, north: Upstream) -> list[dict[str, object]]:
    return [
        {"model_name": "gpt-4o", "model_info": {"id": "azure-east"},
         "litellm_params": {"model": "azure/gpt-4o", "api_base": east.url, "api_key": "east-key"}},
        {"model_name": "gpt-4o", "model_info": {"id": "azure-west"},
         "litellm_params": {"model": "azure/gpt-4o", "api_base": west.url, "api_key": "west-key",
                            "api_version": "2025-03-01-preview"}},
        {"model_name": "gpt-4o", "model_info": {"id": "openai-north"},
         "litellm_params": {"model": "openai/gpt-4o", "api_base": f"{north.url}/v1",
                            "api_key": "north-key"}},
    ]


def table(title: str, header: tuple[str, ...], rows: list[tuple[object, ...]]) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    line = "+".join("-" * (w + 2) for w in widths)
    print(f"\n{title}\n+{line}+")
    print("| " + " | ".join(str(h).ljust(w) for h, w in zip(header, widths, strict=True)) + " |")
    print(f"+{line}+")
    for row in rows:
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
    print(f"+{line}+")


async def spread(router: Router, n: int) -> Counter[str]:
    answers = await asyncio.gather(
        *(router.aresponses(model="gpt-4o", input=f"request {i}") for i in range(n))
    )
    return Counter(a.routing.deployment_id for a in answers)


async def conversation(router: Router) -> list[tuple[object, ...]]:
    rows: list[tuple[object, ...]] = []
    first = await router.aresponses(model="gpt-4o", input="Tell me a story")
    rows.append((1, first.routing.deployment_id, first.output_text))
    second = await router.aresponses(
        model="gpt-4o", input="Go on", previous_response_id=first.id
    )
    rows.append((2, second.routing.deployment_id, second.output_text))
    stream = await router.aresponses(
        model="gpt-4o", input="And the end?", previous_response_id=second.id, stream=True
    )
    deltas = [e.delta async for e in stream if e.type == "response.output_text.delta"]
    owner = stream.routing.deployment_id if stream.routing else "?"
    rows.append(("3 (stream)", owner, "".join(deltas)))
    return rows


async def failover(router: Router, down: Upstream, owner_turn: str) -> None:
    await down.down()
    counts = await spread(router, 30)
    table(f"30 requests with {down.name} down (failover)", ("deployment", "requests"),
          sorted(counts.items()))
    try:
        await router.aresponses(model="gpt-4o", input="Still there?",
                                previous_response_id=owner_turn)
    except PinnedDeploymentUnavailableError as exc:
        print(f"\nA conversation pinned to the dead deployment fails clearly:\n  {exc}")
        print(f"  attempts: {exc.trail}")
    await down.up()
    again = await router.aresponses(model="gpt-4o", input="Back?", previous_response_id=owner_turn)
    print(f"\nAfter {down.name} comes back the conversation continues on "
          f"{again.routing.deployment_id}: {again.output_text}")


async def translated() -> None:
    async with ChatUpstream("vllm") as vllm, Router(model_list=[
        {"model_name": "llama", "model_info": {"id": "vllm-local"},
         "litellm_params": {"model": "hosted_vllm/meta-llama/Llama-3.1-8B-Instruct",
                            "api_base": f"{vllm.url}/v1"}},
    ]) as router:
        plain = await router.aresponses(model="llama", input="Hello from the Responses API",
                                        instructions="Answer briefly", max_output_tokens=64)
        stream = await router.aresponses(model="llama", input="THINK and stream", stream=True)
        kinds = Counter([e.type async for e in stream])
        table("A Chat Completions server (hosted_vllm/) answering Responses calls",
              ("call", "served by", "what came back"),
              [("plain", plain.routing.deployment_id,
                f"{plain.id[:13]}...: {plain.output_text}"),
               ("stream", stream.routing.deployment_id if stream.routing else "?",
                f"{sum(kinds.values())} events, {kinds['response.output_text.delta']} text "
                f"deltas, {kinds['response.reasoning_summary_text.delta']} reasoning")])
        path, _, body = vllm.requests[0]
        print(f"  upstream saw POST {path} with messages {body['messages']}")
        follow = await router.aresponses(model="llama", input="And a second turn",
                                         previous_response_id=plain.id)
        _, _, body = vllm.requests[-1]
        said = [m["content"] if isinstance(m["content"], str) else m["content"][0]["text"]
                for m in body["messages"] if m["role"] != "system"]
        print(f"  a follow-up (previous_response_id={plain.id[:13]}...) kept by the router: "
              f"the server, which keeps nothing, received the whole history {said}; "
              f"answer {follow.id[:13]}...")


async def main() -> None:
    async with (
        Upstream("east") as east,
        Upstream("west") as west,
        Upstream("north") as north,
        Router(
            model_list=model_list(east, west, north),
            optional_pre_call_checks=["responses_api_deployment_check"],
            num_retries=2,
            timeout=10,
        ) as router,
    ):
        table("30 requests over three deployments (simple-shuffle)",
              ("deployment", "requests"), sorted((await spread(router, 30)).items()))
        rows = await conversation(router)
        table("A 3-turn conversation: every turn on the deployment holding the last",
              ("turn", "deployment", "upstream says"), rows)
        pinned = await router.aresponses(model="gpt-4o", input="Remember me")
        by_id = {"azure-east": east, "azure-west": west, "openai-north": north}
        await failover(router, by_id[pinned.routing.deployment_id], pinned.id)
    await translated()


if __name__ == "__main__":
    asyncio.run(main())
