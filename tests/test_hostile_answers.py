"""Hostile JSON answers: one bounded reader, tolerant numbers, strict success (issue 16).

Each test is one finding of the hostile-server review, answered at the HTTP seam with respx
or ``httpx.MockTransport`` (answers no contract allows, which the emulator never sends).
"""

from __future__ import annotations

import binascii
import copy
import gzip
import json
import tracemalloc
from pathlib import Path
from typing import Any

import brotli
import httpx
import pytest
import respx

from aiomusic import (
    AudioDecodeError,
    ContentPolicyError,
    EncodingError,
    JsonError,
    JsonLimits,
    MissingTracksError,
    MusicSession,
    ResponseError,
    RetryPolicy,
    SubmissionUnknownError,
    TaskStatus,
)
from aiomusic._core import _encoding, _json
from aiomusic._core._call import Call
from aiomusic._core._config import LaneKind, Service
from aiomusic.suno import _protocol as proto

from .test_suno_protocol import RECORD

pytestmark = pytest.mark.anyio
KEY = "sk-hostile-test-key"
GENERATE = "https://api.aimlapi.com/v2/generate/audio/minimax/generate"
SUNO = "https://api.sunoapi.org/api/v1"
AUDIO = b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes(range(256)) * 8
NEVER = RetryPolicy.never()


def generation(audio: bytes = AUDIO, *, code: object = 0, status: object = 2,
               extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"trace_id": "tr-1", "data": {"status": status, "audio": audio.hex()},
            "extra_info": {"music_size": len(audio)} if extra is None else extra,
            "base_resp": {"status_code": code, "status_msg": "see code"}}


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def session(**kw: Any) -> MusicSession:
    return MusicSession(aimlapi_key=KEY, suno_key=KEY, retry=kw.pop("retry", NEVER),
                        suno_callback_url="https://app.example/cb", **kw)


# -- both error channels, in the types servers really send --------------------------------------


@respx.mock
@pytest.mark.parametrize("code", [1027, "1027", " 1027 ", 1027.0])
async def test_a_content_code_sent_as_a_string_is_a_refusal_not_a_song(tmp_path: Path,
                                                                       code: object) -> None:
    """Finding: ``base_resp.status_code: "1027"`` was ignored and the flagged audio written."""
    respx.post(GENERATE).respond(200, json=generation(code=code))
    async with session() as s:
        with pytest.raises(ContentPolicyError) as caught:
            await s.minimax.generate(tmp_path / "x.mp3", lyrics="la", refer_voice="v")
    assert caught.value.provider_code == 1027
    assert list(tmp_path.iterdir()) == []


@respx.mock
async def test_a_status_code_that_is_no_number_is_unreadable_not_success(tmp_path: Path) -> None:
    respx.post(GENERATE).respond(200, json=generation(code="oops"))
    async with session() as s:
        # unreadable, so a paid generation's fate is unknown (issue 15); the cause says why
        with pytest.raises(SubmissionUnknownError, match="not a number") as caught:
            await s.minimax.generate(tmp_path / "x.mp3", lyrics="la", refer_voice="v")
    assert isinstance(caught.value.__cause__, ResponseError)
    assert list(tmp_path.iterdir()) == []


@respx.mock
async def test_a_suno_code_sent_as_a_string_keeps_the_task() -> None:
    """Finding: ``{"code": "200", "data": {"taskId": ...}}`` lost a paid task."""
    respx.post(f"{SUNO}/generate/add-instrumental").respond(
        200, json={"code": "200", "msg": "success", "data": {"taskId": "task-42"}})
    async with session() as s:
        task = await s.suno.add_instrumental("https://cdn.example/v.mp3", title="t", tags="t",
                                             negative_tags="n")
    assert task.task_id == "task-42"


@respx.mock
async def test_a_suno_refusal_code_sent_as_a_string_is_read() -> None:
    respx.get(f"{SUNO}/generate/credit").respond(200, json={"code": "429", "msg": "no credits"})
    async with session() as s:
        with pytest.raises(Exception) as caught:
            await s.suno.get_credits()
    assert type(caught.value).__name__ == "InsufficientCreditsError"


