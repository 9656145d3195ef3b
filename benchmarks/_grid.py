"""B1 over a grid of operating points: each point run by every client, in rounds.

A point is a service that allows R starts in any second and C generations at once per key,
each taking L seconds, and N jobs to do. The *ideal* is the shortest time any client could
take: the schedule that starts every job as soon as both limits allow, with no network and no
refusal. Each client's ratio is its jobs done per second over the ideal's (1.0: as fast as the
limits allow; a failed job counts for nothing).
Every figure is the median of the rounds, with their minimum and maximum.

At points whose ideal pace is at most 12 jobs/s, aiomusic's rounds run side by side, each on
its own key and started 1.5 s after the one before (a few requests per second each cost the
machine little); so do the baselines' rounds when there are at most 100 jobs. Every other run
is alone. The full grid (``--grid``) takes about 30 minutes, the default points about 8.
"""

from __future__ import annotations

import concurrent.futures
import heapq
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import httpx

from . import _plot
from ._common import Emulator, make_wav, run_child, upload_voice
from ._goodput import CLIENTS, GENERATE, body, ok_audio

__all__ = ["DEFAULT", "FULL", "QUICK", "Point", "ideal_seconds", "run"]

#: Clients run at every point; the classic point (the first) runs all six.
GRID_CLIENTS = ("aiomusic", "aiomusic-untold", "gather-retry-after")
#: aiomusic's rounds of a point this slow run side by side (and the baselines' with few jobs).
LIGHT_JOBS_PER_S = 12.0
LIGHT_BASELINE_JOBS = 100
#: Seconds between the starts of runs side by side.
STAGGER = 1.5


class Point(NamedTuple):
    rate: int  # starts per second
    capacity: int  # generations at once
    latency: float  # seconds per generation
    jobs: int

    @property
    def label(self) -> str:
        return f"R={self.rate}/s C={self.capacity} L={self.latency:g}s N={self.jobs}"

    @property
    def slug(self) -> str:
        return f"R{self.rate}-C{self.capacity}-L{self.latency:g}-N{self.jobs}"

    @property
    def kind(self) -> str:
        concurrency = self.capacity / self.latency
        if concurrency < 0.9 * self.rate:
            return "concurrency-bound"
        return "rate-bound" if self.rate < 0.9 * concurrency else "both"

    @property
    def light(self) -> bool:
        return min(self.rate, self.capacity / self.latency) <= LIGHT_JOBS_PER_S


CLASSIC = Point(40, 16, 0.2, 400)
QUICK = (Point(40, 16, 0.2, 40), Point(40, 4, 0.2, 40))
DEFAULT = (CLASSIC, Point(40, 4, 0.2, 200), Point(50, 2, 0.2, 50), Point(50, 64, 5.0, 50))
FULL = (
    CLASSIC,                       # rate-bound, the point B1 always measured
    Point(40, 4, 0.2, 400),        # concurrency-bound: the worst point
    Point(40, 8, 0.2, 400),        # both limits at 40 jobs/s
    Point(50, 64, 0.2, 2000),      # rate-bound, many jobs
    Point(50, 32, 1.0, 1000),      # concurrency-bound, many jobs
    Point(10, 64, 2.0, 200),       # rate-bound, slow jobs
    Point(1, 64, 5.0, 50),         # the slowest rate
    Point(50, 2, 1.0, 50),         # the smallest capacity
    Point(50, 64, 5.0, 50),        # one wave of slow jobs
    Point(20, 16, 5.0, 50),        # concurrency-bound, slow jobs
)


def ideal_seconds(point: Point) -> float:
    """The greedy schedule's length: each job starts as soon as a place is free and the
    window has room (no refusal, no network)."""
    ends: list[float] = []  # a heap of the running jobs' ends
    starts: list[float] = []
    finish = 0.0
    for i in range(point.jobs):
        at = heapq.heappop(ends) if len(ends) >= point.capacity else 0.0
        if i >= point.rate:
            at = max(at, starts[i - point.rate] + 1.0)
        starts.append(at)
        heapq.heappush(ends, at + point.latency)
        finish = max(finish, at + point.latency)
    return finish


def run(*, quick: bool, grid: bool, plots: Path | None,
        log: Callable[[str], None] = print,
        points: Sequence[int] | None = None) -> list[dict[str, Any]]:
    """B1 at every point of the chosen grid (``points``: only these, counted from 1); one row
    per point and client."""
    chosen = QUICK if quick else FULL if grid else DEFAULT
    rounds = 1 if quick else 3
    rows: list[dict[str, Any]] = []
    for index, point in enumerate(chosen):
        if points and index + 1 not in points:
            continue
        clients = CLIENTS if index == 0 else GRID_CLIENTS
        started = time.perf_counter()
        runs = _run_point(point, clients, rounds)
        log(f"    {point.label}: {time.perf_counter() - started:.0f} s")
        point_rows = [_summary(point, client, runs[client]) for client in clients]
        if plots is not None:
            path = plots / f"B1-{point.slug}.png"
            medians = {row["client"]: runs[row["client"]][row["median_round"]]
                       for row in point_rows}
            _plot.point(path, point.label, ideal_seconds(point),
                        {client: medians[client] for client in GRID_CLIENTS})
            for row in point_rows:
                row["plot"] = path.name
        rows.extend(point_rows)
    return rows


