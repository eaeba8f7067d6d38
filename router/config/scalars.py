"""Field types for configuration values whose written form matters.

Why this module exists: YAML guesses types. LiteLLM's own documented configs
write ``api_version: 2024-06-01`` unquoted, which YAML reads as a date;
``model_name: 2024`` and ``id: 123`` read as ints, ``api_version: 1.10`` as
the float 1.1 (the trailing zero is gone) and ``id: 0123`` as the octal 83.
A text field must get the text the user wrote, not a re-rendering of the
guess. So the config file readers here keep the source text of every number
they parse (:class:`SourcedInt`, :class:`SourcedFloat`: still numbers for
numeric fields) and read YAML timestamps as the text they were written as.
:data:`Text` (and :data:`SecretText`) fields turn such a scalar back into
that text. A value with no source text (a ``Router(model_list=...)`` built by
the caller) is rendered when that is exact (an int, a date) and refused
when it is not (a float: ``1.10`` and ``1.1`` are the same float).

The numeric field types refuse booleans (``allowed_fails: true`` is a
mistake, not 1) and, through the models' ``allow_inf_nan=False``, infinities
(``timeout: 1e309``).
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BeforeValidator, SecretStr

__all__ = [
    "Count",
    "Number",
    "SecretText",
    "SourcedFloat",
    "SourcedInt",
    "Text",
    "as_text",
    "load_json",
    "load_yaml",
    "sourced",
    "text_or_none",
]


class SourcedInt(int):
    """An int read from a config file, with ``source``: the text it was written as."""

    source: str = ""


class SourcedFloat(float):
    """A float read from a config file, with ``source``: the text it was written as."""

    source: str = ""


def sourced(kind: type[SourcedInt] | type[SourcedFloat], value: Any, text: str) -> Any:
    out = kind(value)
    out.source = text
    return out


def load_yaml(text: str, duplicates: list[str] | None = None) -> Any:
    """Parse YAML like ``yaml.safe_load``, keeping what :data:`Text` fields need.

    Each duplicate key (the later value wins, as in ``safe_load``) is appended
    to ``duplicates`` as ``"line N: duplicate key 'name'"``. Raises
    ``yaml.YAMLError`` as ``safe_load`` does. (PyYAML is imported here, on
    first use: a router built from a ``model_list`` never loads it.)
    """
    from router.config.yaml_text import load

    return load(text, duplicates)


def load_json(text: str) -> Any:
    """Parse JSON, keeping numbers' source text; raises ``json.JSONDecodeError``."""
    return json.loads(
        text,
        parse_int=lambda s: sourced(SourcedInt, int(s), s),
        parse_float=lambda s: sourced(SourcedFloat, float(s), s),
    )


def as_text(value: Any) -> Any:
    """``value`` as the text it was written as, when YAML or JSON typed it otherwise.

    Other values (text, ``None``, containers) come back unchanged for the
    field's own validation to accept or refuse. Raises ``ValueError`` for a
    boolean (YAML's ``yes``/``on``...: the spelling is lost) and for a float
    with no source text, whose written form cannot be known. Never puts the
    value in a message: the field may hold a secret.
    """
    if isinstance(value, str) or value is None:
        return value
    if isinstance(value, bool):
        raise ValueError(
            "expected text, got a boolean (YAML reads unquoted yes, no, on, off, true and "
            "false as booleans); quote it")
    source = getattr(value, "source", None)
    if isinstance(source, str) and source:
        return source
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        raise ValueError(
            "expected text, got a number whose written form is lost (1.10 and 1.1 are "
            "the same float); quote it in YAML or pass a string"
        )
    return value


def text_or_none(value: Any) -> str | None:
    """``value`` as text when :func:`as_text` can make it text, else ``None``."""
    try:
        text = as_text(value)
    except ValueError:
        return None
    return text if isinstance(text, str) else None


def _not_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("expected a number, got a boolean")
    return value


#: A text field: YAML/JSON scalars become the text they were written as.
Text = Annotated[str, BeforeValidator(as_text)]
#: A secret text field (an API key, a password): as :data:`Text`, never shown.
SecretText = Annotated[SecretStr, BeforeValidator(as_text)]
#: An integer field that refuses booleans.
Count = Annotated[int, BeforeValidator(_not_bool)]
#: A number field that refuses booleans (and, with allow_inf_nan=False, infinities).
Number = Annotated[float, BeforeValidator(_not_bool)]
