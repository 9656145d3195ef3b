"""Odd wire shapes of Suno's follow-up answers, at the HTTP seam with respx."""

from __future__ import annotations

from pathlib import Path

import pytest
import respx

from aiomusic import APIError, BadRequestError, MusicSession, RetryPolicy, SubmissionUnknownError
from aiomusic.suno import PollSchedule

pytestmark = pytest.mark.anyio
BASE = "https://api.sunoapi.org"
WAV = f"{BASE}/api/v1/wav/generate"
WAV_INFO = f"{BASE}/api/v1/wav/record-info"
STEMS = f"{BASE}/api/v1/vocal-removal/generate"
STEMS_INFO = f"{BASE}/api/v1/vocal-removal/record-info"
EXISTS = {"code": 409, "msg": "WAV record already exists", "data": None}


def session() -> MusicSession:
    s = MusicSession(suno_key="sk-wire-test-key", suno_callback_url="https://cb.example/x",
                     retry=RetryPolicy(base_delay=0, max_delay=0))
    s.suno.poll_schedule = PollSchedule(initial=0.001, maximum=0.002)
    return s


@respx.mock
async def test_a_409_naming_the_existing_conversion_needs_no_look_up() -> None:
    respx.post(WAV).respond(200, json={**EXISTS, "data": {"taskId": "wav-9"}})
    info = respx.get(WAV_INFO).respond(200, json={"code": 200, "data": {
        "taskId": "wav-9", "successFlag": "SUCCESS",
        "response": {"audioWavUrl": "https://cdn.example/a.wav"}}})
    async with session() as s:
        task = await s.suno.convert_wav("t1", "a1")
        assert task.task_id == "wav-9" and task.source == ("t1", "a1")
        assert not info.called
        assert (await task.wait()).url == "https://cdn.example/a.wav"


@respx.mock
async def test_a_409_falls_back_to_the_record_of_the_track() -> None:
    respx.post(WAV).respond(200, json=EXISTS)
    lookup = respx.get(WAV_INFO, params={"taskId": "t1", "audioId": "a1"}).respond(
        200, json={"code": 200, "data": {"taskId": "wav-7", "musicId": "a1",
                                         "successFlag": "1"}})
    async with session() as s:
        assert (await s.suno.convert_wav("t1", "a1")).task_id == "wav-7"
    assert lookup.call_count == 1


@respx.mock
async def test_a_409_that_cannot_be_resolved_says_what_to_do() -> None:
    respx.post(WAV).respond(200, json=EXISTS)
    respx.get(WAV_INFO).respond(200, json={"code": 400, "msg": "not found", "data": None})
    async with session() as s:
        with pytest.raises(APIError, match=r"follow\(") as caught:
            await s.suno.convert_wav("t1", "a1")
    assert caught.value.provider_code == 409


@respx.mock
async def test_a_409_whose_record_is_of_another_track_is_the_409() -> None:
    respx.post(WAV).respond(200, json=EXISTS)
    respx.get(WAV_INFO).respond(200, json={"code": 200, "data": {
        "taskId": "wav-3", "musicId": "another", "successFlag": "SUCCESS"}})
    async with session() as s:
        with pytest.raises(APIError, match="already exists"):
            await s.suno.convert_wav("t1", "a1")


@respx.mock
async def test_other_refusals_are_not_taken_for_a_409() -> None:
    respx.post(WAV).respond(200, json={"code": 400, "msg": "bad audioId", "data": None})
    async with session() as s:
        with pytest.raises(BadRequestError, match="bad audioId"):
            await s.suno.convert_wav("t1", "a1")


@respx.mock
async def test_an_answer_without_a_task_id_is_never_resent() -> None:
    route = respx.post(STEMS).respond(200, json={"code": 200, "msg": "ok", "data": {}})
    async with session() as s:
        with pytest.raises(SubmissionUnknownError, match="no task id"):
            await s.suno.stems("t1", "a1")
    assert route.call_count == 1


@respx.mock
async def test_records_with_strings_for_numbers_and_a_first_unreadable_answer(
        tmp_path: Path) -> None:
    respx.post(STEMS).respond(200, json={"code": 200, "data": {"taskId": "st-1"}})
    respx.get(STEMS_INFO).mock(side_effect=[
        respx.MockResponse(200, json={"code": 200, "data": None}),  # asked again: polls free
        respx.MockResponse(200, json={"code": 200, "data": {
            "taskId": "st-1", "successFlag": "1", "createTime": "1753782854000",
            "completeTime": "2025-07-29 09:55:37", "errorCode": "",
            "response": {"vocalUrl": "https://cdn.example/v.mp3",
                         "instrumentalUrl": "https://cdn.example/i.mp3"}}})])
    async with session() as s:
        record = await (await s.suno.stems("t1", "a1")).wait()
    assert dict(record.stems) == {"vocals": "https://cdn.example/v.mp3",
                                  "instrumental": "https://cdn.example/i.mp3"}
    assert record.create_time is not None and record.create_time.year == 2025
    assert record.error_code is None
