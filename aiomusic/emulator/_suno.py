"""Suno API (sunoapi.org): add-instrumental, record-info, credit, and callbacks."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import math
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import anyio
import httpx

from ._audio import Rendered, render, seed_of
from ._http import BODY_FAULTS, Req, send_json
from ._state import SunoTask

if TYPE_CHECKING:
    from ._context import App, Routes

__all__ = ["charge", "credit", "deliver", "is_loopback", "record_info", "start_task", "submit",
           "success", "track_audio"]

MODELS = ("V4_5PLUS", "V5", "V5_5", "V4_5", "V4_5ALL", "V4", "V6", "V6_WILD", "V6_MINI")
_MODEL_NAMES = {"V4_5PLUS": "chirp-bluejay", "V5": "chirp-crow", "V5_5": "chirp-v5-5"}
TASK_FAULTS = (
    "create_task_failed",
    "sensitive_word_error",
    "generate_audio_failed",
    "callback_exception",
)
# Failure status, the stage at which it shows, errorCode, message.
_FAILURES = {
    "create_task_failed": ("CREATE_TASK_FAILED", 0, 500, "Task creation failed"),
    "sensitive_word_error": ("SENSITIVE_WORD_ERROR", 1, 400, "Prohibited words detected"),
    "generate_audio_failed": ("GENERATE_AUDIO_FAILED", 2, 501, "Audio generation failed"),
    "callback_exception": ("CALLBACK_EXCEPTION", 3, 500, "Error during callback"),
}
_STAGES = ("PENDING", "TEXT_SUCCESS", "FIRST_SUCCESS", "SUCCESS")
_CALLBACK_TYPES = ("", "text", "first", "complete")
_TIMES = ("", "suno_text", "suno_first", "suno_complete")


def is_loopback(url: str) -> bool:
    """Whether the emulator may fetch or call `url` (http(s) on a loopback host only)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    if parts.hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False


def _fetchable(url: str, hosts: frozenset[str]) -> bool:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    host = parts.hostname.lower()
    return host in hosts or f"{host}:{parts.port}" in hosts


def _check(params: Any) -> tuple[str, str] | None:
    """(reason, message) for an invalid add-instrumental body, else None."""
    if not isinstance(params, dict):
        return "invalid", "body must be a JSON object"
    for name in ("uploadUrl", "title", "tags", "negativeTags", "callBackUrl"):
        if not isinstance(params.get(name), str) or not params[name].strip():
            return "invalid", f"{name} is required"
    if len(params["title"]) > 100:
        return "too_long", "title must be at most 100 characters"
    for name in ("uploadUrl", "callBackUrl"):
        if urlsplit(params[name]).scheme not in ("http", "https"):
            return "invalid", f"{name} must be an http(s) URL"
    if params.get("vocalGender") not in (None, "m", "f"):
        return "invalid", "vocalGender must be 'm' or 'f'"
    for name in ("styleWeight", "weirdnessConstraint", "audioWeight"):
        v = params.get(name)
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v <= 1:
            return "invalid", f"{name} must be a number from 0 to 1"
        if not math.isclose(v * 100, round(v * 100), abs_tol=1e-6):
            return "invalid", f"{name} must be a multiple of 0.01"
    if params.get("model", "V4_5PLUS") not in MODELS:
        return "invalid", f"model must be one of {', '.join(MODELS)}"
    return None


async def _fetch(app: App, req: Req, url: str) -> bytes | None:
    """The bytes at ``url``: one of the emulator's own files, or a URL on a configured
    ``fetch_hosts`` host (never any other: a test server must not fetch for its callers)."""
    base = req.base_url
    if url.startswith(base + "/files/"):
        stored = app.state.files.get(url.removeprefix(base + "/files/"))
        return stored.data if stored else None
    if not _fetchable(url, app.config.fetch_hosts) or app.client is None:
        return None
    try:
        resp = await app.client.get(url)
    except httpx.HTTPError:
        return None
    return resp.content if resp.status_code == 200 else None


async def submit(app: App, req: Req) -> None:
    key = await app.gate(req, "suno")
    if key is None:
        return
    try:
        params = await req.json()
    except ValueError:
        params = None
    problem = _check(params)
    data = b""
    if problem is None:
        data = await _fetch(app, req, params["uploadUrl"]) or b""
        if not data:
            problem = (
                "invalid",
                "uploadUrl could not be downloaded (the emulator fetches only "
                "its own files, and URLs on hosts given with --fetch-host)",
            )
    if problem is not None:
        app.state.count_rejection(req.operation, problem[0])
        await app.reject(req, "suno", *problem)
        return
    await start_task(
        app, req, key, params, seed_of(data[:65536], len(data), params["tags"], params["title"])
    )


