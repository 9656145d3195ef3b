"""B2 (hex answers) and B3 (reference uploads): throughput and memory next to raw httpx.

B2: one music-01 generation whose answer carries N MB of hex, decoded into a file.
    limit: raw httpx ``aiter_raw()``, ``binascii.unhexlify`` of each chunk and a plain
    ``os.write`` of the decoded bytes, all on the event loop: the practical limit of any
    decoder on this transport, and what the goal is judged against; "limit + fsync" adds one
    ``fsync`` at the end (aiomusic's file is durable before it appears);
    raw: ``aiter_raw()`` written undecoded (twice the bytes): the old reference, kept as context;
    decode only: aiomusic's scanner over the raw transport, the audio thrown away;
    vendor: the vendor example's way, ``response.json()`` then ``bytes.fromhex``;
    aiomusic: ``session.minimax.generate(path, ...)`` (decoded as it arrives, hashed, written
    to a temporary file, fsynced and renamed into place).
B3: a WAV reference of N MB.
    raw httpx multipart with an open file object, vs ``session.minimax.upload_reference``
    (which also probes the WAV before sending it).

Each case runs in a fresh process; its memory is its peak RSS minus a baseline process's.
"""

from __future__ import annotations

import binascii
import contextlib
import math
import os
import resource
import statistics
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


async def hex_limit(p: dict[str, Any], *, fsync: bool = False) -> dict[str, Any]:
    """The practical limit: unhexlify each raw chunk and write what it gives, nothing else.

    No JSON scanning (the audio's start and end are found with one search each), no hash, no
    thread, no batching: a write per chunk, straight from the event loop. A chunk that starts
    on the second digit of a byte is decoded in two parts, written with one ``writev``.
    """
    out = Path(p["folder"], "limit-fsync.bin" if fsync else "limit.bin")
    unhexlify, write, writev = binascii.unhexlify, os.write, os.writev
    clock = _Clock()
    async with _client(p) as client:
        for _ in range(p.get("repeat", 1)):
            with clock.run(out):
                fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                try:
                    async with client.stream("POST", p["url"] + GENERATE,
                                             json=_body(p)) as answer:
                        carry = b""
                        state = 0  # 0: before the hex, 1: inside, 2: after
                        async for chunk in answer.aiter_raw():
                            if state == 2:
                                continue
                            start = 0
                            if state == 0:
                                start = chunk.index(b'"audio":"') + 9
                                state = 1
                            stop, skip = len(chunk), len(carry)
                            odd = (stop - start - skip) & 1
                            try:
                                body = unhexlify(memoryview(chunk)[start + skip:stop - odd])
                            except binascii.Error:  # the closing quote is in this chunk
                                stop, state = chunk.index(b'"', start), 2
                                odd = (stop - start - skip) & 1
                                body = unhexlify(memoryview(chunk)[start + skip:stop - odd])
                            if carry:
                                writev(fd, [unhexlify(carry + chunk[start:start + 1]), body])
                            else:
                                write(fd, body)
                            carry = chunk[stop - 1:stop] if odd else b""
                    if fsync:
                        os.fsync(fd)
                finally:
                    os.close(fd)
    return clock.result(out.stat().st_size)  # noqa: ASYNC240 - after timing


async def hex_limit_fsync(p: dict[str, Any]) -> dict[str, Any]:
    return await hex_limit(p, fsync=True)


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


