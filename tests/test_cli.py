"""The ``aiomusic`` command line."""

from __future__ import annotations

from pathlib import Path

import mutagen
import pytest

from aiomusic.cli import main


def test_demo_writes_playable_songs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--songs", "3", "--instrumentals", "1",
                 "--plain"]) == 0
    text = capsys.readouterr().out
    assert "4 of 4 jobs done: 5 audio files" in text
    assert "paid submissions: 4 for 4 jobs (no duplicate submissions)" in text
    songs = sorted(p.name for p in out.glob("*.mp3") if p.name != "vocals.mp3")
    assert songs == ["instrumental-01-1.mp3", "instrumental-01-2.mp3", "song-01.mp3",
                     "song-02.mp3", "song-03.mp3"]
    for song in songs:
        audio = mutagen.File(out / song)
        assert audio is not None and audio.info.length > 5
    assert (out / "jobs.jsonl").read_text().count("\n") == 4  # the jobs, shown to the user
    assert not list(out.glob(".*.part"))


def test_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    with pytest.raises(SystemExit) as info:
        main(["demo", "--songs", "0", "--instrumentals", "0"])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert "aiomusic" in capsys.readouterr().out


def test_emulator_subcommand_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["emulator", "--help"])
    assert info.value.code == 0
    assert "--port" in capsys.readouterr().out