def charge(app: App, key: str) -> bool:
    """Take one task's credits from `key`; False (nothing taken) when it has too few."""
    cfg = app.config
    with app.state.lock:
        left = app.state.credits.setdefault(key, cfg.suno_credits)
        if left >= cfg.suno_task_cost:
            app.state.credits[key] = left - cfg.suno_task_cost
    return left >= cfg.suno_task_cost


async def start_task(
    app: App,
    req: Req,
    key: str,
    params: dict[str, Any],
    seed: int,
    *,
    operation: str = "add_instrumental",
    parent: str = "",
    seconds: tuple[float, float] | None = None,
) -> SunoTask | None:
    """Charge, count the paid submission, and start a generation-family task (two tracks,
    staged callbacks); answers the submission. None when refused (out of credits)."""
    cfg = app.config
    if not charge(app, key):
        app.state.count_rejection(req.operation, "credits")
        await app.reject(req, "suno", "credits")
        return None
    app.state.count_submission(key, req.operation)
    failure = app.draw_fault(req.operation, TASK_FAULTS)
    now_ms = int(time.time() * 1000)
    task = SunoTask(
        app.state.new_task_id(),
        key,
        time.monotonic(),
        now_ms,
        params,
        seed,
        failure,
        operation=operation,
        parent=parent,
    )
    lo, hi = seconds or cfg.track_seconds
    for i in range(2):
        audio_id = f"{task.task_id[:8]}-{i}{task.seed % 10**6:06d}-{now_ms % 10**8:08d}"
        length = lo + ((task.seed >> (8 * i)) % 1000) / 1000 * (hi - lo)
        task.tracks.append({"id": audio_id, "seed": task.seed + i, "seconds": length})
    app.state.tasks[task.task_id] = task
    app.state.track_index.update({t["id"]: (task.task_id, i) for i, t in enumerate(task.tracks)})
    base = req.base_url
    app.spawn(lambda: _callbacks(app, task, base))
    await success(app, req, {"taskId": task.task_id})
    return task


def track_audio(track: dict[str, Any]) -> Rendered:
    return render(
        track["seed"], track["seconds"], fmt="mp3", sample_rate=44100, channels=2, bitrate=192000
    )


def _stage(app: App, task: SunoTask) -> int:
    elapsed = time.monotonic() - task.created
    t = app.config.timings
    stage = 0
    for i in (1, 2, 3):
        if elapsed >= t.seconds(_TIMES[i]):
            stage = i
    return stage


def _status(task: SunoTask, stage: int) -> tuple[str, int]:
    """(status, visible stage) with any failure applied."""
    if task.failure:
        status, at, _code, _msg = _FAILURES[task.failure]
        if stage >= at:
            return status, min(stage, max(0, at - 1))
    return _STAGES[stage], stage


def _time(app: App, ms: int) -> int | str:
    if app.config.suno_time_as_string:
        return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    return ms


async def _items(app: App, task: SunoTask, stage: int, base: str) -> list[dict[str, Any]]:
    """camelCase sunoData items as visible at `stage`."""
    items = []
    model = task.param.get("model", "V4_5PLUS")
    for i, track in enumerate(task.tracks):
        done = stage >= 3 or (stage == 2 and i == 0)
        duration: float | None = None
        if done:
            duration = (await anyio.to_thread.run_sync(track_audio, track)).duration_ms / 1000
        url = f"{base}/files/suno/{track['id']}.mp3"
        items.append(
            {
                "id": track["id"],
                "audioUrl": url if done else "",
                "sourceAudioUrl": url if done else "",
                "streamAudioUrl": f"{base}/files/suno/stream/{track['id']}" if stage >= 2 else "",
                "sourceStreamAudioUrl": f"{base}/files/suno/stream/{track['id']}"
                if stage >= 2
                else "",
                "imageUrl": f"{base}/files/suno/{track['id']}.jpeg" if stage >= 2 else "",
                "sourceImageUrl": f"{base}/files/suno/{track['id']}.jpeg" if stage >= 2 else "",
                "prompt": task.param.get("prompt", ""),
                "modelName": _MODEL_NAMES.get(model, "chirp-" + model.lower().replace("_", "-")),
                "title": task.param.get("title") or _untitled(task),
                "tags": task.param.get("tags", task.param.get("style", "")),
                "createTime": _time(app, task.created_ms),
                "duration": duration,
            }
        )
    return items


def _untitled(task: SunoTask) -> str:
    """A title for a task sent without one (non-custom generate, sounds): from its prompt."""
    words = str(task.param.get("prompt") or "").split()[:4]
    return " ".join(words).title() or f"Untitled {task.task_id[:6]}"


