"""B5: many Suno tasks pending at once: memory per task, and the poll rate the lane allows.

N add-instrumental tasks are submitted, then all of them wait at once with ``task.wait()``
(polling ``record-info`` in the session's poll lane, which allows ``rate`` starts per second),
until every one completes. The emulator's tasks finish ``complete`` seconds after their
submission. Memory per task is the case's peak RSS above the baseline, divided by N, and the
difference between two sizes divided by the difference in N (the cost of one more task).
The poll rate is the most ``record-info`` requests that started in any one-second window.
"""

from __future__ import annotations

import bisect
import time
from typing import Any

import anyio
import httpx

from ._common import KEY, Emulator, mib, rss_kib, run_child

__all__ = ["CASES", "run"]

#: Submissions per second are not what B5 measures: a wide lane gets them out of the way.
SUBMIT_CONCURRENCY = 64


def max_in_window(times: list[float], window: float) -> int:
    """The most of ``times`` (sorted) that fall in any half-open window of ``window`` s."""
    best = 0
    for i, start in enumerate(times):
        best = max(best, bisect.bisect_left(times, start + window, lo=i) - i)
    return best


async def pending(p: dict[str, Any]) -> dict[str, Any]:
    from aiomusic import Event, LaneConfig, MusicSession, PollSchedule, RequestStarted

    polls: list[float] = []

    def listen(event: Event) -> None:
        if isinstance(event, RequestStarted) and event.operation == "suno.record_info":
            polls.append(time.monotonic())

    lanes = {"suno.submit": LaneConfig(max_concurrency=SUBMIT_CONCURRENCY,
                                       initial_concurrency=SUBMIT_CONCURRENCY),
             "suno.poll": LaneConfig(max_concurrency=p["poll_concurrency"], rate=p["rate"],
                                     per=1.0)}
    schedule = PollSchedule(initial=p["poll_initial"], maximum=p["poll_maximum"])
    async with MusicSession(base_url=p["url"], suno_key=KEY, lanes=lanes, on_event=listen,
                            suno_callback_url="https://callbacks.invalid/suno") as session:
        await session.suno.get_credits()  # the connection and first-call costs, before
        before = rss_kib()
        started = time.perf_counter()
        tasks: list[Any] = []

        async def submit() -> None:
            tasks.append(await session.suno.add_instrumental(
                p["source"], title="bench", tags="piano", negative_tags="none"))

        async with anyio.create_task_group() as tg:
            for _ in range(p["n"]):
                tg.start_soon(submit)
        submitted = time.perf_counter() - started
        all_pending = rss_kib()
        done = 0

        async def wait(task: Any) -> None:
            nonlocal done
            result = await task.wait(timeout=p["timeout"], poll=schedule)
            done += len(result.tracks) > 0

        async with anyio.create_task_group() as tg:
            for task in tasks:
                tg.start_soon(wait, task)
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "submit_seconds": submitted, "completed": done,
            "polls": len(polls), "max_polls_per_s": max_in_window(sorted(polls), 1.0),
            "pending_kib": all_pending - before}


CASES = {"pending": pending}


def run(*, quick: bool, baselines: dict[str, int]) -> list[dict[str, Any]]:
    """B5 at two sizes, against an emulator (no limits) whose tasks finish slowly."""
    sizes = [20, 100] if quick else [200, 2000]
    complete = 1.0 if quick else 10.0  # seconds from submission to SUCCESS
    rate = 400
    rows: list[dict[str, Any]] = []
    # Timings: text at 0.25, first at 0.5 and complete at 1.0 of `complete`.
    with Emulator("--no-limits", "--speed", str(complete / 2.0)) as emu:
        _warm_up(emu, _upload_source(emu), complete)
        results = {}
        for n in sizes:
            emu.reset()
            got = run_child("_tasks", "pending", url=emu.url, source=_upload_source(emu),
                            n=n, rate=rate, poll_concurrency=32, poll_initial=0.5,
                            poll_maximum=2.0, timeout=600.0)
            served = emu.counters()["requests"].get("/api/v1/generate/record-info", 0)
            results[n] = got
            rows.append({
                "id": "B5", "tasks": n, "completed": got["completed"],
                "seconds": round(got["seconds"], 2),
                "submit_seconds": round(got["submit_seconds"], 2),
                "complete_after_s": complete,
                "polls": got["polls"], "polls_served": served,
                "max_polls_per_s": got["max_polls_per_s"], "poll_limit_per_s": rate,
                "kib_per_task": round((got["peak_kib"] - baselines["warm"]) / n, 1),
                "pending_kib_per_task": round(got["pending_kib"] / n, 1),
                "peak_mib": mib(got["peak_kib"] - baselines["warm"]),
            })
        small, large = sizes
        slope = (results[large]["peak_kib"] - results[small]["peak_kib"]) / (large - small)
        for row in rows:
            row["marginal_kib_per_task"] = round(slope, 1)
    return rows


def _warm_up(emu: Emulator, source: str, complete: float) -> None:
    """Follow one task to SUCCESS first: the emulator synthesises a new track's audio in pure
    Python once (a second or two, holding the GIL), then serves it from a cache. Every task of
    the benchmark has the same tracks, so without this the first SUCCESS answers would stall
    the emulator, which no real service does."""
    headers = {"Authorization": f"Bearer {KEY}"}
    with httpx.Client(base_url=emu.url, headers=headers, timeout=60) as client:
        task = client.post("/api/v1/generate/add-instrumental", json={
            "uploadUrl": source, "title": "bench", "tags": "piano", "negativeTags": "none",
            "callBackUrl": "https://callbacks.invalid/suno", "model": "V4_5PLUS",
        }).json()["data"]["taskId"]
        deadline = time.monotonic() + complete + 60
        while time.monotonic() < deadline:
            record = client.get("/api/v1/generate/record-info", params={"taskId": task})
            if record.json()["data"]["status"] == "SUCCESS":
                return
            time.sleep(0.25)
    raise RuntimeError("the warm-up task did not complete")


def _upload_source(emu: Emulator) -> str:
    """Store a short MP3 on the emulator's file host; its download URL is every task's source."""
    from aiomusic.emulator._audio import render

    data = render(7, 2.0, fmt="mp3", sample_rate=44100, channels=2, bitrate=128000).data
    answer = httpx.post(emu.url + "/api/file-stream-upload", timeout=60,
                        headers={"Authorization": f"Bearer {KEY}"},
                        data={"uploadPath": "bench", "fileName": "vocals.mp3"},
                        files={"file": ("vocals.mp3", data, "audio/mpeg")})
    url: str = answer.json()["data"]["downloadUrl"]
    return url