def _run_point(point: Point, clients: Sequence[str],
               rounds: int) -> dict[str, list[dict[str, Any]]]:
    runs: dict[str, list[dict[str, Any]]] = {client: [] for client in clients}
    with tempfile.TemporaryDirectory() as folder, Emulator(
            "--rate", str(point.rate), "--rate-window", "1",
            "--concurrency", str(point.capacity), "--speed", str(point.latency / 0.5),
            "--audio-bytes", "1000", "--retry-after", "1") as emu:
        reference = Path(folder, "voice.wav")
        make_wav(reference, 2.2)  # about 13 s: a valid music-01 reference
        voice = upload_voice(emu.url, reference)
        _warm_up(emu.url, voice)
        together = _side_by_side(point, clients)
        for group in together:
            jobs = [(client, i) for i in range(rounds) for client in group]
            start = time.monotonic() + 2.0 + 0.7 * len(jobs)  # after every process started
            with concurrent.futures.ThreadPoolExecutor(len(jobs)) as pool:
                futures = [pool.submit(_one, emu, point, client, i, voice,
                                       start + STAGGER * n)
                           for n, (client, i) in enumerate(jobs)]
                for (client, _), future in zip(jobs, futures, strict=True):
                    runs[client].append(future.result())
        alone = [c for c in clients if not any(c in group for group in together)]
        for i in range(rounds):  # interleaved, so that every client meets the same moments
            for client in alone:
                runs[client].append(_one(emu, point, client, i, voice, time.monotonic() + 0.3))
    return runs


def _side_by_side(point: Point, clients: Sequence[str]) -> list[list[str]]:
    """The groups of clients whose rounds run side by side at ``point``."""
    if not point.light:
        return []
    ours = [c for c in clients if c.startswith("aiomusic")]
    others = [c for c in clients if c not in ours]
    return [ours, others] if point.jobs <= LIGHT_BASELINE_JOBS and others else [ours]


def _one(emu: Emulator, point: Point, client: str, round_: int, voice: str,
         not_before: float) -> dict[str, Any]:
    """One run of ``client`` in a fresh process, on a key of its own."""
    return run_child("_goodput", client, url=emu.url, n=point.jobs, voice=voice,
                     rate=point.rate, key=f"bench-{client}-{round_}", not_before=not_before)


def _summary(point: Point, client: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    ideal = ideal_seconds(point)
    # jobs done per second over the ideal's (a client that fails jobs gets no credit for them)
    ratios = [r["ok"] / point.jobs * ideal / r["seconds"] for r in runs]
    shares = [_refused(r) / max(1, len(r["requests"])) for r in runs]
    median = sorted(range(len(runs)), key=lambda i: ratios[i])[len(runs) // 2]
    return {
        "id": "B1", "point": point.label, "kind": point.kind, "rate": point.rate,
        "capacity": point.capacity, "latency": point.latency, "jobs": point.jobs,
        "client": client, "rounds": len(runs),
        "side_by_side": any(client in group for group in _side_by_side(point, [client])),
        "ideal_s": round(ideal, 2), "ideal_jobs_per_s": min(point.rate,
                                                            point.capacity / point.latency),
        "seconds": round(statistics.median(r["seconds"] for r in runs), 2),
        **_spread("ratio_vs_ideal", ratios, 3),
        **_spread("rejected_share", shares, 3),
        "requests": round(statistics.median(len(r["requests"]) for r in runs)),
        "failed": max(r["failed"] for r in runs),
        "failed_per_round": [r["failed"] for r in runs],
        "median_round": median,
    }


def _refused(run: dict[str, Any]) -> int:
    return sum(1 for request in run["requests"] if not request[2])


def _spread(name: str, values: list[float], digits: int) -> dict[str, Any]:
    """``name``: the median of ``values``, with ``name_min``, ``name_max`` and every round."""
    return {name: round(statistics.median(values), digits),
            f"{name}_min": round(min(values), digits),
            f"{name}_max": round(max(values), digits),
            f"{name}_rounds": [round(v, digits) for v in values]}


def _warm_up(url: str, voice: str) -> None:
    """One generation of the same song first: the emulator synthesises a new song's audio in
    pure Python once (about a second), then serves it from a cache. Without this, the first
    requests of every client would wait for that, which no real service does."""
    answer = httpx.post(url + GENERATE, json=body(voice),
                        headers={"Authorization": "Bearer warm-up"}, timeout=60)
    if ok_audio(answer) is None:
        raise RuntimeError(f"warm-up generation failed: {answer.text[:200]}")
