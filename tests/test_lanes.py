"""Lanes under simulated rate-limited services, on trio's virtual clock (no real waiting)."""

from __future__ import annotations

import itertools
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
from aiomusic._core._config import LaneKind
from aiomusic._core._lanes import GUARD_START, Lane

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, Any]]:
    return ("trio", {"clock": trio.testing.MockClock(autojump_threshold=0)})


class FakeSuno:
    """Accepts ``capacity`` concurrent requests, and at most ``rate`` arrivals in any ``per``
    seconds (refusals do not count, as the emulator's window); beyond that answers 430."""

    def __init__(self, *, capacity: int, latency: float, retry_after: float | None = None,
                 rate: int | None = None, per: float = 1.0):
        self.capacity = capacity
        self.latency = latency
        self.retry_after = retry_after
        self.rate = rate
        self.per = per
        self.window: list[float] = []
        self.in_flight = 0
        self.peak = 0
        self.accepted = 0
        self.rejected = 0
        self.starts: list[float] = []

    def _over_rate(self, now: float) -> bool:
        if self.rate is None:
            return False
        self.window = [t for t in self.window if t > now - self.per]
        if len(self.window) >= self.rate:
            return True
        self.window.append(now)
        return False

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        now = anyio.current_time()
        self.starts.append(now)
        if self._over_rate(now) or self.in_flight >= self.capacity:
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


async def test_goodput_under_a_rate_and_a_concurrency_limit() -> None:
    # B1 of the benchmarks on a virtual clock: 40 requests/s and 16 at once, 200 ms answers.
    # The lane is told the rate, not the concurrency; it paces its starts, so the only
    # refusals are the few that find the concurrency limit.
    fake = FakeSuno(capacity=16, latency=0.2, rate=40, per=1.0)
    lane = LaneConfig(max_concurrency=64, rate=40, per=1.0)
    async with session_for(fake, lane) as s:
        started = anyio.current_time()
        results = await run_many(s, 400)
        seconds = anyio.current_time() - started
    assert len(results) == 400
    assert fake.rejected <= 0.05 * (fake.accepted + fake.rejected)
    assert 400 / seconds >= 0.95 * 40  # the ideal: min(40/s, 16 / 0.2 s)


async def test_the_rate_window_counts_when_a_request_is_sent() -> None:
    # The first four requests hold the only permits for 0.5 s. Their successors must not be
    # counted from when they asked, but from when they were sent: the service sees those.
    fake = FakeSuno(capacity=100, latency=0.5, rate=8, per=1.0)
    lane = LaneConfig(max_concurrency=4, adaptive=False, rate=8, per=1.0)

    async def quicker() -> None:
        await anyio.sleep(0.6)
        fake.latency = 0.01

    async with session_for(fake, lane) as s, anyio.create_task_group() as tg:
        tg.start_soon(quicker)
        assert len(await run_many(s, 40)) == 40
    assert fake.rejected == 0
    starts = sorted(fake.starts)
    for i in range(len(starts) - 8):
        assert starts[i + 8] - starts[i] >= 1.0  # never 9 starts in one second


async def test_a_rate_bound_lane_does_not_grow_its_limit() -> None:
    fake = FakeSuno(capacity=100, latency=0.05)
    async with session_for(fake, LaneConfig(max_concurrency=64, initial_concurrency=4,
                                            rate=2, per=1.0)) as s:
        assert len(await run_many(s, 20)) == 20
        lane = s.lane(Service.SUNO, LaneKind.POLL)
        # requests waiting for their start held every permit, but at most two were sent
        assert lane.limit == 4
        assert lane.sending == 0


async def test_a_refusal_at_the_edge_of_the_rate_window_widens_the_guard() -> None:
    lane = Lane("x", LaneConfig(max_concurrency=8, initial_concurrency=4, rate=1, per=1.0))
    assert lane.rate_guard == pytest.approx(GUARD_START)
    async with lane.permit() as p:  # an empty window: sent at once, and accepted
        assert not p.at_edge
    lane.succeeded(p)
    async with lane.permit() as p:
        assert p.at_edge  # the window was full: this one waited for its start
        assert p.level == 1
        assert lane.rejected(p, wait=0.1)
    assert lane.rate_guard == pytest.approx(2 * GUARD_START)
    assert lane.limit == 4  # the rate was too high, not the concurrency
    async with lane.permit() as p:
        assert p.at_edge
        lane.rejected(p, wait=0.1)
    # the same level refused twice: a concurrency limit after all
    assert lane.rate_guard == pytest.approx(2 * GUARD_START)
    assert lane.limit == 1