async def hex_breakdown(p: dict[str, Any]) -> dict[str, Any]:
    """Where aiomusic's CPU goes: variants of one generation, alternated in one process.

    ``limit`` and ``decode`` are the cases above; the others are ``generate(path)`` with the
    writer thread's work cut down: ``noop`` neither hashes nor writes (the session, the file's
    open and commit, the hand-overs), ``hash`` hashes without writing, ``full`` is aiomusic.
    Returns per variant the median wall and CPU time (all threads) over ``repeat`` rounds.
    Run: ``python -m benchmarks._child _transfer hex-breakdown '{"url": ..., ...}'``.
    """
    from aiomusic import MusicSession
    from aiomusic._io import _files

    real = _files._write_all

    def noop(fd: int, pieces: list[bytes], digest: Any) -> int:
        return sum(len(piece) for piece in pieces)

    def hash_only(fd: int, pieces: list[bytes], digest: Any) -> int:
        for piece in pieces:
            digest.update(piece)
        return sum(len(piece) for piece in pieces)

    def cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    got: dict[str, list[tuple[float, float]]] = {}
    once = {**p, "repeat": 1}
    out = Path(p["folder"], "breakdown.bin")
    async with _client(p) as client, MusicSession(base_url=p["url"], aimlapi_key=KEY,
                                                  http_client=client) as session:
        for i in range(p.get("repeat", 1) + 1):  # the first round warms up, uncounted
            for name in ("limit", "decode"):
                r = await (hex_limit(once) if name == "limit" else hex_decode(once))
                if i:
                    got.setdefault(name, []).append((r["seconds"], r["run_cpu_seconds"]))
            for name, write in (("noop", noop), ("hash", hash_only), ("full", real)):
                _files._write_all = write
                try:
                    started, used = time.perf_counter(), cpu()
                    await session.minimax.generate(out, lyrics="##la##", refer_voice=p["voice"])
                    if i:
                        got.setdefault(name, []).append((time.perf_counter() - started,
                                                         cpu() - used))
                finally:
                    _files._write_all = real
    return {name: {"ms": round(1000 * statistics.median(r[0] for r in runs), 1),
                   "cpu_ms": round(1000 * statistics.median(r[1] for r in runs), 1)}
            for name, runs in got.items()}


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
         "hex-vendor": hex_vendor, "hex-limit": hex_limit, "hex-limit-fsync": hex_limit_fsync,
         "hex-aiomusic": hex_aiomusic, "hex-breakdown": hex_breakdown,
         "upload-raw": upload_raw, "upload-aiomusic": upload_aiomusic}


#: B2's cases, in the order each round runs them (each in a fresh process).
HEX_KINDS = ("hex-limit", "hex-aiomusic", "hex-limit-fsync", "hex-raw", "hex-decode")


def _spread(values: list[float], digits: int) -> dict[str, float]:
    return {"median": round(statistics.median(values), digits),
            "min": round(min(values), digits), "max": round(max(values), digits)}


def hex_rows(emu: Emulator, *, quick: bool, baselines: dict[str, int],
             folder: str, voice: str) -> list[dict[str, Any]]:
    """B2 at each size: median, min and max over ``rounds`` interleaved rounds.

    Each round runs every case once, in a fresh process each, in the same order; a case's
    figure for the round is the best of ``repeat`` runs in its process. Ratios are taken within
    a round (the two sides ran seconds apart), then summarised over the rounds. Memory is the
    largest peak over all rounds, against the idle baseline (the goal) and the warm one.
    """
    sizes = [4] if quick else [10, 40, 80]
    rounds, repeat = (3, 1) if quick else (5, 2)
    rows: list[dict[str, Any]] = []
    common = {"url": emu.url, "folder": folder, "voice": voice, "repeat": repeat}
    for megabytes in sizes:
        size = megabytes * 1_000_000 // 2  # audio bytes: the hex answer is twice that
        run_child("_transfer", "hex-raw", size=size, **common)  # warm the emulator's cache
        got: dict[str, list[dict[str, Any]]] = {kind: [] for kind in HEX_KINDS}
        for _ in range(rounds):
            for kind in HEX_KINDS:
                got[kind].append(run_child("_transfer", kind, size=size, **common))
        # the vendor way needs the whole answer in memory: context, measured once
        got["hex-vendor"] = [run_child("_transfer", "hex-vendor", size=size, **common)]
        for name in ("limit", "limit-fsync", "raw", "decode", "aiomusic", "vendor"):
            Path(folder, f"{name}.bin").unlink(missing_ok=True)
        audio = {r["bytes"] for r in got["hex-aiomusic"] + got["hex-limit"]}
        if len(audio) != 1:
            raise RuntimeError(f"the limit and aiomusic decoded different sizes: {audio}")
        rows.append(hex_row(megabytes, got, baselines, repeat=repeat))
    return rows


