"""Where a Bedrock request's CPU goes: codec, SigV4 signing, event-stream decoding.

``benchmarks/translation.py`` measures the whole path against the native
one; this splits the Bedrock path into its parts, in this process, without
I/O, so a change to one part (the codec, or replacing botocore's signer or
event-stream parser) can be judged on its own:

* ``encode``: Responses params -> Converse body, and the JSON dump the
  sender needs (the native path dumps too);
* ``decode``: a Converse body -> a Responses ``Response``;
* ``sign``: the provider's SigV4 (:mod:`providers.sigv4`) over the request,
  and botocore's for comparison (per request);
* ``frame``: the provider's event-stream decoder
  (:mod:`providers.aws_eventstream`), and botocore's for comparison, with the
  JSON payload, one frame per network chunk (per stream event);
* ``codec event``: the stream decoder's work per ConverseStream event;
* ``native sse``: for scale, httpx-sse's parser and ``json.loads`` on a
  native Responses delta event (what the native path pays per event).

Each figure is the median of ``--rounds`` rounds of process CPU time.

    .venv/bin/python benchmarks/bedrock_parts.py [--rounds 5] [--quick]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.eventstream import EventStreamBuffer
from httpx_sse._decoders import SSEDecoder

from providers.aws_eventstream import EventStreamDecoder
from providers.bedrock_codec import BedrockCodec
from providers.codec import Call
from providers.sigv4 import SigV4Signer
from router.testing.bedrock import event_message

MODEL = "us.anthropic.claude-sonnet-4-20250514-v1:0"
URL = f"https://bedrock-runtime.us-east-1.amazonaws.com/model/{MODEL}/converse"
PARAMS = {"input": [{"role": "user", "content": "What is the weather in Paris today?"}],
          "instructions": "You are helpful.", "max_output_tokens": 200, "temperature": 0.5}
ANSWER = {"output": {"message": {"role": "assistant", "content": [
    {"text": "The weather in Paris is sunny with a high of 22C. " * 3}]}},
    "stopReason": "end_turn", "usage": {"inputTokens": 20, "outputTokens": 40, "totalTokens": 60},
    "metrics": {"latencyMs": 100}}
EVENTS = 100
CODEC = BedrockCodec()


def _call(stream: bool = False) -> Call:
    return Call("bedrock", MODEL, PARAMS, "resp_" + "0" * 32, 1_700_000_000, stream=stream)


def _encode() -> None:
    json.dumps(CODEC.encode(_call()).body).encode()


def _decode() -> None:
    CODEC.decode(ANSWER, _call())


BODY = json.dumps(CODEC.encode(_call()).body).encode()
CREDENTIALS = Credentials("AKIDEXAMPLE", "secret")


def _sign() -> None:
    request = AWSRequest(method="POST", url=URL, data=BODY,
                         headers={"content-type": "application/json", "accept": "application/json"})
    SigV4Auth(CREDENTIALS, "bedrock", "us-east-1").add_auth(request)
    dict(request.headers.items())


FRAMES = [event_message(
    {":event-type": "contentBlockDelta", ":content-type": "application/json",
     ":message-type": "event"},
    json.dumps({"contentBlockIndex": 0, "delta": {"text": "word "}, "p": "abcdefgh"}).encode())
    for _ in range(EVENTS)]


SIGNER = SigV4Signer("us-east-1", "bedrock")


def _sign_ours() -> None:
    SIGNER.sign(URL, {"content-type": "application/json", "accept": "application/json"}, BODY,
                access_key="AKIDEXAMPLE", secret_key="secret")


def _frames_ours() -> None:
    decoder = EventStreamDecoder()
    for frame in FRAMES:
        for _headers, payload in decoder.feed(frame):
            json.loads(payload)


def _frames() -> None:
    buffer = EventStreamBuffer()
    for frame in FRAMES:
        buffer.add_data(frame)
        for message in buffer:
            json.loads(message.payload)


NATIVE = [{"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"text": "word "}}}] * EVENTS
START = [{"messageStart": {"role": "assistant"}}]


def _codec_events() -> None:
    decoder = CODEC.decoder(_call(stream=True))
    for event in START + NATIVE:
        decoder.feed(event)


SSE = [f"event: response.output_text.delta\ndata: {json.dumps(e)}\n\n" for e in [{
    "type": "response.output_text.delta", "item_id": "msg_" + "0" * 32 + "_0",
    "output_index": 0, "content_index": 0, "delta": "word ", "logprobs": [],
    "sequence_number": 5}] * EVENTS]


def _native_sse() -> None:
    decoder = SSEDecoder()
    for chunk in SSE:
        for line in chunk.split("\n"):
            sse = decoder.decode(line)
            if sse is not None:
                json.loads(sse.data)


def _median_us(fn: Callable[[], None], loops: int, rounds: int, per: int) -> float:
    figures = []
    for _ in range(rounds):
        start = time.process_time()
        for _ in range(loops):
            fn()
        figures.append((time.process_time() - start) / loops / per * 1e6)
    return statistics.median(figures)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="fewer loops (a smoke run)")
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    rows = [
        ("encode (per request)", _encode, 20_000 // scale, 1),
        ("decode (per request)", _decode, 20_000 // scale, 1),
        ("sign, providers.sigv4, what the provider uses (per request)", _sign_ours,
         20_000 // scale, 1),
        ("sign, botocore SigV4, for comparison (per request)", _sign, 5_000 // scale, 1),
        ("frame, providers.aws_eventstream + json, what the provider uses (per event)",
         _frames_ours, 300 // scale, EVENTS),
        ("frame, botocore event-stream + json, for comparison (per event)", _frames,
         300 // scale, EVENTS),
        ("codec (per stream event)", _codec_events, 300 // scale, EVENTS),
        ("native sse + json, for scale (per event)", _native_sse, 300 // scale, EVENTS),
    ]
    for name, fn, loops, per in rows:
        print(f"{name:<50} {_median_us(fn, loops, args.rounds, per):8.2f} µs")


if __name__ == "__main__":
    main()
