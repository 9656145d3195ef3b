"""B5: the memory of one more pending Suno task, and the poll rate the lane keeps.

N add-instrumental tasks are submitted, then all of them wait at once with ``task.wait()``,
polling ``record-info`` in the session's poll lane (at most ``budget`` starts per second)
until every one completes, ``complete`` seconds after its submission. The tasks stay pending
long enough to be polled many times (the schedule starts at 0.5 s and backs off to 2 s; a
task is polled about a dozen times, fewer when the budget is the limit).

Memory is read while every task is pending (between the last submission and the first
completion): the process's resident memory, sampled every 0.1 s, above what it was before the
first submission. The cost of one more task is the difference between two sizes divided by
the difference in N, which subtracts everything that does not grow with N (the interpreter,
httpx, the lane's bounded bookkeeping). Each size runs in a fresh process, in rounds.
"""

from __future__ import annotations

import bisect
import statistics
import time
from typing import Any

import anyio
import httpx

from ._common import KEY, Emulator, rss_kib, run_child

__all__ = ["CASES", "max_in_window", "run"]

#: Submissions per second are not what B5 measures: a wide lane gets them out of the way.
SUBMIT_CONCURRENCY = 64
#: The poll lane's rate: at most this many record-info requests start in any second.
BUDGET = 400


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
             "suno.poll": LaneConfig(max_concurrency=p["poll_concurrency"], rate=p["budget"],
                                     per=1.0)}
    schedule = PollSchedule(initial=0.5, maximum=2.0)
    samples: list[tuple[float, int]] = []
    async with MusicSession(base_url=p["url"], suno_key=KEY, lanes=lanes, on_event=listen,
                            suno_callback_url="https://callbacks.invalid/suno") as session:
        await session.suno.get_credits()  # the connection and first-call costs, before
        before = rss_kib()
        started = time.perf_counter()
        tasks: list[Any] = []
        done: list[float] = []

        async def submit() -> None:
            tasks.append(await session.suno.add_instrumental(
                p["source"], title="bench", tags="piano", negative_tags="none"))

        async def wait(task: Any) -> None:
            result = await task.wait(timeout=p["timeout"], poll=schedule)
            if result.tracks:
                done.append(time.perf_counter())

        async def sample() -> None:
            while True:
                samples.append((time.perf_counter(), rss_kib()))
                await anyio.sleep(0.1)

        async with anyio.create_task_group() as sampler:
            sampler.start_soon(sample)
            async with anyio.create_task_group() as tg:
                for _ in range(p["n"]):
                    tg.start_soon(submit)
            submitted = time.perf_counter()
            async with anyio.create_task_group() as tg:
                for task in tasks:
                    tg.start_soon(wait, task)
            sampler.cancel_scope.cancel()
        seconds = time.perf_counter() - started
    first_done = min(done, default=seconds + started)
    while_pending = [kib for at, kib in samples if submitted <= at < first_done]
    return {"seconds": seconds, "submit_seconds": submitted - started, "completed": len(done),
            "polls": len(polls), "max_polls_per_s": max_in_window(sorted(polls), 1.0),
            "pending_kib": max(while_pending, default=0) - before,
            "pending_samples": len(while_pending)}


CASES = {"pending": pending}


def run(*, quick: bool, baselines: dict[str, int]) -> list[dict[str, Any]]:
    """B5 at two sizes, in rounds, against an emulator (no limits) whose tasks finish slowly."""
    small, large = (50, 200) if quick else (200, 1000)
    complete = 3.0 if quick else 20.0  # seconds from submission to SUCCESS
    rounds = 1 if quick else 3
    got: dict[int, list[dict[str, Any]]] = {small: [], large: []}
    # Timings: text at 0.25, first at 0.5 and complete at 1.0 of `complete`.
    with Emulator("--no-limits", "--speed", str(complete / 2.0)) as emu:
        _warm_up(emu, _upload_source(emu), complete)
        for _ in range(rounds):  # interleaved sizes
            for n in (small, large):
                emu.reset()
                result = run_child("_tasks", "pending", url=emu.url, source=_upload_source(emu),
                                   n=n, budget=BUDGET, poll_concurrency=64,
                                   timeout=complete + 600.0)
                result["polls_served"] = emu.counters()["requests"].get(
                    "/api/v1/generate/record-info", 0)
                got[n].append(result)
    marginals = [(b["pending_kib"] - a["pending_kib"]) / (large - small)
                 for a, b in zip(got[small], got[large], strict=True)]
    peak_marginals = [(b["peak_kib"] - a["peak_kib"]) / (large - small)
                      for a, b in zip(got[small], got[large], strict=True)]
    rows = []
    for n, results in got.items():
        rows.append({
            "id": "B5", "tasks": n, "rounds": len(results), "complete_after_s": complete,
            "completed": min(r["completed"] for r in results),
            "seconds": round(statistics.median(r["seconds"] for r in results), 2),
            "polls_per_task": round(statistics.median(r["polls"] for r in results) / n, 1),
            "polls_served": round(statistics.median(r["polls_served"] for r in results)),
            "max_polls_per_s": max(r["max_polls_per_s"] for r in results),
            "poll_limit_per_s": BUDGET,
            "pending_kib_per_task": round(statistics.median(
                r["pending_kib"] for r in results) / n, 1),
            "peak_mib_vs_warm": round(statistics.median(
                r["peak_kib"] for r in results) / 1024 - baselines["warm"] / 1024, 1),
            "marginal_kib_per_task": round(statistics.median(marginals), 1),
            "marginal_kib_per_task_min": round(min(marginals), 1),
            "marginal_kib_per_task_max": round(max(marginals), 1),
            "marginal_peak_kib_per_task": round(statistics.median(peak_marginals), 1),
        })
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
