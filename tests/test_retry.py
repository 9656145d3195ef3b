"""Retry-After parsing and the retry policy's decisions."""

from __future__ import annotations

import email.utils
import random

import pytest

from aiomusic import (
    AiomusicError,
    AuthenticationError,
    BadRequestError,
    ConnectionFailedError,
    InsufficientCreditsError,
    MaintenanceError,
    RateLimitError,
    ResponseError,
    RetryPolicy,
    ServerError,
    SubmissionUnknownError,
    TransferTimeoutError,
)
from aiomusic._core._retry import MAX_RETRY_AFTER, parse_retry_after

NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param({"Retry-After": "7"}, 7.0, id="seconds"),
        pytest.param({"retry-after": " 2.5 "}, 2.5, id="fractional-seconds"),
        pytest.param({"retry-after-ms": "1200"}, 1.2, id="milliseconds"),
        pytest.param({"retry-after-ms": "1200", "Retry-After": "9"}, 1.2, id="ms-wins"),
        pytest.param({"retry-after-ms": "junk", "Retry-After": "9"}, 9.0, id="bad-ms"),
        pytest.param({"Retry-After": email.utils.formatdate(NOW + 30, usegmt=True)}, 30.0,
                     id="http-date"),
        pytest.param({"Retry-After": email.utils.formatdate(NOW - 30, usegmt=True)}, 0.0,
                     id="date-in-the-past"),
        pytest.param({"Retry-After": "-4"}, 0.0, id="negative"),
        pytest.param({"Retry-After": "86400"}, MAX_RETRY_AFTER, id="capped"),
        pytest.param({"Retry-After": "soon"}, None, id="garbage"),
        pytest.param({"Retry-After": "nan"}, None, id="nan"),
        pytest.param({}, None, id="absent"),
    ],
)
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    got = parse_retry_after(headers, now=NOW)
    assert got == (pytest.approx(expected) if expected is not None else None)


def _api(cls: type[AiomusicError], **kw: object) -> AiomusicError:
    return cls("x", provider="suno", status_code=200, **kw)  # type: ignore[call-arg]


CASES = [
    # error, paid?, retried?
    (_api(RateLimitError), True, True),
    (_api(RateLimitError), False, True),
    (_api(MaintenanceError), True, True),
    (_api(ServerError), True, True),
    (_api(InsufficientCreditsError), False, False),
    (_api(AuthenticationError), False, False),
    (_api(BadRequestError), True, False),
    (ConnectionFailedError("x", operation="o"), True, True),
    (TransferTimeoutError("x", operation="o"), False, True),
    (SubmissionUnknownError("x", operation="o", reason="read timeout"), True, False),
    (ResponseError("x", retryable=True), False, True),
    (ResponseError("x"), False, False),
]


@pytest.mark.parametrize(("error", "paid", "retried"),
                         [pytest.param(*c, id=f"{type(c[0]).__name__}-{'paid' if c[1] else 'free'}")
                          for c in CASES])
def test_policy_table(error: AiomusicError, paid: bool, retried: bool) -> None:
    assert RetryPolicy().should_retry(error, paid=paid) is retried
    wait = RetryPolicy().wait_for(error, attempt=1, paid=paid)
    assert (wait is not None) is retried


def test_resubmit_unknown_is_opt_in() -> None:
    err = SubmissionUnknownError("x", operation="o", reason="read timeout")
    assert RetryPolicy(resubmit_unknown=True).should_retry(err, paid=True)


def test_attempts_are_bounded() -> None:
    err = _api(ServerError)
    policy = RetryPolicy(max_attempts=3)
    assert policy.wait_for(err, attempt=2, paid=False) is not None
    assert policy.wait_for(err, attempt=3, paid=False) is None
    assert RetryPolicy.never().wait_for(err, attempt=1, paid=False) is None


def test_retry_after_wins_and_is_capped() -> None:
    err = _api(RateLimitError, retry_after=500.0)
    assert RetryPolicy(max_retry_after=60).wait_for(err, attempt=1, paid=True) == 60
    err = _api(RateLimitError, retry_after=2.0)
    assert RetryPolicy().wait_for(err, attempt=1, paid=True) == 2.0


def test_full_jitter_backoff_bounds() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=8.0)
    rng = random.Random(1)
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 8.0), (500, 8.0)]:
        waits = [policy.backoff(attempt, rng=rng) for _ in range(200)]
        assert all(0 <= w <= ceiling for w in waits)
        assert max(waits) > ceiling * 0.8  # full jitter spreads over the whole range
    assert RetryPolicy(jitter=False, base_delay=1, max_delay=8).backoff(3) == 4.0


def test_maintenance_waits_longer() -> None:
    policy = RetryPolicy(jitter=False, base_delay=0.5, maintenance_delay=15)
    assert policy.wait_for(_api(MaintenanceError), attempt=1, paid=False) == 15
    assert policy.wait_for(_api(ServerError), attempt=1, paid=False) == 0.5


def test_policy_validates() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
