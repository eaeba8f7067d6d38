"""The translation seam: what a provider that does not speak the Responses API supplies.

A *codec* turns one Responses ``create`` call into a provider's native HTTP
request, and the provider's answer (a JSON body, or a stream of native
events) back into Responses objects and events. Codecs are pure: no I/O, no
clock reads, no randomness of their own (ids and the creation time arrive in
the :class:`Call`), so they are tested from fixtures alone and cost only the
dictionary work they do.

Everything around a codec is shared and lives in
:class:`providers.translated.TranslatedProvider`: the router's pooled
sender, timeouts, auth hooks, stream framing and the error table. Adding a
provider is one codec module, one small provider class (URL and auth), one
fake upstream in ``router/testing/`` and their tests.

Error handling in a codec:

* a Responses parameter the provider cannot honour goes through
  :meth:`Call.refuse`: with ``drop_params`` it is dropped (and reported once
  per deployment by the provider), else :class:`UnsupportedParameterError`
  is raised before any upstream call;
* a native error body is normalised by :meth:`Codec.error` into OpenAI's
  error shape, which the router's one error table then classifies;
* a native error in the middle of a stream becomes an ``error`` event
  (:meth:`providers.responses_shapes.EventWriter.error`), which the shared
  stream path raises exactly as it does for a native Responses upstream.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from router.errors import UnsupportedParameterError

__all__ = ["Call", "Codec", "EncodeStep", "NativeError", "NativeRequest", "StreamDecoder",
           "run_steps"]

#: A decoded JSON object.
Json = dict[str, Any]


@dataclass(slots=True)
class Call:
    """One translated ``create`` call, as a codec sees it.

    ``params`` are the Responses create parameters the caller gave (without
    ``model`` and ``stream``); ``model`` is the upstream model name;
    ``response_id`` and ``created_at`` (Unix seconds) are what the translated
    Response must carry. ``dropped`` collects the parameters :meth:`refuse`
    dropped under ``drop_params``.
    """

    provider: str
    model: str
    params: Mapping[str, Any]
    response_id: str
    created_at: int
    stream: bool = False
    drop_params: bool = False
    dropped: list[str] = field(default_factory=list)

    def refuse(self, param: str, why: str) -> None:
        """``param`` cannot be honoured: drop it under ``drop_params``, else raise.

        ``why`` completes "the provider ..." in the error message (e.g. "has no
        equivalent of built-in tool 'file_search'").
        """
        if self.drop_params:
            if param not in self.dropped:
                self.dropped.append(param)
            return
        raise UnsupportedParameterError(
            f"{param}: {self.provider} {why}; remove it, or set drop_params: true "
            "on the deployment to drop what the provider cannot honour",
            param=param, provider=self.provider,
        )


#: One step of an encoder: the Responses parameters it reads, and what it adds to the body.
EncodeStep = tuple[frozenset[str], Callable[["Call", Json], None]]


def run_steps(call: Call, body: Json, steps: Sequence[EncodeStep]) -> None:
    """Run each step whose parameters ``call`` gives, in order. A step reads only its own
    parameters, so one whose parameters are all absent has nothing to do: the common
    call, a bare input, then pays for no step's checks."""
    given = call.params.keys()
    for names, step in steps:
        if not given.isdisjoint(names):
            step(call, body)


@dataclass(slots=True)
class NativeRequest:
    """The native HTTP request a codec built.

    ``path`` is appended to the deployment's base URL (``"/chat/completions"``,
    ``"/v1/messages"``, ``"/models/gemini-2.0-flash:generateContent"``);
    ``query`` and ``headers`` are merged over the deployment's own.

    Treated as immutable once made, but not frozen: one is made per request, and a
    frozen dataclass sets each field through ``object.__setattr__``, which tripled
    the cost of making one.
    """

    path: str
    body: Json
    query: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class NativeError:
    """A native error normalised to what the router's error table reads.

    ``status`` is the HTTP status to classify by (a provider may answer a
    throttle with 400; the codec says 429); ``code`` is an OpenAI error code
    where one fits (``rate_limit_exceeded``, ``context_length_exceeded``,
    ``server_is_overloaded``, ``invalid_api_key``, ``model_not_found``, ...),
    else the provider's own.
    """

    status: int
    message: str
    code: str | None = None
    type: str | None = None
    param: str | None = None

    def body(self) -> Json:
        """The error in OpenAI's JSON shape."""
        return {"error": {"message": self.message, "type": self.type, "param": self.param,
                          "code": self.code}}


class StreamDecoder(Protocol):
    """Turns one stream's native events into Responses stream events, in order.

    One decoder serves exactly one stream. Every returned event is a complete
    Responses stream event with its ``sequence_number``.
    """

    def feed(self, event: Mapping[str, Any]) -> list[Json]:
        """The Responses events one native event yields (often none or one)."""
        ...

    def end(self) -> list[Json]:
        """The upstream stream ended: the events that close it.

        Empty when a terminal event was already returned; when the native
        stream ended before its own end marker, a stream ``error`` event.
        """
        ...


class Codec(Protocol):
    """Pure translation between the Responses API and one native API."""

    name: str

    def encode(self, call: Call) -> NativeRequest:
        """The native request for ``call`` (streaming or not, as ``call.stream`` says)."""
        ...

    def decode(self, body: Mapping[str, Any], call: Call) -> Json:
        """A native (non-streamed) answer as a Responses ``Response`` object.

        Raises :class:`router.errors.MalformedResponseError` for a body that is
        not the native shape.
        """
        ...

    def decoder(self, call: Call) -> StreamDecoder:
        """A fresh decoder for one stream of ``call``."""
        ...

    def error(self, status: int, body: Any) -> NativeError:
        """A native error answer (decoded JSON, or text) normalised."""
        ...
