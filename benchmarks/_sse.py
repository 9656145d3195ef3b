"""B7: a streamed MiniMax generation (SSE): memory, throughput and time to first audio.

One music-2.6 generation with ``stream: true`` whose events carry N MB of hex (80 in a full
run), read three ways, each in a fresh process:

- (a) raw httpx: ``aiter_raw()`` of the same event stream, thrown away: the transport's limit;
- aiomusic into a file: ``session.minimax.generate_song(path, stream=True)``: every event
  parsed and decoded, written atomically;
- aiomusic to a stream: ``session.minimax.stream_song()``, the audio iterated and dropped.

Memory is the case's peak RSS minus the warm baseline's: it must not grow with the stream.
Time to first byte is the raw transport's; time to first audio is what aiomusic reports in
``SongResult.time_to_first_audio``. Run alone: ``python -m benchmarks._sse [--quick]``.

To wire it into ``benchmarks/run.py`` (id B7): add ``"B7"`` to ``IDS``,
``"B7": ">= 0.5 x raw, <= 8 MiB"`` to ``GOALS``, and inside the emulator block
``if "B7" in only: step("B7 SSE stream", lambda: _sse.run(emu, quick=quick, baselines=base))``
(with ``base`` measured when ``"B7"`` is asked for), plus `met` and `cells` below for ``_met``
and ``_cells``.
"""

from __future__ import annotations

import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from ._common import KEY, Emulator, baselines, mib, side_by_side

__all__ = ["CASES", "cells", "met", "run"]

GENERATE = "/v1/music_generation"
SONG = {"model": "music-2.6", "prompt": "synthwave", "lyrics": "[Verse]\nla la"}


def _client(p: dict[str, Any]) -> httpx.AsyncClient:
    return httpx.AsyncClient(headers={"X-Emulator-Audio-Bytes": str(p["size"]),
                                      "Authorization": f"Bearer {KEY}"},
                             timeout=httpx.Timeout(60, read=None))


async def sse_raw(p: dict[str, Any]) -> dict[str, Any]:
    best, first, size = math.inf, math.inf, 0
    async with _client(p) as client:
        for _ in range(p.get("repeat", 1)):
            started = time.perf_counter()
            size = 0
            async with client.stream("POST", p["url"] + GENERATE,
                                     json={**SONG, "stream": True}) as answer:
                async for chunk in answer.aiter_raw():
                    if not size:
                        first = min(first, time.perf_counter() - started)
                    size += len(chunk)
            best = min(best, time.perf_counter() - started)
    return {"seconds": best, "first_byte_s": first, "bytes": size}


async def sse_file(p: dict[str, Any]) -> dict[str, Any]:
    from aiomusic import MusicSession

    out = Path(p["folder"], "sse.mp3")
    best, first, size = math.inf, math.inf, 0
    async with _client(p) as client, MusicSession(base_url=p["url"], minimax_key=KEY,
                                                  http_client=client) as session:
        for _ in range(p.get("repeat", 1)):
            out.unlink(missing_ok=True)  # noqa: ASYNC240 - untimed
            started = time.perf_counter()
            result = await session.minimax.generate_song(out, **SONG, stream=True)
            best = min(best, time.perf_counter() - started)
            first = min(first, result.time_to_first_audio or math.inf)
            size = result.bytes_written
    return {"seconds": best, "first_audio_s": first, "bytes": size}


async def sse_stream(p: dict[str, Any]) -> dict[str, Any]:
    from aiomusic import MusicSession

    best, first, size = math.inf, math.inf, 0
    async with _client(p) as client, MusicSession(base_url=p["url"], minimax_key=KEY,
                                                  http_client=client) as session:
        for _ in range(p.get("repeat", 1)):
            started = time.perf_counter()
            size = 0
            async with session.minimax.stream_song(**SONG) as audio:
                async for chunk in audio:
                    size += len(chunk)
            best = min(best, time.perf_counter() - started)
            assert audio.result is not None
            first = min(first, audio.result.time_to_first_audio or math.inf)
    return {"seconds": best, "first_audio_s": first, "bytes": size}


CASES = {"sse-raw": sse_raw, "sse-file": sse_file, "sse-stream": sse_stream}


def run(emu: Emulator, *, quick: bool, baselines: dict[str, int]) -> list[dict[str, Any]]:
    """B7 against ``emu`` (instant timings, no limits): one row."""
    megabytes = 8 if quick else 80
    size = megabytes * 1_000_000 // 2  # audio bytes: the events carry twice that in hex
    rounds, repeat = (1, 1) if quick else (3, 2)
    with tempfile.TemporaryDirectory() as folder:
        common = {"url": emu.url, "folder": folder, "size": size}
        side_by_side("_sse", ("sse-raw",), rounds=1, **common)  # the emulator renders it once
        got = side_by_side("_sse", ("sse-raw", "sse-file", "sse-stream"), rounds=rounds,
                           repeat=repeat, **common)
    base = baselines["warm"]
    hex_mb = 2 * size / 1e6
    return [{
        "id": "B7", "size_mb": megabytes,
        "raw_mb_s": round(hex_mb / got["sse-raw"]["seconds"]),
        "file_mb_s": round(hex_mb / got["sse-file"]["seconds"]),
        "stream_mb_s": round(hex_mb / got["sse-stream"]["seconds"]),
        "ratio_vs_raw": round(got["sse-raw"]["seconds"] / got["sse-file"]["seconds"], 3),
        "first_byte_ms": round(1000 * got["sse-raw"]["first_byte_s"], 1),
        "first_audio_ms": round(1000 * got["sse-file"]["first_audio_s"], 1),
        "file_mib": mib(got["sse-file"]["peak_kib"] - base),
        "stream_mib": mib(got["sse-stream"]["peak_kib"] - base),
        "raw_mib": mib(got["sse-raw"]["peak_kib"] - base),
    }]


def met(row: dict[str, Any]) -> bool:
    """The goal: at least half the raw transport's speed, memory flat (8 MiB over warm)."""
    return bool(row["ratio_vs_raw"] >= 0.5 and row["file_mib"] <= 8 and row["stream_mib"] <= 8)


def cells(row: dict[str, Any]) -> tuple[str, str, str, str]:
    """(case, aiomusic, compared with, ratio) for the Markdown table."""
    return (f"SSE stream, {row['size_mb']} MB of hex events",
            f"file {row['file_mb_s']} MB/s +{row['file_mib']} MiB, stream "
            f"{row['stream_mb_s']} MB/s +{row['stream_mib']} MiB, first audio "
            f"{row['first_audio_ms']} ms",
            f"raw httpx {row['raw_mb_s']} MB/s +{row['raw_mib']} MiB, first byte "
            f"{row['first_byte_ms']} ms", f"{row['ratio_vs_raw']:.3f}")


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    with Emulator("--speed", "instant", "--no-limits") as emu:
        (row,) = run(emu, quick=quick, baselines=baselines(emu.url, runs=1))
    print(row)
    print(cells(row), "met" if met(row) else "NOT met")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
