"""Suno Add Instrumental through a real session against the emulator (polling only)."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import anyio
import pytest

from aiomusic import (
    BadRequestError,
    ConfigurationError,
    DeadlineExceededError,
    Event,
    InputError,
    InsufficientCreditsError,
    MusicSession,
    Progress,
    RetryPolicy,
    SubmissionUnknownError,
    TaskFailedError,
    TaskStatus,
)
from aiomusic.emulator import Emulator, EmulatorConfig, Limits, Timings
from aiomusic.suno._tasks import PollSchedule

from .conftest import make_wav

pytestmark = pytest.mark.anyio
KEY = "sk-suno-test"
FAST = RetryPolicy(base_delay=0.01, max_delay=0.05, maintenance_delay=0.01)
TINY = PollSchedule(initial=0.005, maximum=0.02)
NOWHERE = "http://127.0.0.1:9/no-op"  # a callBackUrl nobody listens on (pollers need one)
ARGS = {"title": "Relaxing Piano", "tags": "Relaxing Piano, Ambient",
        "negative_tags": "Heavy Metal"}


def session(emulator: Emulator, **kw: object) -> MusicSession:
    kw.setdefault("suno_callback_url", NOWHERE)
    s = MusicSession(suno_key=KEY, base_url=emulator.url, allow_http_hosts=("127.0.0.1",),
                     retry=kw.pop("retry", FAST), **kw)  # type: ignore[arg-type]
    s.suno.poll_schedule = TINY
    return s


async def uploaded_url(s: MusicSession) -> str:
    return (await s.suno.upload(make_wav(3.0), name="vocals.wav")).download_url


async def test_full_run_by_polling(emulator: Emulator, tmp_path: Path) -> None:
    events: list[Event] = []
    async with session(emulator, on_event=events.append) as s:
        url = await uploaded_url(s)
        task = await s.suno.add_instrumental(url, vocal_gender="f", style_weight=0.61,
                                             weirdness_constraint=0.72, audio_weight=0.65,
                                             model="V5", **ARGS)
        assert task.status is TaskStatus.PENDING and task.upload is None
        result = await task.wait(timeout=20)
        assert result.source == "poll" and result.task_id == task.task_id
        assert len(result.tracks) == 2
        assert all(t.audio_url and t.title == "Relaxing Piano" for t in result.tracks)
        assert result.record is not None and result.record.status is TaskStatus.SUCCESS
        assert task.result is result and task.record is result.record
        downloaded = await result.tracks[0].download(tmp_path / "one.mp3")
    assert downloaded.bytes_written == (tmp_path / "one.mp3").stat().st_size > 0
    assert emulator.counters.paid(operation="suno.add_instrumental") == 1
    param = emulator.app.state.tasks[task.task_id].param
    assert param == {"uploadUrl": url, "title": "Relaxing Piano",
                     "tags": "Relaxing Piano, Ambient", "negativeTags": "Heavy Metal",
                     "callBackUrl": NOWHERE, "model": "V5", "vocalGender": "f",
                     "styleWeight": 0.61, "weirdnessConstraint": 0.72, "audioWeight": 0.65}
    stages = [e.stage for e in events if isinstance(e, Progress) and e.operation == "suno.task"]
    assert stages[-1] == "SUCCESS"


async def test_local_file_is_uploaded_first(emulator: Emulator, tmp_path: Path) -> None:
    path = tmp_path / "my vocals.wav"
    path.write_bytes(make_wav(3.0))
    async with session(emulator) as s:
        for source in (path, path.read_bytes(), io.BytesIO(path.read_bytes())):
            task = await s.suno.add_instrumental(source, **ARGS)
            assert task.upload is not None
            assert task.upload.mime_type == "audio/wav"
            assert task.upload.file_name and task.upload.file_name.endswith(".wav")
            assert task.upload.uploaded_at is not None
            assert not task.upload.is_expired()
            assert task.upload.is_expired(now=task.upload.uploaded_at + dt.timedelta(days=3))
            param = emulator.app.state.tasks[task.task_id].param
            assert param["uploadUrl"] == task.upload.download_url
            assert (await task.wait(timeout=20)).tracks
    assert emulator.counters.requests["/api/file-stream-upload"] == 3


async def test_watch_yields_stages_in_order_and_never_backwards() -> None:
    config = EmulatorConfig(timings=Timings(suno_text=0.05, suno_first=0.1, suno_complete=0.15),
                            limits=Limits.off(), track_seconds=(3.0, 4.0))
    async with Emulator(config) as slow, session(slow) as s:
        task = await s.suno.add_instrumental(await uploaded_url(s), **ARGS)
        seen = [status async for status in task.watch(timeout=20)]
        assert await task.wait() is task.result
    assert seen[0] is TaskStatus.PENDING and seen[-1] is TaskStatus.SUCCESS
    assert [st.rank for st in seen] == sorted({st.rank for st in seen})


async def test_resume_from_task_id_alone(emulator: Emulator) -> None:
    async with session(emulator) as s:
        task = await s.suno.add_instrumental(await uploaded_url(s), **ARGS)
        task_id = task.task_id
    async with session(emulator) as again:
        resumed = again.suno.task(f" {task_id} ")
        assert resumed.status is None and "?" in repr(resumed)
        statuses = [st async for st in resumed.watch(timeout=20)]
        assert statuses == [TaskStatus.SUCCESS]
        result = await resumed.wait()
        assert result.task_id == task_id and len(result.tracks) == 2
        record = await again.suno.task(task_id).refresh()
        assert record.operation_type == "add_instrumental"
        with pytest.raises(BadRequestError):
            await again.suno.task("no-such-task").wait(timeout=5)
        with pytest.raises(InputError):
            again.suno.task("  ")


@pytest.mark.parametrize(("fault", "status", "code"), [
    pytest.param("create_task_failed", "CREATE_TASK_FAILED", 500, id="create"),
    pytest.param("generate_audio_failed", "GENERATE_AUDIO_FAILED", 501, id="generate"),
    pytest.param("callback_exception", "CALLBACK_EXCEPTION", 500, id="callback"),
    pytest.param("sensitive_word_error", "SENSITIVE_WORD_ERROR", 400, id="sensitive"),
])
async def test_each_failure_status_raises_task_failed(emulator: Emulator, fault: str,
                                                      status: str, code: int) -> None:
    async with session(emulator) as s:
        url = await uploaded_url(s)
        emulator.inject(fault, operation="suno.add_instrumental")
        task = await s.suno.add_instrumental(url, **ARGS)
        with pytest.raises(TaskFailedError) as caught:
            await task.wait(timeout=20)
        seen: list[TaskStatus] = []

        async def watch() -> None:
            async for st in task.watch(timeout=20):
                seen.append(st)

        with pytest.raises(TaskFailedError):
            await watch()
    error = caught.value
    assert error.task_id == task.task_id and error.status == status
    assert error.error_code == code and error.error_message
    assert task.task_id in str(error) and status in str(error)
    assert seen == [TaskStatus(status)]


async def test_out_of_credits_is_not_retried(emulator: Emulator) -> None:
    async with session(emulator) as s:
        url = await uploaded_url(s)
        emulator.set_credits(12, key=KEY)
        assert await s.suno.get_credits() == 12
        await s.suno.add_instrumental(url, **ARGS)
        assert await s.suno.get_credits() == 0
        with pytest.raises(InsufficientCreditsError) as caught:
            await s.suno.add_instrumental(url, **ARGS)
    assert caught.value.provider_code == 429 and not caught.value.retryable
    assert emulator.counters.rejected[("suno.add_instrumental", "credits")] == 1
    assert emulator.counters.paid() == 1


async def test_rate_limit_and_maintenance_are_retried(emulator: Emulator) -> None:
    async with session(emulator) as s:
        url = await uploaded_url(s)
        emulator.inject("rate_limit", operation="suno.add_instrumental")
        emulator.inject("maintenance", operation="suno.add_instrumental")
        emulator.inject("server_error", operation="suno.record_info", count=2)
        task = await s.suno.add_instrumental(url, **ARGS)
        assert (await task.wait(timeout=20)).tracks
    assert emulator.counters.paid() == 1


async def test_lost_answer_to_submission_is_not_resent(emulator: Emulator) -> None:
    async with session(emulator) as s:
        url = await uploaded_url(s)
        emulator.inject("reset_before_answer", operation="suno.add_instrumental")
        with pytest.raises(SubmissionUnknownError):
            await s.suno.add_instrumental(url, **ARGS)
    assert emulator.counters.paid() == 1


async def test_polls_survive_spent_retries(emulator: Emulator) -> None:
    async with session(emulator, retry=RetryPolicy(max_attempts=1)) as s:
        url = await uploaded_url(s)
        task = await s.suno.add_instrumental(url, **ARGS)
        emulator.inject("server_error", operation="suno.record_info", count=3)
        assert (await task.wait(timeout=20)).tracks
    assert emulator.counters.fired("server_error", operation="suno.record_info") == 3


async def test_wait_deadline_says_how_to_resume(emulator: Emulator) -> None:
    async with session(emulator) as s:
        url = await uploaded_url(s)
        task = await s.suno.add_instrumental(url, **ARGS)
        with pytest.raises(DeadlineExceededError) as caught:
            await task.wait(timeout=0.05, poll=PollSchedule(initial=10, maximum=10))
        assert "session.suno.task" in str(caught.value)
        with pytest.raises(ValueError, match="timeout"):
            await task.wait(timeout=0)


async def test_callback_url_is_required_somewhere(emulator: Emulator) -> None:
    async with session(emulator, suno_callback_url=None) as s:
        with pytest.raises(ConfigurationError, match="callBackUrl"):
            await s.suno.add_instrumental("https://example.com/a.mp3", **ARGS)
        url = await uploaded_url(s)
        task = await s.suno.add_instrumental(url, callback_url="http://127.0.0.1:9/x", **ARGS)
    assert emulator.app.state.tasks[task.task_id].param["callBackUrl"] == "http://127.0.0.1:9/x"


@pytest.mark.parametrize(("change", "field"), [
    pytest.param({"title": "x" * 101}, "title", id="title-long"),
    pytest.param({"title": "  "}, "title", id="title-blank"),
    pytest.param({"tags": ""}, "tags", id="tags-empty"),
    pytest.param({"negative_tags": ""}, "negative_tags", id="negative-empty"),
    pytest.param({"style_weight": 0.615}, "style_weight", id="weight-step"),
    pytest.param({"audio_weight": 1.5}, "audio_weight", id="weight-range"),
    pytest.param({"weirdness_constraint": True}, "weirdness_constraint", id="weight-bool"),
    pytest.param({"vocal_gender": "x"}, "vocal_gender", id="gender"),
    pytest.param({"model": "gpt"}, "model", id="model"),
    pytest.param({"callback_url": "ftp://x"}, "callback_url", id="callback"),
])
async def test_invalid_arguments_send_nothing(emulator: Emulator, tmp_path: Path,
                                              change: dict[str, object], field: str) -> None:
    path = tmp_path / "v.wav"
    path.write_bytes(make_wav(3.0))
    args: dict[str, object] = {**ARGS, **change}
    async with session(emulator) as s:
        for source in ("https://example.com/v.mp3", path):
            with pytest.raises(InputError) as caught:
                await s.suno.add_instrumental(source, **args)  # type: ignore[arg-type]
            assert caught.value.field == field
    assert not emulator.counters.requests  # not even the upload


async def test_bad_sources(emulator: Emulator, tmp_path: Path) -> None:
    async with session(emulator) as s:
        with pytest.raises(InputError, match="no such file"):
            await s.suno.add_instrumental(tmp_path / "missing.wav", **ARGS)
        with pytest.raises(InputError, match="http"):
            await s.suno.add_instrumental("ftp://example.com/a.mp3", **ARGS)


async def test_many_tasks_share_the_poll_lane(emulator: Emulator) -> None:
    async with session(emulator) as s:
        url = await uploaded_url(s)
        tasks = [await s.suno.add_instrumental(url, **ARGS) for _ in range(5)]
        results: list[int] = []

        async def follow(index: int) -> None:
            results.append(len((await tasks[index].wait(timeout=20)).tracks))

        async with anyio.create_task_group() as group:
            for i in range(len(tasks)):
                group.start_soon(follow, i)
    assert results == [2] * 5
