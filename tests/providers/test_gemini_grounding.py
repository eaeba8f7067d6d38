"""Gemini's Google Search grounding (providers/gemini_grounding.py) as url_citation annotations
and web_search_call items: byte offsets become character offsets, malformed metadata drops a
citation and never the answer; end to end through the Router, plain and streamed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from openai.types.responses import Response as SdkResponse
from openai.types.responses import ResponseStreamEvent
from pydantic import TypeAdapter

from providers.gemini_grounding import citations, search_queries
from router.testing.gemini import GeminiUpstream

EVENTS: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)
WEB = [{"web": {"uri": "https://a.example/x", "title": "a.example"}},
       {"web": {"uri": "https://b.example/y"}}]


def support(start: int, end: int, *chunks: int, part: int | None = None) -> dict[str, Any]:
    segment: dict[str, Any] = {"startIndex": start, "endIndex": end}
    if part is not None:
        segment["partIndex"] = part
    return {"segment": segment, "groundingChunkIndices": list(chunks)}


def candidate(*supports: Any, chunks: Any = WEB, queries: Any = ("q",)) -> dict[str, Any]:
    return {"groundingMetadata": {"webSearchQueries": list(queries), "groundingChunks": chunks,
                                  "groundingSupports": list(supports)}}


def test_byte_offsets_become_character_offsets() -> None:
    text = "Zürich is big. Genève too."  # ü and è are two bytes each in UTF-8
    raw = text.encode()
    first = raw.index(b".") + 1
    found = citations(candidate(support(0, first, 0), support(first + 1, len(raw), 0, 1)),
                      {0: (text, 0)})
    spans = [(a["start_index"], a["end_index"], a["url"]) for _, a in found]
    assert spans == [(0, 14, "https://a.example/x"), (15, 26, "https://a.example/x"),
                     (15, 26, "https://b.example/y")]
    assert text[0:14] == "Zürich is big." and text[15:26] == "Genève too."
    assert found[2][1]["title"] == "https://b.example/y"  # no title: the URL stands in


def test_a_part_offset_is_added_and_the_part_named() -> None:
    found = citations(candidate(support(0, 3, 0, part=2)), {2: ("abc", 10)})
    assert found == [(2, {"type": "url_citation", "start_index": 10, "end_index": 13,
                          "url": "https://a.example/x", "title": "a.example"})]


@pytest.mark.parametrize("bad", [
    support(0, 99, 0),  # past the text
    support(5, 2, 0),  # backwards
    support(0, 3, 7),  # no such chunk
    support(0, 3, 0, part=4),  # no such part
    {"segment": "x", "groundingChunkIndices": [0]},
    {"segment": {"startIndex": "0", "endIndex": 3}, "groundingChunkIndices": [0]},
])
def test_a_malformed_support_is_dropped(bad: Any) -> None:
    assert citations(candidate(bad, support(0, 3, 0)), {0: ("abcdef", 0)}) == [
        (0, {"type": "url_citation", "start_index": 0, "end_index": 3,
             "url": "https://a.example/x", "title": "a.example"})]


def test_a_source_that_is_not_web_and_odd_metadata_are_ignored() -> None:
    assert citations(candidate(support(0, 3, 0), chunks=[{"retrievedContext": {}}]),
                     {0: ("abc", 0)}) == []
    assert citations({"groundingMetadata": "x"}, {0: ("abc", 0)}) == []
    assert search_queries(candidate(queries=["a", "", 3, "b"])) == ["a", "b"]
    assert search_queries({}) == []


@pytest.fixture
async def fake() -> AsyncIterator[GeminiUpstream]:
    async with GeminiUpstream("g", stream_chunks=4) as up:
        yield up


def dep(up: GeminiUpstream) -> dict[str, Any]:
    return {"model_name": "flash", "litellm_params": {
        "model": "gemini/gemini-2.5-flash", "api_base": up.url, "api_key": up.api_key}}


async def test_a_grounded_answer_cites_its_sources(fake: GeminiUpstream, make_router: Any) -> None:
    router = make_router([dep(fake)])
    response = await router.aresponses(model="flash", input="search Zürich weather",
                                       tools=[{"type": "web_search"}])
    sdk = SdkResponse.model_validate(response.model_dump())
    message, search = sdk.output
    assert message.type == "message" and search.type == "web_search_call"
    assert search.action.query == "search Zürich weather"  # type: ignore[union-attr]
    text = message.content[0].text  # type: ignore[union-attr]
    notes = message.content[0].annotations  # type: ignore[union-attr]
    assert [(text[n.start_index:n.end_index], n.url) for n in notes] == [  # type: ignore[union-attr]
        ("[g] echo:", "https://example.com/a"),
        ("search Zürich weather", "https://example.com/a"),
        ("search Zürich weather", "https://example.org/b")]
    assert fake.requests[0]["body"]["tools"] == [{"googleSearch": {}}]


async def test_a_grounded_stream_cites_the_same(fake: GeminiUpstream, make_router: Any) -> None:
    router = make_router([dep(fake)])
    plain = await router.aresponses(model="flash", input="search Genève",
                                    tools=[{"type": "web_search"}])
    stream = await router.aresponses(model="flash", input="search Genève", stream=True,
                                     tools=[{"type": "web_search"}])
    events = [event._data async for event in stream]
    for event in events:
        EVENTS.validate_python(event)
    added = [e["annotation"] for e in events
             if e["type"] == "response.output_text.annotation.added"]
    final = SdkResponse.model_validate(events[-1]["response"])
    assert [item.type for item in final.output] == ["message", "web_search_call"]
    expected = plain.output[0].content[0].annotations
    assert added == [a.model_dump() for a in expected]
    kept = final.output[0].content[0].annotations  # type: ignore[union-attr,index]
    assert [a.model_dump() for a in kept] == added


async def test_an_answer_without_search_has_no_citations(
    fake: GeminiUpstream, make_router: Any
) -> None:
    router = make_router([dep(fake)])
    response = await router.aresponses(model="flash", input="hello",
                                       tools=[{"type": "web_search"}])
    assert [item.type for item in response.output] == ["message"]
    assert response.output[0].content[0].annotations == []
