"""MiniMax music-01 through a real session against the emulator over loopback HTTP."""

from __future__ import annotations

import errno
import hashlib
import io
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import mutagen
import pytest

from aiomusic import (
    AudioDecodeError,
    AudioFormat,
    AudioSetting,
    AudioValidationError,
    BadRequestError,
    DeadlineExceededError,
    InputError,
    LaneConfig,
    LaneKind,
    MusicSession,
    Purpose,
    RequestStarted,
    RetryPolicy,
    Service,
    SubmissionUnknownError,
)
from aiomusic._io import _files
from aiomusic.emulator import Emulator

from .conftest import make_wav

pytestmark = pytest.mark.anyio
KEY = "sk-minimax-test"
FAST = RetryPolicy(base_delay=0.01, max_delay=0.05, maintenance_delay=0.05)
LYRICS = "##Side by side, through thick and thin,\n\nFriends forever, me and you!##"


def session(emulator: Emulator, **kw: object) -> MusicSession:
    return MusicSession(aimlapi_key=KEY, minimax_key=KEY, base_url=emulator.url,
                        retry=kw.pop("retry", FAST), **kw)  # type: ignore[arg-type]


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("purpose", list(Purpose))
async def test_upload_each_purpose(emulator: Emulator, reference_wav: Path,
                                   purpose: Purpose) -> None:
    async with session(emulator) as s:
        ref = await s.minimax.upload_reference(reference_wav, purpose=purpose)
    assert ref.purpose is purpose
    assert ref.trace_id
    if purpose in (Purpose.SONG, Purpose.VOICE):
        assert ref.voice_id and re.fullmatch(r"vocal-\d{16}-\w{8}", ref.voice_id)
    else:
        assert ref.voice_id is None
    if purpose in (Purpose.SONG, Purpose.INSTRUMENTAL):
        assert ref.instrumental_id and ref.instrumental_id.startswith("instrumental-")
    else:
        assert ref.instrumental_id is None


async def test_upload_sources_bytes_file_object_and_async_iterable(
        emulator: Emulator, reference_wav: Path) -> None:
    data = reference_wav.read_bytes()

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(data), 10_000):
            yield data[i:i + 10_000]

    handle = io.BytesIO(b"JUNK" + data)
    handle.seek(4)
    async with session(emulator) as s:
        for source in (data, handle, chunks()):
            ref = await s.minimax.upload_reference(source, purpose="voice", name="mine")
            assert ref.voice_id
    assert handle.tell() == 4  # a file object is left where it was


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        pytest.param(lambda: make_wav(8.0), "lasts 8.0 s", id="too-short"),
        pytest.param(lambda: make_wav(12.0)[:-40_000], "truncated", id="truncated"),
        pytest.param(lambda: b"ID3 not really an mp3" * 100, "not WAV or MP3", id="not-audio"),
        pytest.param(lambda: b"", "empty", id="empty"),
    ],
)
async def test_bad_references_are_refused_before_sending(
        emulator: Emulator, tmp_path: Path, content: object, problem: str) -> None:
    path = tmp_path / "ref.mp3"
    path.write_bytes(content())  # type: ignore[operator]
    async with session(emulator) as s:
        with pytest.raises(AudioValidationError, match=problem) as info:
            await s.minimax.upload_reference(path, purpose="song")
    assert "ref.mp3" in str(info.value)
    assert sum(emulator.counters.requests.values()) == 0


async def test_bad_upload_arguments(emulator: Emulator, reference_wav: Path) -> None:
    async with session(emulator) as s:
        with pytest.raises(InputError, match="purpose"):
            await s.minimax.upload_reference(reference_wav, purpose="vocals")
        with pytest.raises(InputError, match="no such file"):
            await s.minimax.upload_reference(reference_wav.with_name("nope.wav"),
                                             purpose="song")
        with pytest.raises(InputError, match="unsupported"):
            await s.minimax.upload_reference(12, purpose="song")  # type: ignore[arg-type]


async def _ids(s: MusicSession, reference_wav: Path) -> tuple[str, str]:
    ref = await s.minimax.upload_reference(reference_wav, purpose="song")
    assert ref.voice_id and ref.instrumental_id
    return ref.voice_id, ref.instrumental_id


@pytest.mark.parametrize(("fmt", "rate"), [(AudioFormat.MP3, 44100), (AudioFormat.WAV, 32000),
                                           (AudioFormat.PCM, 16000)])
async def test_generate_each_format_to_a_path(emulator: Emulator, reference_wav: Path,
                                              tmp_path: Path, fmt: AudioFormat,
                                              rate: int) -> None:
    dest = tmp_path / f"song.{fmt.value}"
    async with session(emulator) as s:
        voice, instrumental = await _ids(s, reference_wav)
        result = await s.minimax.generate(
            dest, lyrics=LYRICS, refer_voice=voice, refer_instrumental=instrumental,
            audio_setting=AudioSetting(format=fmt, sample_rate=rate, bitrate=128000))
    data = dest.read_bytes()
    assert result.path == dest
    assert result.bytes_written == len(data) == result.extra_info.size
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert result.extra_info.sample_rate == rate
    assert result.duration is not None and result.duration > 1
    if fmt is not AudioFormat.PCM:
        audio = mutagen.File(dest)
        assert audio is not None
        assert audio.info.length == pytest.approx(result.duration, abs=0.1)
        assert audio.info.sample_rate == rate
    assert leftovers(tmp_path) == [dest.name]


