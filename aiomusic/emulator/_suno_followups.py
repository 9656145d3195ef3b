"""Suno follow-ups (vocal removal, WAV, MIDI, music video) and lyrics (timestamped lyrics
and personas answer at once: ``_suno_sync.py``).

Each follow-up has its own ``record-info`` that reports ``successFlag`` (MIDI as a number, as
seen on its record), calls back once with its own snake_case body, keeps its record and files
for the retention time, and may fail (faults ``create_task_failed``, ``callback_exception``,
``sensitive_word_error`` for lyrics, and ``generate_audio_failed``, which shows as the kind's
own state: ``GENERATE_WAV_FAILED``, ``GENERATE_MP4_FAILED``, ``GENERATE_MIDI_FAILED``,
``GENERATE_LYRICS_FAILED``, or ``GENERATE_AUDIO_FAILED`` for a vocal removal). A second WAV
conversion of one track answers code 409 "WAV record already exists";
``wav/record-info?taskId=<music task>&audioId=<track>`` then finds the existing conversion
(the look-up aiomusic makes).
"""

from __future__ import annotations

import json
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio
import attrs

from . import _suno_outputs as out
from ._audio import seed_of
from ._http import Req
from ._state import State, StoredFile
from ._suno import _time, charge, deliver, success, track_audio
from ._suno_family import finished_track

if TYPE_CHECKING:
    from ._context import App, Routes

__all__ = ["ROUTES", "params_of", "refuse", "store"]

# fault -> (status name, errorCode, message); the status shows when the task would finish,
# except a creation failure, which shows at once
_FAILURES = {
    "create_task_failed": ("CREATE_TASK_FAILED", 500, "Task creation failed"),
    "sensitive_word_error": ("SENSITIVE_WORD_ERROR", 400, "Prohibited words detected"),
    "callback_exception": ("CALLBACK_EXCEPTION", 500, "Error during callback"),
}
#: What generate_audio_failed shows as, by kind.
_OWN_FAILURE = {
    "stems": ("GENERATE_AUDIO_FAILED", 501, "Audio separation failed"),
    "wav": ("GENERATE_WAV_FAILED", 501, "WAV conversion failed"),
    "mp4": ("GENERATE_MP4_FAILED", 501, "Video generation failed"),
    "midi": ("GENERATE_MIDI_FAILED", 501, "MIDI generation failed"),
    "lyrics": ("GENERATE_LYRICS_FAILED", 501, "Lyrics generation failed"),
}
_MIDI_FLAGS = {"PENDING": 0, "SUCCESS": 1, "CREATE_TASK_FAILED": 2, "GENERATE_MIDI_FAILED": 3}


@attrs.frozen
class Kind:
    """How one kind of follow-up behaves."""

    faults: tuple[str, ...]
    timing: str  # the Timings field after which it is done


_FAULTS = ("create_task_failed", "generate_audio_failed", "callback_exception")
KINDS = {
    "stems": Kind(_FAULTS, "suno_complete"),
    "wav": Kind(_FAULTS, "suno_first"),
    "midi": Kind(_FAULTS, "suno_complete"),
    "mp4": Kind(_FAULTS, "suno_complete"),
    "lyrics": Kind((*_FAULTS, "sensitive_word_error"), "suno_text"),
}


def failure(task: FollowTask) -> tuple[str, int, str]:
    """(state, errorCode, message) of the failure drawn for ``task``."""
    assert task.failure is not None
    return _OWN_FAILURE[task.kind] if task.failure == "generate_audio_failed" else \
        _FAILURES[task.failure]


@attrs.define
class FollowTask:
    task_id: str
    kind: str
    key: str
    created: float  # loop clock
    created_ms: int
    param: dict[str, Any]
    failure: str | None
    seed: int
    seconds: float = 0.0
    music_id: str = ""
    files: dict[str, str] = attrs.field(factory=dict)  # output name -> path under /files/


