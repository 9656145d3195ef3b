"""MiniMax music-01 throughput and memory (B2, B3): ``python benchmarks/bench_minimax.py``.

A shortcut for ``python -m benchmarks --only B2 B3 [--quick]``: the cases now live in
``benchmarks/_transfer.py`` and run with every other benchmark (see ``docs/benchmarks.md``).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.run import main

if __name__ == "__main__":
    sys.exit(main(["--only", "B2", "B3", *sys.argv[1:]]))
