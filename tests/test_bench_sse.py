"""Benchmark B7 (an SSE stream) runs end to end in its quick form and reports every figure.

It asserts no speed: the machines are shared. It checks that the figures are there and
finite, and that the goal is judged from them.
"""

from __future__ import annotations

import ast
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_quick_sse_benchmark_reports_its_figures() -> None:
    env = {k: v for k, v in os.environ.items()
           if k not in ("COVERAGE_PROCESS_CONFIG", "COVERAGE_PROCESS_START")}
    done = subprocess.run([sys.executable, "-m", "benchmarks._sse", "--quick"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=280, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    row_line, cells_line = done.stdout.strip().splitlines()[-2:]
    row = ast.literal_eval(row_line)
    assert row["id"] == "B7" and row["size_mb"] == 8
    for name in ("raw_mb_s", "file_mb_s", "stream_mb_s", "ratio_vs_raw", "first_byte_ms",
                 "first_audio_ms", "file_mib", "stream_mib"):
        assert math.isfinite(row[name]), name
    assert row["file_mb_s"] > 0 and row["first_audio_ms"] > 0
    assert cells_line.endswith(("met", "NOT met"))
    assert "SSE stream, 8 MB of hex events" in cells_line
