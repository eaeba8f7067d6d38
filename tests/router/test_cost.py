"""Cost arithmetic against hand-computed figures, and how usage is read.

Figures are chosen so the hand computation is easy to check:
1,200 input tokens of which 200 cached, 300 output tokens, at $2.50 / 1M
input, $1.25 / 1M cached input, $10 / 1M output:
1,000 x 2.5e-6 + 200 x 1.25e-6 + 300 x 1e-5 = 0.0025 + 0.00025 + 0.003 = 0.00575.
"""

from __future__ import annotations

import pytest

from router.config.models import ModelInfo
from router.cost import Prices, TokenUsage

USAGE = {
    "input_tokens": 1200,
    "input_tokens_details": {"cached_tokens": 200},
    "output_tokens": 300,
    "output_tokens_details": {"reasoning_tokens": 120},
    "total_tokens": 1500,
}
PRICES = Prices(input=2.5e-6, output=1e-5, cached_input=1.25e-6)


def test_usage_is_read_with_its_details():
    usage = TokenUsage.from_usage(USAGE)
    assert usage == TokenUsage(input_tokens=1200, output_tokens=300, total_tokens=1500,
                               cached_tokens=200, reasoning_tokens=120)


@pytest.mark.parametrize("usage", [
    None, {}, "lots", {"input_tokens": 3}, {"input_tokens": -1, "output_tokens": 2},
    {"input_tokens": True, "output_tokens": 2}, {"input_tokens": 1.5, "output_tokens": 2},
])
def test_unusable_usage_is_none(usage):
    assert TokenUsage.from_usage(usage) is None


def test_missing_details_and_total_default_sensibly():
    usage = TokenUsage.from_usage({"input_tokens": 7, "output_tokens": 5,
                                   "input_tokens_details": None})
    assert usage == TokenUsage(7, 5, 12, cached_tokens=0, reasoning_tokens=0)


def test_cost_with_a_cached_input_price():
    assert PRICES.cost(TokenUsage.from_usage(USAGE)) == pytest.approx(0.00575, rel=1e-12)


def test_cached_tokens_cost_the_input_price_when_no_cache_price_is_given():
    # 1,200 x 2.5e-6 + 300 x 1e-5 = 0.003 + 0.003
    prices = Prices(input=2.5e-6, output=1e-5)
    assert prices.cost(TokenUsage.from_usage(USAGE)) == pytest.approx(0.006, rel=1e-12)


def test_reasoning_tokens_are_already_in_the_output_count():
    # 10 x 1e-6 + 50 x 4e-6 = 0.00001 + 0.0002, whatever the reasoning share
    usage = TokenUsage(input_tokens=10, output_tokens=50, total_tokens=60, reasoning_tokens=45)
    assert Prices(input=1e-6, output=4e-6).cost(usage) == pytest.approx(0.00021, rel=1e-12)


def test_more_cached_than_input_tokens_is_capped_at_the_input():
    usage = TokenUsage(input_tokens=100, output_tokens=0, total_tokens=100, cached_tokens=500)
    assert PRICES.cost(usage) == pytest.approx(100 * 1.25e-6, rel=1e-12)


def test_unknown_usage_costs_none_not_zero():
    assert PRICES.cost(None) is None


def test_no_prices_means_no_price_object():
    assert Prices.from_model_info(ModelInfo()) is None
    assert Prices.from_model_info(ModelInfo(cache_read_input_token_cost=1e-6)) is None


def test_prices_come_from_model_info_and_a_missing_one_counts_zero():
    info = ModelInfo(input_cost_per_token=3e-6, output_cost_per_token=1.5e-5,
                     cache_read_input_token_cost=3e-7)
    assert Prices.from_model_info(info) == Prices(3e-6, 1.5e-5, 3e-7)
    only_input = Prices.from_model_info(ModelInfo(input_cost_per_token=1e-6))
    assert only_input == Prices(input=1e-6, output=0.0)
    assert only_input.cost(TokenUsage(10, 99, 109)) == pytest.approx(1e-5, rel=1e-12)


def test_free_deployment_costs_zero():
    free = Prices.from_model_info(ModelInfo(input_cost_per_token=0, output_cost_per_token=0))
    assert free is not None
    assert free.cost(TokenUsage(10, 10, 20)) == 0.0