@respx.mock
async def test_numbers_sent_as_strings_are_read(tmp_path: Path) -> None:
    respx.post(GENERATE).respond(200, json=generation(
        status="2", extra={"music_size": str(len(AUDIO)), "music_duration": "1500.0"}))
    respx.get(f"{SUNO}/generate/credit").respond(200, json={"code": 200, "data": "120"})
    async with session() as s:
        result = await s.minimax.generate(tmp_path / "x.mp3", lyrics="la", refer_voice="v")
        assert await s.suno.get_credits() == 120
    assert result.extra_info.size == len(AUDIO) and result.extra_info.music_duration == 1500
    assert (tmp_path / "x.mp3").read_bytes() == AUDIO


@respx.mock
async def test_a_size_sent_as_a_string_still_catches_short_audio(tmp_path: Path) -> None:
    respx.post(GENERATE).respond(200, json=generation(extra={"music_size": "99999"}))
    async with session() as s:
        with pytest.raises(AudioDecodeError, match="99999"):
            await s.minimax.generate(tmp_path / "x.mp3", lyrics="la", refer_voice="v")
    assert list(tmp_path.iterdir()) == []


# -- strict success ------------------------------------------------------------------------------


@respx.mock
async def test_empty_audio_is_not_a_song(tmp_path: Path) -> None:
    """Finding: ``"audio": ""`` wrote a 0-byte song and reported success."""
    respx.post(GENERATE).respond(200, json=generation(b"", extra={}))
    async with session() as s:
        with pytest.raises(AudioDecodeError, match="empty"):
            await s.minimax.generate(tmp_path / "x.mp3", lyrics="la", refer_voice="v")
        with (tmp_path / "x.bin").open("wb") as handle, \
                pytest.raises(AudioDecodeError, match="empty"):
            await s.minimax.generate(handle, lyrics="la", refer_voice="v")
    assert [p.name for p in tmp_path.iterdir()] == ["x.bin"]
    assert (tmp_path / "x.bin").stat().st_size == 0


def record(**data: Any) -> dict[str, Any]:
    body = copy.deepcopy(RECORD)
    body["data"].update(data)
    return body


def test_record_numbers_sent_as_strings_are_read() -> None:
    body = record(errorCode="0", createTime="1735689600000")
    body["data"]["response"]["sunoData"][0]["duration"] = "198.44"
    got = proto.parse_record(body, task_id="5c79****be8e")
    assert got.tracks[0].duration == 198.44 and got.error_code == 0


@pytest.mark.parametrize("body", [
    pytest.param({"code": 200, "data": None}, id="data-null"),
    pytest.param("duration-nan", id="duration-nan"),
    pytest.param("duration-list", id="duration-list"),
])
def test_an_unreadable_record_is_retryable_and_names_the_task(body: Any) -> None:
    """Finding: ``data: null`` / ``duration: "NaN"`` ended ``wait()`` for good."""
    if isinstance(body, str):
        value = "NaN" if body == "duration-nan" else [1]
        body = record()
        body["data"]["response"]["sunoData"][0]["duration"] = value
    with pytest.raises(ResponseError) as caught:
        proto.parse_record(body, task_id="5c79****be8e")
    assert caught.value.retryable
    assert "5c79****be8e" in str(caught.value) and "session.suno.task(" in str(caught.value)


@pytest.mark.parametrize("response", [
    pytest.param(None, id="no-response"),
    pytest.param({"sunoData": []}, id="no-tracks"),
    pytest.param({"sunoData": [{"id": "t1", "audioUrl": ""}]}, id="no-audio-url"),
])
def test_success_without_tracks_is_a_typed_error(response: Any) -> None:
    """Finding: ``SUCCESS`` without tracks returned an empty result silently."""
    got = proto.parse_record(record(response=response), task_id="5c79****be8e")
    assert got.status is TaskStatus.SUCCESS
    with pytest.raises(MissingTracksError) as caught:
        proto.require_tracks(got)
    assert caught.value.task_id == "5c79****be8e" and caught.value.retryable


