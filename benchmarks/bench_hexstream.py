"""Hex answer decoding: the incremental scanner against a raw unhexlify loop and json.loads.

Run: ``python benchmarks/bench_hexstream.py [--sizes 10 40 80] [--chunk 65536]``

For each body size (MB of JSON, nearly all hex) and method it reports the best of three runs'
throughput, its ratio to the raw loop (``unhexlify`` on the same chunks and nothing else: the
speed limit), and the peak memory the method added, measured in a fresh subprocess per case with
the body's chunks generated lazily (so only what the method itself keeps is counted; json.loads
needs the whole body, which it is charged for).
"""

from __future__ import annotations

import argparse
import binascii
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiomusic._io._hexstream import HexAudioScanner

HEAD = b'{"data":{"audio":"'
TAIL = (b'","status":2},"extra_info":{"music_duration":25364,"music_sample_rate":44100,'
        b'"music_channel":2,"bitrate":256000,"music_size":0},"trace_id":"04ab","base_resp":'
        b'{"status_code":0,"status_msg":"success"}}')
BLOCK = binascii.hexlify(os.urandom(1 << 15))  # 64 KiB of hex, repeated


def body_chunks(megabytes: int, chunk: int, *, raw: bool = False) -> Iterator[bytes]:
    """The body, cut into ``chunk``-byte pieces, generated as needed.

    With ``raw``, the JSON around the hex is replaced by as many hex digits, so a plain
    unhexlify loop sees the same number of bytes in the same chunks.
    """
    head, tail = (b"00" * (len(HEAD) // 2 + 1), b"00" * (len(TAIL) // 2 + 1)) if raw else (
        HEAD, TAIL)
    hex_len = megabytes * 1_000_000 - len(head) - len(tail)
    hex_len -= hex_len & 1
    pending = bytearray(head)
    produced = 0
    while produced < hex_len:
        take = min(len(BLOCK), hex_len - produced)
        pending += BLOCK if take == len(BLOCK) else BLOCK[:take]
        produced += take
        while len(pending) >= chunk:
            yield bytes(pending[:chunk])
            del pending[:chunk]
    pending += tail
    while pending:
        yield bytes(pending[:chunk])
        del pending[:chunk]


def run_unhexlify(chunks: Iterator[bytes] | list[bytes]) -> int:
    total = 0
    unhexlify = binascii.unhexlify
    for piece in chunks:
        # odd pieces: drop the last digit (a real decoder would carry it; this is the bound)
        total += len(unhexlify(memoryview(piece)[:-1] if len(piece) & 1 else piece))
    return total


def run_scanner(chunks: Iterator[bytes] | list[bytes]) -> int:
    scanner = HexAudioScanner()
    total = 0
    for piece in chunks:
        total += len(scanner.feed(piece))
    scanner.close()
    return total


def run_json(chunks: Iterator[bytes] | list[bytes]) -> int:
    body = b"".join(chunks)
    document = json.loads(body)
    return len(bytes.fromhex(document["data"]["audio"]))


METHODS: dict[str, Callable[[Iterator[bytes] | list[bytes]], int]] = {
    "unhexlify": run_unhexlify,
    "scanner": run_scanner,
    "json+fromhex": run_json,
}


def child(method: str, megabytes: int, chunk: int) -> None:
    """Measure one case in this (fresh) process; print JSON."""
    run = METHODS[method]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    raw = method == "unhexlify"
    run(body_chunks(megabytes, chunk, raw=raw))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    chunks = list(body_chunks(megabytes, chunk, raw=raw))
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        run(chunks)
        best = min(best, time.perf_counter() - start)
    factor = 1024 if sys.platform != "darwin" else 1024 * 1024  # ru_maxrss: KiB on Linux
    print(json.dumps({"seconds": best, "peak_mib": peak / factor}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 40, 80])
    parser.add_argument("--chunk", type=int, default=64 * 1024)
    parser.add_argument("--child", nargs=2, metavar=("METHOD", "MB"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]), args.chunk)
        return
    print(f"chunks of {args.chunk} bytes; best of 3; memory in a fresh process per case")
    print(f"{'MB':>4} {'method':<13} {'seconds':>8} {'GB/s':>6} {'vs raw':>7} {'+MiB':>7}")
    for megabytes in args.sizes:
        raw_seconds = None
        for method in METHODS:
            out = subprocess.run(
                [sys.executable, __file__, "--child", method, str(megabytes),
                 "--chunk", str(args.chunk)],
                check=True, capture_output=True, text=True).stdout
            result = json.loads(out)
            seconds = result["seconds"]
            raw_seconds = raw_seconds or seconds
            print(f"{megabytes:>4} {method:<13} {seconds:>8.4f} {megabytes / 1000 / seconds:>6.2f}"
                  f" {raw_seconds / seconds:>6.2f}x {result['peak_mib']:>7.1f}")


if __name__ == "__main__":
    main()
