"""S1 runs (``python -m benchmarks --scale``), and its pure parts. No speed is asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.bench_scale import _most_in_window, _summary, markdown

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_small_scale_run_reports_every_figure(tmp_path: Path, redis_url: str,
                                                postgres_url: str) -> None:
    target = tmp_path / "scale.json"
    env = {k: v for k, v in os.environ.items()
           if k not in ("COVERAGE_PROCESS_CONFIG", "COVERAGE_PROCESS_START")}
    done = subprocess.run([sys.executable, "-m", "benchmarks", "--scale", "--redis", redis_url,
                           "--postgres", postgres_url, "--processes", "2", "--rounds", "1",
                           "--jobs", "40", "--json", str(target)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=280, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    rows = json.loads(target.read_text(encoding="utf-8"))["results"]
    assert [(r["store"], r["processes"]) for r in rows] == [
        ("redis", 2), ("postgres", 2), ("none", 2)]
    for row in rows:
        assert row["failed"] == 0
        assert row["ratio"]["median"] > 0
    for row in rows[:2]:
        assert row["step_p50_ms"]["median"] > 0
        assert "met" in row
    assert "| redis | 2 |" in done.stdout


def test_the_most_starts_in_any_window() -> None:
    assert _most_in_window([], 1.0) == 0
    assert _most_in_window([0.0, 0.5, 0.99, 1.0, 1.5], 1.0) == 3
    assert _most_in_window([0.0, 1.0, 2.0], 1.0) == 1


def test_rounds_are_summarised_as_median_min_max() -> None:
    rounds = [{"jobs": 10, "ok": 10, "ratio": r, "refused": 0.0, "max_in_window": 40,
               "step_p50_ms": 0.4, "step_p99_ms": 5.0} for r in (0.9, 0.95, 0.97)]
    row = _summary(rounds, "redis", 4)
    assert row["ratio"] == {"median": 0.95, "min": 0.9, "max": 0.97}
    assert row["met"] is True
    alone = _summary([{**rounds[0], "step_p50_ms": None, "step_p99_ms": None}], "none", 4)
    assert "met" not in alone
    table = markdown([row, alone])
    assert "| redis | 4 | 0.95 (0.9, 0.97) | 0 % (0, 0) | 40 (40, 40) |" in table
    assert "| each process alone | 4 |" in table