async def record_info(app: App, req: Req) -> None:
    key = await app.gate(req, "suno")
    if key is None:
        return
    task = app.state.tasks.get(req.query.get("taskId", ""))
    if task is None:
        app.state.count_rejection(req.operation, "not_found")
        await app.reject(req, "suno", "not_found", "taskId not found")
        return
    status, stage = _status(task, _stage(app, task))
    failed = task.failure and status == _FAILURES[task.failure][0]
    data = {
        "taskId": task.task_id,
        "parentMusicId": task.parent,
        "param": json.dumps(task.param),
        "response": {
            "taskId": task.task_id,
            "sunoData": await _items(app, task, stage, req.base_url) if stage else [],
        },
        "status": status,
        "type": "chirp-" + task.param.get("model", "V4_5PLUS").lower(),
        "operationType": task.operation,
        "errorCode": _FAILURES[task.failure][2] if failed and task.failure else None,
        "errorMessage": _FAILURES[task.failure][3] if failed and task.failure else None,
        "createTime": _time(app, task.created_ms),
    }
    await success(app, req, data)


async def credit(app: App, req: Req) -> None:
    key = await app.gate(req, "suno")
    if key is None:
        return
    with app.state.lock:
        left = app.state.credits.get(key, app.config.suno_credits)
    await success(app, req, left)


async def success(app: App, req: Req, data: Any) -> None:
    """Suno's success envelope (HTTP 200, body code 200), or a body fault drawn for it."""
    fault = app.draw_fault(req.operation, BODY_FAULTS)
    body = {"code": 200, "msg": "success", "data": data}
    await send_json(req.send, body, fault=fault, timings=app.config.timings)


def _snake(item: dict[str, Any]) -> dict[str, Any]:
    names = {
        "audioUrl": "audio_url",
        "sourceAudioUrl": "source_audio_url",
        "streamAudioUrl": "stream_audio_url",
        "sourceStreamAudioUrl": "source_stream_audio_url",
        "imageUrl": "image_url",
        "sourceImageUrl": "source_image_url",
        "modelName": "model_name",
    }
    return {names.get(k, k): v for k, v in item.items()}


async def _callbacks(app: App, task: SunoTask, base: str) -> None:
    """POST the text / first / complete (or error) callbacks as the stages are reached."""
    url = task.param["callBackUrl"]
    t = app.config.timings
    epoch = app.state.epoch
    for stage in (1, 2, 3):
        await anyio.sleep(max(0.0, task.created + t.seconds(_TIMES[stage]) - time.monotonic()))
        if app.state.epoch != epoch:
            return
        status, visible = _status(task, stage)
        if task.failure and status == _FAILURES[task.failure][0]:
            code, msg = _FAILURES[task.failure][2:]
            body = {
                "code": code,
                "msg": msg,
                "data": {"callbackType": "error", "task_id": task.task_id, "data": None},
            }
            await deliver(app, url, body, epoch)
            return
        items = [_snake(i) for i in await _items(app, task, visible, base)]
        body = {
            "code": 200,
            "msg": "All generated successfully." if stage == 3 else "success",
            "data": {
                "callbackType": _CALLBACK_TYPES[stage],
                "task_id": task.task_id,
                "data": items,
            },
        }
        await deliver(app, url, body, epoch)


async def deliver(app: App, url: str, body: dict[str, Any], epoch: int) -> None:
    if not is_loopback(url) or app.client is None:
        return
    fault = app.draw_fault("suno.callback", ("callback_failure", "callback_duplicate"))
    if fault == "callback_failure":
        app.state.count_callback(ok=False, epoch=epoch)
        return
    headers = _signature(app, body)
    for _copy in range(2 if fault == "callback_duplicate" else 1):
        for attempt in range(1 + app.config.callback_retries):
            if app.state.epoch != epoch:
                return
            try:
                resp = await app.client.post(url, json=body, timeout=app.config.callback_timeout,
                                             headers=headers)
                ok = resp.status_code == 200
            except httpx.HTTPError:
                ok = False
            app.state.count_callback(ok=ok, epoch=epoch)
            if ok:
                break
            await anyio.sleep(min(2.0, 0.05 * 2**attempt) * app.config.timings.scale)


def _signature(app: App, body: dict[str, Any]) -> dict[str, str]:
    """kie.ai's callback signature headers, when the emulator has a webhook key."""
    key = app.config.webhook_hmac_key
    if not key:
        return {}
    data = body.get("data")
    data = data if isinstance(data, dict) else {}
    task_id = data.get("task_id") or data.get("taskId") or body.get("task_id") or ""
    stamp = str(int(time.time()))
    digest = hmac.new(key.encode(), f"{task_id}.{stamp}".encode(), hashlib.sha256).digest()
    return {"X-Webhook-Timestamp": stamp, "X-Webhook-Signature": base64.b64encode(digest).decode()}


#: This module's routes (the app merges every handler module's table).
ROUTES: Routes = {
    ("POST", "/api/v1/generate/add-instrumental"): ("suno.add_instrumental", submit),
    ("GET", "/api/v1/generate/record-info"): ("suno.record_info", record_info),
    ("GET", "/api/v1/generate/credit"): ("suno.credit", credit),
}
