"""Objects the router hands back: responses, stream events, routing metadata.

Upstream answers are kept as the JSON the upstream sent, untouched, behind a
thin attribute-access view (:class:`Record`). That keeps every field,
including ones added to the API after this code was written, costs nothing
per request (no model validation on the hot path), and ``model_dump()``
returns exactly what the upstream said: the object validates as
``openai.types.responses.Response``. What the router adds (which deployment
served, the attempt trail) lives in ``.routing``, outside ``model_dump()``.
"""

from __future__ import annotations

import copy
import json
import json.encoder
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from json.encoder import encode_basestring, encode_basestring_ascii
from typing import Any

from pydantic_core import from_json, to_json

__all__ = [
    "TERMINAL_EVENTS",
    "Attempt",
    "AttemptTrail",
    "Record",
    "Response",
    "RoutingInfo",
    "StreamEvent",
    "body_json",
    "dump_json",
    "parse_json",
    "record_json",
]


def _wrap(value: Any) -> Any:
    if isinstance(value, dict):
        return Record(value)
    if isinstance(value, list):
        return [_wrap(v) for v in value]
    return value


class Record:
    """Attribute access over a JSON object (``obj.field``, ``obj["field"]``).

    A missing field raises ``AttributeError`` (``KeyError`` for ``[]``); use
    ``.get(name)`` for optional fields. Nested objects come back as
    :class:`Record` too.
    """

    __slots__ = ("_data",)

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def __getattr__(self, name: str) -> Any:
        try:
            return _wrap(self._data[name])
        except KeyError:
            raise AttributeError(
                f"{type(self).__name__} has no field {name!r}"
            ) from None

    def __getitem__(self, name: str) -> Any:
        return _wrap(self._data[name])

    def __contains__(self, name: object) -> bool:
        return name in self._data

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    @property
    def raw(self) -> dict[str, Any]:
        """The JSON object itself, not copied: read it, do not change it.

        (A field named ``raw`` is still readable as ``record["raw"]``.)
        """
        return self._data

    def get(self, name: str, default: Any = None) -> Any:
        """The field ``name``, or ``default`` when absent."""
        return _wrap(self._data.get(name, default))

    def keys(self) -> list[str]:
        return list(self._data)

    def model_dump(self, *, exclude_none: bool = False) -> dict[str, Any]:
        """A deep copy of the JSON object, as the upstream sent it."""
        data = copy.deepcopy(self._data)
        return _drop_none(data) if exclude_none else data

    def model_dump_json(self, *, indent: int | None = None) -> str:
        return json.dumps(self._data, indent=indent)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Record):
            return self._data == other._data
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._data!r})"


def record_json(value: Any) -> Any:
    """``json.dumps``' ``default``: a :class:`Record` (an item of a response the
    router returned, passed back as ``input``) is sent as its JSON object."""
    if isinstance(value, Record):
        return value._data
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


#: One encoder for every request body, built once (``json.dumps`` with options builds
#: a new encoder per call): records as their JSON, NaN and infinity refused.
_BODY_ENCODER = json.JSONEncoder(allow_nan=False, default=record_json)


#: CPython's C encoder's constructor (``None`` where the interpreter has none).
_C_ENCODER: Callable[..., Callable[[Any, int], list[str]]] | None = getattr(
    json.encoder, "c_make_encoder", None)
#: What ``_BODY_ENCODER.encode`` hands the C encoder after its record of open containers,
#: read from the encoder itself so the two cannot drift apart.
_BODY_OPTIONS = (_BODY_ENCODER.default, encode_basestring_ascii if _BODY_ENCODER.ensure_ascii
                 else encode_basestring, _BODY_ENCODER.indent,
                 _BODY_ENCODER.key_separator, _BODY_ENCODER.item_separator,
                 _BODY_ENCODER.sort_keys, _BODY_ENCODER.skipkeys, _BODY_ENCODER.allow_nan)


def body_json(body: Mapping[str, Any]) -> bytes:
    """``body`` as the JSON bytes sent upstream (``TypeError``/``ValueError`` if it is not
    JSON: a value of another type, NaN or infinity).

    The bytes and errors of ``_BODY_ENCODER.encode``, from the C encoder it builds,
    called directly: ``JSONEncoder.encode`` does Python work around it on every call
    (a closure, option checks) that cost as much again (1.9 µs against 1.1 for a
    bare Responses create). The encoder is made per call, as ``encode`` makes it,
    so its record of containers being written (which refuses a circular body) starts
    empty each time.
    """
    if _C_ENCODER is None:  # pragma: no cover - not CPython
        return _BODY_ENCODER.encode(body).encode()
    return "".join(_C_ENCODER({}, *_BODY_OPTIONS)(body, 0)).encode()


