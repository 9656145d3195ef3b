"""Parsing of the services' bodies into models: documented examples, drift, and bad input."""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aiomusic import (
    CallbackEvent,
    CallbackType,
    ExtraInfo,
    ResponseError,
    TaskRecord,
    TaskStatus,
    UploadedFile,
)
from aiomusic._core._converter import parse_time, snake_keys, structure

# record-info as the docs show it (createTime a string), sunoData camelCase.
DOCS_RECORD: dict[str, Any] = {
    "taskId": "5c79****be8e",
    "parentMusicId": "",
    "param": '{"prompt":"A calm piano","style":"Classical"}',
    "response": {
        "taskId": "5c79****be8e",
        "sunoData": [
            {"id": "e231****-****-****-****-****8cadc7dc", "audioUrl": "https://example.cn/a.mp3",
             "streamAudioUrl": "https://example.cn/s", "imageUrl": "https://example.cn/i.jpeg",
             "prompt": "[Verse] ...", "modelName": "chirp-v3-5", "title": "Iron Man",
             "tags": "electrifying, rock", "createTime": "2025-01-01 00:00:00",
             "duration": 198.44},
        ],
    },
    "status": "SUCCESS",
    "type": "GENERATE",
    "operationType": "generate",
    "errorCode": None,
    "errorMessage": None,
    "createTime": "2025-01-01 00:00:00",
}

# A captured real answer: createTime as epoch milliseconds, extra source* fields.
REAL_RECORD: dict[str, Any] = {
    "taskId": "abc123", "status": "FIRST_SUCCESS", "type": "chirp-v4",
    "operationType": "upload_cover", "errorCode": None, "errorMessage": None,
    "createTime": 1736900000000,
    "response": {"taskId": "abc123", "sunoData": [
        {"id": "t1", "audioUrl": "", "sourceAudioUrl": "https://cdn1.suno.ai/t1.mp3",
         "streamAudioUrl": "https://musicfile.api.box/t1", "sourceStreamAudioUrl": "x",
         "imageUrl": "https://musicfile.api.box/t1.jpeg", "sourceImageUrl": "y",
         "prompt": "", "modelName": "chirp-v4", "title": "T", "tags": "pop",
         "createTime": 1736900000000, "duration": None, "somethingNew": {"a": 1}},
    ]},
}


def test_docs_record_info_example() -> None:
    rec = structure(DOCS_RECORD, TaskRecord, what="record-info")
    assert rec.task_id == "5c79****be8e"
    assert rec.status is TaskStatus.SUCCESS
    assert rec.status.is_terminal and not rec.status.is_failure
    assert rec.operation_type == "generate"
    (track,) = rec.tracks
    assert track.audio_url == "https://example.cn/a.mp3"
    assert track.model_name == "chirp-v3-5"
    assert track.duration == pytest.approx(198.44)
    assert track.create_time == dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    assert rec.create_time == dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


def test_real_record_info_with_epoch_ms_and_unknown_fields() -> None:
    rec = structure(REAL_RECORD, TaskRecord, what="record-info")
    assert rec.status is TaskStatus.FIRST_SUCCESS
    assert not rec.status.is_terminal
    assert rec.create_time == dt.datetime.fromtimestamp(1736900000, tz=dt.UTC)
    (track,) = rec.tracks
    assert track.source_audio_url == "https://cdn1.suno.ai/t1.mp3"
    assert track.duration is None


@pytest.mark.parametrize("status", ["CREATE_TASK_FAILED", "GENERATE_AUDIO_FAILED",
                                    "CALLBACK_EXCEPTION", "SENSITIVE_WORD_ERROR"])
def test_failure_statuses(status: str) -> None:
    rec = structure({"taskId": "t", "status": status, "errorCode": 413,
                     "errorMessage": "matches an existing work"}, TaskRecord, what="x")
    assert rec.status.is_failure
    assert rec.error_code == 413
    assert rec.error_message == "matches an existing work"


def test_unknown_status_keeps_waiting() -> None:
    rec = structure({"taskId": "t", "status": "QUEUED_SOMEWHERE"}, TaskRecord, what="x")
    assert rec.status is TaskStatus.PENDING
    assert rec.raw_status == "QUEUED_SOMEWHERE"


def test_status_ranks_never_go_backwards() -> None:
    order = [TaskStatus.PENDING, TaskStatus.TEXT_SUCCESS, TaskStatus.FIRST_SUCCESS,
             TaskStatus.SUCCESS]
    assert [s.rank for s in order] == sorted(s.rank for s in order)


CALLBACK: dict[str, Any] = {
    "code": 200, "msg": "All generated successfully.",
    "data": {"callbackType": "complete", "task_id": "2fac****9f72", "data": [
        {"id": "8551****662c", "audio_url": "https://example.cn/a.mp3",
         "source_audio_url": "https://example.cn/s.mp3", "stream_audio_url": "https://x/s",
         "source_stream_audio_url": "https://x/ss", "image_url": "https://x/i.jpeg",
         "source_image_url": "https://x/si.jpeg", "prompt": "[Verse] Night",
         "model_name": "chirp-v3-5", "title": "Iron Man", "tags": "electrifying",
         "createTime": "2025-01-01 00:00:00", "duration": 198.44},
    ]},
}


