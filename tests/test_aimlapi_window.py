"""The AI/ML API's status polls count in its key's window of 120 requests a minute, with its
submissions (as the emulator counts them); the client's default lanes keep both inside it.

The window is tested at 1/20 of its length: 120 requests per 3 s on the emulator, and the
default lanes with their windows shortened the same way.
"""

from __future__ import annotations

import anyio
import attrs
import httpx
import pytest

from aiomusic import MusicSession, PollSchedule, RetryPolicy
from aiomusic._core._config import LaneKind, Service
from aiomusic._core._session import default_lanes
from aiomusic.emulator import Emulator, EmulatorConfig, Limits, Timings

pytestmark = pytest.mark.anyio
KEY = "sk-aiml-window-77"
SHRINK = 20  # a 60 s window becomes 3 s


def test_the_default_lanes_share_the_window() -> None:
    lanes = default_lanes()
    submit, poll = lanes[Service.AIMLAPI, LaneKind.SUBMIT], lanes[Service.AIMLAPI, LaneKind.POLL]
    assert submit.rate is not None and poll.rate is not None
    assert submit.per == poll.per == 60.0
    assert submit.rate + poll.rate <= 120


async def test_polls_count_in_the_window(anyio_backend: str) -> None:
    limits = Limits(minimax_requests=3, minimax_window=60.0)
    config = EmulatorConfig(timings=Timings.instant(), limits=limits)
    with Emulator(config) as emulator:
        headers = {"Authorization": f"Bearer {KEY}"}
        async with httpx.AsyncClient(base_url=emulator.url, headers=headers) as client:
            made = await client.post("/v2/generate/audio", json={
                "model": "stable-audio", "prompt": "rain", "seconds_total": 5})
            assert made.status_code in (200, 201), made.text
            generation = made.json()["id"]
            answers = [await client.get("/v2/generate/audio",
                                        params={"generation_id": generation})
                       for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 429]
        assert emulator.counters.rejected[("aiml.audio.status", "rate_limit")] == 1


async def test_the_poll_schedule_stays_inside_the_window(anyio_backend: str) -> None:
    lanes = {f"aimlapi.{kind.value}": attrs.evolve(config, per=config.per / SHRINK)
             for (service, kind), config in default_lanes().items()
             if service is Service.AIMLAPI and config.rate is not None}
    limits = Limits(minimax_requests=120, minimax_window=60.0 / SHRINK, aiml_generating=64)
    timings = Timings(aiml_queue=0.0, aiml_generate=0.5)
    with Emulator(EmulatorConfig(timings=timings, limits=limits)) as emulator:
        async with MusicSession(aimlapi_key=KEY, base_url=emulator.url, lanes=lanes,
                                retry=RetryPolicy(base_delay=0.01, max_delay=0.05)) as s:
            # a schedule far too eager for the window: the lanes must hold it back
            s.aimlapi.poll_schedule = PollSchedule(initial=0.01, maximum=0.02)
            finished = []

            async def one(number: int) -> None:
                task = await s.aimlapi.submit("stable-audio", prompt=f"rain {number}",
                                              seconds_total=5)
                finished.append(await task.wait(timeout=120))

            async with anyio.create_task_group() as tg:
                for number in range(40):
                    tg.start_soon(one, number)
        counters = emulator.counters
    assert len(finished) == 40
    # each generation: one submission and at least one poll (unthrottled, the same schedule
    # passes the window within the first second: the emulator then refuses)
    assert counters.requests["/v2/generate/audio"] >= 80
    assert not [r for r in counters.rejected if r[1] == "rate_limit"], counters.rejected