def hex_row(megabytes: int, got: dict[str, list[dict[str, Any]]], baselines: dict[str, int],
            *, repeat: int) -> dict[str, Any]:
    """One B2 row from every round's result of each case (``got[kind][round]``)."""
    answer = megabytes * 1_000_000
    rounds = len(got["hex-aiomusic"])

    def speeds(kind: str) -> list[float]:
        return [answer / r["seconds"] / 1e6 for r in got[kind]]  # MB of answer per second

    def peak(kind: str, base: str) -> float:
        return mib(max(r["peak_kib"] for r in got[kind]) - baselines[base])

    def cpu_ms(kind: str) -> float:
        return round(1000 * float(statistics.median(r["run_cpu_seconds"] for r in got[kind])))

    row: dict[str, Any] = {"id": "B2", "size_mb": megabytes, "rounds": rounds, "repeat": repeat}
    for kind in HEX_KINDS:
        key = kind.removeprefix("hex-").replace("-", "_")
        spread = _spread(speeds(kind), 0)
        row[f"{key}_mb_s"] = spread["median"]
        row[f"{key}_mb_s_min"], row[f"{key}_mb_s_max"] = spread["min"], spread["max"]
    ours = speeds("hex-aiomusic")
    for key, other in {"limit": "hex-limit", "limit_fsync": "hex-limit-fsync",
                       "raw": "hex-raw"}.items():
        spread = _spread([a / b for a, b in zip(ours, speeds(other), strict=True)], 3)
        row[f"ratio_vs_{key}"] = spread["median"]
        row[f"ratio_vs_{key}_min"], row[f"ratio_vs_{key}_max"] = spread["min"], spread["max"]
    row.update({
        "vendor_mb_s": round(speeds("hex-vendor")[0]),
        "aiomusic_cpu_ms": cpu_ms("hex-aiomusic"), "limit_cpu_ms": cpu_ms("hex-limit"),
        "raw_cpu_ms": cpu_ms("hex-raw"), "decode_only_cpu_ms": cpu_ms("hex-decode"),
        "aiomusic_mib_vs_idle": peak("hex-aiomusic", "idle"),
        "limit_mib_vs_idle": peak("hex-limit", "idle"),
        "aiomusic_mib": peak("hex-aiomusic", "warm"),
        "limit_mib": peak("hex-limit", "warm"),
        "raw_mib": peak("hex-raw", "warm"),
        "vendor_mib": peak("hex-vendor", "warm"),
    })
    return row


def upload_rows(emu: Emulator, *, quick: bool, baselines: dict[str, int],
                folder: str) -> list[dict[str, Any]]:
    """B3: one reference upload, raw httpx multipart against aiomusic."""
    upload_mb = 12 if quick else 100
    repeat = 1 if quick else 2
    base = baselines["warm"]
    reference = Path(folder, "reference.wav")
    make_wav(reference, upload_mb * 1_000_000 / 1024 / 1024)
    size = reference.stat().st_size
    got = side_by_side("_transfer", ("upload-raw", "upload-aiomusic"),
                       rounds=1 if quick else 6, url=emu.url, reference=str(reference),
                       repeat=repeat + 1)
    got = {kind.removeprefix("upload-"): r for kind, r in got.items()}
    return [{
        "id": "B3", "size_mb": round(size / 1e6),
        "aiomusic_mb_s": round(size / got["aiomusic"]["seconds"] / 1e6),
        "raw_mb_s": round(size / got["raw"]["seconds"] / 1e6),
        "ratio_vs_raw": round(got["raw"]["seconds"] / got["aiomusic"]["seconds"], 3),
        "aiomusic_mib": mib(got["aiomusic"]["peak_kib"] - base),
        "raw_mib": mib(got["raw"]["peak_kib"] - base),
        "aiomusic_mib_vs_idle": mib(got["aiomusic"]["peak_kib"] - baselines["idle"]),
        "raw_mib_vs_idle": mib(got["raw"]["peak_kib"] - baselines["idle"]),
    }]


def run(emu: Emulator, *, quick: bool, baselines: dict[str, int],
        only: tuple[str, ...] = ("B2", "B3")) -> list[dict[str, Any]]:
    """B2 at each size and B3, against ``emu`` (no limits, instant timings)."""
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as folder:
        if "B2" in only:
            short = Path(folder, "short.wav")
            make_wav(short, 2.2)
            voice = run_child("_transfer", "upload-raw", url=emu.url, reference=str(short))
            rows += hex_rows(emu, quick=quick, baselines=baselines, folder=folder,
                             voice=voice["voice_id"])
        if "B3" in only:
            rows += upload_rows(emu, quick=quick, baselines=baselines, folder=folder)
    return rows
