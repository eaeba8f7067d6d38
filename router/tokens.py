"""A cheap estimate of a Responses API request's input size, in tokens.

The context-window check needs to know, before anything is sent, whether the
input can fit a deployment's ``model_info.max_input_tokens``. A tokenizer
would be exact per model family, but it is a heavy dependency and differs per
model, so this counts instead:

* text: the characters of every text field (``input`` as a string, message
  ``content`` and its ``input_text`` / ``output_text`` parts, ``instructions``,
  function call ``arguments`` and ``output``, reasoning summaries, refusals)
  and of the JSON of ``tools``, divided by :data:`CHARS_PER_TOKEN` and
  rounded up;
* images (``input_image`` parts): :data:`IMAGE_TOKENS` each, whatever their
  size (base64 data URLs are not counted as text);
* what cannot be seen from here counts nothing: files (``input_file``), item
  references, ``encrypted_content``, and the stored history behind
  ``previous_response_id`` or ``conversation``.

Which side it errs on: four characters per token is about right for English
prose; code, JSON, numbers and non-Latin scripts take fewer characters per
token, and the invisible parts above count nothing, so the estimate is
usually *low*. That is deliberate: the check then keeps a deployment that is
in fact too small rather than dropping one that would have served, and the
upstream's own ``context_length_exceeded`` answer maps to the same
:class:`router.errors.ContextWindowExceededError` and the same
``context_window_fallbacks``. It can be high only for whitespace-heavy text
(long runs of spaces are one token).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = ["CHARS_PER_TOKEN", "IMAGE_TOKENS", "estimate_input_tokens"]

#: Average characters per token of English text for OpenAI tokenizers.
CHARS_PER_TOKEN = 4
#: One image, counted as a 1024x1024 image in high detail (85 + 4 tiles x 170).
IMAGE_TOKENS = 765

# Keys whose string (or nested) values are text the model reads.
_TEXT_KEYS = frozenset({"content", "text", "output", "arguments", "refusal", "summary"})
_IMAGE_TYPES = frozenset({"input_image"})


def estimate_input_tokens(params: Mapping[str, Any]) -> int:
    """Estimated input tokens of a Responses API body (see the module docstring)."""
    chars, fixed = _walk(params.get("input"))
    instructions = params.get("instructions")
    if isinstance(instructions, str):
        chars += len(instructions)
    tools = params.get("tools")
    if tools:
        chars += len(json.dumps(tools, separators=(",", ":"), default=str))
    return -(-chars // CHARS_PER_TOKEN) + fixed


def _walk(value: Any) -> tuple[int, int]:
    """(text characters, fixed tokens) in an ``input`` value or any part of it."""
    if isinstance(value, str):
        return len(value), 0
    if isinstance(value, list | tuple):
        chars = fixed = 0
        for item in value:
            c, f = _walk(item)
            chars += c
            fixed += f
        return chars, fixed
    if isinstance(value, Mapping):
        if value.get("type") in _IMAGE_TYPES:
            return 0, IMAGE_TOKENS
        return _walk([v for k, v in value.items() if k in _TEXT_KEYS])
    return 0, 0
