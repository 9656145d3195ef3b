"""Every aiomusic benchmark in one run: ``python -m benchmarks [--quick] [--grid] [--json PATH]``.

The emulator runs in processes of its own, every measured case in a fresh process, and each
figure is compared side by side with its baseline measured in the same run. The result is a
Markdown table on stdout and a JSON file (``benchmarks/results/full.json``, or
``benchmarks/results/quick.json`` with ``--quick``; the folder is not versioned), with B1's
plots in a folder beside it. A figure given with a range is the median of its rounds, with
their minimum and maximum. See ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: python benchmarks/run.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import _grid, _overhead, _sse, _tasks, _transfer, bench_emulator
from benchmarks._common import ROOT, Emulator, baselines, machine, make_wav, upload_voice

__all__ = ["IDS", "main", "markdown"]

IDS = ("B1", "B2", "B3", "B4", "B5", "B6", "B7")

GOALS = {
    "B1": ">= 0.9 x ideal, <= 5 % refused (rate told); >= 0.8 x ideal (nothing told); 0 failed",
    "B2": ">= 0.95 x limit, <= 8 MiB over idle",
    "B3": ">= 0.9 x raw, <= 16 MiB",
    "B4": ">= 0.85 x httpx",
    "B5": "<= 20 KiB per more task, polls <= budget, all complete",
    "B6": ">= 1,000 req/s, 500 connections",
    "B7": ">= 0.5 x raw, <= 8 MiB",
}


def _hexstream(quick: bool) -> list[dict[str, Any]]:
    """The decoder alone, in memory: the incremental scanner vs a bare unhexlify loop.

    Each round runs both methods in a fresh process each (each the best of 3 passes); the row
    gives the median, min and max over the rounds of the ratio taken within a round.
    """
    megabytes = 8 if quick else 80
    script = ROOT / "benchmarks" / "bench_hexstream.py"
    ratios: list[float] = []
    speeds: dict[str, list[float]] = {"unhexlify": [], "scanner": []}
    peak = 0.0
    for _ in range(3 if quick else 5):
        seconds = {}
        for method in speeds:
            out = subprocess.run([sys.executable, str(script), "--child", method,
                                  str(megabytes)],
                                 capture_output=True, text=True, check=True, timeout=300)
            result = json.loads(out.stdout)
            seconds[method] = result["seconds"]
            speeds[method].append(megabytes / 1000 / result["seconds"])
            if method == "scanner":
                peak = max(peak, result["peak_mib"])
        ratios.append(seconds["unhexlify"] / seconds["scanner"])
    return [{
        "id": "B2", "case": "decoder", "size_mb": megabytes, "rounds": len(ratios),
        "scanner_gb_s": round(statistics.median(speeds["scanner"]), 2),
        "unhexlify_gb_s": round(statistics.median(speeds["unhexlify"]), 2),
        "ratio_vs_unhexlify": round(statistics.median(ratios), 3),
        "ratio_vs_unhexlify_min": round(min(ratios), 3),
        "ratio_vs_unhexlify_max": round(max(ratios), 3),
        "scanner_mib": round(peak, 1),
    }]


def _capacity(emu: Emulator, quick: bool) -> list[dict[str, Any]]:
    connections, requests = (100, 2000) if quick else (500, 10000)
    return [{"id": "B6", **row}
            for row in bench_emulator.measure(emu.port, connections=connections,
                                              requests=requests)]


def run(*, quick: bool, only: Sequence[str] = IDS, grid: bool = False,
        plots: Path | None = None, log: Callable[[str], None] = print,
        points: Sequence[int] | None = None) -> dict[str, Any]:
    """Run the benchmarks named in ``only``; the JSON document of their results.

    ``grid``: B1 at every point of its full grid (about 30 minutes), not the default few;
    ``points``: only these points of B1's grid (counted from 1); ``plots``: the folder for
    B1's plots (none without it).
    """
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    info = machine()

    def step(name: str, fn: Callable[[], list[dict[str, Any]]]) -> None:
        t = time.perf_counter()
        log(f"  {name} ...")
        rows.extend(fn())
        log(f"  {name} done in {time.perf_counter() - t:.1f} s")

    base: dict[str, int] = {}
    if "B1" in only:  # first: the most sensitive to what the machine went through before
        step("B1 goodput", lambda: _grid.run(quick=quick, grid=grid, plots=plots, log=log,
                                                      points=points))
    with tempfile.TemporaryDirectory() as folder, Emulator(
            "--speed", "instant", "--no-limits", "--audio-bytes", "1000") as emu:
        if {"B2", "B3", "B5", "B7"} & set(only):
            base.update(baselines(emu.url, runs=1 if quick else 2))
        if "B2" in only:
            step("B2 hex answers", lambda: _transfer.run(emu, quick=quick, baselines=base,
                                                         only=("B2",)))
            step("B2 decoder", lambda: _hexstream(quick))
        if "B3" in only:
            step("B3 uploads", lambda: _transfer.run(emu, quick=quick, baselines=base,
                                                     only=("B3",)))
        if "B4" in only:
            reference = Path(folder, "voice.wav")
            make_wav(reference, 2.2)
            voice = upload_voice(emu.url, reference)
            step("B4 overhead", lambda: _overhead.run(emu, quick=quick, voice=voice))
        if "B7" in only:  # a streamed MiniMax generation (SSE): benchmarks/_sse.py
            step("B7 SSE stream", lambda: _sse.run(emu, quick=quick, baselines=base))
        if "B6" in only:
            emu.reset()
            step("B6 emulator capacity", lambda: _capacity(emu, quick))
    if "B5" in only:
        step("B5 pending tasks", lambda: _tasks.run(quick=quick, baselines=base))
    for row in rows:
        row["goal"] = GOALS[row["id"]]
        # quick sizes are too small for the goals: a smoke test reports, it does not judge
        row["met"] = None if quick else _met(row)
    order = {name: i for i, name in enumerate(IDS)}
    rows.sort(key=lambda r: order[r["id"]])
    return {
        "mode": "quick" if quick else "full",
        "b1_points": "full grid" if grid else "quick" if quick else "default",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - started, 1),
        "machine": info,
        "baselines_kib": base,
        "results": rows,
    }


def _met(row: dict[str, Any]) -> bool | None:
    """Whether the row meets its goal; None for rows that only give context."""
    ident = row["id"]
    if ident == "B1":
        if row["client"] == "aiomusic":
            return bool(row["ratio_vs_ideal"] >= 0.9 and row["rejected_share"] <= 0.05
                        and row["failed"] == 0)
        if row["client"] == "aiomusic-untold":
            return bool(row["ratio_vs_ideal"] >= 0.8 and row["failed"] == 0)
        return None
    if ident == "B2":
        if row.get("case") == "decoder":
            return None
        return bool(row["ratio_vs_limit"] >= 0.95 and row["aiomusic_mib_vs_idle"] <= 8)
    if ident == "B3":
        return bool(row["ratio_vs_raw"] >= 0.9 and row["aiomusic_mib"] <= 16)
    if ident == "B4":
        return bool(row["ratio_vs_httpx"] >= 0.85) if row["calls"] != "credits" else None
    if ident == "B5":
        return bool(row["marginal_kib_per_task"] <= 20
                    and row["max_polls_per_s"] <= row["poll_limit_per_s"]
                    and row["completed"] == row["tasks"])
    if ident == "B7":
        return _sse.met(row)
    if row["request"] != "GET credit":
        return None
    return bool(row["per_second"] >= 1000 and row["peak_connections"] >= 500)


def _cells(row: dict[str, Any]) -> tuple[str, str, str, str]:
    """(case, aiomusic, compared with, ratio) for the Markdown table."""
    ident = row["id"]
    if ident == "B1":
        figures = (f"{_spread(row, 'rejected_share', percent=True)} refused, "
                   f"{row['seconds']} s, {row['failed']} failed")
        case = f"{row['point']} ({row['kind']})"
        ratio = _spread(row, "ratio_vs_ideal")
        if row["client"].startswith("aiomusic"):
            told = "rate told" if row["client"] == "aiomusic" else "nothing told"
            return case, f"{told}: {figures}", f"ideal {row['ideal_s']} s", ratio
        return case, "", f"{row['client']}: {figures}", ratio
    if ident == "B2" and row.get("case") == "decoder":
        return (f"decoder alone, {row['size_mb']} MB in memory",
                f"scanner {row['scanner_gb_s']} GB/s, +{row['scanner_mib']} MiB",
                f"bare unhexlify {row['unhexlify_gb_s']} GB/s",
                _ratio(row, "ratio_vs_unhexlify"))
    if ident == "B2":
        return (f"hex answer, {row['size_mb']} MB, {row['rounds']} rounds",
                f"{_speed(row, 'aiomusic')}, +{row['aiomusic_mib_vs_idle']} MiB over idle "
                f"(+{row['aiomusic_mib']} over warm), {row['aiomusic_cpu_ms']} ms CPU",
                f"limit {_speed(row, 'limit')}, +{row['limit_mib_vs_idle']} MiB over idle, "
                f"{row['limit_cpu_ms']} ms CPU (with fsync {_speed(row, 'limit_fsync')}, "
                f"ratio {_ratio(row, 'ratio_vs_limit_fsync')}); raw hex to a file "
                f"{row['raw_mb_s']:.0f} MB/s; decoding only {row['decode_mb_s']:.0f} MB/s; "
                f"vendor {row['vendor_mb_s']} MB/s, +{row['vendor_mib']} MiB",
                _ratio(row, "ratio_vs_limit"))
    if ident == "B3":
        return (f"upload, {row['size_mb']} MB WAV",
                f"{row['aiomusic_mb_s']} MB/s, +{row['aiomusic_mib']} MiB",
                f"raw httpx {row['raw_mb_s']} MB/s, +{row['raw_mib']} MiB",
                f"{row['ratio_vs_raw']:.3f}")
    if ident == "B4":
        return (f"{row['n']:,} small {row['calls']} calls, concurrency {row['concurrency']}",
                f"{row['aiomusic_calls_s']} calls/s "
                f"({row['aiomusic_cpu_ms_per_call']} ms CPU/call)",
                f"plain httpx {row['httpx_calls_s']} calls/s "
                f"({row['httpx_cpu_ms_per_call']} ms CPU/call)",
                _spread(row, "ratio_vs_httpx"))
    if ident == "B5":
        return (f"{row['tasks']:,} pending Suno tasks, {row['polls_per_task']} polls each",
                f"one more task: {_spread(row, 'marginal_kib_per_task', digits=1)} KiB "
                f"({row['pending_kib_per_task']} KiB/task while pending), "
                f"max {row['max_polls_per_s']} polls/s, {row['completed']}/{row['tasks']} "
                f"done in {row['seconds']} s",
                f"poll budget {row['poll_limit_per_s']}/s", "")
    if ident == "B7":
        return _sse.cells(row)
    return (f"emulator: {row['request']}",
            f"{row['per_second']:,} req/s over {row['peak_connections']} connections", "", "")


def _spread(row: dict[str, Any], name: str, *, percent: bool = False, digits: int = 3) -> str:
    """``row[name]``, and ``(min-max)`` when the row has them (the median of its rounds)."""
    scale, fmt = (100, ".1f") if percent else (1, f".{digits}f")
    text = f"{scale * row[name]:{fmt}}"
    if f"{name}_min" in row and row[f"{name}_min"] != row[f"{name}_max"]:
        text += (f" ({scale * row[f'{name}_min']:{fmt}}-"
                 f"{scale * row[f'{name}_max']:{fmt}})")
    return text + (" %" if percent else "")


def _speed(row: dict[str, Any], key: str) -> str:
    return (f"{row[key + '_mb_s']:.0f} MB/s "
            f"[{row[key + '_mb_s_min']:.0f}-{row[key + '_mb_s_max']:.0f}]")


def _ratio(row: dict[str, Any], key: str) -> str:
    return f"{row[key]:.3f} [{row[key + '_min']:.3f}-{row[key + '_max']:.3f}]"


def markdown(doc: dict[str, Any]) -> str:
    """The results as a Markdown table."""
    lines = ["| # | case | aiomusic | compared with | ratio | goal | met |",
             "|---|---|---|---|---|---|---|"]
    for row in doc["results"]:
        case, ours, other, ratio = _cells(row)
        met = {True: "yes", False: "**no**", None: ""}[row["met"]]
        goal = row["goal"] if row["met"] is not None or (
            doc["mode"] == "quick" and _met(row) is not None) else ""
        lines.append(f"| {row['id']} | {case} | {ours} | {other} | {ratio} | {goal} | {met} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    if "--scale" in args_in:  # S1, shared lanes across processes: options of its own
        from benchmarks import bench_scale

        return bench_scale.main([a for a in args_in if a != "--scale"])
    if "--journal-scale" in args_in:  # J1-J3, a batch shared in PostgreSQL: its own options
        from benchmarks import bench_journal

        return bench_journal.main([a for a in args_in if a != "--journal-scale"])
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     epilog="--scale runs S1 instead (benchmarks/bench_scale.py); "
                                            "--journal-scale runs J1-J3 "
                                            "(benchmarks/bench_journal.py)")
    parser.add_argument("--quick", action="store_true",
                        help="small sizes, a few seconds each: a smoke test, not a measurement")
    parser.add_argument("--json", type=Path, help="where to write the results")
    parser.add_argument("--grid", action="store_true",
                        help="B1 at every point of its grid (about 30 minutes)")
    parser.add_argument("--points", nargs="+", type=int, metavar="N",
                        help="only these points of B1's grid, counted from 1")
    parser.add_argument("--only", nargs="+", choices=IDS, default=list(IDS),
                        help="run only these benchmarks")
    args = parser.parse_args(args_in)
    target = args.json or ROOT / "benchmarks" / "results" / (
        "quick.json" if args.quick else "full.json")
    target.parent.mkdir(parents=True, exist_ok=True)
    print(f"aiomusic benchmarks ({'quick' if args.quick else 'full'}), "
          f"{machine()['cpus']} CPUs", file=sys.stderr)
    plots = target.with_name(target.stem + "-plots")
    doc = run(quick=args.quick, only=args.only, grid=args.grid, plots=plots,
              log=lambda line: print(line, file=sys.stderr, flush=True), points=args.points)
    doc["table"] = markdown(doc)
    target.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    print(doc["table"])
    print(f"\n{doc['mode']} run in {doc['seconds']} s; results in {target}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
