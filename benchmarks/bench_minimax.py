"""MiniMax music-01 throughput and memory, side by side in one run (B2, B3).

The emulator runs in its own process; every case runs in a fresh process, and its memory figure
is the peak RSS minus that of an idle process with the same imports.

    python benchmarks/bench_minimax.py [--quick]

B2 generate: one answer with N MB of hex, decoded into a file
    (a) raw httpx ``aiter_raw()`` of the same body into a file: the transport's limit
    (b) the vendor example's way: ``response.json()`` then ``bytes.fromhex``
    aiomusic: ``session.minimax.generate(path, ...)``
B3 upload: a 100 MB WAV reference
    raw httpx multipart with an open file object, vs ``session.minimax.upload_reference``
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_emulator() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "aiomusic.emulator", "--port", str(port),
                             "--speed", "instant", "--no-limits"], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    line = proc.stdout.readline().decode()
    if "listening" not in line:
        proc.kill()
        raise RuntimeError(f"emulator did not start: {line!r}")
    return proc, f"http://127.0.0.1:{port}"


CASE = r'''
import json, os, resource, sys, time, hashlib
import anyio, httpx, aiomusic
import aiomusic.minimax.client  # the baseline has the same imports as every case

kind, url, size, folder, ref_path = sys.argv[1:6]
size = int(size)
headers = {"X-Emulator-Audio-Bytes": str(size), "Authorization": "Bearer bench"}
body = {"model": "music-01", "lyrics": "la la", "refer_voice": sys.argv[6]}
out = os.path.join(folder, kind + ".bin")

def rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0

async def main():
    if kind == "baseline":
        return 0
    start = time.perf_counter()
    if kind == "raw":
        async with httpx.AsyncClient(timeout=300) as c:
            async with c.stream("POST", url + "/v2/generate/audio/minimax/generate",
                                json=body, headers=headers) as r:
                with open(out, "wb") as f:
                    async for chunk in r.aiter_raw():
                        f.write(chunk)
    elif kind == "vendor":
        async with httpx.AsyncClient(timeout=300) as c:
            r = await c.post(url + "/v2/generate/audio/minimax/generate", json=body,
                             headers=headers)
            audio = bytes.fromhex(r.json()["data"]["audio"])
            with open(out, "wb") as f:
                f.write(audio)
    elif kind == "aiomusic":
        client = httpx.AsyncClient(headers={"X-Emulator-Audio-Bytes": str(size)},
                                   timeout=300)
        async with aiomusic.MusicSession(base_url=url, aimlapi_key="bench",
                                         http_client=client) as s:
            await s.minimax.generate(out, lyrics="la la", refer_voice=sys.argv[6])
        await client.aclose()
    elif kind == "upload-raw":
        async with httpx.AsyncClient(timeout=300) as c:
            with open(ref_path, "rb") as f:
                r = await c.post(url + "/v2/generate/audio/minimax/upload",
                                 files={"file": ("ref.wav", f, "audio/wav")},
                                 data={"purpose": "voice"}, headers=headers)
                r.raise_for_status()
    elif kind == "upload-aiomusic":
        async with aiomusic.MusicSession(base_url=url, aimlapi_key="bench") as s:
            await s.minimax.upload_reference(ref_path, purpose="voice")
    return time.perf_counter() - start

seconds = anyio.run(main)
print(json.dumps({"seconds": seconds, "peak_kib": rss_kib()}))
'''


def run_case(kind: str, url: str, size: int, folder: str, ref: str, voice: str) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", CASE, kind, url, str(size), folder, ref, voice],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def make_wav(path: Path, megabytes: int) -> None:
    rate = 44100
    frames = megabytes * 1024 * 1024 // 4
    block = (b"\x10\x00\xf0\xff" * rate)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(rate)
        written = 0
        while written < frames:
            n = min(rate, frames - written)
            w.writeframes(block[: n * 4])
            written += n


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    args = parser.parse_args()
    sizes_mb = [2, 8] if args.quick else [10, 40, 80]
    upload_mb = 12 if args.quick else 100
    proc, url = start_emulator()
    rows: list[dict[str, object]] = []
    try:
        with tempfile.TemporaryDirectory() as folder:
            ref = Path(folder) / "ref.wav"
            make_wav(ref, upload_mb)
            short = Path(folder) / "short.wav"
            make_wav(short, 3)  # ~17 s: a valid reference for the voice id
            up = run_case("upload-aiomusic", url, 0, folder, str(short), "")
            del up
            import httpx

            r = httpx.post(url + "/v2/generate/audio/minimax/upload",
                           files={"file": ("s.wav", short.read_bytes(), "audio/wav")},
                           data={"purpose": "voice"}, headers={"Authorization": "Bearer bench"})
            voice = r.json()["voice_id"]
            base = run_case("baseline", url, 0, folder, str(ref), voice)["peak_kib"]
            for mb in sizes_mb:
                size = mb * 1024 * 1024 // 2  # hex doubles it: an answer of `mb` MB of hex
                run_case("raw", url, size, folder, str(ref), voice)  # warm the emulator's cache
                got = {k: run_case(k, url, size, folder, str(ref), voice)
                       for k in ("raw", "vendor", "aiomusic")}
                mbps = {k: 2 * size / v["seconds"] / 1e6 for k, v in got.items()}
                rows.append({
                    "bench": f"B2 generate, {mb} MB hex",
                    "aiomusic MB/s": round(mbps["aiomusic"]),
                    "raw MB/s": round(mbps["raw"]), "vendor MB/s": round(mbps["vendor"]),
                    "ratio vs raw": round(mbps["aiomusic"] / mbps["raw"], 2),
                    "aiomusic +MiB": round((got["aiomusic"]["peak_kib"] - base) / 1024, 1),
                    "raw +MiB": round((got["raw"]["peak_kib"] - base) / 1024, 1),
                    "vendor +MiB": round((got["vendor"]["peak_kib"] - base) / 1024, 1),
                    "goal": ">= 0.85 x raw, <= 8 MiB",
                })
            got = {k: run_case(k, url, 0, folder, str(ref), voice)
                   for k in ("upload-raw", "upload-aiomusic")}
            size = ref.stat().st_size
            rows.append({
                "bench": f"B3 upload, {upload_mb} MB WAV",
                "aiomusic MB/s": round(size / got["upload-aiomusic"]["seconds"] / 1e6),
                "raw MB/s": round(size / got["upload-raw"]["seconds"] / 1e6),
                "ratio vs raw": round(got["upload-raw"]["seconds"]
                                      / got["upload-aiomusic"]["seconds"], 2),
                "aiomusic +MiB": round((got["upload-aiomusic"]["peak_kib"] - base) / 1024, 1),
                "raw +MiB": round((got["upload-raw"]["peak_kib"] - base) / 1024, 1),
                "goal": ">= 0.9 x raw, <= 16 MiB",
            })
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    for row in rows:
        print(json.dumps(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
