"""The benchmarks run: ``python -m benchmarks --quick`` end to end, and its pure parts.

Nothing here asserts a speed or a ratio: machines are noisy (2 shared cores in CI), so the
benchmarks report their goals and the tests only check that every figure is there.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from aiomusic.emulator._cli import build_parser, config_from_args

ROOT = Path(__file__).resolve().parent.parent
IDS = ("B1", "B2", "B3", "B4", "B5", "B6", "B7")


def _numbers(row: dict[str, Any]) -> list[float]:
    return [v for v in row.values() if isinstance(v, int | float) and not isinstance(v, bool)]


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_quick_run_reports_every_benchmark(tmp_path: Path) -> None:
    target = tmp_path / "results.json"
    # Not under coverage: tracing would slow every benchmark process several times over.
    env = {k: v for k, v in os.environ.items()
           if k not in ("COVERAGE_PROCESS_CONFIG", "COVERAGE_PROCESS_START")}
    done = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--json", str(target)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=380,
                          check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    doc = json.loads(target.read_text(encoding="utf-8"))
    assert doc["mode"] == "quick"
    assert doc["machine"]["cpus"] >= 1
    assert doc["baselines_kib"]["idle"] > 0
    assert doc["baselines_kib"]["warm"] > 0
    rows = doc["results"]
    assert {row["id"] for row in rows} == set(IDS)
    for row in rows:
        numbers = _numbers(row)
        assert numbers, row
        assert all(math.isfinite(v) for v in numbers), row
        assert row["goal"]
        assert row["met"] is None  # a quick run reports; it does not judge
    by_id = {i: [row for row in rows if row["id"] == i] for i in IDS}
    assert {row["client"] for row in by_id["B1"]} == {
        "naive", "openai-style", "gather-retry-after", "gather-paced", "aiomusic",
        "aiomusic-untold"}
    for row in by_id["B1"]:
        if row["client"].startswith("aiomusic"):
            assert row["failed"] == 0  # every job completes, however slowly
        assert row["ratio_vs_ideal_min"] <= row["ratio_vs_ideal"] <= row["ratio_vs_ideal_max"]
        assert (tmp_path / "results-plots" / row["plot"]).stat().st_size > 10_000
    assert all(row["completed"] == row["tasks"] for row in by_id["B5"])
    assert all(0 < row["max_polls_per_s"] <= row["poll_limit_per_s"] for row in by_id["B5"])
    assert {row["calls"] for row in by_id["B4"]} == {
        "generate", "generate-path", "generate-default-lane", "credits"}
    (sse,) = by_id["B7"]
    assert sse["first_audio_ms"] > 0 and sse["file_mib"] < 64  # flat, whatever the stream
    for row in [*by_id["B2"], *by_id["B3"]]:
        if row.get("case") != "decoder":
            assert row["aiomusic_mb_s"] > 0
            assert row["raw_mb_s"] > 0
    # the table printed on stdout is the one stored, with a row per result
    assert doc["table"] in done.stdout
    assert doc["table"].count("\n| B") == len(rows)


def test_emulator_flags_for_the_benchmarks() -> None:
    args = build_parser().parse_args(["--rate", "40", "--rate-window", "1",
                                      "--concurrency", "16", "--audio-bytes", "1000"])
    config = config_from_args(args)
    assert config.limits.minimax_requests == 40
    assert config.limits.minimax_window == 1.0
    assert config.limits.minimax_concurrent == 16
    assert config.generate_audio_bytes == 1000
    default = config_from_args(build_parser().parse_args([]))
    assert default.limits.minimax_window == 60.0
    assert default.generate_audio_bytes is None


def test_poll_rate_is_counted_in_any_window() -> None:
    sys.path.insert(0, str(ROOT))
    try:
        from benchmarks._tasks import max_in_window
    finally:
        sys.path.remove(str(ROOT))
    assert max_in_window([], 1.0) == 0
    assert max_in_window([0.0, 0.5, 0.99, 1.0, 1.2], 1.0) == 4  # [0.5, 1.5)
    assert max_in_window([0.0, 0.1, 0.2, 5.0], 1.0) == 3


def _benchmarks_module(name: str) -> Any:
    sys.path.insert(0, str(ROOT))
    try:
        return __import__(f"benchmarks.{name}", fromlist=["_"])
    finally:
        sys.path.remove(str(ROOT))


@pytest.mark.parametrize(("point", "seconds"), [
    pytest.param((1, 64, 5.0, 50), 49 + 5.0, id="rate-bound: a start a second"),
    pytest.param((50, 2, 1.0, 50), 25.0, id="concurrency-bound: 25 waves"),
    pytest.param((50, 64, 5.0, 50), 5.0, id="one wave"),
    # 40 starts a second, but 16 at once for 0.2 s: each second's 40 take 0.4 s to start
    pytest.param((40, 16, 0.2, 400), 9.6, id="both, in turn"),
])
def test_the_ideal_is_the_greedy_schedule(point: tuple[int, int, float, int],
                                           seconds: float) -> None:
    grid = _benchmarks_module("_grid")
    assert grid.ideal_seconds(grid.Point(*point)) == pytest.approx(seconds)


def test_points_know_their_kind() -> None:
    grid = _benchmarks_module("_grid")
    kinds = {p.kind for p in grid.FULL}
    assert kinds == {"rate-bound", "concurrency-bound", "both"}
    assert grid.Point(40, 4, 0.2, 400).kind == "concurrency-bound"
    assert min(p.capacity for p in grid.FULL) == 2 and max(p.capacity for p in grid.FULL) == 64
    assert min(p.rate for p in grid.FULL) == 1 and max(p.rate for p in grid.FULL) == 50
    assert min(p.jobs for p in grid.FULL) == 50 and max(p.jobs for p in grid.FULL) == 2000


def test_in_flight_counts_sent_and_unanswered() -> None:
    plot = _benchmarks_module("_plot")
    times, counts = plot.in_flight([[0.0, 1.0, 1.0], [0.5, 0.6, 0.0], [0.5, 2.0, 1.0]])
    assert max(counts) == 3
    assert counts[-1] == 0
    assert times == sorted(times)
