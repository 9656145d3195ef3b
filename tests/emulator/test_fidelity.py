"""The vendor's own music-01 example runs against the emulator and yields a playable MP3.

Only two things change in the vendor code: the host (api.aimlapi.com -> the emulator) and
the reference download (read from a local file instead of the internet).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mutagen.mp3
import pytest
from emu_helpers import reference

from aiomusic.emulator import Emulator

VENDOR = Path(__file__).parent / "data" / "vendor_music01_example.py"

SHIM = """
class _LocalResponse:
    def __init__(self, path):
        with open(path, "rb") as f:
            self.content = f.read()

    def raise_for_status(self):
        pass
"""


def test_vendor_example_produces_playable_mp3(emulator: Emulator, tmp_path: Path) -> None:
    pytest.importorskip("requests")
    code = VENDOR.read_text()
    assert code.count("https://api.aimlapi.com") == 2
    assert code.count("requests.get(audio_url)") == 1
    (tmp_path / "reference.mp3").write_bytes(reference(15.0))
    code = code.replace("https://api.aimlapi.com", emulator.url)
    code = code.replace("requests.get(audio_url)", '_LocalResponse("reference.mp3")')
    script = tmp_path / "vendor.py"
    script.write_text(SHIM + code)
    result = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "Upload successful" in result.stdout
    assert "Generated audio saved as generated_audio.mp3" in result.stdout
    mp3 = mutagen.mp3.MP3(tmp_path / "generated_audio.mp3")
    assert mp3.info.length > 1
    assert mp3.info.sample_rate == 44100
    assert emulator.counters.paid(operation="aiml.generate") == 1
