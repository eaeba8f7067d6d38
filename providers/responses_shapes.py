"""Responses API objects and stream events, built the same way for every codec.

Translated providers must hand back exactly what an OpenAI deployment would:
a ``Response`` that validates as ``openai.types.responses.Response`` and a
stream whose every event validates as ``ResponseStreamEvent``, with sequence
numbers, item ids and indexes in the order the API promises. That bookkeeping
is the same whatever the native API, so it lives here once:

* :func:`response_object`, :func:`message_item`, :func:`function_call_item`,
  :func:`reasoning_item`, :func:`usage`: the plain (non-streamed) shapes;
* :class:`EventWriter`: the stream side. A codec's stream decoder reads its
  native events and calls ``text`` / ``reasoning`` / ``function_call`` /
  ``arguments`` / ``finish``; the writer opens and closes items and content
  parts around them and numbers every event.

Item ids are derived from the response id and the item's output index, so
codecs stay pure (no randomness) and ids stay unique wherever the response
id is.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from providers.codec import Call

__all__ = [
    "EventWriter",
    "FinishStatus",
    "function_call_item",
    "item_id",
    "message_item",
    "reasoning_item",
    "response_object",
    "usage",
    "web_search_item",
]

Json = dict[str, Any]
FinishStatus = Literal["completed", "incomplete"]

#: Responses create parameters echoed on the Response object, with their defaults.
_ECHOED: tuple[tuple[str, Any], ...] = (
    ("instructions", None), ("max_output_tokens", None), ("metadata", {}),
    ("parallel_tool_calls", True), ("previous_response_id", None), ("reasoning", None),
    ("store", True), ("temperature", None), ("text", {"format": {"type": "text"}}),
    ("tool_choice", "auto"), ("tools", []), ("top_p", None), ("truncation", "disabled"),
    ("user", None), ("background", False), ("prompt_cache_key", None),
)

_ECHO_DEFAULTS = dict(_ECHOED)
_ECHO_NAMES = frozenset(_ECHO_DEFAULTS)
#: A Response's keys in order, with the echoed defaults: each Response starts as a copy
#: (one C-level copy, rather than a dict built key by key) whose other keys are then set.
_RESPONSE: MappingProxyType[str, Any] = MappingProxyType({
    "id": None, "object": "response", "created_at": None, "status": None, "model": None,
    "output": None, "error": None, "incomplete_details": None, "usage": None,
    **_ECHO_DEFAULTS,
})

_ITEM_PREFIX = {"message": "msg", "refusal": "msg", "function_call": "fc", "reasoning": "rs",
                "web_search_call": "ws"}


def item_id(call: Call, kind: str, index: int) -> str:
    """The id of output item ``index`` of ``call``'s response (``msg_...``, ``fc_...``)."""
    return f"{_ITEM_PREFIX.get(kind, 'item')}_{call.response_id.removeprefix('resp_')}_{index}"


def usage(
    input_tokens: int,
    output_tokens: int,
    *,
    cached_tokens: int = 0,
    cache_write_tokens: int = 0,
    reasoning_tokens: int = 0,
) -> Json:
    """A Responses ``usage`` object.

    ``input_tokens`` counts every input token, the cached (read) and
    cache-written ones included; ``output_tokens`` includes reasoning tokens.
    """
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": cached_tokens,
                                 "cache_write_tokens": cache_write_tokens},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": reasoning_tokens},
        "total_tokens": input_tokens + output_tokens,
    }


def message_item(
    item: str, text: str, *, status: str = "completed", annotations: Sequence[Json] = ()
) -> Json:
    """An assistant message with one ``output_text`` part (with its ``annotations``)."""
    return {"type": "message", "id": item, "status": status, "role": "assistant",
            "content": [_text_part(text, annotations)]}


def function_call_item(
    item: str, call_id: str, name: str, arguments: str, *, status: str = "completed"
) -> Json:
    """A ``function_call`` output item (``arguments`` is the JSON text)."""
    return {"type": "function_call", "id": item, "call_id": call_id, "name": name,
            "arguments": arguments, "status": status}


