"""B1: N generations under a service's rate and concurrency limits, by six clients.

Each run is one client in a fresh process (``_grid.py`` starts them), against the same emulator,
with an API key of its own (so that no run inherits another's rate window), and every client
gets the same answers: 429s with ``Retry-After`` (the wait until the window has room for a rate
refusal, 1 s for a concurrency refusal). All N jobs start at once and each client may have 64
requests in flight:

- ``naive``: ``asyncio.gather`` of plain httpx calls, no retry: a refused job fails;
- ``openai-style``: a semaphore of 64 and openai-python's retry policy, with the retries users
  configure for batch work (``max_retries=10``): waits of 0.5 s doubling up to 8 s with up to
  25 % jitter subtracted, ``Retry-After`` when it is at most 60 s;
- ``gather-retry-after``: every job retried after the ``Retry-After`` it is given (1 s without
  one) until it succeeds (the loop users write by hand);
- ``gather-paced``: the same loop told the rate, like aiomusic: at most R starts in any second
  (an aiolimiter-style limiter);
- ``aiomusic``: ``session.minimax.generate`` with default settings and the lane told the
  documented rate, ``LaneConfig(max_concurrency=64, rate=R, per=1.0)``; it has to find C;
- ``aiomusic-untold``: ``LaneConfig(max_concurrency=64)``: neither R nor C.

A run returns what the client saw: every request's start, end and outcome, and for aiomusic
its lane's limit and pauses over time (the plots).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import tempfile
import time
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import httpx

__all__ = ["CASES", "CLIENTS", "GENERATE", "body", "ok_audio"]

GENERATE = "/v2/generate/audio/minimax/generate"
SETTING = {"format": "mp3", "sample_rate": 44100, "bitrate": 256000}
#: Requests a client may have in flight (its semaphore, its connection pool, its lane).
IN_FLIGHT = 64


def body(voice: str) -> dict[str, Any]:
    return {"model": "music-01", "lyrics": "##la la la##", "refer_voice": voice,
            "audio_setting": SETTING}


def ok_audio(response: httpx.Response) -> bytes | None:
    """The audio of an accepted generation, or None for a refusal."""
    if response.status_code != 200:
        return None
    doc = response.json()
    if doc.get("base_resp", {}).get("status_code") != 0:
        return None
    return bytes.fromhex(doc["data"]["audio"])


async def _not_before(p: dict[str, Any]) -> float:
    """Wait until ``p["not_before"]`` (``time.monotonic()``, the same clock in every process);
    the start of the timed part, on ``time.perf_counter()``."""
    await anyio.sleep(max(0.0, p["not_before"] - time.monotonic()))
    return time.perf_counter()


class _Window:
    """At most ``rate`` starts in any second (what aiolimiter's users get)."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.starts: deque[float] = deque()

    async def __aenter__(self) -> None:
        while len(self.starts) >= self.rate:
            wait = self.starts[0] + 1.0 - time.monotonic()
            if wait <= 0:
                self.starts.popleft()
            else:
                await asyncio.sleep(wait)
        self.starts.append(time.monotonic())

    async def __aexit__(self, *_: object) -> None:
        return None


def _openai_wait(retries_taken: int, response: httpx.Response) -> float:
    """openai-python's ``_calculate_retry_timeout``."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = response.headers.get(name)
        if value is not None:
            try:
                wait = float(value) * scale
            except ValueError:
                continue
            if 0 < wait <= 60:
                return wait
    delay = min(0.5 * 2.0 ** retries_taken, 8.0)
    return delay * (1 - 0.25 * random.random())


def _retry_after(_: int, response: httpx.Response) -> float:
    try:
        return float(response.headers.get("retry-after", "1"))
    except ValueError:
        return 1.0


async def _plain_httpx(p: dict[str, Any], *, attempts: int,
                       wait: Callable[[int, httpx.Response], float],
                       gate: Callable[[], contextlib.AbstractAsyncContextManager[Any]] | None,
                       pace: _Window | None = None) -> dict[str, Any]:
    """Every job as plain httpx calls: up to ``attempts`` tries each, ``wait`` in between."""
    requests: list[list[float]] = []  # [start, end, 1 if accepted]
    limits = httpx.Limits(max_connections=IN_FLIGHT, max_keepalive_connections=IN_FLIGHT)
    headers = {"Authorization": f"Bearer {p['key']}"}
    with tempfile.TemporaryDirectory() as folder:
        async with httpx.AsyncClient(limits=limits, timeout=120) as client:
            started = await _not_before(p)

            async def one(i: int) -> bool:
                async with gate() if gate else contextlib.nullcontext():
                    for tries in range(attempts):
                        async with pace or contextlib.nullcontext():
                            began = time.perf_counter() - started
                            response = await client.post(p["url"] + GENERATE,
                                                         json=body(p["voice"]), headers=headers)
                        audio = ok_audio(response)
                        requests.append([began, time.perf_counter() - started,
                                         float(audio is not None)])
                        if audio is not None:
                            Path(folder, f"{i}.mp3").write_bytes(audio)  # noqa: ASYNC240
                            return True
                        if tries < attempts - 1:
                            await asyncio.sleep(wait(tries, response))
                return False

            done = await asyncio.gather(*(one(i) for i in range(p["n"])),
                                        return_exceptions=True)
            seconds = time.perf_counter() - started
    ok = sum(1 for d in done if d is True)
    return {"seconds": seconds, "ok": ok, "failed": p["n"] - ok, "requests": requests}


async def naive(p: dict[str, Any]) -> dict[str, Any]:
    return await _plain_httpx(p, attempts=1, wait=_retry_after, gate=None)


async def openai_style(p: dict[str, Any]) -> dict[str, Any]:
    semaphore = asyncio.Semaphore(IN_FLIGHT)
    return await _plain_httpx(p, attempts=11, wait=_openai_wait, gate=lambda: semaphore)


async def gather_retry_after(p: dict[str, Any]) -> dict[str, Any]:
    return await _plain_httpx(p, attempts=1000, wait=_retry_after, gate=None)


async def gather_paced(p: dict[str, Any]) -> dict[str, Any]:
    return await _plain_httpx(p, attempts=1000, wait=_retry_after, gate=None,
                              pace=_Window(p["rate"]))


async def _aiomusic(p: dict[str, Any], *, told: bool) -> dict[str, Any]:
    from aiomusic import (
        AiomusicError,
        AudioSetting,
        Event,
        LaneConfig,
        LaneLimitChanged,
        MusicSession,
        PauseStarted,
        RequestFinished,
    )

    requests: list[list[float]] = []
    limits: list[list[float]] = [[0.0, 1.0]]
    pauses: list[list[float]] = []
    started = 0.0

    def listen(event: Event) -> None:
        now = time.perf_counter() - started
        if isinstance(event, RequestFinished) and event.operation == "minimax.generate":
            requests.append([now - event.seconds, now, float(event.error is None)])
        elif isinstance(event, LaneLimitChanged):
            limits.append([now, float(event.new)])
        elif isinstance(event, PauseStarted):
            pauses.append([now, event.seconds])

    lane = (LaneConfig(max_concurrency=IN_FLIGHT, rate=p["rate"], per=1.0) if told
            else LaneConfig(max_concurrency=IN_FLIGHT))
    setting = AudioSetting(**SETTING)  # type: ignore[arg-type]
    ok = 0
    with tempfile.TemporaryDirectory() as folder:
        async with MusicSession(base_url=p["url"], aimlapi_key=p["key"], on_event=listen,
                                lanes={"aimlapi.submit": lane}) as session:

            async def one(i: int) -> None:
                nonlocal ok
                try:
                    await session.minimax.generate(Path(folder, f"{i}.mp3"), lyrics="##la la la##",
                                                   refer_voice=p["voice"], audio_setting=setting)
                except AiomusicError:
                    return
                ok += 1

            started = await _not_before(p)
            async with anyio.create_task_group() as tg:
                for i in range(p["n"]):
                    tg.start_soon(one, i)
            seconds = time.perf_counter() - started
    return {"seconds": seconds, "ok": ok, "failed": p["n"] - ok, "requests": requests,
            "limits": limits, "pauses": pauses}


async def aiomusic_told(p: dict[str, Any]) -> dict[str, Any]:
    return await _aiomusic(p, told=True)


async def aiomusic_untold(p: dict[str, Any]) -> dict[str, Any]:
    return await _aiomusic(p, told=False)


CASES: dict[str, Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]] = {
    "naive": naive,
    "openai-style": openai_style,
    "gather-retry-after": gather_retry_after,
    "gather-paced": gather_paced,
    "aiomusic": aiomusic_told,
    "aiomusic-untold": aiomusic_untold,
}
CLIENTS = tuple(CASES)
