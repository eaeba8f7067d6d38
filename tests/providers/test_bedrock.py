"""bedrock/ deployments end to end: Router -> codec -> SigV4 -> the strict fake Bedrock.

The fake (``router.testing.bedrock``) recomputes every signature and
validates every body against botocore's service model, so a request that
passes here is one Bedrock would take. Also here: one model group that
mixes an Azure OpenAI deployment and a Bedrock deployment, with retries and
fallbacks across them.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from openai.types.responses import Response as SdkResponse
from openai.types.responses import ResponseStreamEvent
from pydantic import TypeAdapter

from router.errors import (
    AuthenticationError,
    ConfigError,
    ContextWindowExceededError,
    InvalidRequestError,
    MalformedResponseError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RouterError,
    ServerError,
    ServiceUnavailableError,
    StreamInterruptedError,
    TimeoutError,
    UnsupportedParameterError,
)
from router.testing.bedrock import BedrockFake
from tests.conftest import InOrder, azure_dep, calls_leave_no_cycles

CLAUDE = "us.anthropic.claude-sonnet-4-20250514-v1:0"
KEY, SECRET = "AKIDFAKEBEDROCK", "fake-secret"
EVENTS: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)
WEATHER = {"type": "function", "name": "weather", "description": "Weather in a city",
           "parameters": {"type": "object", "properties": {"query": {"type": "string"}}}}


def bedrock_dep(fake: BedrockFake, model_name: str = "claude", *, id: str | None = None,
                model: str = CLAUDE, **params: Any) -> dict[str, Any]:
    litellm_params = {"model": f"bedrock/{model}", "aws_access_key_id": KEY,
                      "aws_secret_access_key": SECRET, "aws_region_name": fake.region,
                      "aws_bedrock_runtime_endpoint": fake.url, **params}
    return {"model_name": model_name, "litellm_params": litellm_params,
            "model_info": {"id": id or fake.name}}


@pytest.fixture
async def fakes() -> AsyncIterator[Any]:
    started: list[BedrockFake] = []

    async def start(*names: str, **options: Any) -> tuple[BedrockFake, ...]:
        out = []
        for name in names:
            fake = BedrockFake(name, **options)
            await fake.start()
            started.append(fake)
            out.append(fake)
        return tuple(out)

    yield start
    for fake in started:
        await fake.stop()


async def read(stream: Any) -> list[dict[str, Any]]:
    events = [event._data async for event in stream]
    for event in events:
        EVENTS.validate_python(event)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    return events


# -- translation over the wire ------------------------------------------------------------


async def test_calls_leave_no_reference_cycles(fakes: Any, make_router: Any) -> None:
    """A call's objects are freed as it ends, never left to the garbage collector."""
    (fake,) = await fakes("br")
    await calls_leave_no_cycles(make_router([bedrock_dep(fake)]), "claude")


async def test_create(fakes: Any, make_router: Any) -> None:
    (fake,) = await fakes("br")
    router = make_router([bedrock_dep(fake)])
    response = await router.aresponses(model="claude", input="hello there",
                                       instructions="Be brief.", metadata={"team": "a"})
    sdk = SdkResponse.model_validate(response.model_dump())
    assert sdk.output_text == "[br] hello there" and sdk.status == "completed"
    assert sdk.metadata == {"team": "a"} and sdk.id.startswith("resp_")
    assert response.routing.provider == "bedrock" and response.routing.deployment_id == "br"
    (sent,) = fake.requests
    assert (sent.model_id, sent.operation) == (CLAUDE, "Converse")
    assert sent.json["system"] == [{"text": "Be brief."}]
    assert sent.json["requestMetadata"] == {"team": "a"}
    assert sent.headers["Authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={KEY}/")


async def test_stream(fakes: Any, make_router: Any) -> None:
    (fake,) = await fakes("br")
    router = make_router([bedrock_dep(fake)])
    events = await read(await router.aresponses(
        model="claude", input="one two three four five", stream=True))
    kinds = [e["type"] for e in events]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert kinds.count("response.output_text.delta") == 3
    final = SdkResponse.model_validate(events[-1]["response"])
    assert final.output_text == "[br] one two three four five"
    assert final.usage is not None and final.usage.output_tokens == 6
    assert fake.requests[0].operation == "ConverseStream"


