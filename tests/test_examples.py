"""The examples run as users would run them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mutagen

ROOT = Path(__file__).resolve().parent.parent


def test_minimax_example(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "minimax_on_emulator.py"),
                          str(tmp_path)], capture_output=True, text=True, check=True, timeout=120)
    assert "wrote" in out.stdout
    song = mutagen.File(tmp_path / "song.mp3")
    assert song is not None and song.info.length > 1