async def test_generate_on_minimax_native_paths(emulator: Emulator, reference_wav: Path,
                                                tmp_path: Path) -> None:
    async with session(emulator, minimax_via="minimax") as s:
        ref = await s.minimax.upload_reference(reference_wav, purpose="instrumental")
        assert ref.instrumental_id
        result = await s.minimax.generate(tmp_path / "a.mp3", lyrics=None,
                                          refer_instrumental=ref.instrumental_id)
    assert result.bytes_written > 0
    assert emulator.counters.requests["/v1/music_generation"] == 1


async def test_generate_to_file_object_and_stream(emulator: Emulator, reference_wav: Path
                                                  ) -> None:
    out = io.BytesIO()
    async with session(emulator) as s:
        voice, _ = await _ids(s, reference_wav)
        to_file = await s.minimax.generate(out, lyrics=LYRICS, refer_voice=voice)
        received = bytearray()
        async with s.minimax.stream(lyrics=LYRICS, refer_voice=voice) as audio:
            async for chunk in audio:
                received += chunk
    assert to_file.path is None
    assert to_file.sha256 == hashlib.sha256(out.getvalue()).hexdigest()
    assert audio.result is not None
    assert audio.result.sha256 == hashlib.sha256(received).hexdigest()
    assert bytes(received) == out.getvalue()  # deterministic from the same inputs


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        pytest.param({"lyrics": "x" * 601, "refer_voice": "v"}, "lyrics", id="long-lyrics"),
        pytest.param({"lyrics": "   ", "refer_voice": "v"}, "lyrics", id="blank-lyrics"),
        pytest.param({"lyrics": 5, "refer_voice": "v"}, "lyrics", id="lyrics-type"),
        pytest.param({"lyrics": "la"}, "refer_voice", id="no-reference"),
        pytest.param({"lyrics": "la", "refer_voice": ""}, "refer_voice", id="empty-ref"),
        pytest.param({"lyrics": "la", "refer_voice": "v", "audio_setting": {"format": "mp3"}},
                     "audio_setting", id="setting-type"),
    ],
)
async def test_generate_arguments_checked_before_sending(
        emulator: Emulator, tmp_path: Path, kwargs: dict[str, object], field: str) -> None:
    async with session(emulator) as s:
        with pytest.raises(InputError) as info:
            await s.minimax.generate(tmp_path / "x.mp3", **kwargs)  # type: ignore[arg-type]
    assert info.value.field == field
    assert sum(emulator.counters.requests.values()) == 0


def test_audio_setting_enums() -> None:
    with pytest.raises(ValueError, match="sample_rate"):
        AudioSetting(sample_rate=22050)
    with pytest.raises(ValueError, match="bitrate"):
        AudioSetting(bitrate=96000)
    with pytest.raises(ValueError, match="flac"):
        AudioSetting(format="flac")  # type: ignore[arg-type]


async def test_unknown_reference_is_refused_by_the_service(emulator: Emulator,
                                                           tmp_path: Path) -> None:
    async with session(emulator) as s:
        with pytest.raises(BadRequestError) as info:
            await s.minimax.generate(tmp_path / "x.mp3", lyrics=LYRICS,
                                     refer_voice="vocal-0000000000000000-nothere")
    assert info.value.provider_code == 2013
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        pytest.param("invalid_hex", AudioDecodeError, id="invalid-hex"),
        pytest.param("odd_length_hex", AudioDecodeError, id="odd-hex"),
        pytest.param("truncated_body", SubmissionUnknownError, id="truncated"),
        pytest.param("reset_mid_body", SubmissionUnknownError, id="reset-mid-body"),
        pytest.param("reset_before_answer", SubmissionUnknownError, id="reset-before-answer"),
        pytest.param("malformed_json", SubmissionUnknownError, id="malformed-json"),
    ],
)
async def test_generate_faults_leave_no_file_and_are_not_resent(
        emulator: Emulator, reference_wav: Path, tmp_path: Path, fault: str,
        error: type[Exception]) -> None:
    async with session(emulator) as s:
        voice, _ = await _ids(s, reference_wav)
        emulator.inject(fault, operation="aiml.generate")
        with pytest.raises(error):
            await s.minimax.generate(tmp_path / "song.mp3", lyrics=LYRICS, refer_voice=voice)
    assert leftovers(tmp_path) == []
    assert emulator.counters.paid(operation="aiml.generate") == 1  # charged once, never twice