@pytest.mark.parametrize("stream", [False, True])
async def test_tool_round_trip_with_thinking_replayed(
    fakes: Any, make_router: Any, stream: bool
) -> None:
    """Turn 2 sends turn 1's reasoning (signed), tool call and the tool's output back."""
    (fake,) = await fakes("br")
    router = make_router([bedrock_dep(fake)])
    first = await _answer(router, stream, input="weather in Oslo", tools=[WEATHER],
                          reasoning={"effort": "low"})
    kinds = [item["type"] for item in first["output"]]
    assert kinds == ["reasoning", "message", "function_call"]
    call = first["output"][2]
    assert call["name"] == "weather" and call["arguments"] == '{"query": "weather in Oslo"}'
    history = [{"role": "user", "content": "weather in Oslo"}, *first["output"],
               {"type": "function_call_output", "call_id": call["call_id"], "output": "18C"}]
    second = await _answer(router, stream, input=history, tools=[WEATHER],
                           reasoning={"effort": "low"}, tool_choice="auto")
    assert second["output"][-1]["content"][0]["text"] == "[br] the tool said: 18C"
    replayed = fake.requests[1].json["messages"][1]["content"]
    assert [next(iter(block)) for block in replayed] == ["reasoningContent", "text", "toolUse"]


async def _answer(router: Any, stream: bool, **params: Any) -> dict[str, Any]:
    if not stream:
        response = await router.aresponses(model="claude", **params)
        return SdkResponse.model_validate(response.model_dump()).model_dump()
    events = await read(await router.aresponses(model="claude", stream=True, **params))
    return SdkResponse.model_validate(events[-1]["response"]).model_dump()


async def test_structured_output_images_and_max_tokens(fakes: Any, make_router: Any) -> None:
    (fake,) = await fakes("br")
    router = make_router([bedrock_dep(fake)])
    shaped = await router.aresponses(model="claude", input="x", text={"format": {
        "type": "json_schema", "name": "echo", "schema": {"type": "object"}}})
    assert shaped.output_text == '{"echo": "x"}'
    png = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9aw"
           "AAAABJRU5ErkJggg==")
    seen = await router.aresponses(model="claude", input=[{"role": "user", "content": [
        {"type": "input_text", "text": "what is it"},
        {"type": "input_image", "image_url": f"data:image/png;base64,{png}"}]}])
    assert seen.output_text.endswith("(+1 attachments)")
    cut = await router.aresponses(model="claude", input="a b c d e", max_output_tokens=2)
    assert cut.status == "incomplete" and cut.output_text == "[br] a"
    assert cut.incomplete_details.reason == "max_output_tokens"


async def test_cached_tokens_are_reported(fakes: Any, make_router: Any) -> None:
    (fake,) = await fakes("br")
    fake.cache_read, fake.cache_write = 40, 8
    router = make_router([bedrock_dep(fake)])
    response = await router.aresponses(model="claude", input="hi")
    sdk = SdkResponse.model_validate(response.model_dump())
    assert sdk.usage is not None and sdk.usage.input_tokens_details.cached_tokens == 40
    assert sdk.usage.input_tokens == 2 + 40 + 8


async def test_unsupported_parameters_never_reach_bedrock(fakes: Any,
                                                          make_router: Any) -> None:
    (fake,) = await fakes("br")
    router = make_router([bedrock_dep(fake), bedrock_dep(fake, "lenient", id="lenient",
                                                         drop_params=True)])
    with pytest.raises(UnsupportedParameterError, match="tools\\[0\\]: bedrock has no "):
        await router.aresponses(model="claude", input="x", tools=[{"type": "web_search"}])
    assert fake.requests == []
    response = await router.aresponses(model="lenient", input="x", top_logprobs=2)
    assert response.output_text == "[br] x"


# -- SigV4 and credentials ----------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("sender", ["aiohttp", "httpx"])
async def test_an_arn_reaches_bedrock_as_signed(
    fakes: Any, make_router: Any, stream: bool, sender: str
) -> None:
    """An ARN's ``/`` and ``:`` go out as signed, by the default sender and a caller's httpx."""
    import httpx

    (fake,) = await fakes("br")
    arn = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc"
    async with httpx.AsyncClient() as client:
        router = make_router([bedrock_dep(fake, model=arn)],
                             http_client=client if sender == "httpx" else None)
        assert await _served(router, "claude", stream) == "br"
    assert fake.requests[0].model_id == arn


