"""Odd wire shapes of music-01 answers, at the HTTP seam with respx."""

from __future__ import annotations

import binascii
import gzip
import io
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from aiomusic import (
    AudioDecodeError,
    InputError,
    MusicSession,
    RateLimitError,
    ResponseError,
    RetryPolicy,
    SubmissionUnknownError,
)

pytestmark = pytest.mark.anyio
BASE = "https://api.aimlapi.com"
GENERATE = f"{BASE}/v2/generate/audio/minimax/generate"
UPLOAD = f"{BASE}/v2/generate/audio/minimax/upload"
AUDIO = bytes(range(256)) * 40


def answer(audio: bytes = AUDIO, *, status: int = 2, size: int | None = None,
           extra: dict[str, Any] | None = None, **top: Any) -> dict[str, Any]:
    info = {"music_size": len(audio) if size is None else size, "music_duration": 1000,
            "music_sample_rate": 44100, "bitrate": 128000}
    return {"trace_id": "tr-1", "extra_info": info if extra is None else extra,
            "data": {"status": status, "audio": binascii.hexlify(audio).decode()},
            "base_resp": {"status_code": 0, "status_msg": "success"}, **top}


def session() -> MusicSession:
    return MusicSession(aimlapi_key="k", retry=RetryPolicy(base_delay=0, max_delay=0))


async def generate(tmp_path: Path) -> Any:
    async with session() as s:
        return await s.minimax.generate(tmp_path / "x.mp3", lyrics="la", refer_voice="v")


@respx.mock
async def test_gzip_answer_is_decoded(tmp_path: Path) -> None:
    body = gzip.compress(json.dumps(answer()).encode())
    respx.post(GENERATE).respond(200, content=body, headers={"Content-Encoding": "gzip"})
    result = await generate(tmp_path)
    assert (tmp_path / "x.mp3").read_bytes() == AUDIO
    assert result.bytes_written == len(AUDIO)
    assert respx.calls.last.request.headers["Accept-Encoding"] == "identity"


@respx.mock
async def test_http_429_then_success(tmp_path: Path) -> None:
    respx.post(GENERATE).mock(side_effect=[
        httpx.Response(429, json={"message": "Too Many Requests", "statusCode": 429},
                       headers={"Retry-After": "0"}),
        httpx.Response(200, json=answer()),
    ])
    result = await generate(tmp_path)
    assert result.bytes_written == len(AUDIO)


@respx.mock
async def test_http_error_with_unreadable_body(tmp_path: Path) -> None:
    respx.post(GENERATE).respond(429, content=b"<html>slow down</html>")
    async with session() as s:
        with pytest.raises(RateLimitError):
            await s.minimax.generate(tmp_path / "x.mp3", lyrics="la", refer_voice="v",
                                     retry=RetryPolicy.never())


@pytest.mark.parametrize(
    ("body", "error", "match"),
    [
        # a paid answer that cannot be used: its fate is unknown (it may have been charged)
        pytest.param(answer(status=1), SubmissionUnknownError, "status 1", id="in-progress"),
        pytest.param(answer(size=len(AUDIO) + 5), AudioDecodeError, "extra_info says",
                     id="size-mismatch"),
        pytest.param({**answer(), "data": None}, SubmissionUnknownError, "no data.audio",
                     id="no-audio"),
        pytest.param({**answer(), "data": {"status": 2, "audio": None}},
                     SubmissionUnknownError, "no data.audio", id="null-audio"),
    ],
)
@respx.mock
async def test_odd_answers_are_typed_and_leave_no_file(
        tmp_path: Path, body: dict[str, Any], error: type[Exception], match: str) -> None:
    respx.post(GENERATE).respond(200, json=body)
    with pytest.raises(error, match=match):
        await generate(tmp_path)
    assert list(tmp_path.iterdir()) == []


@respx.mock
async def test_old_extra_info_naming_and_no_extra_info(tmp_path: Path) -> None:
    old = {"audio_length": 1500, "audio_size": len(AUDIO), "audio_sample_rate": 32000,
           "audio_bitrate": 128000}
    respx.post(GENERATE).mock(side_effect=[httpx.Response(200, json=answer(extra=old)),
                                           httpx.Response(200, json={**answer(),
                                                                     "extra_info": None})])
    first = await generate(tmp_path)
    assert (first.duration, first.extra_info.sample_rate) == (1.5, 32000)
    second = await generate(tmp_path)
    assert second.duration is None


@respx.mock
async def test_stream_failure_is_raised_typed_from_the_iteration() -> None:
    respx.post(GENERATE).respond(200, json=answer(size=1))
    async with session() as s, s.minimax.stream(lyrics="la", refer_voice="v") as audio:
        with pytest.raises(AudioDecodeError):
            async for _ in audio:
                pass
    assert audio.result is None
    assert isinstance(audio.error, AudioDecodeError)


@respx.mock
async def test_upload_answer_missing_a_promised_id(reference_wav: Path) -> None:
    respx.post(UPLOAD).respond(200, json={"voice_id": "vocal-1", "trace_id": "t",
                                          "base_resp": {"status_code": 0}})
    async with session() as s:
        with pytest.raises(ResponseError, match="instrumental_id"):
            await s.minimax.upload_reference(reference_wav, purpose="song")


async def test_destination_must_be_a_path_or_file() -> None:
    async with session() as s:
        with pytest.raises(TypeError, match="destination"):
            await s.minimax.generate(42, lyrics="la", refer_voice="v")  # type: ignore[arg-type]


class Unseekable(io.RawIOBase):
    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        raise OSError("pipe")


async def test_unseekable_and_bad_async_sources(reference_wav: Path) -> None:
    async def not_bytes() -> Any:
        yield "text"

    async with session() as s:
        with pytest.raises(InputError, match="not seekable"):
            await s.minimax.upload_reference(Unseekable(), purpose="voice")  # type: ignore[arg-type]
        with pytest.raises(InputError, match="yielded str"):
            await s.minimax.upload_reference(not_bytes(), purpose="voice")


@respx.mock
async def test_big_async_source_is_spooled_in_batches(tmp_path: Path) -> None:
    from .conftest import make_wav

    data = make_wav(80.0, rate=16000)  # ~2.5 MB: several spool batches
    route = respx.post(UPLOAD).respond(200, json={"voice_id": "vocal-1",
                                                  "base_resp": {"status_code": 0}})

    async def chunks() -> Any:
        for i in range(0, len(data), 300_000):
            yield data[i:i + 300_000]

    async with session() as s:
        ref = await s.minimax.upload_reference(chunks(), purpose="voice")
    assert ref.voice_id == "vocal-1"
    sent = route.calls.last.request.content
    assert data in sent  # the multipart body carries the file intact
