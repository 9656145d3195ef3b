"""B2 (hex answers) and B3 (reference uploads): throughput and memory next to raw httpx.

B2: one music-01 generation whose answer carries N MB of hex, decoded into a file.
    (a) raw httpx ``aiter_raw()`` of the same body into a file: the transport's limit;
    (b) the vendor example's way: ``response.json()``, then ``bytes.fromhex``;
    aiomusic: ``session.minimax.generate(path, ...)`` (decoded as it arrives, written to a
    temporary file, fsynced and renamed into place).
B3: a WAV reference of N MB.
    raw httpx multipart with an open file object, vs ``session.minimax.upload_reference``
    (which also probes the WAV before sending it).

Each case runs in a fresh process; its memory is its peak RSS minus a baseline process's.
"""

from __future__ import annotations

import contextlib
import math
import os
import resource
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from ._common import KEY, Emulator, make_wav, mib, run_child, side_by_side

__all__ = ["CASES", "run"]

GENERATE = "/v2/generate/audio/minimax/generate"
UPLOAD = "/v2/generate/audio/minimax/upload"


def _client(p: dict[str, Any]) -> httpx.AsyncClient:
    return httpx.AsyncClient(headers={"X-Emulator-Audio-Bytes": str(p.get("size", 0)),
                                      "Authorization": f"Bearer {KEY}"}, timeout=300)


def _body(p: dict[str, Any]) -> dict[str, Any]:
    return {"model": "music-01", "lyrics": "##la la la##", "refer_voice": p["voice"]}


class _Clock:
    """Times runs; keeps the fastest one's wall time and the CPU time (all threads) it took."""

    def __init__(self) -> None:
        self.seconds = math.inf
        self.cpu = math.inf

    @contextlib.contextmanager
    def run(self, out: Path) -> Iterator[None]:
        out.unlink(missing_ok=True)  # untimed: writing a new file, not freeing an old one
        before = resource.getrusage(resource.RUSAGE_SELF)
        started = time.perf_counter()
        yield
        seconds = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_SELF)
        if seconds < self.seconds:
            self.seconds = seconds
            self.cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)

    def result(self, size: int) -> dict[str, Any]:
        return {"seconds": self.seconds, "run_cpu_seconds": self.cpu, "bytes": size}


async def hex_raw(p: dict[str, Any], *, fsync: bool = False) -> dict[str, Any]:
    out = Path(p["folder"], "raw-fsync.bin" if fsync else "raw.bin")
    clock = _Clock()
    async with _client(p) as client:
        for _ in range(p.get("repeat", 1)):
            with clock.run(out):
                async with client.stream("POST", p["url"] + GENERATE, json=_body(p)) as answer:
                    with out.open("wb") as f:  # noqa: ASYNC230 - the transport limit: nothing else
                        async for chunk in answer.aiter_raw():
                            f.write(chunk)
                        if fsync:
                            f.flush()
                            os.fsync(f.fileno())
    return clock.result(out.stat().st_size)  # noqa: ASYNC240 - after timing


async def hex_raw_fsync(p: dict[str, Any]) -> dict[str, Any]:
    """As raw, then fsync: what aiomusic's durable, atomic file costs on top of the transport."""
    return await hex_raw(p, fsync=True)


async def hex_decode(p: dict[str, Any]) -> dict[str, Any]:
    """aiomusic's decoder over the raw transport, the audio thrown away: no hash, no file."""
    from aiomusic._io._hexstream import HexAudioScanner

    clock = _Clock()
    size = 0
    async with _client(p) as client:
        for _ in range(p.get("repeat", 1)):
            with clock.run(Path(p["folder"], "decode.bin")):
                scanner = HexAudioScanner()
                size = 0
                async with client.stream("POST", p["url"] + GENERATE, json=_body(p)) as answer:
                    async for chunk in answer.aiter_raw():
                        size += len(scanner.feed(chunk))
                scanner.close()
    return clock.result(size)


async def hex_vendor(p: dict[str, Any]) -> dict[str, Any]:
    out = Path(p["folder"], "vendor.bin")
    clock = _Clock()
    size = 0
    async with _client(p) as client:
        for _ in range(p.get("repeat", 1)):
            with clock.run(out):
                answer = await client.post(p["url"] + GENERATE, json=_body(p))
                audio = bytes.fromhex(answer.json()["data"]["audio"])
                out.write_bytes(audio)  # noqa: ASYNC240 - the vendor example's way
                size = len(audio)
                del answer, audio  # a second round must not hold the first one's body
    return clock.result(size)


async def hex_aiomusic(p: dict[str, Any]) -> dict[str, Any]:
    from aiomusic import MusicSession

    out = Path(p["folder"], "aiomusic.bin")
    clock = _Clock()
    size = 0
    async with _client(p) as client, MusicSession(base_url=p["url"], aimlapi_key=KEY,
                                                  http_client=client) as session:
        for _ in range(p.get("repeat", 1)):
            with clock.run(out):
                result = await session.minimax.generate(out, lyrics="##la la la##",
                                                        refer_voice=p["voice"])
            size = result.bytes_written
    return clock.result(size)