def dump_json(value: Any) -> bytes:
    """``value`` (JSON data, as :func:`parse_json` returns it) as compact UTF-8 JSON.

    pydantic-core's serializer: the text of ``json.dumps`` with compact
    separators and ``ensure_ascii=False`` (a float's exponent may be spelt
    ``1e16`` for ``1e+16``), several times faster. What UTF-8 cannot carry (an
    unpaired surrogate, which :func:`parse_json` returns for a ``\\ud83d``
    escape) goes out escaped again, as ``json.dumps`` writes it by default: a value
    holding one is written with every non-ASCII character escaped; a
    :class:`Record` goes out as its JSON object.
    """
    try:
        return to_json(value)
    except ValueError:
        return json.dumps(value, separators=(",", ":"), default=record_json).encode()


def parse_json(raw: bytes | str) -> Any:
    """``raw`` parsed as JSON, as ``json.loads`` parses it, in about half its time.

    pydantic-core's parser (jiter) reads the common case; what it refuses and
    ``json.loads`` takes (a byte order mark, an escaped lone surrogate such as a
    model's emoji cut in half) goes to ``json.loads``, so the values, and the
    ``ValueError`` on what is not JSON, are ``json.loads``' own.
    """
    try:
        return from_json(raw)
    except ValueError:
        return json.loads(raw)


def _drop_none(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _drop_none(v) for k, v in data.items() if v is not None}
    if isinstance(data, list):
        return [_drop_none(v) for v in data]
    return data


@dataclass(frozen=True, slots=True)
class Attempt:
    """One try at one deployment: where, how long, and how it ended.

    ``error`` is the error class name (``None`` on success); ``started`` is
    seconds since the request began.
    """

    model_group: str
    deployment_id: str
    started: float
    duration: float
    error: str | None = None
    status: int | None = None
    message: str | None = None


@dataclass(slots=True)
class AttemptTrail:
    """Everything the router tried for one request, in order."""

    requested_model: str
    attempts: list[Attempt] = field(default_factory=list)
    fallbacks: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    duration: float = 0.0
    #: The conversation's history was replayed as input (conversation failover).
    replayed: bool = False

    @property
    def retries(self) -> int:
        """Attempts beyond the first in each model group."""
        groups = {a.model_group for a in self.attempts}
        return max(0, len(self.attempts) - len(groups))

    def __str__(self) -> str:
        steps = [
            f"{a.model_group}/{a.deployment_id}: {a.error or 'ok'}"
            + (f" [{a.status}]" if a.status else "")
            for a in self.attempts
        ]
        return "; ".join(steps) or "no attempt made"


@dataclass(frozen=True, slots=True)
class RoutingInfo:
    """How a request was served: by whom, in which group, after what, at what cost.

    ``cost`` is the response's usage at the deployment's ``model_info`` prices
    (see :mod:`router.cost`); ``None`` when unknown: the deployment has no
    prices, the response no usage, or a stream has not reached its end yet.
    """

    model_group: str
    deployment_id: str
    provider: str
    trail: AttemptTrail
    cost: float | None = None

    def with_cost(self, cost: float | None) -> RoutingInfo:
        """The same routing with ``cost``."""
        return RoutingInfo(self.model_group, self.deployment_id, self.provider, self.trail, cost)

    @property
    def requested_model(self) -> str:
        return self.trail.requested_model

    @property
    def replayed(self) -> bool:
        """The request continued a conversation by replaying its history as input."""
        return self.trail.replayed

    @property
    def attempts(self) -> list[Attempt]:
        return self.trail.attempts

    @property
    def retries(self) -> int:
        return self.trail.retries

    @property
    def fallbacks(self) -> list[str]:
        return self.trail.fallbacks


class Response(Record):
    """A Responses API ``Response`` object, plus ``.routing`` (not dumped).

    ``output_text`` concatenates every ``output_text`` part of every message
    in ``output``, as the official SDK's property does.
    """

    __slots__ = ("routing",)

    def __init__(self, data: dict[str, Any], routing: RoutingInfo | None = None) -> None:
        super().__init__(data)
        self.routing = routing

    @property
    def output_text(self) -> str:
        parts: list[str] = []
        for item in self._data.get("output") or ():
            if item.get("type") != "message":
                continue
            for content in item.get("content") or ():
                if content.get("type") == "output_text":
                    parts.append(content.get("text", ""))
        return "".join(parts)


#: Event types after which a Responses stream ends.
TERMINAL_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})


class StreamEvent(Record):
    """One Server-Sent Event of a streamed response (any ``type``).

    ``event.response`` on lifecycle events is a :class:`Response`.
    """

    __slots__ = ()

    @property
    def response(self) -> Response:
        data = self._data.get("response")
        if not isinstance(data, dict):
            raise AttributeError(f"{self._data.get('type')!r} event has no response")
        return Response(data)
