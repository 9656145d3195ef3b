"""The one task model: polls are free, callbacks are hints, the first end is final.

A small fake service (httpx.MockTransport) answers the status calls from a script, so each
rule is checked on both backends without the emulator's timings.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from aiomusic import (
    AuthenticationError,
    DeadlineExceededError,
    MusicSession,
    NotFoundError,
    ResponseError,
    RetryPolicy,
    TaskFailedError,
    TaskStatus,
)
from aiomusic import tasks as tasks_module
from aiomusic._core._call import Call
from aiomusic._core._config import LaneKind, Service
from aiomusic._core._models import CallbackEvent, CallbackType, TaskRecord, Track
from aiomusic._core._task import Asset, Phase, PollSchedule, TaskSnapshot, TaskSpec
from aiomusic.suno._ops import music_hint, music_snapshot
from aiomusic.tasks import HintSource, Task

pytestmark = pytest.mark.anyio

FAST = PollSchedule(initial=0.01, maximum=0.02, jitter=0)
NEVER = PollSchedule(initial=3600, maximum=3600, jitter=0)


@pytest.fixture(autouse=True)
def quick_confirmations(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tasks_module, "CONFIRM_DELAY", 0.01)


def _status_call(task_id: str) -> Call:
    return Call(service=Service.SUNO, lane=LaneKind.POLL, operation="fake.status",
                method="GET", url="/status", params={"id": task_id})


def _read(body: Any, task_id: str) -> TaskSnapshot:
    data = body.get("data")
    if not isinstance(data, dict) or "state" not in data:
        raise ResponseError(f"unreadable status answer: {data!r}")
    state = data["state"]
    phase = {"queued": Phase.PENDING, "running": Phase.RUNNING, "done": Phase.SUCCEEDED,
             "failed": Phase.FAILED}[state]
    rank = {"queued": 0, "running": 1, "done": 3, "failed": 3}[state]
    assets = tuple(Asset(url=u, name=f"a{i}") for i, u in enumerate(data.get("urls", [])))
    return TaskSnapshot(task_id=data.get("id", task_id), phase=phase, status=state,
                        rank=rank, assets=assets, error_code=data.get("code"))


SPEC = TaskSpec(name="fake.task", label="Fake task", service=Service.SUNO,
                status_call=_status_call, read_status=_read, poll=FAST, timeout=5,
                resume_hint="resume it with fake.task({task_id!r})",
                initial_status="queued")


def answers(*script: Any) -> tuple[Callable[[httpx.Request], httpx.Response], list[str]]:
    """A transport answering status calls from ``script`` (the last one repeats)."""
    asked: list[str] = []
    queue: Iterator[Any] = iter(script)
    last: list[Any] = [None]

    def handle(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.params["id"])
        item = next(queue, last[0])
        last[0] = item
        if isinstance(item, httpx.Response):
            return item
        return httpx.Response(200, json={"code": 200, "msg": "ok", "data": item})

    return handle, asked


def session_for(handle: Callable[[httpx.Request], httpx.Response]) -> MusicSession:
    client = httpx.AsyncClient(transport=httpx.MockTransport(handle))
    return MusicSession(suno_key="k" * 16, http_client=client,
                        retry=RetryPolicy(max_attempts=1))


DONE = {"id": "t1", "state": "done", "urls": ["https://cdn.example/a.mp3"]}


class Hints(HintSource):
    def __init__(self) -> None:
        self.latest: TaskSnapshot | None = None

    def hint(self, task_id: str) -> TaskSnapshot | None:
        return self.latest

    def _subscribe(self, task_id: str) -> Any:
        class Waker:
            def reset(self) -> None: ...

            async def wait(self, seconds: float) -> None:
                import anyio

                await anyio.sleep(min(seconds, 0.01))

        return Waker()

    def _unsubscribe(self, task_id: str, waker: Any) -> None: ...


async def test_submitted_task_is_pending_and_waits_to_success() -> None:
    handle, asked = answers({"id": "t1", "state": "running"}, DONE)
    async with session_for(handle) as s:
        task = Task(s, SPEC, "t1", submitted=True)
        assert (task.phase, task.status, task.snapshot is not None) == (Phase.PENDING,
                                                                       "queued", True)
        seen = [snap.status async for snap in task.watch()]
        done = await task.wait()
    assert seen == ["queued", "running", "done"]
    assert done.phase is Phase.SUCCEEDED and done.assets[0].url.endswith("a.mp3")
    assert task.learnt_by == "poll" and task.last_status == done and task.polls == 2
    assert asked == ["t1", "t1"] and repr(task) == "<Task t1 done>"


async def test_resumed_task_is_looked_up_at_once() -> None:
    handle, asked = answers(DONE)
    async with session_for(handle) as s:
        task = Task(s, SPEC, " t1 ")
        assert task.phase is None and task.status is None and repr(task) == "<Task t1 ?>"
        assert (await task.wait(poll=NEVER)).status == "done"
    assert asked == ["t1"]


async def test_a_malformed_status_answer_is_asked_again() -> None:
    """Polls are free: one unreadable answer (data null, a NaN duration...) does not end
    the wait while the paid task goes on."""
    handle, asked = answers(None, {"id": "t1"}, httpx.Response(500, text="oops"), DONE)
    async with session_for(handle) as s:
        done = await Task(s, SPEC, "t1", submitted=True).wait()
    assert done.status == "done" and len(asked) == 4


async def test_a_run_of_failed_polls_gives_up_naming_the_task_and_the_way_back() -> None:
    handle, asked = answers(None)
    async with session_for(handle) as s:
        task = Task(s, SPEC, "t1", submitted=True)
        with pytest.raises(ResponseError) as caught:
            await task.wait()
    assert len(asked) == tasks_module.MAX_FAILED_POLLS
    message = str(caught.value)
    assert "8 status calls in a row failed" in message
    assert "Fake task t1 goes on at the service; resume it with fake.task('t1')" in message


async def test_a_refusal_that_asking_again_cannot_fix_is_raised_at_once() -> None:
    handle, asked = answers(httpx.Response(401, json={"code": 401, "msg": "bad key"}))
    async with session_for(handle) as s:
        with pytest.raises(AuthenticationError):
            await Task(s, SPEC, "t1", submitted=True).wait()
    assert len(asked) == 1


async def test_success_naming_nothing_to_download_is_not_success() -> None:
    handle, asked = answers({"id": "t1", "state": "done", "urls": []}, DONE)
    async with session_for(handle) as s:
        done = await Task(s, SPEC, "t1", submitted=True).wait()
    assert done.assets and len(asked) == 2


async def test_an_answer_about_another_task_is_refused() -> None:
    handle, _ = answers({"id": "t2", "state": "done", "urls": ["https://x/a"]})
    async with session_for(handle) as s:
        with pytest.raises(ResponseError, match="answered about 't2'"):
            await Task(s, SPEC, "t1").refresh()


async def test_failure_is_raised_and_the_first_end_is_final() -> None:
    handle, _ = answers({"id": "t1", "state": "failed", "code": 501})
    async with session_for(handle) as s:
        task = Task(s, SPEC, "t1", submitted=True)
        with pytest.raises(TaskFailedError) as caught:
            await task.wait()
        assert caught.value.error_code == 501 and caught.value.status == "failed"
        assert str(caught.value) == "Fake task t1 failed with failed (error 501)"
        task._absorb_status(_read({"data": DONE}, "t1"))  # a later success changes nothing
        with pytest.raises(TaskFailedError):
            await task.wait()


async def test_the_deadline_says_how_to_resume() -> None:
    handle, _ = answers({"id": "t1", "state": "running"})
    async with session_for(handle) as s:
        task = Task(s, SPEC, "t1", submitted=True)
        with pytest.raises(DeadlineExceededError) as caught:
            await task.wait(timeout=0.1)
        with pytest.raises(ValueError, match="positive"):
            await task.wait(timeout=-1)
    assert str(caught.value) == ("Fake task t1 is still running after 0.1 s; it goes on at "
                                 "the service: resume it with fake.task('t1')")


async def test_a_callback_is_a_hint_confirmed_before_it_counts() -> None:
    hints = Hints()
    handle, asked = answers({"id": "t1", "state": "running"}, DONE)
    async with session_for(handle) as s:
        task = Task(s, SPEC, "t1", submitted=True, hints=lambda: hints)
        hints.latest = TaskSnapshot("t1", Phase.SUCCEEDED, "done", rank=3,
                                    assets=(Asset("https://evil.example/x", "x"),))
        done = await task.wait(poll=NEVER)
    # the first confirmation still says running; asked again soon after, then done
    assert len(asked) == 2 and task.learnt_by == "callback"
    assert [a.url for a in done.assets] == ["https://cdn.example/a.mp3"]


async def test_progress_hints_move_the_task_without_a_poll() -> None:
    hints = Hints()
    handle, asked = answers(DONE)
    async with session_for(handle) as s:
        task = Task(s, SPEC, "t1", submitted=True, hints=lambda: hints)
        hints.latest = TaskSnapshot("t1", Phase.RUNNING, "running", rank=1)
        watching = task.watch(poll=NEVER)
        assert (await watching.__anext__()).status == "queued"
        assert (await watching.__anext__()).status == "running"
        await watching.aclose()
    assert asked == []


async def test_a_failure_hint_the_service_cannot_confirm_is_believed() -> None:
    hints = Hints()
    handle, asked = answers(httpx.Response(404, json={"code": 404, "msg": "no such task"}))
    async with session_for(handle) as s:
        task = Task(s, SPEC, "t1", hints=lambda: hints)
        task._immediate = False
        hints.latest = TaskSnapshot("t1", Phase.FAILED, "error", rank=3, error_code=531)
        with pytest.raises(TaskFailedError) as caught:
            await task.wait(poll=NEVER)
    assert caught.value.error_code == 531 and len(asked) == 1


async def test_a_failure_hint_not_shown_yet_is_believed_after_one_look() -> None:
    hints = Hints()
    handle, asked = answers({"id": "t1", "state": "running"})
    async with session_for(handle) as s:
        task = Task(s, SPEC, "t1", submitted=True, hints=lambda: hints)
        hints.latest = TaskSnapshot("t1", Phase.FAILED, "error", rank=3)
        with pytest.raises(TaskFailedError, match="failed with error"):
            await task.wait(poll=NEVER)
    assert len(asked) == 1


async def test_unknown_task_is_not_retried() -> None:
    handle, asked = answers(httpx.Response(404, json={"code": 404, "msg": "no such task"}))
    async with session_for(handle) as s:
        with pytest.raises(NotFoundError):
            await Task(s, SPEC, "t1").wait()
    assert len(asked) == 1
    with pytest.raises(ValueError, match="non-empty"):
        Task(s, SPEC, "  ")


def _record(status: str, *urls: str | None) -> TaskRecord:
    return TaskRecord(task_id="t", status=TaskStatus(status), raw_status=status,
                      tracks=tuple(Track(id=f"x{i}", audio_url=u) for i, u in enumerate(urls)))


@pytest.mark.parametrize(
    ("record", "phase"),
    [
        pytest.param(_record("CALLBACK_EXCEPTION", "https://a/1.mp3", "https://a/2.mp3"),
                     Phase.SUCCEEDED, id="callback-failed-but-tracks-done"),
        pytest.param(_record("CALLBACK_EXCEPTION", "https://a/1.mp3", None), Phase.FAILED,
                     id="callback-failed-audio-missing"),
        pytest.param(_record("CALLBACK_EXCEPTION"), Phase.FAILED, id="callback-failed-no-tracks"),
    ],
)
def test_callback_exception_with_finished_tracks_is_a_success(record: TaskRecord,
                                                               phase: Phase) -> None:
    snap = music_snapshot(record)
    assert snap.phase is phase and snap.status == "CALLBACK_EXCEPTION"


@pytest.mark.parametrize(
    ("kind", "code", "phase", "status"),
    [(CallbackType.TEXT, 200, Phase.RUNNING, "TEXT_SUCCESS"),
     (CallbackType.FIRST, 200, Phase.RUNNING, "FIRST_SUCCESS"),
     (CallbackType.COMPLETE, 200, Phase.SUCCEEDED, "SUCCESS"),
     (CallbackType.COMPLETE, 531, Phase.FAILED, "error"),
     (CallbackType.ERROR, 501, Phase.FAILED, "error")],
)
def test_music_callbacks_as_hints(kind: CallbackType, code: int, phase: Phase,
                                  status: str) -> None:
    event = CallbackEvent(task_id="t", callback_type=kind, code=code, msg="m",
                          tracks=(Track(id="a", audio_url="https://a/1.mp3"),))
    hint = music_hint(event)
    assert (hint.phase, hint.status) == (phase, status)
    assert json.dumps(hint.status)


@pytest.mark.parametrize("bad", [
    pytest.param({"code": 200, "msg": "success", "data": None}, id="data-null"),
    pytest.param({"code": 200, "msg": "success", "data": {
        "taskId": "s1", "status": "SUCCESS", "response": {"sunoData": [
            {"id": "a", "audioUrl": "https://cdn.example/a.mp3", "duration": "NaN"}]}}},
        id="duration-nan"),
])
async def test_suno_wait_survives_one_malformed_record_info(bad: dict[str, Any]) -> None:
    """Issue 16: one malformed record-info answer ended task.wait() with a non-retryable
    error while the paid task went on."""
    good = {"code": 200, "msg": "success", "data": {
        "taskId": "s1", "status": "SUCCESS", "response": {"sunoData": [
            {"id": "a", "audioUrl": "https://cdn.example/a.mp3", "duration": 3.0}]}}}
    handle, asked = answers(httpx.Response(200, json=bad), httpx.Response(200, json=good))

    def routed(request: httpx.Request) -> httpx.Response:
        request.url = request.url.copy_merge_params({"id": request.url.params["taskId"]})
        return handle(request)

    async with session_for(routed) as s:
        result = await s.suno.task("s1").wait(timeout=10, poll=FAST)
    assert [t.duration for t in result.tracks] == [3.0] and len(asked) == 2


async def test_suno_success_with_a_track_missing_its_audio_is_asked_again() -> None:
    """Issue 16: a Suno SUCCESS with no tracks, or a track without audio, was taken as a
    (silently empty or partial) success."""
    half = {"code": 200, "msg": "success", "data": {
        "taskId": "s1", "status": "SUCCESS", "response": {"sunoData": [
            {"id": "a", "audioUrl": "https://cdn.example/a.mp3"}, {"id": "b"}]}}}
    none = {"code": 200, "msg": "success", "data": {"taskId": "s1", "status": "SUCCESS"}}
    good = {"code": 200, "msg": "success", "data": {
        "taskId": "s1", "status": "SUCCESS", "response": {"sunoData": [
            {"id": "a", "audioUrl": "https://cdn.example/a.mp3"},
            {"id": "b", "audioUrl": "https://cdn.example/b.mp3"}]}}}
    handle, asked = answers(httpx.Response(200, json=none), httpx.Response(200, json=half),
                            httpx.Response(200, json=good))

    def routed(request: httpx.Request) -> httpx.Response:
        request.url = request.url.copy_merge_params({"id": request.url.params["taskId"]})
        return handle(request)

    async with session_for(routed) as s:
        result = await s.suno.task("s1").wait(timeout=10, poll=FAST)
    assert [t.id for t in result.tracks] == ["a", "b"] and len(asked) == 3
