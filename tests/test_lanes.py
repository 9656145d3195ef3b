"""Lanes under simulated rate-limited services, on trio's virtual clock (no real waiting)."""

from __future__ import annotations

from typing import Any

import anyio
import httpx
import pytest
import trio.testing

from aiomusic import (
    Event,
    LaneConfig,
    LaneLimitChanged,
    MusicSession,
    PauseEnded,
    PauseStarted,
    RateLimitError,
    RetryPolicy,
    Service,
)
from aiomusic._config import LaneKind
from aiomusic._lanes import Lane

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, Any]]:
    return ("trio", {"clock": trio.testing.MockClock(autojump_threshold=0)})


class FakeSuno:
    """Accepts ``capacity`` concurrent requests; beyond that answers body code 430."""

    def __init__(self, *, capacity: int, latency: float, retry_after: float | None = None):
        self.capacity = capacity
        self.latency = latency
        self.retry_after = retry_after
        self.in_flight = 0
        self.peak = 0
        self.accepted = 0
        self.rejected = 0
        self.starts: list[float] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.starts.append(anyio.current_time())
        if self.in_flight >= self.capacity:
            self.rejected += 1
            await anyio.sleep(self.latency / 10)  # the refusal, too, takes a moment to arrive
            headers = {"Retry-After": str(self.retry_after)} if self.retry_after else {}
            return httpx.Response(200, headers=headers,
                                  json={"code": 430, "msg": "too frequent"})
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await anyio.sleep(self.latency)
        finally:
            self.in_flight -= 1
        self.accepted += 1
        return httpx.Response(200, json={"code": 200, "msg": "success", "data": 7})


def session_for(fake: FakeSuno, lane: LaneConfig, events: list[Event] | None = None,
                retry: RetryPolicy | None = None) -> MusicSession:
    client = httpx.AsyncClient(transport=httpx.MockTransport(fake))
    return MusicSession(suno_key="k", http_client=client, lanes={"suno.poll": lane},
                        retry=retry or RetryPolicy(max_attempts=50, base_delay=0.5,
                                                   max_delay=4.0),
                        on_event=events.append if events is not None else None)


async def run_many(session: MusicSession, n: int) -> list[int]:
    results: list[int] = []

    async def one() -> None:
        results.append(await session.suno.get_credits())

    async with anyio.create_task_group() as tg:
        for _ in range(n):
            tg.start_soon(one)
    return results


async def test_rate_window_is_never_exceeded() -> None:
    fake = FakeSuno(capacity=1000, latency=0.01)
    async with session_for(fake, LaneConfig(max_concurrency=50, rate=10, per=10.0)) as s:
        assert len(await run_many(s, 35)) == 35
    starts = sorted(fake.starts)
    for i in range(len(starts) - 10):
        assert starts[i + 10] - starts[i] >= 10.0 - 1e-6  # 11 starts never fit in 10 s
    assert fake.rejected == 0


async def test_adaptive_limit_converges_below_capacity() -> None:
    events: list[Event] = []
    fake = FakeSuno(capacity=16, latency=0.2)
    lane = LaneConfig(max_concurrency=64)
    async with session_for(fake, lane, events) as s:
        results = await run_many(s, 400)
        final_limit = s.lane(Service.SUNO, LaneKind.POLL).limit
    assert len(results) == 400  # every job completed
    assert fake.accepted == 400
    assert fake.rejected <= 0.1 * 400
    assert final_limit <= 24
    assert any(isinstance(e, LaneLimitChanged) for e in events)


async def test_one_burst_of_rejections_pauses_the_lane_once() -> None:
    events: list[Event] = []
    # capacity 0 for the first burst: every in-flight request is rejected at once
    fake = FakeSuno(capacity=0, latency=0.1, retry_after=3)
    lane = LaneConfig(max_concurrency=20, initial_concurrency=20)
    async with session_for(fake, lane, events) as s:
        async def recover() -> None:
            await anyio.sleep(1.0)
            fake.capacity = 100

        async with anyio.create_task_group() as tg:
            tg.start_soon(recover)
            tg.start_soon(run_many, s, 20)
    pauses = [e for e in events if isinstance(e, PauseStarted)]
    assert len(pauses) == 1
    assert pauses[0].seconds == 3.0
    assert fake.rejected == 20
    assert any(isinstance(e, PauseEnded) for e in events)
    # after the pause, the retries were not sent before Retry-After passed
    retried = sorted(fake.starts)[20:]
    assert min(retried) >= 3.0


async def test_no_permit_is_held_during_a_pause() -> None:
    lane = Lane("x", LaneConfig(max_concurrency=4, initial_concurrency=4))
    async with lane.permit() as permit:
        assert lane.in_flight == 1
        lane.rejected(permit, wait=5.0)
    seen: list[int] = []

    async def waiter() -> None:
        async with lane.permit():
            seen.append(lane.in_flight)

    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(waiter)
        await anyio.sleep(1.0)
        assert lane.in_flight == 0  # everybody sleeps without a permit
        assert lane.paused_for == pytest.approx(4.0)
    assert anyio.current_time() >= 5.0
    assert seen and max(seen) >= 1


async def test_rejection_belonging_to_a_pause_is_not_counted_twice() -> None:
    lane = Lane("x", LaneConfig(max_concurrency=8, initial_concurrency=8))
    async with lane.permit() as first, lane.permit() as second:
        assert lane.rejected(first, wait=2.0) is True
        assert lane.rejected(second, wait=2.0) is False  # sent before the pause began
    assert lane.limit == 1  # one cut (8 -> in flight 2 * 0.5), not two


async def test_rate_limit_gives_up_at_the_deadline_with_retry_after() -> None:
    fake = FakeSuno(capacity=0, latency=0.0, retry_after=30)
    async with session_for(fake, LaneConfig(max_concurrency=2)) as s:
        with pytest.raises(RateLimitError) as info:
            await s.suno.get_credits(timeout=10)
    assert info.value.retry_after == 30
    assert fake.rejected == 1


async def test_idle_lane_does_not_grow() -> None:
    lane = Lane("x", LaneConfig(max_concurrency=32))
    start = lane.limit
    for _ in range(20):
        async with lane.permit() as p:
            pass
        lane.succeeded(p)
    assert lane.limit == start


async def test_non_adaptive_lane_keeps_its_limit() -> None:
    lane = Lane("x", LaneConfig(max_concurrency=6, adaptive=False))
    assert lane.limit == 6
    async with lane.permit() as p:
        lane.rejected(p, wait=0.1)
    assert lane.limit == 6


def test_lane_config_validates() -> None:
    with pytest.raises(ValueError, match="rate"):
        LaneConfig(rate=0)
    with pytest.raises(ValueError, match="max_concurrency"):
        LaneConfig(max_concurrency=0)
    assert LaneConfig(max_concurrency=10, initial_concurrency=50).start == 10