def test_require_tracks_passes_real_tracks_and_unfinished_records() -> None:
    done = proto.parse_record(RECORD, task_id="5c79****be8e")
    assert proto.require_tracks(done) is done
    pending = proto.parse_record(record(status="PENDING", response=None),
                                 task_id="5c79****be8e")
    assert proto.require_tracks(pending) is pending


# -- the bounded reader ---------------------------------------------------------------------------


def credits_session(answer: httpx.Response | Any, **kw: Any) -> MusicSession:
    def respond(request: httpx.Request) -> httpx.Response:
        return answer() if callable(answer) else answer

    client = httpx.AsyncClient(transport=httpx.MockTransport(respond))
    return session(http_client=client, **kw)


async def test_json_nested_past_the_depth_cap_is_refused_even_in_an_unread_field() -> None:
    body = '{"code": 200, "msg": "ok", "data": 5, "junk": ' + nested(100) + "}"
    async with credits_session(httpx.Response(200, content=body.encode())) as s:
        with pytest.raises(JsonError) as caught:
            await s.suno.get_credits()
    assert caught.value.reason == "too deep" and caught.value.retryable  # a free call


async def test_json_nested_past_the_interpreter_stack_is_a_typed_error() -> None:
    body = '{"code": 200, "data": ' + nested(200_000) + "}"
    async with credits_session(httpx.Response(200, content=body.encode())) as s:
        with pytest.raises(JsonError, match="levels deep"):
            await s.suno.get_credits()


async def test_the_caps_are_settable_on_the_session_and_per_call() -> None:
    body = b'{"code": 200, "msg": "ok", "data": 7, "pad": "' + b"x" * 2000 + b'"}'
    async with credits_session(lambda: httpx.Response(200, content=body),
                               json_limits=JsonLimits(max_bytes=1000)) as s:
        with pytest.raises(JsonError, match="larger than 1000 bytes"):
            await s.suno.get_credits()
        call = Call(service=Service.SUNO, lane=LaneKind.POLL, operation="suno.credits",
                    method="GET", url="/api/v1/generate/credit",
                    json_limits=JsonLimits(max_bytes=4000))
        assert (await s._send(call))["data"] == 7
    with pytest.raises(TypeError, match="JsonLimits"):
        MusicSession(json_limits={"max_bytes": 5})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_depth"):
        JsonLimits(max_depth=0)


async def test_a_paid_answer_past_the_caps_has_an_unknown_fate() -> None:
    body = '{"code": 200, "data": {"taskId": "t"}, "junk": ' + nested(80) + "}"
    async with credits_session(httpx.Response(200, content=body.encode())) as s:
        with pytest.raises(SubmissionUnknownError, match="levels deep"):
            await s.suno.add_instrumental("https://cdn.example/v.mp3", title="t", tags="t",
                                          negative_tags="n")


def peak_of(run: Any) -> int:
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def unread(body: bytes, **headers: str) -> httpx.Response:
    """An answer whose body is not read yet, as one from the network."""
    return httpx.Response(200, headers=headers, stream=httpx.ByteStream(body))


@pytest.mark.parametrize("encoding", ["gzip", "br"])
def test_a_compressed_bomb_is_refused_with_flat_memory(encoding: str) -> None:
    """100 MB of JSON padding in a few KiB of gzip or brotli: refused after the first MiB,
    never inflated whole (httpx decodes a chunk in one go)."""
    plain = b'{"code": 200, "data": 1, "pad": "' + b" " * (100 << 20) + b'"}'
    packed = gzip.compress(plain, 9) if encoding == "gzip" else brotli.compress(plain)
    del plain
    answer = unread(packed, **{"Content-Encoding": encoding})
    errors: list[BaseException] = []

    async def read() -> None:
        try:
            await _json.read_json(answer)
        except JsonError as exc:
            errors.append(exc)

    import anyio

    peak = peak_of(lambda: anyio.run(read))
    assert errors and "larger than" in str(errors[0])
    assert peak < 8 << 20, f"{peak / 2**20:.1f} MiB"


