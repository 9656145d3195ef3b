"""Shared lanes against real Redis and PostgreSQL servers, on asyncio and trio.

Every test runs on both stores (``tests/servers.py`` provides them: skipped locally when
absent, failing on CI). Each test uses a fresh random API key, so its lanes are its own.
Times compared are the store's own (a permit's ``sent_at``), never this process's clock.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from aiomusic import (
    LaneConfig,
    LaneLimitChanged,
    LaneStore,
    LaneStoreError,
    MusicSession,
    PauseStarted,
    PostgresLanes,
    RateLimitError,
    RedisLanes,
    RetryPolicy,
    Service,
)
from aiomusic._core import _shared_lanes
from aiomusic._core._config import LaneKind
from aiomusic._core._lane_store import LaneRef, fingerprint
from aiomusic._core._shared_lanes import SharedLane, SharedPermit

from .servers import Proxy
from .shared_lane_child import make_store, shared_lane
from .test_lanes import SimService

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parent.parent
GUARD = 30.0  # seconds: a hang guard for waits on other processes, not a timing assertion


@pytest.fixture(params=["redis", "postgres"])
def store_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(f"{request.param}_url"))


@pytest.fixture
def store(store_url: str) -> Iterator[LaneStore]:
    with make_store(store_url, lease=5.0) as made:
        yield made


def new_key() -> str:
    return "sk-test-" + secrets.token_hex(16)


def assert_within_rate(starts: list[float], rate: int, per: float) -> None:
    """No window of ``per`` seconds holds more than ``rate`` starts."""
    starts = sorted(starts)
    for i in range(len(starts) - rate):
        assert starts[i + rate] - starts[i] >= per, (i, starts[i], starts[i + rate])


def most_at_once(spans: list[list[float]]) -> int:
    edges = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans],
                   key=lambda edge: (edge[0], edge[1]))
    peak = level = 0
    for _, step in edges:
        level += step
        peak = max(peak, level)
    return peak


def session_for(fake: SimService, store: LaneStore | str, key: str, lane: LaneConfig,
                **options: Any) -> MusicSession:
    client = httpx.AsyncClient(transport=httpx.MockTransport(fake))
    return MusicSession(suno_key=key, http_client=client, lanes={"suno.poll": lane},
                        lane_store=store, **options)


# -- atomicity -------------------------------------------------------------------------------


async def test_starts_never_exceed_the_rate_across_lanes_of_one_key(store: LaneStore) -> None:
    config = LaneConfig(max_concurrency=50, rate=4, per=0.4, adaptive=False)
    key = new_key()
    lanes = [shared_lane(store, key, config) for _ in range(3)]  # as three processes would
    starts: list[float] = []

    async def one(lane: SharedLane) -> None:
        async with lane.permit() as permit:
            starts.append(permit.sent_at)
            lane.succeeded(permit)

    async with anyio.create_task_group() as tg:
        for i in range(15):
            tg.start_soon(one, lanes[i % 3])
    assert len(starts) == 15
    assert_within_rate(starts, 4, 0.4)


async def test_the_limit_holds_across_lanes_of_one_key(store: LaneStore) -> None:
    config = LaneConfig(max_concurrency=3, adaptive=False)
    key = new_key()
    lanes = [shared_lane(store, key, config) for _ in range(3)]
    now = peak = 0

    async def one(lane: SharedLane) -> None:
        nonlocal now, peak
        async with lane.permit() as permit:
            now += 1
            peak = max(peak, now)
            await anyio.sleep(0.01)
            now -= 1
            lane.succeeded(permit)

    async with anyio.create_task_group() as tg:
        for i in range(24):
            tg.start_soon(one, lanes[i % 3])
    assert peak == 3
    assert lanes[0].in_flight <= 3


def _child(url: str, key: str, mode: str, n: int, config: dict[str, Any], *,
           backend: str = "asyncio", options: dict[str, Any] | None = None
           ) -> subprocess.Popen[str]:
    env = {**os.environ, "LANE_CONFIG": json.dumps(config),
           "LANE_OPTIONS": json.dumps(options or {}), "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "tests.shared_lane_child", url, key, mode,
                             str(n), backend], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            text=True)


def test_processes_share_the_rate_and_the_limit(store_url: str) -> None:
    """Three processes (asyncio and trio) of one key: together within the rate and the limit."""
    config = {"max_concurrency": 4, "rate": 6, "per": 0.5, "adaptive": False}
    key = new_key()
    children = [_child(store_url, key, "run", 10, config, backend=backend)
                for backend in ("asyncio", "trio", "asyncio")]
    spans: list[list[float]] = []
    for child in children:
        out, _ = child.communicate(timeout=GUARD)
        assert child.returncode == 0
        spans += json.loads(out)
    assert len(spans) == 30
    assert_within_rate([s for s, _ in spans], 6, 0.5)
    assert most_at_once(spans) <= 4


def test_a_dead_holders_permits_come_back_after_the_lease(store_url: str) -> None:
    config = {"max_concurrency": 2, "adaptive": False}
    key = new_key()
    lease = 1.0
    child = _child(store_url, key, "hold", 2, config, options={"lease": lease})
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "held"
        with make_store(store_url, lease=lease) as store:
            ref = LaneRef(ident=f"{fingerprint(key)}:suno.poll",
                          config=LaneConfig(**config))
            assert store.acquire(ref, "probe").kind == "full"
            time.sleep(2.5 * lease)  # refreshed while held: still taken
            assert store.acquire(ref, "probe").kind == "full"
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=GUARD)
            deadline = time.monotonic() + GUARD
            while (step := store.acquire(ref, "probe")).kind == "full":
                assert time.monotonic() < deadline
                time.sleep(0.1)
            assert step.kind == "ok"
            assert store.acquire(ref, "probe-2").kind == "ok"  # both came back
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if child.stdout is not None:
            child.stdout.close()


# -- the pause and the adaptive limit are shared -----------------------------------------------


async def test_a_refusal_pauses_every_process_and_cuts_the_shared_limit(
        store: LaneStore) -> None:
    config = LaneConfig(max_concurrency=8, initial_concurrency=4)
    key = new_key()
    first, second = shared_lane(store, key, config), shared_lane(store, key, config)
    events: list[Any] = []
    first._emit = events.append
    async with first.permit() as permit:
        assert first.rejected(permit, wait=30.0) is True
    assert any(isinstance(e, PauseStarted) and e.seconds == 30.0 for e in events)
    assert [(e.old, e.new) for e in events if isinstance(e, LaneLimitChanged)] == [(4, 1)]
    assert first.paused_for > 20
    step = store.acquire(second._ref, "probe")
    assert step.kind == "pause"
    assert step.wait > 20
    assert step.limit == 1
    # a refusal of a request sent before the pause began belongs to that pause
    assert first.consecutive_rejections == 1


async def test_a_pause_that_begins_while_waiting_for_the_start_is_waited_out(
        store: LaneStore) -> None:
    config = LaneConfig(max_concurrency=8, rate=1, per=0.3, adaptive=False)
    key = new_key()
    lane, other = shared_lane(store, key, config), shared_lane(store, key, config)
    async with lane.permit() as permit:  # takes the window's only start
        lane.succeeded(permit)
    refused_at = 0.0

    async def refuse() -> None:
        nonlocal refused_at
        await anyio.sleep(0.05)
        permit = SharedPermit(sent_at=time.time(), ident="refused")
        other.rejected(permit, wait=0.5)
        refused_at = (await anyio.to_thread.run_sync(store.observe, other._ref)).now
        await other._settle(permit)

    async with anyio.create_task_group() as tg:
        tg.start_soon(refuse)
        async with lane.permit() as late:  # its start was 0.3 s away when the pause began
            lane.succeeded(late)
    assert late.sent_at >= refused_at + 0.5


async def test_rate_refusals_said_so_widen_the_guard_and_keep_the_limit(
        store: LaneStore) -> None:
    config = LaneConfig(max_concurrency=8, initial_concurrency=4, rate=100, per=1.0)
    lane = shared_lane(store, new_key(), config)
    async with lane.permit() as permit:
        lane.rejected(permit, wait=0.01, limit="rate")
    assert lane.rate_guard == pytest.approx(0.04)
    assert lane.limit == 4


async def test_cancelled_while_waiting_for_the_start_gives_everything_back(
        store: LaneStore) -> None:
    config = LaneConfig(max_concurrency=4, rate=1, per=5.0, adaptive=False)
    lane = shared_lane(store, new_key(), config)
    async with lane.permit() as permit:
        lane.succeeded(permit)
    with anyio.move_on_after(0.2) as scope:
        async with lane.permit():
            pytest.fail("the second start is 5 s away")
    assert scope.cancelled_caught
    seen = store.observe(lane._ref)
    assert seen.sending == 0
    assert store.acquire(lane._ref, "probe").held == 1  # only the probe holds a permit


async def test_a_full_limit_is_waited_for_in_order(store: LaneStore) -> None:
    config = LaneConfig(max_concurrency=1, adaptive=False)
    lane = shared_lane(store, new_key(), config)
    order: list[int] = []

    async def one(i: int) -> None:
        async with lane.permit() as permit:
            order.append(i)
            await anyio.sleep(0.01)
            lane.succeeded(permit)

    async with anyio.create_task_group() as tg:
        for i in range(5):
            tg.start_soon(one, i)
            await anyio.sleep(0.001)
    assert order == list(range(5))  # one door per process and lane: first come, first served


# -- sessions: fail closed, fall back, fingerprints -----------------------------------------------


@pytest.fixture
def proxied(store_url: str) -> Iterator[tuple[Proxy, str]]:
    parts = httpx.URL(store_url)
    proxy = Proxy(parts.host, parts.port or (6379 if store_url.startswith("redis") else 5432))
    try:
        yield proxy, proxy.url(store_url)
    finally:
        proxy.close()


async def test_the_session_fails_closed_when_the_store_is_unreachable(
        proxied: tuple[Proxy, str]) -> None:
    proxy, url = proxied
    proxy.down()
    fake = SimService(capacity=10, latency=0.0, delay=0.0, style="suno")
    with pytest.raises(LaneStoreError, match="nothing was sent") as caught:
        async with session_for(fake, url, new_key(), LaneConfig()):
            pass
    assert "on_unavailable='local'" in str(caught.value)
    assert fake.starts == []


async def test_a_store_lost_mid_run_fails_the_next_request_before_sending(
        proxied: tuple[Proxy, str]) -> None:
    proxy, url = proxied
    fake = SimService(capacity=10, latency=0.0, delay=0.0, style="suno")
    with make_store(url, timeout=1.0) as store:
        async with session_for(fake, store, new_key(), LaneConfig(),
                               retry=RetryPolicy.never()) as session:
            assert await session.suno.get_credits() == 7
            proxy.down()
            with pytest.raises(LaneStoreError):
                await session.suno.get_credits()
    assert len(fake.starts) == 1


async def test_fallback_to_in_process_lanes_warns_and_comes_back(
        proxied: tuple[Proxy, str], caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    proxy, url = proxied
    monkeypatch.setattr(_shared_lanes, "RECHECK", 0.0)  # ask the store again at once
    fake = SimService(capacity=10, latency=0.0, delay=0.0, style="suno")
    proxy.down()
    caplog.set_level(logging.WARNING, logger="aiomusic")
    with make_store(url, timeout=1.0, on_unavailable="local") as store:
        async with session_for(fake, store, new_key(), LaneConfig()) as session:
            assert await session.suno.get_credits() == 7  # in-process lanes
            lane = session.lane(Service.SUNO, LaneKind.POLL)
            assert isinstance(lane, SharedLane)
            assert lane.limit == LaneConfig().start  # the in-process lane's
            proxy.up()
            assert await session.suno.get_credits() == 7  # the store again
            assert store.observe(lane._ref).version >= 1
    assert "falling back to in-process lanes" in caplog.text
    assert "falls back to in-process lanes" in caplog.text


async def test_a_lost_state_starts_afresh(store: LaneStore, store_url: str) -> None:
    """Redis restarted or flushed: the lanes go on from their initial state."""
    fake = SimService(capacity=10, latency=0.0, delay=0.0, style="suno")
    key = new_key()
    async with session_for(fake, store, key, LaneConfig(max_concurrency=8)) as session:
        await session.suno.get_credits()
        lane = session.lane(Service.SUNO, LaneKind.POLL)
        assert isinstance(lane, SharedLane)
        _forget(store_url, lane._ref.ident)
        assert await session.suno.get_credits() == 7
        assert store.observe(lane._ref).version == 1


def _forget(url: str, ident: str) -> None:
    if url.startswith("redis"):
        import redis

        client = redis.Redis.from_url(url)
        try:
            client.delete(*client.keys(f"aiomusic:lanes:{{{ident}}}:*"))
        finally:
            client.close()
        return
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        for table in ("aiomusic_lanes", "aiomusic_lane_permits", "aiomusic_lane_starts"):
            conn.execute(f"DELETE FROM {table} WHERE lane = %s", (ident,))  # noqa: S608


async def test_the_store_never_sees_the_key(store: LaneStore, store_url: str) -> None:
    fake = SimService(capacity=10, latency=0.0, delay=0.0, style="suno")
    key = new_key()
    async with session_for(fake, store, key, LaneConfig(rate=50, per=1.0)) as session:
        await session.suno.get_credits()
        fake.capacity = 0
        with pytest.raises(RateLimitError):
            await session.suno.get_credits(retry=RetryPolicy.never())
    everything = _dump(store_url)
    assert fingerprint(key) in everything
    assert key not in everything
    assert key[8:] not in everything


def _dump(url: str) -> str:
    """Every key and value of the Redis database, or every row of the tables, as text."""
    if url.startswith("redis"):
        import redis

        client = redis.Redis.from_url(url, decode_responses=True)
        try:
            parts: list[str] = []
            for name in client.scan_iter(count=1000):
                parts.append(name)
                kind = client.type(name)
                if kind == "hash":
                    parts.append(repr(client.hgetall(name)))
                elif kind == "zset":
                    parts.append(repr(client.zrange(name, 0, -1, withscores=True)))
                elif kind == "string":
                    parts.append(repr(client.get(name)))
                else:
                    parts.append(repr(client.dump(name)))
            return "\n".join(parts)
        finally:
            client.close()
    import psycopg

    with psycopg.connect(url) as conn:
        return "\n".join(repr(row) for table in ("aiomusic_lanes", "aiomusic_lane_permits",
                                                 "aiomusic_lane_starts")
                         for row in conn.execute(f"SELECT * FROM {table}"))  # noqa: S608


async def test_a_store_given_as_a_url_is_closed_with_the_session(store_url: str) -> None:
    fake = SimService(capacity=10, latency=0.0, delay=0.0, style="suno")
    session = session_for(fake, store_url, new_key(), LaneConfig())
    async with session:
        assert await session.suno.get_credits() == 7
        store = session._store
        assert store is not None
    assert store._closed.is_set()


# -- configuration -----------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["mysql://x", "http://127.0.0.1:6379"])
def test_an_unknown_store_url_is_refused(url: str) -> None:
    from aiomusic import ConfigurationError

    with pytest.raises(ConfigurationError, match="redis://"):
        MusicSession(suno_key="k", lane_store=url)


def test_a_lane_store_of_another_type_is_refused() -> None:
    with pytest.raises(TypeError, match="LaneStore"):
        MusicSession(suno_key="k", lane_store=42)  # type: ignore[arg-type]


@pytest.mark.parametrize(("options", "match"), [
    ({"lease": 0}, "lease"), ({"lease": float("nan")}, "lease"),
    ({"on_unavailable": "retry"}, "on_unavailable")])
def test_store_options_are_checked(options: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        RedisLanes("redis://127.0.0.1:1", **options)


def test_bad_store_urls_are_configuration_errors() -> None:
    from aiomusic import ConfigurationError

    with pytest.raises(ConfigurationError, match="Redis URL"):
        RedisLanes("redis://127.0.0.1:notaport")
    with pytest.raises(ConfigurationError, match="PostgreSQL URL"):
        PostgresLanes("nonsense")  # not a connection string


def test_fingerprints_are_stable_and_hide_the_key() -> None:
    key = "sk-live-abcdef0123456789"
    assert fingerprint(key) == fingerprint(key)
    assert fingerprint(key) != fingerprint(key + "x")
    assert len(fingerprint(key)) == 24
    assert "abcdef" not in fingerprint(key)


# -- leases and releases while the store is away ------------------------------------------------


async def _logged(caplog: pytest.LogCaptureFixture, text: str) -> None:
    with anyio.fail_after(GUARD):
        while text not in caplog.text:
            await anyio.sleep(0.02)


async def test_leases_and_releases_survive_a_store_that_goes_away(
        proxied: tuple[Proxy, str], store: LaneStore,
        caplog: pytest.LogCaptureFixture) -> None:
    proxy, url = proxied
    caplog.set_level(logging.WARNING, logger="aiomusic")
    config = LaneConfig(max_concurrency=4, adaptive=False)
    with make_store(url, lease=0.6, timeout=0.5) as cut_off:
        lane = shared_lane(cut_off, new_key(), config)
        async with lane.permit() as accepted, lane.permit():
            lane.succeeded(accepted)
            proxy.down()
            await _logged(caplog, "could not refresh")
            # another process (with the store in reach) takes the expired permits back
            with anyio.fail_after(GUARD):
                while store.acquire(lane._ref, "other").held > 1:
                    store.release(lane._ref, "other")
                    await anyio.sleep(0.05)
            store.release(lane._ref, "other")
            proxy.up()
            await _logged(caplog, "expired while held")  # the store gave them back meanwhile
            proxy.down()
        assert "could not record the outcome" in caplog.text  # the accepted one
        assert "could not give back a permit" in caplog.text  # the other
        proxy.up()
    assert store.acquire(lane._ref, "probe").held == 1  # nothing was left taken


async def test_an_outcome_lost_to_contention_still_releases(
        store: LaneStore, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    lane = shared_lane(store, new_key(), LaneConfig(max_concurrency=2, adaptive=False))
    monkeypatch.setattr(store, "apply", lambda *args: False)  # someone always came first
    async with lane.permit() as permit:
        lane.succeeded(permit)
    assert "dropped after 20 tries" in caplog.text
    assert store.acquire(lane._ref, "probe").held == 1


def test_every_redis_key_expires(redis_url: str) -> None:
    import redis

    config = LaneConfig(max_concurrency=2, rate=5, per=1.0)
    with make_store(redis_url) as store:
        ref = LaneRef(ident=f"{fingerprint(new_key())}:suno.poll", config=config)
        assert store.acquire(ref, "one").kind == "ok"
        client = redis.Redis.from_url(redis_url)
        try:
            names = client.keys(f"aiomusic:lanes:{{{ref.ident}}}:*")
            assert len(names) == 4
            assert all(0 < client.pttl(name) <= 86_400_000 for name in names)
        finally:
            client.close()


def test_a_closed_store_refuses_to_work(store_url: str) -> None:
    store = make_store(store_url)
    store.close()
    ref = LaneRef(ident="closed:suno.poll", config=LaneConfig())
    with pytest.raises(LaneStoreError, match="was closed"):
        store.acquire(ref, "one")


def test_a_start_taken_too_late_is_given_back_to_queue_again(store: LaneStore) -> None:
    """A caller that wakes so long past its start that it would crowd a start reserved after
    its own gives its start and permit back (unless told to go all the same)."""
    config = LaneConfig(max_concurrency=8, rate=1, per=0.3, adaptive=False)
    ref = LaneRef(ident=f"{fingerprint(new_key())}:suno.poll", config=config)
    first = store.acquire(ref, "first")
    assert first.slot == first.now  # the window was empty
    second = store.acquire(ref, "second")
    third = store.acquire(ref, "third")
    assert third.slot >= second.slot + 0.3 >= first.slot + 0.6
    time.sleep(second.slot - second.now + 0.1)  # wakes 100 ms late: 'third' is 200 ms after
    assert store.start(ref, "second").kind == "late"
    assert store.start(ref, "second").kind == "lost"  # given back
    again = store.acquire(ref, "second")
    assert again.slot >= third.slot + 0.3
    time.sleep(max(0.0, third.slot - time.time()) + 0.1)  # the store's clock is this machine's
    started = store.start(ref, "third", even_late=True)  # too often late: it goes
    assert started.kind == "ok"
    assert started.level == 2  # 'first' and itself


async def test_a_lane_falling_back_pauses_and_counts_in_process() -> None:
    with socket.socket() as closed:  # bound, not listening: connections are refused
        closed.bind(("127.0.0.1", 0))
        url = f"redis://127.0.0.1:{closed.getsockname()[1]}/0"
        with RedisLanes(url, on_unavailable="local", timeout=0.5) as store:
            lane = shared_lane(store, new_key(), LaneConfig(max_concurrency=4))
            async with lane.permit() as permit:
                assert lane.sending == 1
                assert lane.rejected(permit, wait=5.0) is True
            assert lane.paused_for > 4
            assert lane.consecutive_rejections == 1
            assert lane.limit == 1  # the in-process lane cut its limit


def test_the_state_round_trips_through_the_stores_text() -> None:
    from aiomusic._core import _lane_policy as policy
    from aiomusic._core._lane_store import from_fields, to_fields

    config = LaneConfig(max_concurrency=8, rate=10)
    control = policy.Control(limit=5.5, guard=0.04, slow_start=False, ceiling=7.0, proven=3,
                             rtt=0.2, last_cut=12.5, paused_until=20.0, pause_started=15.0,
                             consecutive=2)
    assert from_fields(to_fields(control), config) == control
    assert from_fields({}, config) == policy.initial(config)
    assert to_fields(policy.initial(config))["ceiling"] == "inf"


def test_a_lane_of_a_service_without_a_key_has_a_fingerprint_all_the_same(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SUNO_API_KEY", raising=False)
    with RedisLanes("redis://127.0.0.1:1/0") as store:  # never reached: lanes connect lazily
        session = MusicSession(lane_store=store, aimlapi_key="k")
        lane = session.lane(Service.SUNO, LaneKind.POLL)
        assert isinstance(lane, SharedLane)
        assert lane._ref.ident == f"{fingerprint('')}:suno.poll"