async def test_extra_headers_are_signed_and_queries_refused(fakes: Any,
                                                          make_router: Any) -> None:
    (fake,) = await fakes("br")
    router = make_router([bedrock_dep(fake, extra_headers={"x-team": "a  b"})])
    response = await router.aresponses(model="claude", input="x",
                                       extra_headers={"x-call": "1"})
    assert response.output_text == "[br] x"
    signed = fake.requests[0].headers["Authorization"]
    assert "x-call" in signed and "x-team" in signed
    with pytest.raises(InvalidRequestError, match="extra_query: Bedrock"):
        await router.aresponses(model="claude", input="x", extra_query={"a": "b"})
    with pytest.raises(ConfigError, match="extra_query"):
        make_router([bedrock_dep(fake, extra_query={"a": "b"})])
    assert len(fake.requests) == 1


@pytest.mark.parametrize(("params", "words"), [
    ({"aws_secret_access_key": "wrong"}, "signature we calculated does not match"),
    ({"aws_access_key_id": "AKIDUNKNOWN"}, "security token included in the request is invalid"),
    ({"aws_region_name": "eu-west-1"}, "scoped to a valid region"),
])
async def test_bad_credentials_are_authentication_errors(
    fakes: Any, make_router: Any, params: dict[str, Any], words: str
) -> None:
    (fake,) = await fakes("br")
    router = make_router([bedrock_dep(fake, **params)], num_retries=0)
    with pytest.raises(AuthenticationError, match=words) as info:
        await router.aresponses(model="claude", input="x")
    assert SECRET not in str(info.value) and "wrong" not in repr(info.value)


async def test_a_stale_signature_date_is_refused(fakes: Any, make_router: Any) -> None:
    (fake,) = await fakes("br", clock=lambda: time.time() + 600)
    router = make_router([bedrock_dep(fake)], num_retries=0)
    with pytest.raises(AuthenticationError, match="Signature expired"):
        await router.aresponses(model="claude", input="x")


async def test_session_token_is_signed_and_sent(fakes: Any, make_router: Any) -> None:
    (fake,) = await fakes("br", session_tokens={KEY: "TOKEN"})
    router = make_router([bedrock_dep(fake, aws_session_token="TOKEN"),
                          bedrock_dep(fake, "bare", id="bare")], num_retries=0)
    assert (await router.aresponses(model="claude", input="x")).output_text == "[br] x"
    assert fake.requests[0].headers["X-Amz-Security-Token"] == "TOKEN"
    with pytest.raises(AuthenticationError):
        await router.aresponses(model="bare", input="x")