async def upload_raw(p: dict[str, Any]) -> dict[str, Any]:
    best = math.inf
    async with _client(p) as client:
        for _ in range(p.get("repeat", 1)):
            started = time.perf_counter()
            with open(p["reference"], "rb") as f:  # noqa: ASYNC230 - httpx streams it
                answer = await client.post(p["url"] + UPLOAD, data={"purpose": "voice"},
                                           files={"file": ("ref.wav", f, "audio/wav")})
            answer.raise_for_status()
            best = min(best, time.perf_counter() - started)
    return {"seconds": best, "voice_id": answer.json()["voice_id"]}


async def upload_aiomusic(p: dict[str, Any]) -> dict[str, Any]:
    from aiomusic import MusicSession

    best = math.inf
    async with MusicSession(base_url=p["url"], aimlapi_key=KEY) as session:
        for _ in range(p.get("repeat", 1)):
            started = time.perf_counter()
            ref = await session.minimax.upload_reference(p["reference"], purpose="voice")
            best = min(best, time.perf_counter() - started)
    return {"seconds": best, "voice_id": ref.voice_id}


CASES = {"hex-raw": hex_raw, "hex-raw-fsync": hex_raw_fsync, "hex-decode": hex_decode,
         "hex-vendor": hex_vendor,
         "hex-aiomusic": hex_aiomusic, "upload-raw": upload_raw, "upload-aiomusic": upload_aiomusic}


def run(emu: Emulator, *, quick: bool, baselines: dict[str, int]) -> list[dict[str, Any]]:
    """B2 at each size and B3, against ``emu`` (no limits, instant timings)."""
    sizes = [4] if quick else [10, 40, 80]
    upload_mb = 12 if quick else 100
    # the best time of `rounds` fresh processes, each the best of `repeat` runs: on a shared
    # machine a run is now and then twice as slow, whichever side it measures
    rounds, repeat = (1, 1) if quick else (4, 2)
    base = baselines["warm"]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as folder:
        short = Path(folder, "short.wav")
        make_wav(short, 2.2)
        voice = run_child("_transfer", "upload-raw", url=emu.url, reference=str(short))
        common = {"url": emu.url, "folder": folder, "voice": voice["voice_id"]}
        for megabytes in sizes:
            size = megabytes * 1_000_000 // 2  # audio bytes: the hex answer is twice that
            run_child("_transfer", "hex-raw", size=size, **common)  # warm the emulator's cache
            got = side_by_side("_transfer", ("hex-raw", "hex-aiomusic", "hex-raw-fsync",
                                             "hex-decode", "hex-vendor"),
                               rounds=rounds, size=size, repeat=repeat, **common)
            got = {kind.removeprefix("hex-"): r for kind, r in got.items()}
            for kind in got:
                Path(folder, f"{kind}.bin").unlink(missing_ok=True)
            mbps = {kind: 2 * size / r["seconds"] / 1e6 for kind, r in got.items()}
            cpu = {kind: round(1000 * r["run_cpu_seconds"]) for kind, r in got.items()}
            rows.append({
                "id": "B2", "size_mb": megabytes,
                "aiomusic_mb_s": round(mbps["aiomusic"]), "raw_mb_s": round(mbps["raw"]),
                "vendor_mb_s": round(mbps["vendor"]),
                "raw_fsync_mb_s": round(mbps["raw-fsync"]),
                "decode_only_mb_s": round(mbps["decode"]),
                "aiomusic_cpu_ms": cpu["aiomusic"], "raw_cpu_ms": cpu["raw"],
                "decode_only_cpu_ms": cpu["decode"],
                "ratio_vs_raw_fsync": round(mbps["aiomusic"] / mbps["raw-fsync"], 3),
                "ratio_vs_raw": round(mbps["aiomusic"] / mbps["raw"], 3),
                "aiomusic_seconds": round(got["aiomusic"]["seconds"], 3),
                "aiomusic_mib": mib(got["aiomusic"]["peak_kib"] - base),
                "raw_mib": mib(got["raw"]["peak_kib"] - base),
                "vendor_mib": mib(got["vendor"]["peak_kib"] - base),
                "aiomusic_mib_vs_idle": mib(got["aiomusic"]["peak_kib"] - baselines["idle"]),
                "raw_mib_vs_idle": mib(got["raw"]["peak_kib"] - baselines["idle"]),
            })
        reference = Path(folder, "reference.wav")
        make_wav(reference, upload_mb * 1_000_000 / 1024 / 1024)
        size = reference.stat().st_size
        got = side_by_side("_transfer", ("upload-raw", "upload-aiomusic"),
                           rounds=1 if quick else 6, url=emu.url, reference=str(reference),
                           repeat=repeat + 1)
        got = {kind.removeprefix("upload-"): r for kind, r in got.items()}
        rows.append({
            "id": "B3", "size_mb": round(size / 1e6),
            "aiomusic_mb_s": round(size / got["aiomusic"]["seconds"] / 1e6),
            "raw_mb_s": round(size / got["raw"]["seconds"] / 1e6),
            "ratio_vs_raw": round(got["raw"]["seconds"] / got["aiomusic"]["seconds"], 3),
            "aiomusic_mib": mib(got["aiomusic"]["peak_kib"] - base),
            "raw_mib": mib(got["raw"]["peak_kib"] - base),
            "aiomusic_mib_vs_idle": mib(got["aiomusic"]["peak_kib"] - baselines["idle"]),
            "raw_mib_vs_idle": mib(got["raw"]["peak_kib"] - baselines["idle"]),
        })
    return rows