def reasoning_item(item: str, summary: Sequence[str], *, encrypted: str | None = None) -> Json:
    """A ``reasoning`` item whose summary parts are ``summary``.

    ``encrypted`` carries what the provider needs to accept this reasoning
    back in a later turn (e.g. a thinking block's signature).
    """
    data: Json = {"type": "reasoning", "id": item,
                  "summary": [{"type": "summary_text", "text": s} for s in summary]}
    if encrypted is not None:
        data["encrypted_content"] = encrypted
    return data


def web_search_item(item: str, query: str, *, status: str = "completed") -> Json:
    """A ``web_search_call`` output item for one search the provider ran for the model."""
    return {"type": "web_search_call", "id": item, "status": status,
            "action": {"type": "search", "query": query}}


def response_object(
    call: Call,
    output: list[Json],
    *,
    status: str = "completed",
    usage: Json | None = None,
    incomplete_reason: str | None = None,
    error: Json | None = None,
) -> Json:
    """The ``Response`` for ``call`` with ``output``, echoing the call's parameters."""
    data: Json = _RESPONSE.copy()
    data["id"] = call.response_id
    data["created_at"] = call.created_at
    data["status"] = status
    data["model"] = call.model
    data["output"] = output
    data["error"] = error
    if incomplete_reason is not None:
        data["incomplete_details"] = {"reason": incomplete_reason}
    data["usage"] = usage
    # fresh containers: a caller changing one response's must not change the next's
    data["metadata"] = {}
    data["text"] = {"format": {"type": "text"}}
    data["tools"] = []
    params = call.params
    for name in params:  # a few names: cheaper than building their intersection
        if name in _ECHO_NAMES:
            data[name] = params[name]
    return data


def _text_part(text: str, annotations: Sequence[Json] = ()) -> Json:
    return {"type": "output_text", "text": text,
            "annotations": list(annotations) if annotations else [], "logprobs": []}


@dataclass(slots=True)
class _Open:
    """An output item being streamed."""

    kind: str
    item: str
    index: int
    text: list[str] = field(default_factory=list)
    call_id: str = ""
    name: str = ""
    encrypted: str | None = None
    annotations: list[Json] = field(default_factory=list)


