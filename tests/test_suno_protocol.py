"""Pure Suno builders and parsers: checks, record-info and upload answers, the poll schedule."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import random
from typing import IO, Any

import pytest

from aiomusic import (
    InputError,
    ResponseError,
    SubmissionUnknownError,
    TaskStatus,
    UploadedFile,
)
from aiomusic._core._config import LaneKind, Service
from aiomusic.suno import _protocol as proto
from aiomusic.suno._tasks import PollSchedule

BASE: dict[str, Any] = {"upload_url": "https://example.com/music.mp3", "title": "Relaxing Piano",
                        "tags": "Relaxing Piano, Ambient, Peaceful",
                        "negative_tags": "Heavy Metal, Aggressive Drums",
                        "callback_url": "https://api.example.com/callback"}


def test_minimal_payload_uses_the_default_model() -> None:
    assert proto.check_add_instrumental(**BASE) == {
        "uploadUrl": "https://example.com/music.mp3", "title": "Relaxing Piano",
        "tags": "Relaxing Piano, Ambient, Peaceful",
        "negativeTags": "Heavy Metal, Aggressive Drums",
        "callBackUrl": "https://api.example.com/callback", "model": "V4_5PLUS"}


@pytest.mark.parametrize(("value", "sent"), [
    pytest.param(0, 0.0, id="zero-int"),
    pytest.param(1, 1.0, id="one-int"),
    pytest.param(0.61, 0.61, id="doc-example"),
    pytest.param(0.1 + 0.2, 0.3, id="binary-rounding"),
    pytest.param(0.07, 0.07, id="seven-hundredths"),
    pytest.param(0.29, 0.29, id="0.29*100-is-28.999"),
    pytest.param(1.0, 1.0, id="one"),
])
def test_weights_accept_two_decimals(value: float, sent: float) -> None:
    payload = proto.check_add_instrumental(**BASE, style_weight=value, audio_weight=value,
                                           weirdness_constraint=value)
    assert payload["styleWeight"] == payload["audioWeight"] == sent
    assert payload["weirdnessConstraint"] == sent


@pytest.mark.parametrize("value", [
    pytest.param(0.615, id="three-decimals"),
    pytest.param(0.001, id="tiny"),
    pytest.param(-0.01, id="negative"),
    pytest.param(1.01, id="above-one"),
    pytest.param(float("nan"), id="nan"),
    pytest.param(float("inf"), id="inf"),
    pytest.param(True, id="bool"),
    pytest.param("0.5", id="string"),
])
def test_weights_refuse_others(value: Any) -> None:
    with pytest.raises(InputError) as caught:
        proto.check_add_instrumental(**BASE, style_weight=value)
    assert caught.value.field == "style_weight"


@pytest.mark.parametrize("model", ["V4_5PLUS", "V5", "V5_5", "V6", "V6_WILD", "V10_MINI"])
def test_known_and_newer_models_pass(model: str) -> None:
    assert proto.check_add_instrumental(**BASE, model=model)["model"] == model


@pytest.mark.parametrize("model", ["v5", "chirp-v4", "", "V", "V5 ", 5])
def test_unknown_model_shapes_fail(model: Any) -> None:
    with pytest.raises(InputError, match="V4_5PLUS"):
        proto.check_add_instrumental(**BASE, model=model)


@pytest.mark.parametrize(("change", "field"), [
    pytest.param({"title": "x" * 101}, "title", id="title-101"),
    pytest.param({"title": 5}, "title", id="title-type"),
    pytest.param({"tags": " "}, "tags", id="tags-blank"),
    pytest.param({"upload_url": "music.mp3"}, "upload_url", id="relative-url"),
    pytest.param({"upload_url": "https://"}, "upload_url", id="no-host"),
    pytest.param({"upload_url": "http://[bad"}, "upload_url", id="invalid-host"),
    pytest.param({"upload_url": "https://a.example/my file.mp3"}, "upload_url", id="space"),
    pytest.param({"callback_url": None}, "callback_url", id="no-callback"),
    pytest.param({"vocal_gender": "male"}, "vocal_gender", id="gender"),
])
def test_invalid_fields_are_named(change: dict[str, Any], field: str) -> None:
    with pytest.raises(InputError) as caught:
        proto.check_add_instrumental(**{**BASE, **change})
    assert caught.value.field == field


def test_title_of_exactly_100_and_gender() -> None:
    payload = proto.check_add_instrumental(**{**BASE, "title": "é" * 100}, vocal_gender="m")
    assert payload["vocalGender"] == "m" and len(payload["title"]) == 100


def opener() -> contextlib.AbstractContextManager[IO[bytes]]:
    return contextlib.nullcontext(io.BytesIO(b"RIFF"))


def test_calls_use_the_right_lanes() -> None:
    submit = proto.add_instrumental_call(proto.check_add_instrumental(**BASE))
    assert submit.paid and submit.lane is LaneKind.SUBMIT and submit.service is Service.SUNO
    poll = proto.record_info_call("abc")
    assert not poll.paid and poll.lane is LaneKind.POLL and poll.params == {"taskId": "abc"}
    upload = proto.stream_upload_call(opener=opener, file_name="a.wav",
                                      upload_path="/a/b/", mime_type="audio/wav")
    assert upload.service is Service.SUNO_UPLOAD and upload.lane is LaneKind.TRANSFER
    with upload.body() as extra:
        assert extra["data"] == {"uploadPath": "a/b", "fileName": "a.wav"}
        assert extra["files"]["file"][0] == "a.wav"
    with pytest.raises(InputError):
        proto.stream_upload_call(opener=opener, file_name="a",
                                 upload_path="//", mime_type="audio/wav")


def test_parse_submission() -> None:
    assert proto.parse_submission({"code": 200, "data": {"taskId": "5c79be8e"}}) == "5c79be8e"
    assert proto.parse_submission({"code": 200, "data": {"task_id": "x"}}) == "x"
    for data in (None, {}, {"taskId": ""}, {"taskId": 5}, []):
        with pytest.raises(SubmissionUnknownError):
            proto.parse_submission({"code": 200, "data": data})


RECORD = {"code": 200, "msg": "success", "data": {
    "taskId": "5c79****be8e", "parentMusicId": "",
    "param": "{\"prompt\":\"A calm piano track\",\"style\":\"Classical\"}",
    "response": {"taskId": "5c79****be8e", "sunoData": [{
        "id": "8551****662c", "audioUrl": "https://example.cn/****.mp3",
        "streamAudioUrl": "https://example.cn/****", "imageUrl": "https://example.cn/****.jpeg",
        "prompt": "[Verse] ...", "modelName": "chirp-v3-5", "title": "Iron Man",
        "tags": "electrifying, rock", "createTime": "2025-01-01 00:00:00", "duration": 198.44,
        "someNewField": {"x": 1}}]},
    "status": "SUCCESS", "type": "GENERATE", "operationType": "generate",
    "errorCode": None, "errorMessage": None, "createTime": 1735689600000}}


def test_parse_documented_record() -> None:
    record = proto.parse_record(RECORD, task_id="5c79****be8e")
    assert record.status is TaskStatus.SUCCESS and record.type == "GENERATE"
    (track,) = record.tracks
    assert track.audio_url == "https://example.cn/****.mp3" and track.duration == 198.44
    assert track.create_time == record.create_time == dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    with pytest.raises(ResponseError, match="answered about task"):
        proto.parse_record(RECORD, task_id="other")
    with pytest.raises(ResponseError):
        proto.parse_record({"code": 200, "data": None}, task_id="x")


UPLOAD = {"success": True, "code": 200, "msg": "File uploaded successfully", "data": {
    "fileName": "a.wav", "filePath": "aiomusic/a.wav",
    "downloadUrl": "https://tempfile.redpandaai.co/xxx/aiomusic/a.wav", "fileSize": 154832,
    "mimeType": "audio/wav", "uploadedAt": "2025-01-01T12:00:00.000Z"}}


def test_parse_upload() -> None:
    uploaded = proto.parse_upload(UPLOAD)
    assert uploaded.file_size == 154832 and uploaded.mime_type == "audio/wav"
    assert uploaded.uploaded_at == dt.datetime(2025, 1, 1, 12, tzinfo=dt.UTC)
    assert uploaded.expires_at == dt.datetime(2025, 1, 4, 12, tzinfo=dt.UTC)
    assert UploadedFile(download_url="https://x").is_expired()
    with pytest.raises(ResponseError, match="failed"):
        proto.parse_upload({**UPLOAD, "success": False})
    with pytest.raises(ResponseError, match="downloadUrl"):
        proto.parse_upload({**UPLOAD, "data": {**UPLOAD["data"], "downloadUrl": "nope"}})


def test_credits() -> None:
    assert proto.parse_credits({"code": 200, "data": 100}) == 100
    with pytest.raises(ResponseError):
        proto.parse_credits({"code": 200, "data": True})


@pytest.mark.parametrize(("head", "name", "mime"), [
    pytest.param(b"RIFF\0\0\0\0WAVEfmt ", "x", "audio/wav", id="wav"),
    pytest.param(b"ID3\x04", "x", "audio/mpeg", id="id3"),
    pytest.param(b"\xff\xfb\x90", "x", "audio/mpeg", id="mp3-frame"),
    pytest.param(b"fLaC", "x", "audio/flac", id="flac"),
    pytest.param(b"OggS", "x", "audio/ogg", id="ogg"),
    pytest.param(b"\0\0\0\x20ftypM4A ", "x", "audio/mp4", id="m4a"),
    pytest.param(b"????", "song.mp3", "audio/mpeg", id="by-name"),
    pytest.param(b"????", "noext", "application/octet-stream", id="unknown"),
])
def test_sniff_mime(head: bytes, name: str, mime: str) -> None:
    assert proto.sniff_mime(head, name) == mime


def test_upload_file_names_are_unique_and_clean() -> None:
    one, two = (proto.upload_file_name("my vocals/../x", "audio/wav") for _ in range(2))
    assert one != two and "/" not in one and one.endswith(".wav")
    assert proto.upload_file_name("take.wav", "audio/wav").endswith("-take.wav")
    assert proto.upload_file_name("...", "application/octet-stream").endswith("-audio")


def test_poll_schedule_backs_off_with_jitter_to_the_maximum() -> None:
    schedule = PollSchedule()
    rng = random.Random(1)
    delays = [schedule.delay(n, rng=rng) for n in range(12)]
    assert 2.4 <= delays[0] <= 3.0
    assert all(24.0 <= d <= 30.0 for d in delays[-3:])
    assert PollSchedule(jitter=0).delay(1000) == 30.0
    with pytest.raises(ValueError):
        PollSchedule(initial=0)
