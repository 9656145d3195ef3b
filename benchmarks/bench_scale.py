"""S1: N processes sharing one key's lanes in Redis or PostgreSQL, against a limited emulator.

``python -m benchmarks --scale`` (or ``python -m benchmarks.bench_scale``) with ``--redis URL``
and ``--postgres URL`` (without ``--redis``, a throwaway ``redis-server`` is started on a free
loopback port when one is installed; without ``--postgres`` that store is left out).

The emulator allows R = 40 generations per second and 16 at once per key, each taking 200 ms,
so the ideal is 40 jobs/s whatever the number of processes. N processes (2, 4, 8) share 400
jobs; each process's lane is told R and a concurrency ceiling of 64, and finds 16 by itself.
For each N and store, at least 3 rounds report the median, min and max of:

- goodput: jobs done per second of wall time, as a share of the ideal (goal >= 0.9);
- refused: the share of requests the emulator refused (goal <= 5 %);
- the most starts, of all processes together, in any 1 s window (goal <= R), from every
  request's start time on the machine's clock;
- the latency each lane step adds (a worker thread's round trip to the store), p50 and p99
  over every step of the round.

One round with each process on its own in-process lanes shows what sharing prevents.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import KEY, ROOT, Emulator, free_port, make_wav

__all__ = ["main", "run"]

RATE, CONCURRENT, LATENCY, JOBS = 40, 16, 0.2, 400
GOALS = {"ratio": 0.9, "refused": 0.05}


# -- one process --------------------------------------------------------------------------------


async def _child(p: dict[str, Any]) -> dict[str, Any]:
    import anyio

    from aiomusic import (
        AiomusicError,
        AudioSetting,
        Event,
        LaneConfig,
        MusicSession,
        RequestFinished,
        RequestStarted,
    )
    from aiomusic._core._shared_lanes import SharedLane

    steps: list[float] = []
    original = SharedLane._call

    async def timed(self: SharedLane, fn: Any, *args: Any, **kwargs: Any) -> Any:
        began = time.perf_counter()
        try:
            return await original(self, fn, *args, **kwargs)
        finally:
            steps.append(time.perf_counter() - began)

    SharedLane._call = timed  # type: ignore[method-assign]
    starts: list[float] = []
    requests = refused = ok = 0

    def listen(event: Event) -> None:
        nonlocal requests, refused
        if isinstance(event, RequestStarted) and event.operation == "minimax.generate":
            starts.append(time.time())
        elif isinstance(event, RequestFinished) and event.operation == "minimax.generate":
            requests += 1
            refused += event.error == "RateLimitError"

    lane = LaneConfig(max_concurrency=64, rate=RATE, per=1.0)
    setting = AudioSetting(format="mp3", sample_rate=44100, bitrate=256000)
    with tempfile.TemporaryDirectory() as folder:
        async with MusicSession(base_url=p["url"], aimlapi_key=KEY, on_event=listen,
                                lanes={"aimlapi.submit": lane},
                                lane_store=p["store"]) as session:

            async def one(i: int) -> None:
                nonlocal ok
                try:
                    await session.minimax.generate(Path(folder, f"{i}.mp3"), lyrics="##la##",
                                                   refer_voice=p["voice"], audio_setting=setting)
                except AiomusicError:
                    return
                ok += 1

            await anyio.sleep(max(0.0, p["not_before"] - time.time()))
            async with anyio.create_task_group() as tg:
                for i in range(p["n"]):
                    tg.start_soon(one, i)
            finished = time.time()
    return {"ok": ok, "requests": requests, "refused": refused, "starts": starts,
            "finished": finished, "steps": steps}


# -- rounds -------------------------------------------------------------------------------------


def _round(emu: Emulator, voice: str, store: str | None, processes: int,
           jobs: int) -> dict[str, Any]:
    per = jobs // processes
    # every process starts at the same moment, once earlier starts have left the window
    not_before = time.time() + 1.5 + 0.25 * processes
    params = [{"url": emu.url, "voice": voice, "store": store, "n": per,
               "not_before": not_before} for _ in range(processes)]
    children = [subprocess.Popen([sys.executable, "-m", "benchmarks.bench_scale", "--child",
                                  json.dumps(p)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
                for p in params]
    results = []
    for child in children:
        out, _ = child.communicate(timeout=600)
        if child.returncode != 0:
            raise RuntimeError(f"a process of the round failed (exit {child.returncode})")
        results.append(json.loads(out.strip().splitlines()[-1]))
    seconds = max(r["finished"] for r in results) - not_before
    ok = sum(r["ok"] for r in results)
    requests = sum(r["requests"] for r in results)
    starts = sorted(t for r in results for t in r["starts"])
    steps = sorted(s for r in results for s in r["steps"])
    return {"ok": ok, "jobs": per * processes, "seconds": seconds,
            "ratio": ok / seconds / min(RATE, CONCURRENT / LATENCY),
            "refused": sum(r["refused"] for r in results) / max(1, requests),
            "max_in_window": _most_in_window(starts, 1.0),
            "step_p50_ms": 1000 * _quantile(steps, 0.5) if steps else None,
            "step_p99_ms": 1000 * _quantile(steps, 0.99) if steps else None,
            "steps": len(steps)}


def _most_in_window(starts: list[float], per: float) -> int:
    most, first = 0, 0
    for last, t in enumerate(starts):
        while t - starts[first] >= per:
            first += 1
        most = max(most, last - first + 1)
    return most


def _quantile(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))]


def _summary(rounds: list[dict[str, Any]], store: str, processes: int) -> dict[str, Any]:
    def spread(name: str, digits: int = 3) -> dict[str, float | None]:
        values = [r[name] for r in rounds if r[name] is not None]
        if not values:
            return {"median": None, "min": None, "max": None}
        return {"median": round(statistics.median(values), digits),
                "min": round(min(values), digits), "max": round(max(values), digits)}

    row = {"id": "S1", "store": store, "processes": processes, "rounds": len(rounds),
           "jobs": rounds[0]["jobs"], "ratio": spread("ratio"), "refused": spread("refused"),
           "max_in_window": spread("max_in_window", 0), "step_p50_ms": spread("step_p50_ms", 2),
           "step_p99_ms": spread("step_p99_ms", 2), "failed": sum(r["jobs"] - r["ok"]
                                                                  for r in rounds)}
    if store != "none":
        row["met"] = bool(row["ratio"]["min"] >= GOALS["ratio"]
                          and row["refused"]["max"] <= GOALS["refused"]
                          and row["max_in_window"]["max"] <= RATE and row["failed"] == 0)
    return row


def run(*, stores: dict[str, str], processes: Sequence[int] = (2, 4, 8), rounds: int = 3,
        jobs: int = JOBS, log: Any = print) -> list[dict[str, Any]]:
    """S1 for each store and number of processes; one row each."""
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as folder, Emulator(
            "--rate", str(RATE), "--rate-window", "1", "--concurrency", str(CONCURRENT),
            "--speed", str(LATENCY / 0.5), "--audio-bytes", "1000") as emu:
        from benchmarks._common import upload_voice
        from benchmarks._grid import _warm_up

        reference = Path(folder, "voice.wav")
        make_wav(reference, 2.2)
        voice = upload_voice(emu.url, reference)
        _warm_up(emu.url, voice)
        for n in processes:
            for name, url in [*stores.items(), ("none", "")]:
                done = [_round(emu, voice, url or None, n, jobs)
                        for _ in range(rounds if url else 1)]
                rows.append(_summary(done, name, n))
                log(f"  S1 {name}, {n} processes: {json.dumps(rows[-1])}")
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    def cell(spread: dict[str, Any], scale: float = 1, suffix: str = "") -> str:
        if spread["median"] is None:
            return ""
        return (f"{spread['median'] * scale:g}{suffix} ({spread['min'] * scale:g}, "
                f"{spread['max'] * scale:g})")

    lines = ["Each cell: the median of the rounds (their min, max).", "",
             "| store | processes | goodput / ideal | refused | most starts in 1 s "
             f"(limit {RATE}) | step p50 ms | step p99 ms | met |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        store = "each process alone" if r["store"] == "none" else r["store"]
        met = {True: "yes", False: "**no**", None: ""}[r.get("met")]
        lines.append(f"| {store} | {r['processes']} | {cell(r['ratio'])} | "
                     f"{cell(r['refused'], 100, ' %')} | {cell(r['max_in_window'])} | "
                     f"{cell(r['step_p50_ms'])} | {cell(r['step_p99_ms'])} | {met} |")
    return "\n".join(lines)


@contextmanager
def _throwaway_redis() -> Iterator[str | None]:
    binary = shutil.which("redis-server")
    if binary is None:
        yield None
        return
    port = free_port()
    with tempfile.TemporaryDirectory() as folder:
        proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save",
                                 "", "--appendonly", "no", "--dir", folder],
                                stdout=subprocess.DEVNULL)
        try:
            time.sleep(0.3)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks --scale", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--redis", help="a Redis URL (default: start a throwaway redis-server)")
    parser.add_argument("--postgres", help="a PostgreSQL URL (default: leave it out)")
    parser.add_argument("--processes", type=int, nargs="+", default=[2, 4, 8])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=JOBS, help="jobs per round, all processes")
    parser.add_argument("--json", type=Path, help="where to write the results")
    args = parser.parse_args(argv)
    if args.child:
        import anyio

        print(json.dumps(anyio.run(_child, json.loads(args.child))))
        return 0
    with _throwaway_redis() if args.redis is None else _given(args.redis) as redis_url:
        stores = {name: url for name, url in (("redis", redis_url),
                                              ("postgres", args.postgres)) if url}
        rows = run(stores=stores, processes=args.processes, rounds=args.rounds, jobs=args.jobs,
                   log=lambda line: print(line, file=sys.stderr, flush=True))
    target = args.json or ROOT / "benchmarks" / "results" / "scale.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    table = markdown(rows)
    target.write_text(json.dumps({"results": rows, "table": table}, indent=2) + "\n",
                      encoding="utf-8")
    print(table)
    return 0


@contextmanager
def _given(url: str) -> Iterator[str]:
    yield url


if __name__ == "__main__":
    sys.exit(main())
