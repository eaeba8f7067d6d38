"""What a response cost: token usage times the deployment's prices.

Prices come from the deployment's ``model_info`` (LiteLLM's names):
``input_cost_per_token``, ``output_cost_per_token`` and, for input tokens
served from the prompt cache, ``cache_read_input_token_cost``. The figure is in
whatever currency those prices are in (LiteLLM's tables: US dollars).

The arithmetic, with the Responses API's ``usage`` (``input_tokens`` counts
the cached ones too, ``output_tokens`` counts the reasoning ones)::

    cost = (input_tokens - cached_tokens) x input_cost_per_token
         + cached_tokens x cache_read_input_token_cost   (input price when not given)
         + output_tokens x output_cost_per_token

``None`` means "unknown", never "free": a deployment with neither an input
nor an output price has no :class:`Prices` and every response it serves costs
``None``; a response without a usable ``usage`` costs ``None`` too. When only
one of the two prices is given, the other counts as 0 (a deployment billed by
input only says so by giving only that price).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from router.config.models import ModelInfo
    from router.deployment import Deployment

__all__ = ["Prices", "TokenUsage", "price_book"]


class TokenUsage(NamedTuple):
    """The token counts of one response (``cached_tokens`` and ``reasoning_tokens``
    are parts of ``input_tokens`` and ``output_tokens``, not additions).

    A named tuple: one is read from every response when anything observes
    the router, and a tuple is several times cheaper to make than a dataclass.
    """

    input_tokens: int
    output_tokens: int
    total_tokens: int
    cached_tokens: int = 0
    reasoning_tokens: int = 0

    @classmethod
    def from_usage(cls, usage: object) -> TokenUsage | None:
        """Read a Responses API ``usage`` object; ``None`` when it is absent or unusable."""
        if type(usage) is not dict:  # decoded JSON: objects are dicts
            return None
        inp, out = usage.get("input_tokens"), usage.get("output_tokens")
        if type(inp) is not int or type(out) is not int or inp < 0 or out < 0:
            return None
        total = usage.get("total_tokens")
        return tuple.__new__(cls, (  # skips NamedTuple's keyword-parsing __new__
            inp, out, total if type(total) is int and total >= 0 else inp + out,
            _detail(usage.get("input_tokens_details"), "cached_tokens"),
            _detail(usage.get("output_tokens_details"), "reasoning_tokens"),
        ))


def _detail(details: object, name: str) -> int:
    value = details.get(name) if type(details) is dict else None
    return value if type(value) is int and value >= 0 else 0


@dataclass(frozen=True, slots=True)
class Prices:
    """Per-token prices of one deployment (``cached_input``: ``None`` = the input price)."""

    input: float
    output: float
    cached_input: float | None = None

    @classmethod
    def from_model_info(cls, info: ModelInfo) -> Prices | None:
        """The prices ``info`` gives, or ``None`` when it gives neither input nor output."""
        if info.input_cost_per_token is None and info.output_cost_per_token is None:
            return None
        return cls(
            input=info.input_cost_per_token or 0.0,
            output=info.output_cost_per_token or 0.0,
            cached_input=info.cache_read_input_token_cost,
        )

    def cost(self, usage: TokenUsage | None) -> float | None:
        """What ``usage`` cost at these prices (``None`` when usage is unknown)."""
        if usage is None:
            return None
        cached = min(usage.cached_tokens, usage.input_tokens)
        cached_price = self.input if self.cached_input is None else self.cached_input
        return (
            (usage.input_tokens - cached) * self.input
            + cached * cached_price
            + usage.output_tokens * self.output
        )


def price_book(deployments: Iterable[Deployment]) -> dict[str, Prices]:
    """Prices by deployment id, for the deployments that have any (the others are absent)."""
    book: dict[str, Prices] = {}
    for deployment in deployments:
        prices = Prices.from_model_info(deployment.config.model_info)
        if prices is not None:
            book[deployment.id] = prices
    return book
