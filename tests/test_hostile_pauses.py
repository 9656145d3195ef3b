"""A service asking to wait longer than the caller can (issue 16).

Finding: one huge Retry-After paused that kind of call for the whole session for 120 s, and a
later call then failed with "gave up after the 5 s deadline", with no word of the pause.
"""

from __future__ import annotations

import httpx
import pytest

from aiomusic import (
    DeadlineExceededError,
    MusicSession,
    RateLimitError,
    RetryPolicy,
    ServiceUnavailableError,
)

pytestmark = pytest.mark.anyio
KEY = "sk-pause-test-key"


def too_frequent(retry_after: str) -> httpx.Response:
    """Suno's rate-limit refusal (body code 430), with a Retry-After header."""
    return httpx.Response(200, headers={"Retry-After": retry_after},
                          json={"code": 430, "msg": "Your call frequency is too high"})


def service(first: httpx.Response) -> tuple[MusicSession, list[httpx.Request]]:
    """Suno: ``first`` to the first request, a plain success afterwards."""
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if len(seen) == 1:
            return first
        return httpx.Response(200, json={"code": 200, "data": 5})

    client = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    return MusicSession(suno_key=KEY, http_client=client, retry=RetryPolicy(jitter=False)), seen


async def test_a_retry_after_past_the_deadline_fails_at_once_saying_so() -> None:
    s, seen = service(too_frequent("120"))
    async with s:
        with pytest.raises(RateLimitError) as caught:
            await s.suno.get_credits(timeout=5)
    assert caught.value.retry_after == 120
    assert "the service asked to wait 120 s" in str(caught.value)
    assert "left before this call's deadline" in str(caught.value)
    assert len(seen) == 1


async def test_a_later_call_is_not_parked_behind_a_pause_past_its_deadline() -> None:
    s, seen = service(too_frequent("100000"))
    async with s:
        with pytest.raises(RateLimitError):
            await s.suno.get_credits(timeout=5)
        with pytest.raises(DeadlineExceededError) as caught:
            await s.suno.get_credits(timeout=2)
    error = caught.value
    assert error.retry_after is not None and 100 < error.retry_after <= 120  # capped
    assert "the service asked to wait 120 s" in str(error) and "nothing was sent" in str(error)
    assert error.timeout == 2 and isinstance(error, TimeoutError)
    assert len(seen) == 1  # the second call never went out


async def test_a_server_retry_after_on_a_refusal_says_so_too() -> None:
    s, _ = service(httpx.Response(503, headers={"Retry-After": "60"}, json={}))
    async with s:
        with pytest.raises(ServiceUnavailableError, match="asked to wait 60 s"):
            await s.suno.get_credits(timeout=3)


async def test_our_own_backoff_past_the_deadline_is_not_blamed_on_the_service() -> None:
    s, _ = service(httpx.Response(503, json={}))
    async with MusicSession(suno_key=KEY, http_client=s._client,
                            retry=RetryPolicy(base_delay=50, max_delay=50,
                                              jitter=False)) as slow:
        with pytest.raises(ServiceUnavailableError) as caught:
            await slow.suno.get_credits(timeout=3)
    assert "the next retry would wait 50.0 s" in str(caught.value)
    assert caught.value.retry_after == 50


async def test_without_a_deadline_the_pause_is_honoured() -> None:
    s, seen = service(too_frequent("0.05"))
    async with s:
        assert await s.suno.get_credits() == 5
    assert len(seen) == 2