@attrs.define
class Store:
    """The follow-ups' state; a reset of the emulator (a new epoch) starts a new one."""

    epoch: int
    tasks: dict[str, FollowTask] = attrs.field(factory=dict)
    wav_of: dict[tuple[str, str], str] = attrs.field(factory=dict)  # (task, audio) -> wav task
    personas: dict[str, dict[str, Any]] = attrs.field(factory=dict)  # audio id -> persona


_STORES: weakref.WeakKeyDictionary[State, Store] = weakref.WeakKeyDictionary()


def store(app: App) -> Store:
    """The follow-ups' state of this emulator, forgetting expired tasks and their files."""
    found = _STORES.get(app.state)
    if found is None or found.epoch != app.state.epoch:
        found = _STORES[app.state] = Store(app.state.epoch)
    keep = app.config.timings.seconds("suno_retention")
    now = time.monotonic()
    for task in [t for t in found.tasks.values() if now - _done_at(app, t) > keep]:
        del found.tasks[task.task_id]
        for path in task.files.values():
            app.state.files.pop(path, None)
    return found


def _done_at(app: App, task: FollowTask) -> float:
    return task.created + app.config.timings.seconds(KINDS[task.kind].timing)


def _status(app: App, task: FollowTask) -> str:
    """PENDING, SUCCESS, or the failure's state name."""
    done = time.monotonic() >= _done_at(app, task)
    if task.failure and (done or task.failure == "create_task_failed"):
        return failure(task)[0]
    return "SUCCESS" if done else "PENDING"


async def _materialize(app: App, task: FollowTask, base: str) -> dict[str, str]:
    """The task's output URLs (name -> URL), rendering its files on first use."""
    if not task.files:
        made: dict[str, tuple[bytes, str, str]] = {}
        if task.kind == "wav":
            data = await anyio.to_thread.run_sync(out.wav_audio, task.seed, task.seconds)
            made["wav"] = (data, "audio/wav", f"suno/wav/{task.task_id}.wav")
        elif task.kind == "mp4":
            audio = (await anyio.to_thread.run_sync(
                track_audio, {"seed": task.seed, "seconds": task.seconds})).data
            made["video"] = (out.mp4_file(audio), "video/mp4", f"suno/video/{task.task_id}.mp4")
        elif task.kind == "stems":
            kind = task.param.get("type") or "separate_vocal"
            names = out.STEMS_BY_TYPE.get(kind) or (task.param.get("stemName") or "vocals",
                                                    "instrumental")
            for i, name in enumerate(names):
                data = await anyio.to_thread.run_sync(out.stem_audio, task.seed, task.seconds, i)
                made[name] = (data, "audio/mpeg", f"suno/stems/{task.task_id}/{name}.mp3")
        for name, (data, mime, path) in made.items():
            app.state.files[path] = StoredFile(data, mime, path.rpartition("/")[2])
            task.files[name] = path
    return {name: f"{base}/files/{path}" for name, path in task.files.items()}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


async def _record(app: App, task: FollowTask, base: str) -> dict[str, Any]:
    """The record-info ``data`` of a follow-up, as its endpoint answers it."""
    status = _status(app, task)
    failed = status not in ("PENDING", "SUCCESS")
    urls = await _materialize(app, task, base) if status == "SUCCESS" else {}
    error = failure(task) if failed and task.failure else None
    data: dict[str, Any] = {
        "taskId": task.task_id, "callbackUrl": task.param.get("callBackUrl"),
        "successFlag": status, "createTime": _time(app, task.created_ms),
        "completeTime": _time(app, task.created_ms + int(
            app.config.timings.seconds(KINDS[task.kind].timing) * 1000))
        if status != "PENDING" else None,
        "errorCode": error[1] if error else None, "errorMessage": error[2] if error else None}
    if task.kind == "lyrics":
        data.pop("successFlag")
        data.update(status=status, type="LYRICS", param=json.dumps(task.param),
                    response={"taskId": task.task_id, "data": out.variants(
                        task.seed, task.param.get("prompt", "")) if status == "SUCCESS" else []})
        return data
    data.update(musicId=task.music_id, musicIndex=0)
    if task.kind == "wav":
        data["response"] = {"audioWavUrl": urls.get("wav")}
    elif task.kind == "mp4":
        data["response"] = {"videoUrl": urls.get("video")}
    elif task.kind == "midi":
        data.update(successFlag=_MIDI_FLAGS.get(status, status), recordTaskId=-1,
                    audioId=task.music_id, midiData=out.midi_data(task.seed, task.seconds)
                    if status == "SUCCESS" else None)
    else:
        response: dict[str, Any] = {"id": None, "originUrl": None}
        response.update({_camel(f"{n}_url").replace("vocalsUrl", "vocalUrl"): urls.get(n)
                         for n in ("vocals", "instrumental", *out.STEMS_BY_TYPE["split_stem"])})
        if urls and task.param.get("type", "separate_vocal") == "separate_vocal":
            response["originData"] = [
                {"duration": task.seconds, "audio_url": urls[n], "id": f"{task.task_id}-{n}",
                 "stem_type_group_name": n.title()} for n in ("vocals", "instrumental")]
        data["response"] = response
    return data


