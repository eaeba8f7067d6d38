"""Gemini's Google Search grounding as Responses citations and web search calls.

A grounded answer's candidate carries ``groundingMetadata``:
``webSearchQueries`` (what the model searched for), ``groundingChunks`` (the
sources: ``{"web": {"uri", "title"}}``) and ``groundingSupports``. Each
support ties a ``segment`` of the answer to some chunks. A segment's
``startIndex`` / ``endIndex`` count UTF-8 bytes from the start of its part
(``partIndex``, 0 when absent). The Responses API counts characters, so
offsets are converted.

* each (segment, chunk) pair becomes a ``url_citation`` annotation on the
  message that holds the segment's text. Its indices are characters in that
  message's text, and its URL and title are the chunk's;
* each query becomes a ``web_search_call`` item. Gemini reports its searches
  with the answer, not before it, so these items follow the message.

Malformed metadata (a segment past its text, a chunk index out of range, a
chunk that is not a web source) drops that citation, never the answer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["citations", "search_queries"]

Json = dict[str, Any]


def search_queries(candidate: Mapping[str, Any]) -> list[str]:
    """The searches the model ran for this candidate, in order."""
    metadata = candidate.get("groundingMetadata")
    queries = metadata.get("webSearchQueries") if isinstance(metadata, Mapping) else None
    if not isinstance(queries, list):
        return []
    return [q for q in queries if isinstance(q, str) and q]


def citations(
    candidate: Mapping[str, Any], texts: Mapping[int, tuple[str, int]]
) -> list[tuple[int, Json]]:
    """``(part index, url_citation)`` for each grounded segment and source.

    ``texts`` maps a text part's index to its text and the character offset at
    which it starts in its message; the annotation's indices include that
    offset.
    """
    metadata = candidate.get("groundingMetadata")
    if not isinstance(metadata, Mapping):
        return []
    chunks = metadata.get("groundingChunks")
    supports = metadata.get("groundingSupports")
    if not isinstance(chunks, list) or not isinstance(supports, list):
        return []
    found: list[tuple[int, Json]] = []
    for support in supports:
        if isinstance(support, Mapping):
            found += _support(support, chunks, texts)
    return found


def _support(
    support: Mapping[str, Any], chunks: Sequence[Any], texts: Mapping[int, tuple[str, int]]
) -> list[tuple[int, Json]]:
    segment = support.get("segment")
    indices = support.get("groundingChunkIndices")
    if not isinstance(segment, Mapping) or not isinstance(indices, list):
        return []
    part = segment.get("partIndex", 0)
    located = texts.get(part) if isinstance(part, int) else None
    if located is None:
        return []
    span = _characters(located[0], segment.get("startIndex", 0), segment.get("endIndex"))
    if span is None:
        return []
    start, end = located[1] + span[0], located[1] + span[1]
    out: list[tuple[int, Json]] = []
    for index in indices:
        source = _web(chunks, index)
        if source is not None:
            out.append((part, {"type": "url_citation", "start_index": start, "end_index": end,
                               "url": source[0], "title": source[1]}))
    return out


def _characters(text: str, start: Any, end: Any) -> tuple[int, int] | None:
    """A byte span of ``text`` (UTF-8) as a character span; ``None`` when it does not fit."""
    if not isinstance(start, int) or not isinstance(end, int) or not 0 <= start <= end:
        return None
    raw = text.encode()
    if end > len(raw):
        return None
    return (len(raw[:start].decode(errors="ignore")), len(raw[:end].decode(errors="ignore")))


def _web(chunks: Sequence[Any], index: Any) -> tuple[str, str] | None:
    """The ``(uri, title)`` of web chunk ``index``, if it is one."""
    if not isinstance(index, int) or not 0 <= index < len(chunks):
        return None
    chunk = chunks[index]
    web = chunk.get("web") if isinstance(chunk, Mapping) else None
    uri = web.get("uri") if isinstance(web, Mapping) else None
    if not isinstance(uri, str) or not uri:
        return None
    title = web.get("title") if isinstance(web, Mapping) else None
    return uri, title if isinstance(title, str) else uri