async def test_expiring_credentials_are_refreshed_off_the_event_loop(fakes: Any) -> None:
    import dataclasses
    import datetime
    import threading

    from botocore.credentials import RefreshableCredentials

    from providers.bedrock import BedrockProvider
    from providers.http import ClientPool
    from router.config.models import DeploymentConfig
    from router.deployment import Deployment
    from router.request import RouteRequest

    (fake,) = await fakes("br", session_tokens={KEY: "fresh"})
    threads: list[int] = []

    def metadata(token: str, minutes: int) -> dict[str, str]:
        expiry = datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=minutes)
        return {"access_key": KEY, "secret_key": SECRET, "token": token,
                "expiry_time": expiry.isoformat()}

    def refresh() -> dict[str, str]:
        threads.append(threading.get_ident())
        return metadata("fresh", 60)

    expired = RefreshableCredentials.create_from_metadata(metadata("stale", -1), refresh, "t")
    pool = ClientPool()
    provider = BedrockProvider(pool)
    config = DeploymentConfig.model_validate(bedrock_dep(fake))
    target = dataclasses.replace(provider.prepare(config), credentials=expired)
    d = Deployment(id="br", model_name="claude", provider_name="bedrock",
                   upstream_model=CLAUDE, config=config, provider=provider, endpoint=target)
    try:
        for _ in range(2):
            response = await provider.create(d, RouteRequest("claude", {"input": "x"}), 5.0)
            assert response.output_text == "[br] x"
    finally:
        await pool.aclose()
    assert len(threads) == 1 and threads[0] != threading.get_ident()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> pytest.MonkeyPatch:
    """No AWS files, instance metadata or variables: the chain sees what a test sets."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                 "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION",
                 "AWS_REGION_NAME", "AWS_BEDROCK_RUNTIME_ENDPOINT",
                 "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                 "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return monkeypatch


async def test_default_credential_chain_and_region(
    fakes: Any, make_router: Any, aws_env: pytest.MonkeyPatch
) -> None:
    (fake,) = await fakes("br", region="eu-central-1")
    aws_env.setenv("AWS_ACCESS_KEY_ID", KEY)
    aws_env.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    aws_env.setenv("AWS_REGION", "eu-central-1")
    dep = {"model_name": "claude", "litellm_params": {
        "model": f"bedrock/{CLAUDE}", "aws_bedrock_runtime_endpoint": fake.url}}
    router = make_router([dep])
    assert (await router.aresponses(model="claude", input="x")).output_text == "[br] x"


async def test_a_named_profile(fakes: Any, make_router: Any, aws_env: pytest.MonkeyPatch,
                               tmp_path: Any) -> None:
    (fake,) = await fakes("br", region="ap-south-1")
    (tmp_path / "credentials").write_text(
        f"[team]\naws_access_key_id = {KEY}\naws_secret_access_key = {SECRET}\n")
    (tmp_path / "config").write_text("[profile team]\nregion = ap-south-1\n")
    dep = {"model_name": "claude", "litellm_params": {
        "model": f"bedrock/{CLAUDE}", "aws_profile_name": "team",
        "aws_bedrock_runtime_endpoint": fake.url}}
    router = make_router([dep])
    assert (await router.aresponses(model="claude", input="x")).output_text == "[br] x"
    with pytest.raises(ConfigError, match="no AWS profile named 'nobody'"):
        make_router([{"model_name": "c", "litellm_params": {
            "model": f"bedrock/{CLAUDE}", "aws_profile_name": "nobody"}}])


def test_no_credentials_is_a_config_error(aws_env: pytest.MonkeyPatch) -> None:
    from router.router import Router

    with pytest.raises(ConfigError, match="no AWS credentials"):
        Router([{"model_name": "c", "litellm_params": {"model": f"bedrock/{CLAUDE}"}}])
    with pytest.raises(ConfigError, match="go together"):
        Router([{"model_name": "c", "litellm_params": {"model": f"bedrock/{CLAUDE}",
                                                       "aws_access_key_id": KEY}}])


def test_default_endpoint_and_region(aws_env: pytest.MonkeyPatch) -> None:
    from router.router import Router

    router = Router([{"model_name": "c", "litellm_params": {
        "model": f"bedrock/converse/{CLAUDE}", "aws_access_key_id": KEY,
        "aws_secret_access_key": SECRET}}])
    (deployment,) = router.deployments()
    assert deployment.endpoint.base_url == "https://bedrock-runtime.us-west-2.amazonaws.com"
    assert SECRET not in repr(deployment.endpoint) and SECRET not in repr(deployment)


# -- errors, retries, streams cut ------------------------------------------------------------


@pytest.mark.parametrize(("exception", "cls"), [
    ("ThrottlingException", RateLimitError),
    ("ModelNotReadyException", ServiceUnavailableError),
    ("ServiceUnavailableException", ServiceUnavailableError),
    ("InternalServerException", ServerError),
    ("ModelErrorException", ServerError),
    ("ModelTimeoutException", TimeoutError),
    ("AccessDeniedException", PermissionDeniedError),
    ("ResourceNotFoundException", NotFoundError),
])
async def test_errors_map_to_the_router_table(fakes: Any, make_router: Any, exception: str,
                                              cls: type[RouterError]) -> None:
    (fake,) = await fakes("br")
    fake.faults.fail(exception, retry_after=3)
    router = make_router([bedrock_dep(fake)], num_retries=0)
    with pytest.raises(RouterError) as info:
        await router.aresponses(model="claude", input="x")
    assert type(info.value) is cls and info.value.deployment_id == "br"
    if cls is RateLimitError:
        assert info.value.retry_after == 3.0  # type: ignore[attr-defined]


async def test_too_long_input_falls_back_to_a_bigger_context(fakes: Any,
                                                             make_router: Any) -> None:
    small, big = await fakes("small", "big", context_words=3)
    big_dep = bedrock_dep(big, "big", model="anthropic.claude-3-5-sonnet-20240620-v1:0")
    router = make_router([bedrock_dep(small), big_dep], num_retries=0,
                         context_window_fallbacks=[{"claude": ["big"]}])
    with pytest.raises(ContextWindowExceededError):
        await router.aresponses(model="big", input="far too many words here")
    response = await router.aresponses(model="claude", input="a b")
    assert response.routing.deployment_id == "small"
    big._context_words = 100
    response = await router.aresponses(model="claude", input="far too many words here")
    assert response.routing.deployment_id == "big"


@pytest.mark.parametrize("stream", [False, True])
async def test_throttled_deployment_is_retried_on_another(
    fakes: Any, make_router: Any, stream: bool
) -> None:
    a, b = await fakes("a", "b")
    a.faults.fail("ThrottlingException", times=1)
    router = make_router([bedrock_dep(a), bedrock_dep(b)], routing_strategy=InOrder(),
                         num_retries=2, cooldown_jitter=0)
    result = await _served(router, "claude", stream)
    assert result == "b"
    assert [c.deployment_id for c in router.cooldowns()] == ["a"]


async def _served(router: Any, model: str, stream: bool) -> str:
    """The deployment that served a call (a stream is read to its end)."""
    if not stream:
        response = await router.aresponses(model=model, input="x")
        return str(response.routing.deployment_id)
    events = await router.aresponses(model=model, input="x", stream=True)
    async with events:
        assert (await read(events))[-1]["type"] == "response.completed"
    return str(events.routing.deployment_id)


@pytest.mark.parametrize("fault", ["exception", "malformed"])
async def test_a_stream_failing_before_its_first_event_is_retried(
    fakes: Any, make_router: Any, fault: str
) -> None:
    a, b = await fakes("a", "b")
    if fault == "exception":
        a.faults.stream_exception("ThrottlingException", after=0)
    else:
        a.faults.malformed()
    router = make_router([bedrock_dep(a), bedrock_dep(b)], routing_strategy=InOrder(),
                         num_retries=2)
    assert await _served(router, "claude", stream=True) == "b"


@pytest.mark.parametrize(("arm", "cause"), [
    (lambda f: f.faults.stream_exception("ThrottlingException", after=4), RateLimitError),
    (lambda f: f.faults.stream_exception("ModelStreamErrorException", after=4), ServerError),
    (lambda f: f.faults.cut_stream(after=4), ServerError),
    (lambda f: f.faults.malformed(after=4), MalformedResponseError),
])
async def test_a_stream_failing_midway_is_interrupted(
    fakes: Any, make_router: Any, arm: Any, cause: type[Exception]
) -> None:
    (fake,) = await fakes("br")
    arm(fake)
    router = make_router([bedrock_dep(fake)], num_retries=0)
    seen: list[str] = []
    events = await router.aresponses(model="claude", input="a b c d e f g h", stream=True)
    with pytest.raises(StreamInterruptedError) as info:
        async for event in events:
            seen.append(event.type)
    assert "response.output_text.delta" in seen
    assert isinstance(info.value.__cause__, cause)


async def test_malformed_body_is_retried(fakes: Any, make_router: Any) -> None:
    a, b = await fakes("a", "b")
    a.faults.malformed()
    router = make_router([bedrock_dep(a), bedrock_dep(b)], routing_strategy=InOrder(),
                         num_retries=2)
    response = await router.aresponses(model="claude", input="x")
    assert response.routing.deployment_id == "b"
    assert response.routing.trail.attempts[0].error == "MalformedResponseError"


@pytest.mark.parametrize("stop", ["content_filtered", "guardrail_intervened"])
async def test_filtered_answers_are_incomplete(fakes: Any, make_router: Any,
                                               stop: str) -> None:
    (fake,) = await fakes("br")
    fake.faults.stop_reason(stop, times=2)
    router = make_router([bedrock_dep(fake)])
    plain = await router.aresponses(model="claude", input="x")
    assert plain.incomplete_details.reason == "content_filter"
    events = await read(await router.aresponses(model="claude", input="x", stream=True))
    assert events[-1]["type"] == "response.incomplete"


# -- one group, two providers ---------------------------------------------------------------


@pytest.fixture
async def mixed(fakes: Any, upstreams: Any, make_router: Any) -> Any:
    """Groups of an Azure and a Bedrock deployment, tried in order, with a fallback group.

    "mixed": Bedrock "br" then Azure "az"; "azfirst": Azure "az2" then Bedrock
    "br2" (same upstreams); both fall back to "backup" (another Bedrock).
    """
    (az,) = await upstreams("az")
    br, backup = await fakes("br", "backup")
    router = make_router(
        [bedrock_dep(br, "mixed"), azure_dep(az, "mixed"),
         azure_dep(az, "azfirst", id="az2"), bedrock_dep(br, "azfirst", id="br2"),
         bedrock_dep(backup, "backup")],
        routing_strategy=InOrder(), num_retries=2, cooldown_jitter=0,
        fallbacks=[{"mixed": ["backup"]}, {"azfirst": ["backup"]}])
    return router, az, br, backup


@pytest.mark.parametrize("stream", [False, True])
async def test_mixed_group_bedrock_throttling_is_retried_on_azure(mixed: Any,
                                                                  stream: bool) -> None:
    router, az, br, _ = mixed
    br.faults.fail("ThrottlingException", retry_after=2)
    assert await _served(router, "mixed", stream) == "az"
    assert len(br.requests) == 1 and az.hits == 1
    (cooled,) = router.cooldowns()
    assert cooled.deployment_id == "br" and cooled.until - cooled.started == pytest.approx(2)


@pytest.mark.parametrize("stream", [False, True])
async def test_mixed_group_azure_failing_is_retried_on_bedrock(mixed: Any, stream: bool) -> None:
    router, az, br, _ = mixed
    az.faults.fail(503, times=1)
    assert await _served(router, "azfirst", stream) == "br2"
    assert len(br.requests) == 1 and az.hits == 1


@pytest.mark.parametrize(("stream", "group"), [
    (False, "mixed"), (True, "mixed"), (False, "azfirst"), (True, "azfirst")])
async def test_mixed_group_failing_falls_back(mixed: Any, stream: bool, group: str) -> None:
    router, az, br, backup = mixed
    az.faults.fail(500)
    br.faults.fail("ServiceUnavailableException", times=5)
    assert await _served(router, group, stream) == "backup"
    assert len(backup.requests) == 1 and az.hits >= 1 and len(br.requests) >= 1


# -- the sync twin ------------------------------------------------------------------------


@pytest.fixture
def threaded_fake() -> Any:
    """A fake Bedrock on a thread's event loop, for plain ``def`` tests (the sync twins)."""
    from tests.conftest import _LoopThread

    runner = _LoopThread()
    fake = BedrockFake("br")
    runner.run(fake.start())
    yield fake
    runner.run(fake.stop())
    runner.stop()