async def _callback(app: App, task: FollowTask, base: str) -> None:
    """The one callback of a follow-up, when it ends (or fails)."""
    delay = 0.0 if task.failure == "create_task_failed" else _done_at(app, task) - \
        time.monotonic()
    epoch = app.state.epoch
    await anyio.sleep(max(0.0, delay))
    if app.state.epoch != epoch:
        return
    status = _status(app, task)
    code, msg = (200, "success") if status == "SUCCESS" else failure(task)[1:]
    urls = await _materialize(app, task, base) if status == "SUCCESS" else {}
    data: dict[str, Any] = {"task_id": task.task_id}
    body: dict[str, Any] = {"code": code, "msg": msg, "data": data}
    if task.kind == "wav":
        data["audioWavUrl"] = urls.get("wav")
    elif task.kind == "mp4":
        data["video_url"] = urls.get("video")
    elif task.kind == "stems":
        data["vocal_removal_info"] = {f"{n.removesuffix('s') if n == 'vocals' else n}_url": u
                                      for n, u in urls.items()} | {"origin_url": ""}
    elif task.kind == "midi":
        body = {"task_id": task.task_id, "code": code, "msg": msg,
                "data": out.midi_data(task.seed, task.seconds) if urls or code == 200 else None}
    else:
        body["data"] = {"callbackType": "complete" if code == 200 else "error",
                        "taskId": task.task_id,
                        "data": out.variants(task.seed, task.param.get("prompt", ""))
                        if code == 200 else None}
    await deliver(app, task.param["callBackUrl"], body, epoch)


# -- handlers ----------------------------------------------------------------------------------


async def params_of(app: App, req: Req, *, callback: bool = True
                    ) -> tuple[str, dict[str, Any]] | None:
    """The key and the JSON body (with a callBackUrl when ``callback``), or None once
    refused."""
    key = await app.gate(req, "suno")
    if key is None:
        return None
    try:
        params = await req.json()
    except ValueError:
        params = None
    if not isinstance(params, dict):
        await refuse(app, req, "invalid", "body must be a JSON object")
        return None
    url = params.get("callBackUrl")
    if callback and (not isinstance(url, str) or not url.startswith(("http://", "https://"))):
        await refuse(app, req, "invalid", "callBackUrl is required (an http(s) URL)")
        return None
    return key, params


async def refuse(app: App, req: Req, reason: str, message: str) -> None:
    app.state.count_rejection(req.operation, reason)
    await app.reject(req, "suno", reason, message)


async def _start(app: App, req: Req, key: str, kind: str, params: dict[str, Any], *,
                 seed: int, seconds: float = 0.0, music_id: str = "") -> FollowTask | None:
    if not charge(app, key):
        await refuse(app, req, "credits", "Insufficient credits")
        return None
    app.state.count_submission(key, req.operation)
    task = FollowTask(app.state.new_task_id(), kind, key, time.monotonic(),
                      int(time.time() * 1000), params, app.draw_fault(req.operation,
                                                                      KINDS[kind].faults),
                      seed, seconds, music_id)
    store(app).tasks[task.task_id] = task
    base = req.base_url
    app.spawn(lambda: _callback(app, task, base))
    await success(app, req, {"taskId": task.task_id})
    return task


