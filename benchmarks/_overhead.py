"""B4: per-call overhead: many small calls at a concurrency of 64, next to plain httpx.

- generate: music-01 generations of a tiny track (zero generation time), decoded into memory:
  plain ``httpx`` (``post``, ``json()``, ``bytes.fromhex``) under a semaphore of 64, vs
  ``session.minimax.generate(io.BytesIO())`` with a lane open to 64 at once;
- generate-path: the same into files, with the same guarantee on both sides: a temporary
  file, fsynced and renamed into place, so that a file that exists is complete even after a
  crash (plain httpx does it in a worker thread; aiomusic as it always does);
- generate-default-lane: into memory, with aiomusic's lane left at its defaults except the
  ceiling (``LaneConfig(max_concurrency=64)``: the limit starts at 1 and grows). The session's
  shipped lanes also carry the service's documented rate (120 per minute), which would measure
  the rate, not the overhead;
- credits: Suno ``get_credits``: plain ``httpx`` ``get`` + ``json()`` vs
  ``session.suno.get_credits()``.

Each side has its own ``httpx.AsyncClient`` with 64 connections; aiomusic adds its lane, retry
loop, classification, events and (for generate) the incremental hex decoder. Both run in one
process, alternating in batches of a few hundred calls, so that both meet the same moments
of a noisy machine. Each pair of batches is a round: the ratio is the median of the rounds'
ratios, with their minimum and maximum.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import resource
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import httpx

from ._common import KEY, Emulator, run_child

if TYPE_CHECKING:
    from aiomusic import MusicSession

__all__ = ["CASES", "run"]

GENERATE = "/v2/generate/audio/minimax/generate"
CREDIT = "/api/v1/generate/credit"
LYRICS = "##la la la##"

Call = Callable[[], Awaitable[None]]


def _limits(p: dict[str, Any]) -> httpx.Limits:
    return httpx.Limits(max_connections=p["concurrency"],
                        max_keepalive_connections=p["concurrency"])


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _batch(n: int, concurrency: int, one: Call) -> tuple[float, float]:
    """Run ``one()`` ``n`` times, at most ``concurrency`` at once: (seconds, CPU seconds)."""
    semaphore = asyncio.Semaphore(concurrency)

    async def guarded() -> None:
        async with semaphore:
            await one()

    started, cpu = time.perf_counter(), _cpu()
    async with anyio.create_task_group() as tg:
        for _ in range(n):
            tg.start_soon(guarded)
    return time.perf_counter() - started, _cpu() - cpu


async def _alternate(p: dict[str, Any], plain: Call, ours: Call) -> dict[str, Any]:
    """Both sides in alternating batches (which goes first alternates too); their totals."""
    await plain()  # connections and first-call costs, outside the measurement
    await ours()
    batches = p["batches"]
    size = p["n"] // batches
    totals = {"httpx": [0.0, 0.0], "aiomusic": [0.0, 0.0]}
    ratios = []
    for i in range(batches):
        order = [("httpx", plain), ("aiomusic", ours)]
        took = {}
        for name, one in order if i % 2 == 0 else order[::-1]:
            seconds, cpu = await _batch(size, p["concurrency"], one)
            totals[name][0] += seconds
            totals[name][1] += cpu
            took[name] = seconds
        ratios.append(took["httpx"] / took["aiomusic"])
    return {"n": size * batches, "httpx_seconds": totals["httpx"][0],
            "httpx_cpu": totals["httpx"][1], "aiomusic_seconds": totals["aiomusic"][0],
            "aiomusic_cpu": totals["aiomusic"][1], "ratios": ratios}


@contextlib.asynccontextmanager
async def _sides(p: dict[str, Any], lane: str, **keys: str
                 ) -> AsyncIterator[tuple[httpx.AsyncClient, MusicSession]]:
    """A plain client, and a session on a client of its own with ``lane`` open to 64 at once
    (or, with ``p["default_lane"]``, growing from 1 up to 64 by itself)."""
    from aiomusic import LaneConfig, MusicSession

    config = LaneConfig(max_concurrency=p["concurrency"],
                        initial_concurrency=None if p.get("default_lane") else p["concurrency"])
    async with httpx.AsyncClient(limits=_limits(p), timeout=60) as client, \
            httpx.AsyncClient(limits=_limits(p), timeout=60) as own, \
            MusicSession(base_url=p["url"], http_client=own, lanes={lane: config},
                         **keys) as session:  # type: ignore[arg-type]
        yield client, session


async def generate(p: dict[str, Any]) -> dict[str, Any]:
    body = {"model": "music-01", "lyrics": LYRICS, "refer_voice": p["voice"]}
    headers = {"Authorization": f"Bearer {KEY}"}
    to_path = p.get("to_path", False)
    names = iter(range(10**9))
    with tempfile.TemporaryDirectory() as folder:
        async with _sides(p, "aimlapi.submit", aimlapi_key=KEY) as (client, session):

            async def plain() -> None:
                answer = await client.post(p["url"] + GENERATE, json=body, headers=headers)
                answer.raise_for_status()
                doc = answer.json()
                if doc["base_resp"]["status_code"] != 0:
                    raise RuntimeError(doc["base_resp"])
                audio = bytes.fromhex(doc["data"]["audio"])
                if to_path:
                    path = Path(folder, f"h{next(names) % 512}.mp3")
                    await anyio.to_thread.run_sync(_durable_write, path, audio)
                else:
                    io.BytesIO().write(audio)

            async def ours() -> None:
                target = Path(folder, f"a{next(names) % 512}.mp3") if to_path else io.BytesIO()
                await session.minimax.generate(target, lyrics=LYRICS, refer_voice=p["voice"])

            return await _alternate(p, plain, ours)


async def credits(p: dict[str, Any]) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {KEY}"}
    async with _sides(p, "suno.poll", suno_key=KEY) as (client, session):

        async def plain() -> None:
            answer = await client.get(p["url"] + CREDIT, headers=headers)
            answer.raise_for_status()
            if answer.json()["code"] != 200:
                raise RuntimeError(answer.text)

        async def ours() -> None:
            await session.suno.get_credits()

        return await _alternate(p, plain, ours)


def _durable_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` the safe way: a temporary file, fsync, rename."""
    part = path.with_name(path.name + ".part")
    with part.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    part.replace(path)


