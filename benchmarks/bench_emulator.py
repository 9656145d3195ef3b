"""B6: emulator throughput with zero generation time.

Starts ``python -m aiomusic.emulator`` in a separate process (limits off, instant timings),
then opens N keep-alive connections from this process with a minimal raw HTTP/1.1 client
(so the client costs little next to the server) and reports requests per second for small
requests (GET credit, POST generate of a 1 s track) and the number of connections served
at once. Run: ``python benchmarks/bench_emulator.py [--connections 500] [--requests 20000]``; B6 of
``python -m benchmarks`` calls :func:`measure`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

KEY = "bench-key"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _request(method: str, path: str, body: bytes = b"", extra: str = "") -> bytes:
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {KEY}\r\n{extra}"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    await reader.readexactly(length)
    return status


async def _load(port: int, request: bytes, connections: int, total: int) -> tuple[float, int, int]:
    """Send `total` requests over `connections` keep-alive connections; (seconds, ok, peak)."""
    remaining = total
    ok = 0
    open_now = peak = 0
    ready = asyncio.Event()
    opened = 0

    async def worker() -> None:
        nonlocal remaining, ok, open_now, peak, opened
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        open_now += 1
        peak = max(peak, open_now)
        opened += 1
        if opened == connections:
            ready.set()
        await ready.wait()
        try:
            while remaining > 0:  # bounded: each turn consumes one of `total`
                remaining -= 1
                writer.write(request)
                if await _read_response(reader) == 200:
                    ok += 1
        finally:
            open_now -= 1
            writer.close()

    started = time.perf_counter()
    async with asyncio.timeout(300):
        await asyncio.gather(*(worker() for _ in range(connections)))
    return time.perf_counter() - started, ok, peak


def _wait_ready(url: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/_emulator/health", timeout=1):  # noqa: S310
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("emulator did not start")


def _setup_generate(port: int) -> bytes:
    """Upload a reference through the emulator and return a generate request for it."""
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
    from aiomusic.emulator._audio import render

    ref = render(1, 12, fmt="wav", sample_rate=16000, channels=1, bitrate=0).data
    boundary = "benchboundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\n'
            "instrumental\r\n"
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="r.wav"\r\n'
            "Content-Type: audio/wav\r\n\r\n"
        ).encode()
        + ref
        + f"\r\n--{boundary}--\r\n".encode()
    )
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/v2/generate/audio/minimax/upload",
        data=body,
        headers={
            "Authorization": f"Bearer {KEY}",
            "Content-Type": f"multipart/form-data; boundary={boundary}",
        },
    )
    with urllib.request.urlopen(req) as resp:  # noqa: S310
        ref_id = json.loads(resp.read())["instrumental_id"]
    payload = {
        "model": "music-01",
        "lyrics": "##la la##",
        "refer_instrumental": ref_id,
        "audio_setting": {"format": "pcm", "sample_rate": 16000, "bitrate": 32000},
    }
    # X-Emulator-Audio-Bytes asks for a small track (0.1 s of 16 kHz mono PCM: 3.2 kB).
    return _request(
        "POST",
        "/v2/generate/audio/minimax/generate",
        json.dumps(payload).encode(),
        "X-Emulator-Audio-Bytes: 1000\r\n",
    )


def measure(port: int, *, connections: int, requests: int) -> list[dict[str, object]]:
    """B6: requests per second of a running emulator on `port`, for each kind of request."""
    cases = [
        ("GET credit", _request("GET", "/api/v1/generate/credit"), requests),
        ("POST generate (3 kB pcm)", _setup_generate(port), requests // 4),
    ]
    rows: list[dict[str, object]] = []
    for name, request, total in cases:
        asyncio.run(_load(port, request, min(50, connections), min(total, 2000)))  # warm-up
        seconds, ok, peak = asyncio.run(_load(port, request, connections, total))
        rows.append({"request": name, "requests": total, "connections": connections,
                     "per_second": round(total / seconds), "ok": ok, "peak_connections": peak})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=500)
    parser.add_argument("--requests", type=int, default=20000)
    args = parser.parse_args()
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "aiomusic.emulator", "--port", str(port), "--no-limits",
         "--speed", "instant"],
        stdout=subprocess.DEVNULL,
        cwd=os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."),
    )  # fmt: skip
    try:
        _wait_ready(f"http://127.0.0.1:{port}")
        try:
            import httptools  # noqa: F401

            parser_name = "httptools"
        except ImportError:
            parser_name = "h11"
        print(f"emulator on port {port} (HTTP parser: {parser_name}), cpus={os.cpu_count()}")
        for row in measure(port, connections=args.connections, requests=args.requests):
            print(
                f"{row['request']:28s} {row['requests']:6d} requests, {row['connections']} "
                f"connections: {row['per_second']:8d} req/s, ok={row['ok']}, "
                f"peak open connections={row['peak_connections']}"
            )
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