def test_callback_body() -> None:
    ev = structure(CALLBACK, CallbackEvent, what="callback")
    assert ev.task_id == "2fac****9f72"
    assert ev.callback_type is CallbackType.COMPLETE
    assert ev.code == 200
    assert ev.tracks[0].audio_url == "https://example.cn/a.mp3"
    assert ev.tracks[0].source_image_url == "https://x/si.jpeg"


def test_error_callback_with_null_data() -> None:
    body = {"code": 501, "msg": "Audio generation failed",
            "data": {"callbackType": "error", "task_id": "t", "data": None}}
    ev = structure(body, CallbackEvent, what="callback")
    assert ev.callback_type is CallbackType.ERROR
    assert ev.tracks == ()
    assert ev.code == 501


def test_extra_info_both_namings() -> None:
    old = structure({"audio_length": 30000, "audio_size": 480000, "audio_sample_rate": 44100,
                     "audio_bitrate": 128000}, ExtraInfo, what="extra_info")
    new = structure({"music_duration": 25364, "music_sample_rate": 44100, "music_channel": 2,
                     "bitrate": 256000, "music_size": 813651, "future": 1}, ExtraInfo,
                    what="extra_info")
    assert (old.duration_ms, old.size, old.sample_rate) == (30000, 480000, 44100)
    assert (new.duration_ms, new.size, new.sample_rate) == (25364, 813651, 44100)


def test_uploaded_file() -> None:
    f = structure({"fileName": "a.mp3", "filePath": "u/a.mp3", "downloadUrl": "https://d/a.mp3",
                   "fileSize": 10, "mimeType": "audio/mpeg",
                   "uploadedAt": "2025-01-01T12:00:00.000Z"}, UploadedFile, what="upload")
    assert f.download_url == "https://d/a.mp3"
    assert f.uploaded_at == dt.datetime(2025, 1, 1, 12, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("2025-01-01 00:00:00", dt.datetime(2025, 1, 1, tzinfo=dt.UTC), id="docs"),
        pytest.param(1735689600000, dt.datetime(2025, 1, 1, tzinfo=dt.UTC), id="epoch-ms"),
        pytest.param("1735689600000", dt.datetime(2025, 1, 1, tzinfo=dt.UTC), id="ms-string"),
        pytest.param(1735689600, dt.datetime(2025, 1, 1, tzinfo=dt.UTC), id="epoch-s"),
        pytest.param("2025-01-01T08:00:00+08:00", dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
                     id="iso-offset"),
        pytest.param(None, None, id="null"),
        pytest.param("", None, id="empty"),
    ],
)
def test_parse_time(value: object, expected: dt.datetime | None) -> None:
    assert parse_time(value) == expected


@pytest.mark.parametrize("value", [True, float("inf"), 1e30, "yesterday", [1]])
def test_parse_time_rejects(value: object) -> None:
    with pytest.raises(ValueError, match=r"time|isoformat|Invalid"):
        parse_time(value)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param([], id="list"),
        pytest.param({"status": "SUCCESS"}, id="no-task-id"),
        pytest.param({"taskId": "t", "response": {"sunoData": "nope"}}, id="tracks-not-list"),
        pytest.param({"taskId": "t", "response": {"sunoData": [{"audioUrl": "x"}]}},
                     id="track-without-id"),
        pytest.param({"taskId": "t", "response": {"sunoData": [{"id": "x", "duration": "l"}]}},
                     id="bad-duration"),
        pytest.param({"taskId": "t", "createTime": True}, id="bool-time"),
        pytest.param({"taskId": {"a": 1}}, id="task-id-object"),
    ],
)
def test_bad_record_info_is_a_response_error(body: object) -> None:
    with pytest.raises(ResponseError, match="record-info"):
        structure(body, TaskRecord, what="record-info")


@pytest.mark.parametrize(
    "body",
    [
        pytest.param("x", id="string"),
        pytest.param({"code": 200}, id="no-data"),
        pytest.param({"data": {"callbackType": "complete"}}, id="no-task"),
        pytest.param({"data": {"task_id": "t"}}, id="no-type"),
        pytest.param({"data": {"task_id": "t", "callbackType": "weird"}}, id="bad-type"),
    ],
)
def test_bad_callback_is_a_response_error(body: object) -> None:
    with pytest.raises(ResponseError):
        structure(body, CallbackEvent, what="callback")


def test_snake_keys_first_spelling_wins() -> None:
    assert snake_keys({"audioUrl": "a", "audio_url": "b"}) == {"audio_url": "a"}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                max_size=4),
    max_leaves=20,
)
record_keys = st.sampled_from(["taskId", "status", "response", "createTime", "errorCode",
                               "sunoData", "id", "duration", "audioUrl", "task_id"])


@given(st.dictionaries(record_keys, json_values | st.dictionaries(record_keys, json_values)))
def test_any_record_info_parses_or_raises_a_typed_error(body: dict[str, Any]) -> None:
    try:
        rec = structure(body, TaskRecord, what="record-info")
    except ResponseError:
        return
    assert isinstance(rec.status, TaskStatus)


@given(json_values)
def test_any_callback_parses_or_raises_a_typed_error(body: object) -> None:
    with contextlib.suppress(ResponseError):
        structure({"data": body}, CallbackEvent, what="callback")
