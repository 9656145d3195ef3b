"""The current MiniMax models through a real session: the emulator over loopback HTTP."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import mutagen
import pytest

from aiomusic import (
    AudioSetting,
    AudioValidationError,
    DeadlineExceededError,
    Event,
    InputError,
    LinkDownloadError,
    MusicLink,
    MusicSession,
    PermissionDeniedError,
    Progress,
    RequestStarted,
    SongResult,
    SubmissionUnknownError,
    UsageLimitError,
)
from aiomusic.emulator import Emulator, EmulatorConfig, Limits, Timings
from aiomusic.emulator._audio import render
from aiomusic.minimax import _catalog as catalog
from aiomusic.minimax import _music_parts
from aiomusic.minimax._ops import LyricsParams, SongParams
from aiomusic.testing import emulator_factory  # noqa: F401 - a fixture

from .conftest import make_flac
from .reliability_helpers import FAST, assert_released, partial_files

pytestmark = pytest.mark.anyio
KEY = "sk-music-test-key"
LYRICS = "[Verse]\nStreetlights hum a tune\n[Chorus]\nWe run, we run"
SONG = {"prompt": "indie folk, warm, acoustic guitar", "lyrics": LYRICS}


def reference(seconds: float) -> bytes:
    """A small real MP3 (16 kHz mono) lasting ``seconds``."""
    return render(7, seconds, fmt="mp3", sample_rate=16000, channels=1, bitrate=64000).data


def session(emulator: Emulator, key: str = KEY, **kw: Any) -> MusicSession:
    return MusicSession(minimax_key=key, base_url=emulator.url, retry=kw.pop("retry", FAST),
                        allow_http_hosts=("127.0.0.1",), **kw)


def paid(emulator: Emulator, operation: str = "minimax.generate") -> int:
    return emulator.counters.paid(operation=operation)


# -- songs --------------------------------------------------------------------------------------


async def test_a_song_into_a_path(emulator: Emulator, tmp_path: Path) -> None:
    seen: list[Event] = []
    dest = tmp_path / "song.wav"
    async with session(emulator, on_event=seen.append) as s:
        result = await s.minimax.generate_song(
            dest, **SONG, audio_setting=AudioSetting(format="wav", sample_rate=24000, channel=1))
        assert_released(s)
    data = dest.read_bytes()
    assert isinstance(result, SongResult)
    assert (result.path, result.model, result.streamed, result.time_to_first_audio) == (
        dest, "music-2.6", False, None)
    assert result.bytes_written == len(data) == result.extra_info.size
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert (result.extra_info.sample_rate, result.extra_info.music_channel) == (24000, 1)
    assert mutagen.File(dest).info.sample_rate == 24000
    started = [e for e in seen if isinstance(e, RequestStarted)]
    assert [(e.operation, e.lane, e.paid, e.key) for e in started] == [
        ("minimax.song", "minimax.submit", True, str(dest))]
    assert paid(emulator) == 1


async def test_a_streamed_song_into_a_path_and_a_file_object(emulator: Emulator,
                                                             tmp_path: Path) -> None:
    seen: list[Event] = []
    buffer = io.BytesIO()
    async with session(emulator, on_event=seen.append) as s:
        to_path = await s.minimax.generate_song(tmp_path / "a.mp3", **SONG, stream=True)
        to_file = await s.minimax.generate_song(buffer, **SONG, stream=True)
    assert to_path.streamed and to_path.time_to_first_audio is not None
    assert to_path.time_to_first_audio >= 0
    assert to_file.bytes_written == len(buffer.getvalue()) == to_path.bytes_written
    assert buffer.getvalue() == (tmp_path / "a.mp3").read_bytes()  # same inputs, same song
    stages = [(e.stage, e.key) for e in seen if isinstance(e, Progress)]
    assert ("first-audio", str(tmp_path / "a.mp3")) in stages
    assert ("streamed", str(tmp_path / "a.mp3")) in stages
    assert ("first-audio", "") in stages  # the file object's
    assert leftovers(tmp_path) == ["a.mp3"]


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("stream", [True, False], ids=["sse", "hex"])
async def test_stream_song_hands_the_audio_on(emulator: Emulator, stream: bool) -> None:
    received = bytearray()
    async with session(emulator) as s:
        async with s.minimax.stream_song(prompt="dream pop", is_instrumental=True,
                                         stream=stream) as audio:
            async for chunk in audio:
                received += chunk
        assert_released(s)
    assert audio.result is not None
    assert isinstance(audio.result, SongResult)
    assert audio.result.sha256 == hashlib.sha256(received).hexdigest()
    assert audio.result.bytes_written == len(received) == audio.result.extra_info.size
    assert (audio.result.time_to_first_audio is not None) is stream


async def test_leaving_a_stream_early_abandons_it_cleanly(emulator: Emulator) -> None:
    async with session(emulator) as s:
        async with s.minimax.stream_song(**SONG, model="music-2.6-free") as audio:
            async for _ in audio:
                break
        assert audio.result is None
        assert_released(s)
    assert paid(emulator) == 1


async def test_a_lyrics_optimizer_song_on_a_free_model_runs_in_the_free_lane(
        emulator: Emulator, tmp_path: Path) -> None:
    seen: list[Event] = []
    async with session(emulator, on_event=seen.append) as s:
        await s.minimax.generate_song(tmp_path / "a.mp3", prompt="summer", lyrics_optimizer=True,
                                      model="music-2.6-free")
    assert [e.lane for e in seen if isinstance(e, RequestStarted)] == ["minimax.free"]


async def test_an_unknown_model_is_sent_with_a_warning(emulator: Emulator, tmp_path: Path,
                                                       caplog: pytest.LogCaptureFixture,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(catalog, "_warned", set())
    async with session(emulator) as s:
        with caplog.at_level(logging.WARNING, logger="aiomusic"):
            result = await s.minimax.generate_song(tmp_path / "a.mp3", **SONG,
                                                   model="music-3.0")
    assert result.model == "music-3.0"
    assert any("'music-3.0' is not one aiomusic knows" in r.getMessage()
               for r in caplog.records)


@pytest.mark.parametrize(("kwargs", "fields"), [
    pytest.param({"lyrics": None}, ["lyrics"], id="no-lyrics"),
    pytest.param({"is_instrumental": True, "prompt": None},
                 ["is_instrumental", "prompt"], id="instrumental"),
    pytest.param({"stream": True, "output_format": "url", "prompt": "p" * 2001},
                 ["prompt", "output_format"], id="two-problems"),
    pytest.param({"audio_setting": {"format": "mp3"}}, ["audio_setting"], id="setting-type"),
])
async def test_arguments_are_checked_before_sending(emulator: Emulator, tmp_path: Path,
                                                    kwargs: dict[str, Any],
                                                    fields: list[str]) -> None:
    async with session(emulator) as s:
        with pytest.raises(InputError) as info:
            await s.minimax.generate_song(tmp_path / "a.mp3", **(SONG | kwargs))
    problems = getattr(info.value, "problems", ())
    assert [p.field for p in problems] == fields if problems else [info.value.field] == fields
    assert sum(emulator.counters.requests.values()) == 0


# -- links --------------------------------------------------------------------------------------


async def test_url_output_is_downloaded_at_once(emulator: Emulator, tmp_path: Path) -> None:
    dest = tmp_path / "song.mp3"
    seen: list[Event] = []
    async with session(emulator, on_event=seen.append) as s:
        result = await s.minimax.generate_song(dest, **SONG, output_format="url", timeout=30)
    assert result.link is not None
    assert result.bytes_written == dest.stat().st_size == result.extra_info.size
    assert result.sha256 == hashlib.sha256(dest.read_bytes()).hexdigest()
    hours = (result.link.expires_at - dt.datetime.now(dt.UTC)) / dt.timedelta(hours=1)
    assert 23.9 < hours <= 24
    assert [e.stage for e in seen if isinstance(e, Progress)] == ["linked", "downloaded"]


async def test_a_link_alone_and_its_download_later(emulator: Emulator, tmp_path: Path) -> None:
    async with session(emulator) as s:
        link = await s.minimax.song_link(prompt="ambient", is_instrumental=True)
        assert isinstance(link, MusicLink)
        assert not link.expired()
        got = await s.minimax.download_link(link, tmp_path / "later.mp3")
        assert got.bytes_written == link.extra_info.size
        old = MusicLink(url=link.url, expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(1),
                        model="music-2.6")
        with pytest.raises(InputError, match="MiniMax keeps songs 24 hours"):
            await s.minimax.download_link(old, tmp_path / "x.mp3")
        with pytest.raises(InputError, match="downloads into a path"):
            await s.minimax.generate_song(io.BytesIO(), **SONG, output_format="url")
        with pytest.raises(TypeError, match="needs a destination"):
            await s.minimax.run(SongParams(**SONG))


async def test_a_failed_download_keeps_the_paid_link(emulator: Emulator, tmp_path: Path) -> None:
    async with session(emulator) as s:
        emulator.inject("reset_before_answer", operation="minimax.files", count=50)
        with pytest.raises(LinkDownloadError, match="generated \\(and paid for\\)") as info:
            await s.minimax.generate_song(tmp_path / "a.mp3", **SONG, output_format="url")
        emulator.app.faults.clear()
        again = await s.minimax.download_link(info.value.link, tmp_path / "a.mp3")
    assert again.bytes_written > 0
    assert paid(emulator) == 1


async def test_a_deadline_passed_before_the_download_keeps_the_paid_link(
        emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _music_parts._remaining(None) is None
    # the generation spent the whole deadline: nothing of it is left for the download
    monkeypatch.setattr(_music_parts, "_remaining", lambda deadline: 1e-9)
    async with session(emulator) as s:
        with pytest.raises(LinkDownloadError, match="deadline") as info:
            await s.minimax.generate_song(tmp_path / "a.mp3", **SONG, output_format="url",
                                          timeout=30)
        assert isinstance(info.value.__cause__, DeadlineExceededError)
        song = await s.minimax.download_link(info.value.link, tmp_path / "a.mp3")
    assert song.bytes_written > 0
    assert paid(emulator) == 1


# -- covers -------------------------------------------------------------------------------------


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    for i in range(0, len(data), 10_000):
        yield data[i:i + 10_000]


@pytest.mark.parametrize("kind", ["path", "bytes", "file", "async", "flac"])
async def test_a_cover_of_a_local_track(emulator: Emulator, tmp_path: Path, kind: str) -> None:
    data = make_flac(8.0) if kind == "flac" else reference(8.0)
    path = tmp_path / "ref.audio"
    path.write_bytes(data)
    source: Any = {"path": path, "flac": path, "bytes": data, "file": io.BytesIO(data),
                   "async": _chunks(data)}[kind]
    async with session(emulator) as s:
        result = await s.minimax.cover(tmp_path / "cover.mp3", source, prompt="bossa nova",
                                       seed=42, model="music-cover-free")
    assert result.bytes_written > 0
    assert result.model == "music-cover-free"
    assert paid(emulator) == 1


async def test_a_cover_of_a_url_streamed(emulator: Emulator) -> None:
    async with session(emulator, suno_key=KEY) as s:
        stored = await s.suno.upload(reference(7.0), upload_path="refs", name="a.mp3")
        async with s.minimax.stream_cover(stored.download_url, prompt="lo-fi") as audio:
            received = b"".join([chunk async for chunk in audio])
    assert audio.result is not None
    assert len(received) == audio.result.bytes_written > 0


@pytest.mark.parametrize(("data", "problem"), [
    pytest.param(lambda: reference(5.0), "MiniMax needs more than 6 s", id="too-short"),
    pytest.param(lambda: make_flac(400), "at most 6 min", id="too-long"),
    pytest.param(lambda: make_flac(60, frames=b"\xff\xf8" + bytes(50 * 1024 * 1024)),
                 "MiniMax takes at most 50 MB", id="too-large"),
    pytest.param(lambda: b"not audio at all" * 100, "not WAV or MP3", id="not-audio"),
])
async def test_a_bad_reference_is_refused_before_sending(emulator: Emulator, tmp_path: Path,
                                                         data: Any, problem: str) -> None:
    path = tmp_path / "ref.mp3"
    path.write_bytes(data())
    async with session(emulator) as s:
        with pytest.raises(AudioValidationError, match=problem):
            await s.minimax.cover(tmp_path / "c.mp3", path, prompt="jazz")
    assert sum(emulator.counters.requests.values()) == 0


async def test_two_step_cover(emulator: Emulator, tmp_path: Path) -> None:
    ref = tmp_path / "ref.mp3"
    ref.write_bytes(reference(9.0))
    async with session(emulator) as s:
        features = await s.minimax.preprocess_cover(ref)
        assert features.feature_id.startswith("cover-feature-")
        assert features.lyrics.startswith("[Verse]")
        assert features.duration == pytest.approx(9.0, abs=0.2)
        lyrics = features.lyrics.replace("[Chorus]", "[Hook]")  # edited before generating
        song = await s.minimax.generate_song(tmp_path / "a.mp3", prompt="bossa nova",
                                             lyrics=lyrics, cover_feature_id=features.feature_id)
        cover = await s.minimax.cover(tmp_path / "b.mp3", prompt="jazz",
                                      cover_feature_id=features.feature_id)
    assert song.extra_info.duration_ms == cover.extra_info.duration_ms
    assert paid(emulator, "minimax.cover_preprocess") == 1
    assert paid(emulator) == 2


# -- lyrics and quota ---------------------------------------------------------------------------


async def test_lyrics_then_a_song(emulator: Emulator, tmp_path: Path) -> None:
    async with session(emulator) as s:
        written = await s.minimax.write_lyrics("a night drive", title="Night Drive")
        edited = await s.minimax.edit_lyrics(written.lyrics, prompt="make it sadder")
        chained = await s.minimax.write_song(tmp_path / "song.mp3", idea="a rainy morning",
                                             stream=True)
        quota = await s.minimax.quota()
    assert written.title == "Night Drive"
    assert len(written.style_tags) == 3
    assert edited.lyrics.startswith(written.lyrics)
    assert chained.song.path == tmp_path / "song.mp3"
    assert chained.song.time_to_first_audio is not None
    assert chained.lyrics.style_tags
    assert paid(emulator, "minimax.lyrics") == 3
    entry = quota.for_model("music-2.6")
    assert entry is not None and (entry.used, entry.remaining) == (1, 499)


async def test_run_takes_only_declared_parameters(emulator: Emulator) -> None:
    async with session(emulator) as s:
        with pytest.raises(TypeError, match="not the parameters"):
            await s.minimax.run(object())
        with pytest.raises(InputError, match="mode"):
            await s.minimax.run(LyricsParams(mode="rewrite"))
        with pytest.raises(TypeError, match="a path or a binary file object"):
            await s.minimax.run(SongParams(**SONG), 42)  # type: ignore[call-overload]


# -- refusals and fates -------------------------------------------------------------------------


@pytest.mark.parametrize(("key", "error", "advice"), [
    pytest.param("sk-plus-plan-key", PermissionDeniedError, "not on the key's Token Plan",
                 id="2061"),
    pytest.param("sk-quota-0-key", UsageLimitError, "session.minimax.quota()", id="1028"),
])
async def test_plan_and_quota_refusals_are_typed_and_not_retried(
        emulator: Emulator, tmp_path: Path, key: str, error: type[Exception],
        advice: str) -> None:
    async with session(emulator, key=key) as s:
        with pytest.raises(error, match=advice):
            await s.minimax.generate_song(tmp_path / "a.mp3", **SONG)
    assert emulator.counters.requests["/v1/music_generation"] == 1
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(("fault", "error"), [
    # an incomplete or unreadable answer to a paid request: its fate is unknown (issue 15)
    pytest.param("truncated_body", SubmissionUnknownError, id="cut-without-final"),
    pytest.param("reset_mid_body", SubmissionUnknownError, id="reset"),
    pytest.param("malformed_json", SubmissionUnknownError, id="malformed"),
    pytest.param("invalid_hex", Exception, id="invalid-hex"),
])
async def test_a_failed_stream_leaves_nothing_and_is_not_resent(
        emulator: Emulator, tmp_path: Path, fault: str, error: type[Exception]) -> None:
    async with session(emulator) as s:
        emulator.inject(fault, operation="minimax.generate")
        with pytest.raises(error):
            await s.minimax.generate_song(tmp_path / "a.mp3", **SONG, stream=True)
        assert_released(s)
    assert leftovers(tmp_path) == []
    assert partial_files(tmp_path) == []
    assert paid(emulator) == 1


async def test_a_refusal_before_any_work_is_retried(emulator: Emulator, tmp_path: Path) -> None:
    async with session(emulator) as s:
        emulator.inject("rate_limit", operation="minimax.generate", count=2)
        result = await s.minimax.generate_song(tmp_path / "a.mp3", **SONG, stream=True)
    assert result.bytes_written > 0
    assert paid(emulator) == 1


async def test_no_read_timeout_while_events_flow_but_a_silent_stream_fails(
        emulator_factory: Any, tmp_path: Path) -> None:  # noqa: F811 - the fixture
    # the stream takes 1.2 s, its first event comes after 0.36 s and the next every ~0.15 s:
    # longer than the 0.5 s read timeout in all, shorter between two events
    emu: Emulator = emulator_factory(EmulatorConfig(
        timings=Timings(generate=1.2), limits=Limits.off(), generate_audio_bytes=180_000))
    async with MusicSession(minimax_key=KEY, base_url=emu.url, timeout=0.5) as s:
        result = await s.minimax.generate_song(tmp_path / "a.mp3", **SONG, stream=True)
        assert result.bytes_written > 0
    silent: Emulator = emulator_factory(EmulatorConfig(timings=Timings(generate=1.0),
                                                       limits=Limits.off()))
    async with MusicSession(minimax_key=KEY, base_url=silent.url, timeout=0.2) as s:
        with pytest.raises(SubmissionUnknownError, match=r"sent nothing for 0\.2 s") as info:
            await s.minimax.generate_song(tmp_path / "b.mp3", **SONG, stream=True)
        assert info.value.reason == "read timeout"
    assert leftovers(tmp_path) == ["a.mp3"]


async def test_a_stream_reads_its_events_within_the_sessions_json_limits(
        emulator: Emulator, tmp_path: Path) -> None:
    from aiomusic import JsonLimits

    async with session(emulator, json_limits=JsonLimits(max_depth=1)) as s:
        # an unreadable answer to a paid request: its fate is unknown, and it is not re-sent
        with pytest.raises(SubmissionUnknownError, match="more than 1 deep"):
            await s.minimax.generate_song(tmp_path / "a.mp3", **SONG, stream=True)
    assert not (tmp_path / "a.mp3").exists()
    assert paid(emulator) == 1