def _submit(kind: str) -> Callable[[App, Req], Any]:
    async def handle(app: App, req: Req) -> None:
        got = await params_of(app, req)
        if got is None:
            return
        key, params = got
        if kind == "lyrics":
            if not isinstance(params.get("prompt"), str) or not params["prompt"].strip():
                await refuse(app, req, "invalid", "prompt is required")
                return
            await _start(app, req, key, kind, params, seed=seed_of("lyrics", params["prompt"]))
            return
        if kind == "midi":
            parent = store(app).tasks.get(params.get("taskId", ""))
            if parent is None or parent.kind != "stems" or parent.key != key or \
                    _status(app, parent) != "SUCCESS":
                await refuse(app, req, "invalid", "taskId must be a finished vocal removal")
                return
            await _start(app, req, key, kind, params, seed=parent.seed + 1,
                         seconds=parent.seconds, music_id=params.get("audioId") or "")
            return
        found = finished_track(app, key, params.get("audioId"), params.get("taskId"))
        problem = _check(kind, params)
        if found is None or problem:
            await refuse(app, req, "invalid",
                          problem or "taskId and audioId must name a finished track of yours")
            return
        music, track = found
        pair = (music.task_id, track["id"])
        state = store(app)
        existing = state.tasks.get(state.wav_of.get(pair, ""))
        if kind == "wav" and existing is not None and not existing.failure:
            await refuse(app, req, "exists", "WAV record already exists")
            return
        task = await _start(app, req, key, kind, params, seed=track["seed"],
                            seconds=track["seconds"], music_id=track["id"])
        if task is not None and kind == "wav":
            state.wav_of[pair] = task.task_id
    return handle


def _check(kind: str, params: dict[str, Any]) -> str | None:
    if kind == "stems" and params.get("type", "separate_vocal") not in (
            "separate_vocal", "split_stem", "split_stem_advanced"):
        return "type must be separate_vocal, split_stem or split_stem_advanced"
    for name in ("author", "domainName"):
        value = params.get(name)
        if kind == "mp4" and value is not None and (not isinstance(value, str) or
                                                    len(value) > 50):
            return f"{name} must be at most 50 characters"
    return None


def _record_info(kind: str) -> Callable[[App, Req], Any]:
    async def handle(app: App, req: Req) -> None:
        key = await app.gate(req, "suno")
        if key is None:
            return
        state = store(app)
        task_id = req.query.get("taskId", "")
        if kind == "wav" and task_id not in state.tasks:  # by the converted track
            task_id = state.wav_of.get((task_id, req.query.get("audioId", "")), task_id)
        task = state.tasks.get(task_id)
        if task is None or task.kind != kind or task.key != key:
            await refuse(app, req, "not_found", "taskId not found")
            return
        await success(app, req, await _record(app, task, req.base_url))
    return handle


#: This module's routes (the app merges every handler module's table).
ROUTES: Routes = {
    ("POST", "/api/v1/vocal-removal/generate"): ("suno.stems", _submit("stems")),
    ("GET", "/api/v1/vocal-removal/record-info"): ("suno.stems_record", _record_info("stems")),
    ("POST", "/api/v1/wav/generate"): ("suno.wav", _submit("wav")),
    ("GET", "/api/v1/wav/record-info"): ("suno.wav_record", _record_info("wav")),
    ("POST", "/api/v1/midi/generate"): ("suno.midi", _submit("midi")),
    ("GET", "/api/v1/midi/record-info"): ("suno.midi_record", _record_info("midi")),
    ("POST", "/api/v1/mp4/generate"): ("suno.video", _submit("mp4")),
    ("GET", "/api/v1/mp4/record-info"): ("suno.mp4_record", _record_info("mp4")),
    ("POST", "/api/v1/lyrics"): ("suno.lyrics", _submit("lyrics")),
    ("GET", "/api/v1/lyrics/record-info"): ("suno.lyrics_record", _record_info("lyrics")),
}
