"""FLAC references (MiniMax covers take them): probed from STREAMINFO, checked for frames."""

from __future__ import annotations

import pytest

from aiomusic import AudioValidationError
from aiomusic._io._audio import probe_audio, validate_reference

from .conftest import make_flac

_HEADER = bytes([0x80, 0, 0, 34])


def test_a_flac_is_measured_from_its_streaminfo() -> None:
    info = probe_audio(make_flac(61.5, rate=48000, channels=1))
    assert (info.format, info.duration, info.sample_rate, info.channels) == (
        "flac", 61.5, 48000, 1)


def test_other_metadata_blocks_are_skipped() -> None:
    flac = make_flac(10.0)
    padding = bytes([0x01, 0, 0, 8]) + bytes(8)  # a PADDING block first, not the last one
    streaminfo_last = flac[4:8]
    moved = b"fLaC" + padding + streaminfo_last + flac[8:]
    assert probe_audio(moved).duration == 10.0


@pytest.mark.parametrize(("data", "problem"), [
    pytest.param(b"fLaC\x80\x00", "metadata ends early", id="cut-metadata"),
    pytest.param(b"fLaC" + _HEADER + bytes(10), "STREAMINFO is cut off", id="cut-streaminfo"),
    pytest.param(b"fLaC" + bytes([0x81, 0, 0, 4]) + bytes(4) + b"\xff\xf8",
                 "no STREAMINFO", id="no-streaminfo"),
    pytest.param(make_flac(10.0, frames=b""), "no audio after its metadata", id="no-frames"),
    pytest.param(make_flac(10.0, frames=b"\x00\x00junk"), "no audio after its metadata",
                 id="no-sync"),
    pytest.param(make_flac(0.0), "length cannot be told", id="no-samples"),
])
def test_damaged_flac_files_are_refused(data: bytes, problem: str) -> None:
    with pytest.raises(AudioValidationError, match=problem):
        probe_audio(data, name="ref.flac")


def test_music_01_still_takes_only_wav_and_mp3() -> None:
    with pytest.raises(AudioValidationError, match="is FLAC audio; this call takes WAV or MP3"):
        validate_reference(make_flac(30.0))
    info = validate_reference(make_flac(30.0), min_duration=6, max_duration=360,
                              formats=("mp3", "wav", "flac"))
    assert info.duration == 30.0