async def test_an_encoding_that_cannot_be_undone_is_typed() -> None:
    async with credits_session(lambda: unread(b"{}", **{"Content-Encoding": "zstd"})) as s:
        with pytest.raises(ResponseError, match="'zstd' encoding"):
            await s.suno.get_credits()


async def test_requests_advertise_only_encodings_aiomusic_can_bound() -> None:
    seen: list[str] = []

    def respond(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["accept-encoding"])
        return httpx.Response(200, json={"code": 200, "data": 3})

    client = httpx.AsyncClient(transport=httpx.MockTransport(respond))
    async with session(http_client=client) as s:
        await s.suno.get_credits()
    assert seen == [_encoding.accept_encoding()]
    assert "zstd" not in seen[0] and "br" in seen[0]


async def test_brotli_missing_is_said_plainly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_encoding, "_brotli", lambda: None)
    assert _encoding.accept_encoding() == "gzip, deflate"
    packed = brotli.compress(json.dumps({"code": 200, "data": 3}).encode())
    answer = unread(packed, **{"Content-Encoding": "br"})
    with pytest.raises(ResponseError, match="install the brotli package"):
        await _json.read_json(answer)


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br", "gzip, br", "identity"])
async def test_compressed_answers_are_read(encoding: str) -> None:
    data = json.dumps({"code": 200, "data": 9}).encode()
    body = data
    for name in [n.strip() for n in encoding.split(",")]:
        body = {"gzip": gzip.compress, "br": brotli.compress, "identity": bytes,
                "deflate": __import__("zlib").compress}[name](body)
    answer = unread(body, **{"Content-Encoding": encoding})
    assert await _json.read_json(answer) == {"code": 200, "data": 9}


def test_raw_deflate_and_cut_streams() -> None:
    import zlib

    raw = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    packed = raw.compress(b"hello") + raw.flush()
    decoder = _encoding.ContentDecoder("deflate")
    assert b"".join(decoder.pieces(packed)) + b"".join(decoder.finish()) == b"hello"
    for name, packed in (("gzip", gzip.compress(b"x" * 1000)[:-8]),
                         ("br", brotli.compress(b"x" * 1000)[:-2])):
        decoder = _encoding.ContentDecoder(name)
        assert len(b"".join(decoder.pieces(packed))) <= 1000
        with pytest.raises(EncodingError, match="end marker"):
            list(decoder.finish())
    with pytest.raises(Exception, match="cannot be decoded"):
        list(_encoding.ContentDecoder("gzip").pieces(b"not gzip at all"))


@pytest.mark.parametrize("raw", [b"\xff\xfe\x00", b"{", b"1" * 5000, b"\xc3\x28", b""])
def test_loads_reports_every_failure_as_json_error(raw: bytes) -> None:
    with pytest.raises(JsonError) as caught:
        _json.loads(raw)
    assert caught.value.reason == "not JSON"


def test_loads_reads_every_encoding_json_allows() -> None:
    for codec in ("utf-8", "utf-16", "utf-16-le", "utf-32"):
        assert _json.loads('{"a": [1, "\u00e9"]}'.encode(codec)) == {"a": [1, "\u00e9"]}


def test_a_callback_body_uses_the_same_reader() -> None:
    from aiomusic import parse_callback

    with pytest.raises(JsonError, match="levels deep"):
        parse_callback('{"code": 200, "data": ' + nested(300) + "}")
    with pytest.raises(JsonError, match="larger than"):
        parse_callback(b"[" + b" " * (300 << 10) + b"]")
    with pytest.raises(JsonError, match="not JSON"):
        parse_callback(memoryview(b"\xc3\x28"))
    deep_ok = binascii.hexlify(b"x").decode()
    assert deep_ok == "78"