CASES = {"generate": generate, "credits": credits}

#: (row name, case, extra parameters)
VARIANTS = (
    ("generate", "generate", {}),
    ("generate-path", "generate", {"to_path": True}),
    ("generate-default-lane", "generate", {"default_lane": True}),
    ("credits", "credits", {}),
)


def run(emu: Emulator, *, quick: bool, voice: str) -> list[dict[str, Any]]:
    """B4 against ``emu`` (no limits, instant timings, tiny tracks)."""
    rows: list[dict[str, Any]] = []
    for name, case, extra in VARIANTS:
        # the goal is about generate calls; credit look-ups are context
        n, batches = (200, 2) if quick else (3000, 10) if case == "generate" else (2000, 6)
        got = run_child("_overhead", case, url=emu.url, voice=voice, n=n, batches=batches,
                        concurrency=64, **extra)
        n = got["n"]
        ratios = got["ratios"]
        rows.append({
            "id": "B4", "calls": name, "n": n, "concurrency": 64, "batches": batches,
            "aiomusic_calls_s": round(n / got["aiomusic_seconds"]),
            "httpx_calls_s": round(n / got["httpx_seconds"]),
            "ratio_vs_httpx": round(statistics.median(ratios), 3),
            "ratio_vs_httpx_min": round(min(ratios), 3),
            "ratio_vs_httpx_max": round(max(ratios), 3),
            "ratio_of_totals": round(got["httpx_seconds"] / got["aiomusic_seconds"], 3),
            "aiomusic_cpu_ms_per_call": round(1000 * got["aiomusic_cpu"] / n, 3),
            "httpx_cpu_ms_per_call": round(1000 * got["httpx_cpu"] / n, 3),
        })
    return rows