@pytest.mark.parametrize("fault", ["rate_limit", "maintenance", "server_error"])
async def test_definite_refusals_are_retried(emulator: Emulator, reference_wav: Path,
                                             tmp_path: Path, fault: str) -> None:
    async with session(emulator) as s:
        voice, _ = await _ids(s, reference_wav)
        emulator.inject(fault, operation="aiml.generate", count=2)
        result = await s.minimax.generate(tmp_path / "song.mp3", lyrics=LYRICS,
                                          refer_voice=voice)
    assert result.bytes_written > 0
    assert emulator.counters.fired(fault) == 2
    assert emulator.counters.paid(operation="aiml.generate") == 1


async def test_upload_is_retried_after_a_reset(emulator: Emulator, reference_wav: Path) -> None:
    async with session(emulator) as s:
        emulator.inject("reset_before_answer", operation="aiml.upload")
        ref = await s.minimax.upload_reference(reference_wav, purpose="voice")
    assert ref.voice_id
    assert emulator.counters.requests["/v2/generate/audio/minimax/upload"] == 2


async def test_cancelling_100_generations_leaves_nothing(emulator: Emulator,
                                                         reference_wav: Path,
                                                         tmp_path: Path) -> None:
    started = 0

    def count(event: object) -> None:
        nonlocal started
        started += isinstance(event, RequestStarted)

    lanes = {"aimlapi.submit": LaneConfig(max_concurrency=100, initial_concurrency=100)}
    async with session(emulator, lanes=lanes, on_event=count) as s:
        voice, _ = await _ids(s, reference_wav)
        emulator.inject("slow_drip", operation="aiml.generate", count=100)
        with anyio.move_on_after(0.5):
            async with anyio.create_task_group() as tg:
                for i in range(100):
                    tg.start_soon(lambda i=i: s.minimax.generate(
                        tmp_path / f"s{i}.mp3", lyrics=LYRICS, refer_voice=voice))
        assert started >= 100 + 1  # the upload and every generation were in flight
        assert s.lane(Service.AIMLAPI, LaneKind.SUBMIT).in_flight == 0  # permits released
        pool = s._client._transport._pool  # type: ignore[union-attr]
        busy = [c for c in pool.connections if not (c.is_idle() or c.is_closed())]
        assert busy == []  # no connection checked out
    assert leftovers(tmp_path) == []  # no file, no temporary file


async def test_stream_stopped_early_closes_cleanly(emulator: Emulator, reference_wav: Path
                                                   ) -> None:
    async with session(emulator) as s:
        voice, _ = await _ids(s, reference_wav)
        emulator.inject("slow_drip", operation="aiml.generate")
        async with s.minimax.stream(lyrics=LYRICS, refer_voice=voice) as audio:
            async for _chunk in audio:
                break
        assert audio.result is None  # abandoned mid-way, not read to the end
        # the session still works afterwards
        ref = await s.minimax.upload_reference(reference_wav, purpose="voice")
        assert ref.voice_id


async def test_slow_drip_cannot_hold_a_call_past_its_deadline(
        emulator: Emulator, reference_wav: Path, tmp_path: Path) -> None:
    async with session(emulator) as s:
        voice, _ = await _ids(s, reference_wav)
        emulator.inject("slow_drip", operation="aiml.generate")
        with pytest.raises(SubmissionUnknownError) as info:
            await s.minimax.generate(tmp_path / "late.mp3", lyrics=LYRICS, refer_voice=voice,
                                     timeout=0.2)
        assert info.value.reason == "deadline"
        emulator.inject("slow_drip", operation="aiml.upload")
        with pytest.raises(DeadlineExceededError):
            await s.minimax.upload_reference(reference_wav, purpose="voice", timeout=0.2)
    assert leftovers(tmp_path) == []
    assert emulator.counters.paid(operation="aiml.generate") == 1


async def test_long_song_is_written_in_batches_and_a_full_disk_loses_nothing(
        emulator: Emulator, reference_wav: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    size = 3 << 20  # several write batches: decoding runs one batch ahead of the disk
    async with httpx.AsyncClient(headers={"X-Emulator-Audio-Bytes": str(size)}) as client, \
            session(emulator, http_client=client) as s:
        voice, _ = await _ids(s, reference_wav)
        dest = tmp_path / "long.mp3"
        result = await s.minimax.generate(dest, lyrics=LYRICS, refer_voice=voice)
        data = dest.read_bytes()
        assert result.bytes_written == len(data) == result.extra_info.size >= size
        assert result.sha256 == hashlib.sha256(data).hexdigest()

        batches: list[int] = []
        real = _files._write_all

        def fills_up(fd: int, pieces: list[bytes], digest: Any) -> int:
            batches.append(len(pieces))
            if len(batches) > 1:
                raise OSError(errno.ENOSPC, "No space left on device")
            return real(fd, pieces, digest)

        monkeypatch.setattr(_files, "_write_all", fills_up)
        with pytest.raises(OSError, match="No space") as caught:
            await s.minimax.generate(tmp_path / "full.mp3", lyrics=LYRICS, refer_voice=voice)
        assert type(caught.value) is OSError  # the disk's own error, not a group
        assert len(batches) == 2
    assert leftovers(tmp_path) == ["long.mp3"]
    assert emulator.counters.requests["/v2/generate/audio/minimax/generate"] == 2  # not re-sent