def test_sync_create_and_stream(threaded_fake: BedrockFake, make_router: Any) -> None:
    router = make_router([bedrock_dep(threaded_fake)])
    assert router.responses(model="claude", input="sync hello").output_text == "[br] sync hello"
    events = list(router.responses(model="claude", input="sync stream", stream=True))
    assert events[-1].type == "response.completed"
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == (
        "[br] sync stream")


@pytest.mark.parametrize("stream", [False, True])
async def test_nova_2_reasons_by_effort_and_its_redacted_reasoning_is_not_replayed(
    fakes: Any, make_router: Any, stream: bool
) -> None:
    (fake,) = await fakes("br")
    nova = "us.amazon.nova-2-lite-v1:0"
    router = make_router([bedrock_dep(fake, "nova", model=nova)])

    async def answer(**params: Any) -> dict[str, Any]:
        if not stream:
            response = await router.aresponses(model="nova", **params)
            return SdkResponse.model_validate(response.model_dump()).model_dump()
        events = await read(await router.aresponses(model="nova", stream=True, **params))
        return SdkResponse.model_validate(events[-1]["response"]).model_dump()

    first = await answer(input="Plan a trip", reasoning={"effort": "high"})
    assert [item["type"] for item in first["output"]] == ["reasoning", "message"]
    assert first["output"][0].get("encrypted_content") is None  # unsigned: nothing to replay
    sent = fake.requests[0].json["additionalModelRequestFields"]
    assert sent == {"reasoningConfig": {"type": "enabled", "maxReasoningEffort": "high"}}
    await answer(input=[{"role": "user", "content": "Plan a trip"}, *first["output"],
                        {"role": "user", "content": "And back?"}])
    replayed = fake.requests[1].json["messages"][1]["content"]
    assert [next(iter(block)) for block in replayed] == ["text"]
