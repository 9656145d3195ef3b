"""``session.suno`` beyond Add Instrumental, against the emulator over loopback HTTP: every
operation by polling and by callbacks, local sources checked by content before anything is
uploaded or paid, the WAV 409 look-up, stems into one folder all or nothing."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aiomusic import (
    AudioValidationError,
    InputError,
    MusicSession,
    TaskFailedError,
    TaskStatus,
)
from aiomusic.callbacks import CallbackReceiver, WebhookVerifier
from aiomusic.emulator import Emulator, EmulatorConfig, Limits, Timings, sample_track
from aiomusic.suno import PollSchedule
from aiomusic.suno import _catalog as cat
from aiomusic.suno import _handles as handles
from aiomusic.suno._records import StemsRecord

from .reliability_helpers import FAST, NOWHERE, serve

pytestmark = pytest.mark.anyio
KEY = "sk-suno-family-test"
TINY = PollSchedule(initial=0.005, maximum=0.02)
NEVER = PollSchedule(initial=3600, maximum=3600, jitter=0)  # callbacks only
SONG = sample_track(12.0, format="mp3", seed=5)


def session(emulator: Emulator, **kw: Any) -> MusicSession:
    s = MusicSession(suno_key=KEY, base_url=emulator.url, allow_http_hosts=("127.0.0.1",),
                     retry=FAST, suno_callback_url=kw.pop("callback", NOWHERE), **kw)
    s.suno.poll_schedule = TINY
    return s


async def finished(s: MusicSession, **kw: Any) -> tuple[str, list[str]]:
    task = await s.suno.generate(**{"prompt": "a calm song about rain", "model": "V5", **kw})
    result = await task.wait()
    return task.task_id, [t.id for t in result.tracks]


def uploads(emulator: Emulator) -> int:
    return emulator.counters.requests.get("/api/file-stream-upload", 0)


async def test_the_generation_family_by_polling(emulator: Emulator, tmp_path: Path) -> None:
    song = tmp_path / "song.mp3"
    song.write_bytes(SONG)
    async with session(emulator) as s:
        task_id, tracks = await finished(s)
        cover = await s.suno.upload_cover(SONG, prompt="jazzy", model="V5")
        assert cover.upload is not None and cover.upload.mime_type == "audio/mpeg"
        started = [
            cover,
            await s.suno.upload_extend(song, default_param_flag=True, style="s", title="T",
                                       prompt="more", continue_at=5, model="V5"),
            await s.suno.add_vocals(str(song), prompt="la la", title="T", style="soul",
                                    negative_tags="metal"),
            await s.suno.mashup(song, cover.upload.download_url, prompt="blend"),
            await s.suno.replace_section(source=song, model="V5", prompt="new", tags="pop",
                                         title="T", infill_start=1, infill_end=8,
                                         full_lyrics="all"),
            await s.suno.sounds("rain on a tin roof", sound_tempo=80, sound_loop=True),
            await s.suno.extend(tracks[0], model="V5"),
        ]
        for task in started:
            result = await task.wait()
            assert len(result.tracks) == 2 and result.status is TaskStatus.SUCCESS
        assert (await started[-1].refresh()).parent_music_id == tracks[0]
        flac = await s.suno.upload_cover(b"fLaC" + bytes(4096), prompt="from flac")
        assert flac.upload is not None and flac.upload.mime_type == "audio/flac"
        files = await (await started[-2].wait()).download_all(tmp_path / "sounds")
        assert len(files) == 2 and all(f.bytes_written for f in files)
    counters = emulator.counters
    for op in ("generate", "upload_extend", "add_vocals", "mashup", "replace_section",
               "sounds", "extend"):
        assert counters.paid(operation=f"suno.{op}") == 1, op
    assert counters.paid(operation="suno.upload_cover") == 2
    assert uploads(emulator) == 6  # the mashup's URL source was not uploaded again
    assert task_id


async def test_local_sources_are_checked_before_any_upload_or_payment(
        emulator: Emulator, tmp_path: Path) -> None:
    text = tmp_path / "notes.mp3"
    text.write_bytes(b"definitely not audio, whatever the name says" * 10)
    long = sample_track(70.0, format="wav", seed=1)
    async with session(emulator) as s:
        with pytest.raises(InputError, match="not audio") as caught:
            await s.suno.upload_cover(text, prompt="x")
        assert caught.value.field == "source"
        with pytest.raises(InputError, match="not audio"):
            await s.suno.mashup(SONG, text, prompt="x")
        with pytest.raises(AudioValidationError, match="at most 1 min with V4_5ALL"):
            await s.suno.upload_cover(long, prompt="x", model="V4_5ALL")
        with pytest.raises(InputError, match="continue_at"):
            await s.suno.upload_extend(SONG, default_param_flag=True, style="s", title="T",
                                       prompt="p", continue_at=30)
        with pytest.raises(InputError) as caught:
            await s.suno.generate(custom_mode=True, style="x" * 1001, model="V5")
        problems = {p.field for p in caught.value.problems}  # type: ignore[attr-defined]
        assert problems == {"prompt", "style", "title"}
        with pytest.raises(InputError, match="no such file"):
            await s.suno.add_vocals(tmp_path / "missing.wav", prompt="p", title="t",
                                    style="s", negative_tags="n")
    assert uploads(emulator) == 0 and emulator.counters.paid() == 0


async def test_unknown_models_are_sent_with_one_warning(
        emulator: Emulator, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cat, "_warned", set())  # once per process: start afresh
    async with session(emulator) as s:
        with caplog.at_level(logging.WARNING, logger="aiomusic"):
            for _ in range(2):
                await (await s.suno.generate("x", model="V6")).wait()
    assert len([r for r in caplog.records if "'V6'" in r.getMessage()]) == 1


async def test_follow_ups_by_polling(emulator: Emulator, tmp_path: Path) -> None:
    async with session(emulator) as s:
        task_id, tracks = await finished(s, custom_mode=True, prompt="[Verse]\nRain falls",
                                         style="folk", title="Rain")
        stems = await s.suno.stems(task_id, tracks[0], type="split_stem")
        assert stems.source == (task_id, tracks[0])
        record = await stems.wait()
        assert isinstance(record, StemsRecord) and len(record.stems) == 12
        got = await stems.download(tmp_path / "stems")
        assert sorted(os.listdir(tmp_path / "stems")) == sorted(f"{n}.mp3" for n in record.stems)
        assert got.paths["drums"] == tmp_path / "stems" / "drums.mp3"
        assert all(r.bytes_written for r in got.files.values())
        assert [p.name for p in tmp_path.iterdir()] == ["stems"]  # no staging left

        wav = await s.suno.convert_wav(task_id, tracks[0])
        done = await wav.download(tmp_path / "song.wav")
        assert (tmp_path / "song.wav").read_bytes()[:4] == b"RIFF" and done.bytes_written

        vocal = await s.suno.stems(task_id, tracks[1])
        await vocal.wait()
        midi = await s.suno.midi(vocal.task_id)
        assert (await midi.wait()).instruments[0].name == "Drums"
        assert (await midi.save(tmp_path / "song.mid")).read_bytes()[:4] == b"MThd"

        video = await s.suno.music_video(task_id, tracks[0], author="me")
        clip = await video.download(tmp_path / "song.mp4")
        assert clip.content_type == "video/mp4"

        lyrics = await s.suno.lyrics("the sea at night")
        assert len((await lyrics.wait()).variants) == 2 and lyrics.record is not None
        assert lyrics.snapshot is not None and lyrics.snapshot.phase.value == "succeeded"
        assert (await lyrics.refresh()).variants == lyrics.record.variants

        timed = await s.suno.timestamped_lyrics(task_id, tracks[0])
        assert timed.audio_id == tracks[0]
        assert timed.to_lrc().splitlines() == [timed.to_lrc().splitlines()[0]]
        assert timed.to_lrc().endswith("Rain falls\n")

        persona = await s.suno.create_persona(task_id, tracks[0], name="Rainy",
                                              description="soft folk", vocal_end=15)
        sung = await s.suno.generate("[Verse] hi", custom_mode=True, style="folk",
                                     title="Again", persona_id=persona.persona_id)
        await sung.wait()
    counters = emulator.counters
    for op in ("stems", "wav", "midi", "video", "lyrics", "persona"):
        assert counters.paid(operation=f"suno.{op}") == (2 if op == "stems" else 1), op


async def test_a_second_wav_conversion_finds_the_first(emulator: Emulator) -> None:
    async with session(emulator) as s:
        task_id, tracks = await finished(s)
        first = await s.suno.convert_wav(task_id, tracks[0])
        again = await s.suno.convert_wav(task_id, tracks[0])  # this client remembers
        assert again.task_id == first.task_id
    async with session(emulator) as other:  # a new process: asks wav/record-info by track
        found = await other.suno.convert_wav(task_id, tracks[0])
        assert found.task_id == first.task_id and found.submitted_at is None
        assert (await found.wait()).url
    assert emulator.counters.paid(operation="suno.wav") == 1


async def test_stems_land_all_or_nothing(emulator: Emulator, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "stems"
    async with session(emulator) as s:
        task_id, tracks = await finished(s)
        stems = await s.suno.stems(task_id, tracks[0], type="split_stem")
        original = handles.download_url
        seen: list[str] = []

        async def flaky(*args: Any, **kw: Any) -> Any:
            seen.append(str(args[2]))
            if len(seen) == 7:
                raise OSError("disk full")
            return await original(*args, **kw)

        monkeypatch.setattr(handles, "download_url", flaky)
        with pytest.raises(OSError, match="disk full"):
            await stems.download(target)
        assert list(tmp_path.iterdir()) == []  # neither the folder nor its staging
        monkeypatch.setattr(handles, "download_url", original)
        await stems.download(target)
        before = sorted(os.listdir(target))
        with pytest.raises(FileExistsError):
            await stems.download(target)
        again = await stems.download(target, overwrite=True)
        assert sorted(os.listdir(again.folder)) == before and len(before) == 12
        assert [p.name for p in tmp_path.iterdir()] == ["stems"]


async def test_failures_and_resuming_by_id(emulator: Emulator) -> None:
    async with session(emulator) as s:
        task_id, tracks = await finished(s)
        emulator.inject("generate_audio_failed", operation="suno.wav")
        wav = await s.suno.convert_wav(task_id, tracks[0])
        with pytest.raises(TaskFailedError) as caught:
            await wav.wait()
        assert caught.value.status == "GENERATE_WAV_FAILED" and caught.value.error_code == 501
        emulator.inject("sensitive_word_error")
        with pytest.raises(TaskFailedError, match="SENSITIVE_WORD_ERROR"):
            await (await s.suno.lyrics("bad words")).wait()
        video = await s.suno.music_video(task_id, tracks[0])
        resumed = s.suno.follow(video.task_id, kind="mp4")
        assert isinstance(resumed, handles.VideoTask) and resumed.status is None
        assert (await resumed.wait()).url
        snaps = [snap.phase.value async for snap in s.suno.follow(video.task_id,
                                                                  kind="mp4").watch()]
        assert snaps == ["succeeded"]
        assert s.suno.follow(task_id).task_id == task_id
        with pytest.raises(InputError, match="kind"):
            s.suno.follow(task_id, kind="nope")
        with pytest.raises(InputError, match="task_id"):
            s.suno.follow(" ")
        assert "VideoTask" in repr(resumed)


# -- callbacks ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def signed() -> Iterator[Emulator]:
    config = EmulatorConfig(timings=Timings.instant(), limits=Limits.off(),
                            track_seconds=(3.0, 4.0), webhook_hmac_key="kie-hmac-key")
    with Emulator(config) as emu:
        yield emu


async def test_follow_ups_woken_by_their_callbacks(signed: Emulator) -> None:
    receiver = CallbackReceiver(verifier=WebhookVerifier("kie-hmac-key"))
    with serve(receiver) as url:
        async with session(signed) as s:
            s.suno.attach_receiver(receiver, url)
            task_id, tracks = await finished(s)
            s.suno.poll_schedule = NEVER  # from here on, only callbacks wake the tasks
            started = [await s.suno.stems(task_id, tracks[0]),
                       await s.suno.convert_wav(task_id, tracks[1]),
                       await s.suno.music_video(task_id, tracks[0]),
                       await s.suno.lyrics("a sea shanty")]
            with anyio_fail_after(20):
                for task in started:
                    await task.wait()
                    assert task._task.learnt_by == "callback"
            music = await s.suno.generate("x")
            with anyio_fail_after(20):
                await music.wait()
    assert receiver.refused == 0 and receiver.accepted >= 5
    kinds = {type(receiver.snapshot(t.task_id).record).__name__ for t in started}
    assert kinds == {"dict", "str", "tuple"}  # stems map, a URL, lyrics variants


async def test_a_receiver_refuses_callbacks_it_cannot_verify(signed: Emulator) -> None:
    receiver = CallbackReceiver(verifier=WebhookVerifier("another-key"))
    with serve(receiver) as url:
        async with session(signed) as s:
            s.suno.attach_receiver(receiver, url)
            task_id, tracks = await finished(s)  # polling still ends it
            await (await s.suno.convert_wav(task_id, tracks[0])).wait()
    assert receiver.refused >= 1 and receiver.accepted == 0


def anyio_fail_after(seconds: float) -> Any:
    import anyio

    return anyio.fail_after(seconds)
