"""How long to wait before a retry (router/retry.py)."""

from __future__ import annotations

import random

import pytest

from router.errors import (
    AuthenticationError,
    BadRequestError,
    ContentPolicyViolationError,
    QuotaExhaustedError,
    RateLimitError,
    ServerError,
    ServiceUnavailableError,
    UpstreamError,
)
from router.policies import policy_value
from router.retry import BACKOFF_BASE, BACKOFF_CAP, RetryPolicy


def test_other_deployment_waits_only_min_wait() -> None:
    rng = random.Random(1)
    assert RetryPolicy(3).wait(0, ServerError("x"), same_deployment=False, rng=rng) == 0.0
    policy = RetryPolicy(3, min_wait=0.5)
    assert policy.wait(4, ServerError("x"), same_deployment=False, rng=rng) == 0.5
    # the other deployment is not the one that asked us to wait
    err = RateLimitError("x", status=429, retry_after=30.0)
    assert policy.wait(0, err, same_deployment=False, rng=rng) == 0.5


def test_same_deployment_honours_retry_after() -> None:
    rng = random.Random(1)
    err = RateLimitError("x", status=429, retry_after=3.0)
    assert RetryPolicy(3).wait(0, err, same_deployment=True, rng=rng) == 3.0
    assert RetryPolicy(3).wait(5, err, same_deployment=True, rng=rng) == 3.0
    # min_wait is a floor even over the upstream's hint
    assert RetryPolicy(3, min_wait=5.0).wait(0, err, same_deployment=True, rng=rng) == 5.0


def test_same_deployment_backs_off_with_jitter_within_the_cap() -> None:
    policy = RetryPolicy(10)
    rng = random.Random(42)
    for retry in range(12):
        ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2**retry)
        waits = [policy.wait(retry, ServerError("x"), same_deployment=True, rng=rng)
                 for _ in range(200)]
        assert all(0 <= w <= ceiling for w in waits), retry
        # full jitter: spread over the range, not a constant
        assert max(waits) - min(waits) > ceiling / 2, retry
    assert BACKOFF_CAP == 8.0


def test_backoff_grows_with_the_retry_number() -> None:
    policy = RetryPolicy(10)
    rng = random.Random(7)

    def mean(retry: int) -> float:
        return sum(policy.wait(retry, ServerError("x"), same_deployment=True, rng=rng)
                   for _ in range(500)) / 500

    assert mean(0) < mean(2) < mean(4)


def test_backoff_is_deterministic_with_a_seeded_rng() -> None:
    policy = RetryPolicy(5)

    def run(seed: int) -> list[float]:
        rng = random.Random(seed)
        return [policy.wait(r, ServerError("x"), same_deployment=True, rng=rng) for r in range(5)]

    assert run(3) == run(3)
    assert run(3) != run(4)


@pytest.mark.parametrize("retry", [0, 3, 20])
def test_backoff_respects_min_wait(retry: int) -> None:
    policy = RetryPolicy(5, min_wait=1.0)
    rng = random.Random(0)
    waits = [policy.wait(retry, ServerError("x"), same_deployment=True, rng=rng)
             for _ in range(100)]
    assert min(waits) >= 1.0


# -- how many retries an error allows ----------------------------------------------------------


def test_retryable_errors_get_num_retries_and_the_others_none() -> None:
    policy = RetryPolicy(3)
    assert policy.retries_for(ServerError("x", status=500), None) == 3
    assert policy.retries_for(RateLimitError("x", status=429), None) == 3
    assert policy.retries_for(AuthenticationError("x", status=401), None) == 3  # elsewhere
    assert policy.retries_for(BadRequestError("x", status=400), None) == 0
    assert policy.retries_for(UpstreamError("unknown failure"), None) == 0


def test_the_requests_num_retries_wins_for_retryable_errors() -> None:
    policy = RetryPolicy(3, per_error={"InternalServerErrorRetries": 1})
    assert policy.retries_for(ServerError("x", status=500), 5) == 5
    assert policy.retries_for(BadRequestError("x", status=400), 5) == 0


def test_retry_policy_reads_the_most_specific_kind() -> None:
    policy = RetryPolicy(3, per_error={
        "InternalServerErrorRetries": 1, "ServiceUnavailableErrorRetries": 4,
        "ContentPolicyViolationErrorRetries": 0, "BadRequestErrorRetries": 2,
    })
    assert policy.retries_for(ServerError("x", status=500), None) == 1
    assert policy.retries_for(ServiceUnavailableError("x", status=503), None) == 4
    assert policy.retries_for(ContentPolicyViolationError("x", status=400), None) == 0
    assert policy.retries_for(BadRequestError("x", status=400), None) == 2


@pytest.mark.parametrize("per_error", [
    {},
    {"RateLimitErrorRetries": 5},
    {"DefaultRetries": 5},
])
def test_an_exhausted_quota_is_never_retried(per_error: dict[str, int]) -> None:
    quota = QuotaExhaustedError("out of quota", status=429, code="insufficient_quota")
    policy = RetryPolicy(3, per_error=per_error)
    assert policy.retries_for(quota, None) == 0
    assert policy.retries_for(quota, 4) == 0
    assert policy_value(per_error, "Retries", quota) is None


def test_bad_gateway_reads_its_litellm_key() -> None:
    policy = {"BadGatewayErrorAllowedFails": 7, "ServiceUnavailableErrorAllowedFails": 2}
    assert policy_value(policy, "AllowedFails", ServiceUnavailableError("x", status=502)) == 7
    assert policy_value(policy, "AllowedFails", ServiceUnavailableError("x", status=503)) == 2
