"""The new Suno declarations run as job-file lines through the generic batch executor: each
operation's output lands where its declaration says (tracks, a stems folder, a file, a
document), from lines that name the parent track by ``task_id`` + ``audio_id``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from aiomusic import Batch, JobOutcome, MusicSession, PollSchedule, RetryPolicy
from aiomusic.batch._jobfile import parse_jobs
from aiomusic.emulator import Emulator, sample_track

pytestmark = pytest.mark.anyio
KEY = "sk-suno-family-batch"


def session(emulator: Emulator) -> MusicSession:
    return MusicSession(suno_key=KEY, base_url=emulator.url, allow_http_hosts=("127.0.0.1",),
                        retry=RetryPolicy(base_delay=0.01, max_delay=0.05),
                        suno_callback_url="http://127.0.0.1:9/no-op")


async def run(emulator: Emulator, lines: list[dict[str, Any]], base: Path
              ) -> dict[str, JobOutcome]:
    jobs = parse_jobs(list(enumerate(lines, 1)), base=base)
    found: dict[str, JobOutcome] = {}
    async with session(emulator) as s:
        batch = Batch(s, jobs, out=base / "out", poll=PollSchedule(initial=0.01, maximum=0.05))
        async with batch.results() as results:
            async for outcome in results:
                found[outcome.job.id] = outcome
    return found


def names(outcome: JobOutcome, base: Path) -> list[str]:
    assert outcome.status == "completed", outcome
    return sorted(str(f.path.relative_to(base / "out")) for f in outcome.files)


async def test_job_lines_for_every_new_operation(emulator: Emulator, tmp_path: Path) -> None:
    (tmp_path / "song.mp3").write_bytes(sample_track(12.0, format="mp3", seed=4))
    first = await run(emulator, [
        {"id": "g", "service": "suno", "op": "generate", "prompt": "rain on the road",
         "custom_mode": True, "style": "folk", "title": "Rain", "model": "V5"},
        {"id": "c", "service": "suno", "op": "cover", "source": "song.mp3", "prompt": "jazz"},
        {"id": "m", "service": "suno", "op": "mashup", "source": "song.mp3",
         "second_source": "song.mp3", "prompt": "blend"},
        {"id": "l", "service": "suno", "op": "lyrics", "prompt": "the sea"},
    ], tmp_path)
    assert names(first["g"], tmp_path) == ["g-1.mp3", "g-2.mp3"]
    assert names(first["c"], tmp_path) == ["c-1.mp3", "c-2.mp3"]
    assert names(first["m"], tmp_path) == ["m-1.mp3", "m-2.mp3"]
    assert names(first["l"], tmp_path) == ["l.json"]
    lyrics = json.loads((tmp_path / "out" / "l.json").read_text())
    assert len(lyrics["variants"]) == 2
    task_id = first["g"].task_id
    assert task_id is not None
    async with session(emulator) as s:
        audio_id = (await s.suno.task(task_id).wait()).tracks[0].id
    pair = {"task_id": task_id, "audio_id": audio_id}
    second = await run(emulator, [
        {"id": "s", "service": "suno", "op": "stems", **pair},
        {"id": "w", "service": "suno", "op": "wav", "out": "song.wav", **pair},
        {"id": "v", "service": "suno", "op": "video", "out": "song.mp4", **pair},
        {"id": "t", "service": "suno", "op": "timestamped-lyrics", "out": "words.json", **pair},
        {"id": "p", "service": "suno", "op": "persona", "name": "Rainy",
         "description": "soft folk", "vocal_end": 20, "out": "persona.json", **pair},
    ], tmp_path)
    assert names(second["s"], tmp_path) == ["s/instrumental.mp3", "s/vocals.mp3"]
    assert names(second["w"], tmp_path) == ["song.wav"]
    assert (tmp_path / "out" / "song.mp4").read_bytes()[4:8] == b"ftyp"
    words = json.loads((tmp_path / "out" / "words.json").read_text())
    assert [w["word"] for w in words["words"]][:2] == ["rain ", "on "]
    assert json.loads((tmp_path / "out" / "persona.json").read_text())["persona_id"]
    midi = await run(emulator, [{"id": "x", "service": "suno", "op": "midi",
                                 "task_id": second["s"].task_id, "out": "notes.json"}],
                     tmp_path)
    assert names(midi["x"], tmp_path) == ["notes.json"]
    assert json.loads((tmp_path / "out" / "notes.json").read_text())["instruments"]
    for op in ("generate", "upload_cover", "mashup", "lyrics", "stems", "wav", "video",
               "persona", "midi"):
        assert emulator.counters.paid(operation=f"suno.{op}") == 1, op


async def _finished_track(emulator: Emulator, tmp_path: Path) -> dict[str, str]:
    first = await run(emulator, [{"id": "g", "service": "suno", "op": "generate",
                                  "prompt": "rain on the road"}], tmp_path)
    task_id = first["g"].task_id
    assert task_id is not None
    async with session(emulator) as s:
        audio_id = (await s.suno.task(task_id).wait()).tracks[0].id
    return {"task_id": task_id, "audio_id": audio_id}


async def test_a_second_wav_job_follows_the_first_conversion(emulator: Emulator,
                                                             tmp_path: Path) -> None:
    """The service answers 409 "already exists" to a second conversion: the batch finds the
    existing one (the operation declares how) instead of failing, and pays once."""
    pair = await _finished_track(emulator, tmp_path)
    first = await run(emulator, [{"id": "w1", "service": "suno", "op": "wav", "out": "a.wav",
                                  **pair}], tmp_path)
    second = await run(emulator, [{"id": "w2", "service": "suno", "op": "wav", "out": "b.wav",
                                   **pair}], tmp_path)
    assert names(first["w1"], tmp_path) == ["a.wav"] and names(second["w2"], tmp_path) == \
        ["b.wav"]
    assert second["w2"].task_id == first["w1"].task_id
    assert (tmp_path / "out" / "a.wav").read_bytes() == (tmp_path / "out" / "b.wav").read_bytes()
    assert emulator.counters.paid(operation="suno.wav") == 1


async def test_stems_appear_all_or_not_at_all(emulator: Emulator, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from aiomusic import DownloadError
    from aiomusic.batch import _execute

    pair = await _finished_track(emulator, tmp_path)
    out = tmp_path / "out"
    (out / ".s.0123abcd.partial").mkdir(parents=True)  # left by a run that was killed
    (out / ".s.0123abcd.partial" / "vocals.mp3").write_bytes(b"half")
    real = _execute.download_url
    calls: list[str] = []

    async def second_fails(*args: Any, **kwargs: Any) -> Any:
        calls.append(str(args[2]))
        if len(calls) == 2:
            raise DownloadError("the connection dropped for good", url=str(args[1]))
        return await real(*args, **kwargs)

    monkeypatch.setattr(_execute, "download_url", second_fails)
    failed = await run(emulator, [{"id": "s", "service": "suno", "op": "stems", **pair}],
                       tmp_path)
    assert failed["s"].status == "failed" and len(calls) == 2
    # the first stem was complete, yet no folder appears: all or nothing; the leftover of
    # the killed run is gone too
    assert sorted(p.name for p in out.iterdir()) == ["g-1.mp3", "g-2.mp3"]  # the parent's
    monkeypatch.setattr(_execute, "download_url", real)
    done = await run(emulator, [{"id": "s", "service": "suno", "op": "stems", **pair}],
                     tmp_path)
    assert names(done["s"], tmp_path) == ["s/instrumental.mp3", "s/vocals.mp3"]