async def test_the_guard_narrows_again_after_accepted_edge_starts() -> None:
    lane = Lane("x", LaneConfig(max_concurrency=4, rate=1, per=1.0))
    async with lane.permit() as p:
        pass
    lane.succeeded(p)
    async with lane.permit() as p:
        lane.rejected(p, wait=0.01)
    widened = lane.rate_guard
    assert widened == pytest.approx(2 * GUARD_START)
    for _ in range(10):
        async with lane.permit() as p:
            pass
        lane.succeeded(p)
    assert GUARD_START < lane.rate_guard < widened  # slowly
    for _ in range(100):
        async with lane.permit() as p:
            pass
        lane.succeeded(p)
    assert lane.rate_guard == pytest.approx(GUARD_START)


async def test_a_pause_gives_back_a_reserved_start_and_its_permit() -> None:
    lane = Lane("x", LaneConfig(max_concurrency=4, initial_concurrency=4, rate=1, per=1.0))
    sent: list[float] = []

    async def second() -> None:
        async with lane.permit():  # reserves a start one window later and waits for it
            sent.append(anyio.current_time())

    async with anyio.create_task_group() as tg:
        async with lane.permit() as first:
            tg.start_soon(second)
            await anyio.sleep(0.5)
            assert lane.in_flight == 2  # the second holds its permit while it waits
            assert lane.sending == 1
            lane.rejected(first, wait=2.0)  # a pause until 2.5 s
        await anyio.sleep(1.0)  # past the reserved start, inside the pause
        assert lane.in_flight == 0  # the reservation and the permit were given back
    assert sent == [pytest.approx(2.5)]


async def test_a_late_wake_up_counts_from_when_the_request_really_started(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # A busy event loop wakes a sleeper late; the start 'rate' places later must count from
    # when the late one really started, not from when it was due.
    real_sleep = anyio.sleep
    late = [0.3]

    async def sleep(seconds: float) -> None:
        await real_sleep(seconds + (late.pop() if late else 0.0))

    lane = Lane("x", LaneConfig(max_concurrency=4, adaptive=False, rate=2, per=1.0))
    monkeypatch.setattr(anyio, "sleep", sleep)
    starts: list[float] = []
    for _ in range(6):
        async with lane.permit():
            starts.append(anyio.current_time())
    assert starts[2] == pytest.approx(1.0 + lane.rate_guard + 0.3)  # the late one
    for i in range(len(starts) - 2):
        assert starts[i + 2] - starts[i] >= 1.0  # never 3 starts in one second


async def test_cancelled_while_waiting_for_its_start_gives_everything_back() -> None:
    lane = Lane("x", LaneConfig(max_concurrency=4, initial_concurrency=4, rate=1, per=1.0))
    async with lane.permit():
        pass  # the window is now full for a second
    with anyio.move_on_after(0.5):
        async with lane.permit():
            pytest.fail("its start was a second away")
    assert lane.in_flight == 0
    async with lane.permit():  # the cancelled request's start was given back: this one has it
        assert anyio.current_time() == pytest.approx(1.0 + lane.rate_guard)


async def test_above_the_refused_level_the_limit_only_probes() -> None:
    lane = Lane("x", LaneConfig(max_concurrency=8, initial_concurrency=4))
    async with lane.permit(), lane.permit(), lane.permit(), lane.permit() as last:
        lane.rejected(last, wait=0.0)  # refused with 4 in flight
    assert lane.limit == 2  # 4 * 0.7

    async def one() -> None:
        async with lane.permit() as p:
            await anyio.sleep(0.1)
            lane.succeeded(p)

    limits = []
    for _ in range(40):  # rounds of 0.1 s that use the whole limit
        async with anyio.create_task_group() as tg:
            for _ in range(lane.limit):
                tg.start_soon(one)
        limits.append(lane.limit)
    assert max(limits[:3]) == 3  # quickly back to just below the refused level
    assert limits.count(3) >= 5  # then it waits there
    assert max(limits) > 4  # and probes above it, one permit at a time
    assert all(b - a <= 1 for a, b in itertools.pairwise(limits))
