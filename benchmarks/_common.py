"""What every benchmark shares: the emulator process, fresh case processes, memory readings.

The parent (``benchmarks.run``) starts the emulator with ``python -m aiomusic.emulator`` in a
process of its own and runs every measured case in a fresh ``python -m benchmarks._child``
process, which prints one JSON line. Memory is that child's peak RSS (``VmHWM``) minus the peak
RSS of a baseline child with the same imports.
"""

from __future__ import annotations

import json
import os
import resource
import socket
import subprocess
import sys
import time
import urllib.request
import wave
from pathlib import Path
from types import TracebackType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
KEY = "bench-key"
#: Every case process is killed after this many seconds (a benchmark must never hang CI).
CASE_TIMEOUT = 300.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def peak_rss_kib() -> int:
    """This process's peak resident memory in KiB (VmHWM; ru_maxrss where /proc is missing)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:  # pragma: no cover - not Linux
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak  # pragma: no cover


def rss_kib() -> int:
    """This process's resident memory now, in KiB."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0  # pragma: no cover


class Emulator:
    """``python -m aiomusic.emulator --port P [flags]`` in its own process, as a context."""

    def __init__(self, *flags: str) -> None:
        self.flags = flags
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Emulator:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "aiomusic.emulator", "--port", str(self.port), *self.flags],
            stdout=subprocess.PIPE, cwd=ROOT)
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline().decode()
        if "listening" not in line:
            self._proc.kill()
            raise RuntimeError(f"the emulator did not start: {line!r}")
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover
                self._proc.kill()
                self._proc.wait()

    def admin(self, name: str, method: str = "GET") -> Any:
        """Call ``/_emulator/<name>`` (counters, reset, health)."""
        request = urllib.request.Request(  # noqa: S310 - our own http URL on loopback
            f"{self.url}/_emulator/{name}", method=method,
            data=b"{}" if method == "POST" else None)
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
            return json.loads(answer.read())

    def reset(self) -> None:
        self.admin("reset", "POST")

    def counters(self) -> dict[str, Any]:
        result: dict[str, Any] = self.admin("counters")
        return result


def run_child(module: str, kind: str, **params: Any) -> dict[str, Any]:
    """Run one case in a fresh process; its JSON result, with ``peak_kib`` added."""
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks._child", module, kind, json.dumps(params)],
        capture_output=True, text=True, cwd=ROOT, timeout=CASE_TIMEOUT, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"case {module}:{kind} failed (exit {out.returncode}):\n"
                           f"{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    result["process_seconds"] = time.perf_counter() - started
    return result


def make_wav(path: Path, megabytes: float) -> None:
    """A 44.1 kHz stereo 16-bit WAV of about ``megabytes`` MiB (a quiet square wave)."""
    rate = 44100
    frames = int(megabytes * 1024 * 1024) // 4
    block = b"\x10\x00\xf0\xff" * rate
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(rate)
        written = 0
        while written < frames:
            n = min(rate, frames - written)
            w.writeframes(block[: n * 4])
            written += n


def mib(kib: float) -> float:
    return round(kib / 1024, 1)


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    import platform

    info: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as cpu:
            for line in cpu:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo", encoding="ascii") as mem:
            info["memory_gib"] = round(int(mem.readline().split()[1]) / 1024 / 1024, 1)
    except OSError:  # pragma: no cover - not Linux
        pass
    try:
        import httptools  # noqa: F401

        info["emulator_http_parser"] = "httptools"
    except ImportError:  # pragma: no cover
        info["emulator_http_parser"] = "h11"
    return info


def baselines(url: str, *, runs: int = 2) -> dict[str, int]:
    """Peak RSS (KiB) of the baseline processes: ``idle`` (the imports and an event loop) and
    ``warm`` (also an httpx client, one small request to ``url`` and one worker thread);
    the least of ``runs`` runs each, since a baseline can only be inflated by noise."""
    return {
        "idle": min(run_child("baseline", "baseline")["peak_kib"] for _ in range(runs)),
        "warm": min(run_child("baseline", "baseline-warm", url=url)["peak_kib"]
                    for _ in range(runs)),
    }


def side_by_side(module: str, kinds: tuple[str, ...], *, rounds: int,
                 **params: Any) -> dict[str, dict[str, Any]]:
    """Run each case of ``kinds`` ``rounds`` times, interleaved, each in a fresh process.

    Returns per kind the result of its fastest round (noise only ever adds time), with
    ``peak_kib`` the largest of all rounds (the conservative memory figure).
    """
    merged: dict[str, dict[str, Any]] = {}
    for _ in range(rounds):
        for kind in kinds:
            got = run_child(module, kind, **params)
            seen = merged.get(kind)
            if seen is not None:
                best = got if got["seconds"] <= seen["seconds"] else seen
                got = {**best, "cpu_seconds": min(got["cpu_seconds"], seen["cpu_seconds"]),
                       "peak_kib": max(got["peak_kib"], seen["peak_kib"])}
            merged[kind] = got
    return merged


def upload_voice(url: str, reference: Path) -> str:
    """Upload ``reference`` as a music-01 voice on the emulator at ``url``; its id."""
    import httpx

    with reference.open("rb") as f:
        answer = httpx.post(url + "/v2/generate/audio/minimax/upload",
                            files={"file": ("voice.wav", f, "audio/wav")},
                            data={"purpose": "voice"},
                            headers={"Authorization": f"Bearer {KEY}"}, timeout=60)
    answer.raise_for_status()
    voice: str = answer.json()["voice_id"]
    return voice