class EventWriter:
    """Builds one stream's Responses events around a codec's native events.

    Items are keyed by the codec (a content block index, a tool call index,
    ``"text"``): the first delta of an unknown key opens a new output item,
    and opening one closes whichever item is open, since Responses streams
    one item at a time. :meth:`finish` closes what is open and ends the
    stream; the writer then refuses further use.
    """

    def __init__(self, call: Call) -> None:
        self._call = call
        self._seq = 0
        self._output: list[Json] = []
        self._open: _Open | None = None
        self._keys: dict[Hashable, _Open] = {}
        self._done = False

    @property
    def done(self) -> bool:
        """A terminal event (or an ``error`` event) has been written."""
        return self._done

    @property
    def next_index(self) -> int:
        """The output index the next item opened will get."""
        return len(self._output)

    def start(self) -> list[Json]:
        """``response.created`` and ``response.in_progress``."""
        snapshot = self._snapshot("in_progress")
        return [self._event("response.created", response=snapshot),
                self._event("response.in_progress", response=snapshot)]

    def text(self, delta: str, key: Hashable = "text") -> list[Json]:
        """Append ``delta`` to the message keyed ``key`` (opening it if new)."""
        events = self._ensure(key, "message")
        current = self._keys[key]
        if delta:
            current.text.append(delta)
            events.append(self._event(
                "response.output_text.delta", item_id=current.item,
                output_index=current.index, content_index=0, delta=delta, logprobs=[]))
        return events

    def refusal(self, delta: str, key: Hashable = "refusal") -> list[Json]:
        """Append ``delta`` to the refusal of the assistant message keyed ``key``.

        The message holds one ``refusal`` content part (as OpenAI streams a refusal).
        """
        events = self._ensure(key, "refusal")
        current = self._keys[key]
        if delta:
            current.text.append(delta)
            events.append(self._event(
                "response.refusal.delta", item_id=current.item, output_index=current.index,
                content_index=0, delta=delta))
        return events

    def annotate(self, annotation: Json, key: Hashable = "text") -> list[Json]:
        """Add ``annotation`` (e.g. a ``url_citation``) to the open message keyed ``key``."""
        events = self._ensure(key, "message")
        current = self._keys[key]
        current.annotations.append(annotation)
        events.append(self._event(
            "response.output_text.annotation.added", item_id=current.item,
            output_index=current.index, content_index=0,
            annotation_index=len(current.annotations) - 1, annotation=annotation))
        return events

    def reasoning(self, delta: str, key: Hashable = "reasoning") -> list[Json]:
        """Append ``delta`` to the summary of the reasoning item keyed ``key``."""
        events = self._ensure(key, "reasoning")
        current = self._keys[key]
        if delta:
            current.text.append(delta)
            events.append(self._event(
                "response.reasoning_summary_text.delta", item_id=current.item,
                output_index=current.index, summary_index=0, delta=delta))
        return events

    def reasoning_encrypted(self, value: str, key: Hashable = "reasoning") -> list[Json]:
        """Attach ``encrypted_content`` to the reasoning item keyed ``key``."""
        events = self._ensure(key, "reasoning")
        self._keys[key].encrypted = value
        return events

    def function_call(self, key: Hashable, *, call_id: str, name: str) -> list[Json]:
        """Open the function call keyed ``key``."""
        if key in self._keys:
            return []
        return self._begin(key, "function_call", call_id=call_id, name=name)

    def arguments(self, key: Hashable, delta: str) -> list[Json]:
        """Append ``delta`` to the arguments of the open function call ``key``."""
        current = self._keys.get(key)
        if current is None or current.kind != "function_call":
            raise KeyError(f"no function call {key!r} is open")
        events = self._reopen(current)
        if delta:
            current.text.append(delta)
            events.append(self._event(
                "response.function_call_arguments.delta", item_id=current.item,
                output_index=current.index, delta=delta))
        return events

    def web_search_call(self, key: Hashable, query: str) -> list[Json]:
        """A whole ``web_search_call`` item (a search the provider ran), keyed ``key``.

        Provider-side searches arrive finished, so the item is opened, taken
        through ``in_progress`` / ``searching`` / ``completed`` and closed at once.
        """
        if key in self._keys:
            return []
        if self._done:
            raise ValueError("the stream has ended")
        events = self.close()
        index = len(self._output)
        current = _Open("web_search_call", item_id(self._call, "web_search_call", index), index)
        self._keys[key] = current
        ids: Json = {"item_id": current.item, "output_index": index}
        done = web_search_item(current.item, query)
        self._output.append(done)
        events.append(self._event("response.output_item.added", output_index=index,
                                  item=web_search_item(current.item, query, status="in_progress")))
        for stage in ("in_progress", "searching", "completed"):
            events.append(self._event(f"response.web_search_call.{stage}", **ids))
        events.append(self._event("response.output_item.done", output_index=index, item=done))
        return events

    def close(self) -> list[Json]:
        """Close the open item, if any."""
        current, self._open = self._open, None
        if current is None:
            return []
        return self._close(current)

    def finish(
        self, *, usage: Json | None = None, incomplete_reason: str | None = None
    ) -> list[Json]:
        """Close what is open and end with ``response.completed`` (or ``.incomplete``)."""
        events = self.close()
        status: FinishStatus = "completed" if incomplete_reason is None else "incomplete"
        final = response_object(self._call, list(self._output), status=status, usage=usage,
                                incomplete_reason=incomplete_reason)
        events.append(self._event(f"response.{status}", response=final))
        self._done = True
        return events

    def fail(self, code: str, message: str, *, usage: Json | None = None) -> list[Json]:
        """End with ``response.failed`` carrying ``{code, message}`` (a model-side failure)."""
        events = self.close()
        final = response_object(self._call, list(self._output), status="failed", usage=usage,
                                error={"code": code, "message": message})
        events.append(self._event("response.failed", response=final))
        self._done = True
        return events

    def error(self, code: str | None, message: str, param: str | None = None) -> list[Json]:
        """A stream ``error`` event (the upstream failed mid-stream); the stream ends."""
        self._done = True
        return [self._event("error", code=code, message=message, param=param)]

    # -- internals ------------------------------------------------------------------

    def _ensure(self, key: Hashable, kind: str) -> list[Json]:
        current = self._keys.get(key)
        if current is None:
            return self._begin(key, kind)
        return self._reopen(current)

    def _reopen(self, current: _Open) -> list[Json]:
        if current is self._open:
            return []
        raise ValueError(f"output item {current.item!r} was already closed")

    def _begin(self, key: Hashable, kind: str, *, call_id: str = "", name: str = "") -> list[Json]:
        if self._done:
            raise ValueError("the stream has ended")
        events = self.close()
        index = len(self._output)
        current = _Open(kind, item_id(self._call, kind, index), index, call_id=call_id, name=name)
        self._keys[key] = self._open = current
        self._output.append(self._item(current, "in_progress"))
        events.append(self._event("response.output_item.added", output_index=index,
                                  item=self._item(current, "in_progress")))
        if kind == "message":
            events.append(self._event(
                "response.content_part.added", item_id=current.item, output_index=index,
                content_index=0, part=_text_part("")))
        elif kind == "refusal":
            events.append(self._event(
                "response.content_part.added", item_id=current.item, output_index=index,
                content_index=0, part={"type": "refusal", "refusal": ""}))
        elif kind == "reasoning":
            events.append(self._event(
                "response.reasoning_summary_part.added", item_id=current.item,
                output_index=index, summary_index=0, part={"type": "summary_text", "text": ""}))
        return events

    def _close(self, current: _Open) -> list[Json]:
        text = "".join(current.text)
        ids: Json = {"item_id": current.item, "output_index": current.index}
        events: list[Json] = []
        if current.kind == "message":
            events.append(self._event("response.output_text.done", **ids, content_index=0,
                                      text=text, logprobs=[]))
            events.append(self._event("response.content_part.done", **ids, content_index=0,
                                      part=_text_part(text, current.annotations)))
        elif current.kind == "refusal":
            events.append(self._event("response.refusal.done", **ids, content_index=0,
                                      refusal=text))
            events.append(self._event("response.content_part.done", **ids, content_index=0,
                                      part={"type": "refusal", "refusal": text}))
        elif current.kind == "reasoning":
            part = {"type": "summary_text", "text": text}
            events.append(self._event("response.reasoning_summary_text.done", **ids,
                                      summary_index=0, text=text))
            events.append(self._event("response.reasoning_summary_part.done", **ids,
                                      summary_index=0, part=part))
        else:
            events.append(self._event("response.function_call_arguments.done", **ids,
                                      name=current.name, arguments=text))
        done = self._item(current, "completed")
        self._output[current.index] = done
        events.append(self._event("response.output_item.done", output_index=current.index,
                                  item=done))
        return events

    def _item(self, current: _Open, status: str) -> Json:
        text = "".join(current.text)
        if current.kind == "message":
            item = message_item(current.item, text, status=status,
                                annotations=current.annotations)
            if status != "completed":
                item["content"] = []
            return item
        if current.kind == "refusal":
            content = [{"type": "refusal", "refusal": text}] if status == "completed" else []
            return {"type": "message", "id": current.item, "status": status,
                    "role": "assistant", "content": content}
        if current.kind == "reasoning":
            summary = [text] if status == "completed" and text else []
            return reasoning_item(current.item, summary, encrypted=current.encrypted)
        return function_call_item(current.item, current.call_id, current.name, text,
                                  status=status)

    def _snapshot(self, status: str) -> Json:
        return response_object(self._call, [], status=status)

    def _event(self, kind: str, **fields: Any) -> Json:
        event: Json = {"type": kind, **fields, "sequence_number": self._seq}
        self._seq += 1
        return event

