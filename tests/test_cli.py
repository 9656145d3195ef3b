"""The ``aiomusic`` command line."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import anyio
import mutagen
import pytest

from aiomusic.cli import _common as _cli_common
from aiomusic.cli import main
from aiomusic.cli._common import stop_on_signals


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


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
@pytest.mark.anyio
async def test_ctrl_c_stops_cleanly_then_quits_at_once(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The first Ctrl-C cancels the work, whose clean-up runs; a second one quits at once."""
    quits: list[int] = []
    monkeypatch.setattr(_cli_common, "quit_now", quits.append)
    monkeypatch.setattr(_cli_common, "SAME_PRESS", 0.2)
    cleaned = False
    async with stop_on_signals() as stop:
        with stop.scope:
            os.kill(os.getpid(), signal.SIGINT)
            await anyio.sleep(10)
        assert stop.scope.cancel_called and stop.signal == signal.SIGINT
        try:
            os.kill(os.getpid(), signal.SIGINT)  # the same press, delivered twice: ignored
            await anyio.sleep(0.05)
            assert quits == []
            await anyio.sleep(0.3)
            os.kill(os.getpid(), signal.SIGTERM)  # a second press during the clean-up
            with anyio.fail_after(5):
                while not quits:
                    await anyio.sleep(0.01)
        finally:
            cleaned = True
    assert cleaned and quits == [130]
    err = capsys.readouterr().err
    assert "stopping cleanly (press Ctrl-C again to quit at once)" in err
    assert "quit at once: a journal stays consistent" in err


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.anyio
async def test_errors_come_out_of_the_signal_watch_as_themselves() -> None:
    with pytest.raises(ValueError, match="plain"):
        async with stop_on_signals():
            raise ValueError("plain")


def test_ctrl_c_outside_the_async_part_exits_130(monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    def interrupted(**kw: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr("aiomusic.cli._demo.run_demo", interrupted)
    assert main(["demo"]) == 130
    assert capsys.readouterr().err == "aiomusic: stopped\n"
