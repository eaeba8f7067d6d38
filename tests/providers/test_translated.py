"""The shared half of translation (providers/translated.py) over a real loopback socket.

A tiny codec for an invented "echo" API stands in for a real provider, so
these tests pin what every translated provider inherits: router-made ids,
error normalisation through the codec, stream ``error`` events raised,
``drop_params``, refusal of stateful parameters, malformed answers.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from typing import Any

import pytest
from aiohttp import web
from openai.types.responses import Response as SdkResponse
from openai.types.responses import ResponseStreamEvent
from pydantic import TypeAdapter

from providers.codec import Call, NativeError, NativeRequest
from providers.http import ClientPool
from providers.responses_input import input_items, part_text
from providers.responses_shapes import EventWriter, item_id, message_item, response_object, usage
from providers.translated import Target, TranslatedProvider
from router.config.models import DeploymentConfig
from router.deployment import Deployment
from router.errors import (
    ConnectionError,
    InvalidRequestError,
    MalformedResponseError,
    RateLimitError,
    StreamInterruptedError,
    UnsupportedParameterError,
)
from router.request import RouteRequest
from tests.conftest import serve_routes

EVENTS: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)


class EchoDecoder:
    def __init__(self, call: Call) -> None:
        self._writer = EventWriter(call)

    def feed(self, event: Mapping[str, Any]) -> list[dict[str, Any]]:
        out = [] if event.get("seq") else self._writer.start()
        if "delta" in event:
            out += self._writer.text(event["delta"])
        elif "error" in event:
            out += self._writer.error("rate_limit_exceeded", event["error"])
        elif event.get("done"):
            out += self._writer.finish(usage=usage(1, event["tokens"]))
        return out

    def end(self) -> list[dict[str, Any]]:
        return []


class EchoCodec:
    name = "echo"

    def encode(self, call: Call) -> NativeRequest:
        if "temperature" in call.params:
            call.refuse("temperature", "has no sampling settings")
        texts = [part_text(p) or "" for item in input_items(call.params)
                 for p in item.get("content", [])]
        return NativeRequest("/stream" if call.stream else "/echo",
                             {"prompt": " ".join(texts), "model": call.model})

    def decode(self, body: Mapping[str, Any], call: Call) -> dict[str, Any]:
        item = message_item(item_id(call, "message", 0), body["reply"])
        return response_object(call, [item], usage=usage(1, body["tokens"]))

    def decoder(self, call: Call) -> EchoDecoder:
        return EchoDecoder(call)

    def error(self, status: int, body: Any) -> NativeError:
        message = body.get("oops", "?") if isinstance(body, dict) else str(body)
        return NativeError(429 if status == 400 and "slow" in message else status, message,
                           code="rate_limit_exceeded" if "slow" in message else None)


class EchoProvider(TranslatedProvider):
    name = "echo"
    codec = EchoCodec()

    def prepare(self, config: DeploymentConfig) -> Target:
        base = config.litellm_params.api_base or ""
        return Target(base_url=base, origin=base, headers={"x-key": "sekrit"},
                      state_domain=f"echo:{base}", drop_params=config.litellm_params.drop_params)


async def echo(request: web.Request) -> web.Response:
    body = await request.json()
    assert request.headers["x-key"] == "sekrit"
    if body["prompt"] == "slow":
        return web.json_response({"oops": "slow down"}, status=400, headers={"retry-after": "2"})
    if body["prompt"] == "garbage":
        return web.json_response({"no": "reply"})
    return web.json_response({"reply": body["prompt"].upper(), "tokens": 3})


async def stream(request: web.Request) -> web.StreamResponse:
    body = await request.json()
    answer = web.StreamResponse(headers={"content-type": "text/event-stream"})
    await answer.prepare(request)
    chunks: list[dict[str, Any]] = [{"delta": w, "seq": i} for i, w in enumerate("ab")]
    if body["prompt"] == "fail":
        chunks.append({"error": "slow down", "seq": 9})
    elif body["prompt"] != "cut":
        chunks.append({"done": True, "tokens": 2, "seq": 9})
    for chunk in chunks:
        await answer.write(f"data: {json.dumps(chunk)}\n\n".encode())
    await answer.write(b"data: [DONE]\n\n")
    return answer


def deployment(provider: EchoProvider, base: str, **params: Any) -> Deployment:
    config = DeploymentConfig.model_validate({
        "model_name": "g",
        "litellm_params": {"model": "openai/echo-1", "api_base": base, **params}})
    return Deployment(id="d1", model_name="g", provider_name="echo", upstream_model="echo-1",
                      config=config, provider=provider, endpoint=provider.prepare(config))


@pytest.fixture
async def echo_deployment() -> Any:
    pool = ClientPool()
    provider = EchoProvider(pool)
    async with serve_routes(echo=echo, stream=stream) as base:
        yield lambda **params: deployment(provider, base, **params)
    await pool.aclose()


async def test_create_translates_and_makes_a_router_id(echo_deployment: Any) -> None:
    d = echo_deployment()
    response = await d.provider.create(d, RouteRequest("g", {"input": "hi there"}), 5.0)
    sdk = SdkResponse.model_validate(response.model_dump())
    assert sdk.output_text == "HI THERE"
    assert re.fullmatch(r"resp_[0-9a-f]{32}", sdk.id)
    assert sdk.usage is not None and sdk.usage.output_tokens == 3
    again = await d.provider.create(d, RouteRequest("g", {"input": "hi"}), 5.0)
    assert again.id != sdk.id


async def test_native_error_is_normalised_by_the_codec(echo_deployment: Any) -> None:
    d = echo_deployment()
    with pytest.raises(RateLimitError) as info:
        await d.provider.create(d, RouteRequest("g", {"input": "slow"}), 5.0)
    assert info.value.retry_after == 2.0 and info.value.deployment_id == "d1"
    assert "sekrit" not in repr(info.value) and "sekrit" not in repr(d.endpoint)


async def test_wrong_shape_is_a_malformed_answer(echo_deployment: Any) -> None:
    d = echo_deployment()
    with pytest.raises(MalformedResponseError, match="not a valid echo body"):
        await d.provider.create(d, RouteRequest("g", {"input": "garbage"}), 5.0)


async def test_stream_events_validate_in_order(echo_deployment: Any) -> None:
    d = echo_deployment()
    events = [e._data async for e in d.provider.stream(d, RouteRequest("g", {"input": "x"}), 5)]
    for event in events:
        EVENTS.validate_python(event)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert events[0]["type"] == "response.created"
    assert events[-1]["type"] == "response.completed"
    assert SdkResponse.model_validate(events[-1]["response"]).output_text == "ab"


async def test_stream_error_event_is_raised(echo_deployment: Any) -> None:
    d = echo_deployment()
    seen: list[str] = []
    with pytest.raises(RateLimitError):
        async for event in d.provider.stream(d, RouteRequest("g", {"input": "fail"}), 5):
            seen.append(event.type)
    assert "response.output_text.delta" in seen


async def test_stream_cut_before_its_end_is_a_connection_error(echo_deployment: Any) -> None:
    d = echo_deployment()
    with pytest.raises(ConnectionError):
        async for _ in d.provider.stream(d, RouteRequest("g", {"input": "cut"}), 5):
            pass
    assert not issubclass(ConnectionError, StreamInterruptedError)


async def test_unsupported_parameter_is_refused_before_sending(echo_deployment: Any) -> None:
    d = echo_deployment()
    with pytest.raises(UnsupportedParameterError) as info:
        await d.provider.create(d, RouteRequest("g", {"input": "x", "temperature": 1}), 5.0)
    assert info.value.param == "temperature" and info.value.provider == "echo"
    assert info.value.deployment_id == "d1" and "drop_params" in info.value.message


@pytest.mark.parametrize(("extra", "why"), [
    ({"seed": float("nan")}, "NaN or infinity"), ({"tags": {1, 2}}, "not JSON serializable"),
])
async def test_a_body_that_is_not_json_is_refused_naming_its_field(
    echo_deployment: Any, extra: dict[str, Any], why: str
) -> None:
    d = echo_deployment()
    with pytest.raises(InvalidRequestError) as info:
        await d.provider.create(d, RouteRequest("g", {"input": "x"}, extra_body=extra), 5.0)
    name = next(iter(extra))
    assert info.value.message.startswith(f"{name}: cannot be sent as JSON")
    assert why in str(info.value)


async def test_drop_params_drops_and_warns_once(
    echo_deployment: Any, caplog: pytest.LogCaptureFixture
) -> None:
    d = echo_deployment(drop_params=True)
    with caplog.at_level(logging.WARNING, logger="router.providers"):
        for _ in range(3):
            response = await d.provider.create(
                d, RouteRequest("g", {"input": "x", "temperature": 1}), 5.0)
            assert response.output_text == "X"
    assert len([r for r in caplog.records if "temperature" in r.getMessage()]) == 1


@pytest.mark.parametrize("param", ["previous_response_id", "conversation"])
async def test_stateful_parameters_are_refused_even_with_drop_params(
    echo_deployment: Any, param: str
) -> None:
    d = echo_deployment(drop_params=True)
    with pytest.raises(InvalidRequestError, match=f"{param}: echo keeps no conversation"):
        await d.provider.create(d, RouteRequest("g", {"input": "x", param: "resp_1"}), 5.0)
