"""Suno's generation family beyond Add Instrumental: generate, extend, upload-cover,
upload-extend, add-vocals, mashup, replace-section and sounds.

They all start the same kind of task as Add Instrumental (``_suno.start_task``: two tracks,
``generate/record-info``, staged callbacks, the same failure faults); each checks its own
body the way the service does, per model (code 400, or 413 for text that is too long).
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ._audio import mp3_frames, seed_of
from ._http import Req
from ._suno import MODELS, _fetch, start_task
from ._uploads import _lookup

if TYPE_CHECKING:
    from ._context import App, Routes
    from ._state import SunoTask

__all__ = ["ROUTES", "audio_seconds", "finished_track"]

Problem = tuple[str, str]
_LIMITS = {"V4": (3000, 200, 80), "V4_5ALL": (5000, 1000, 80)}
_DEFAULT_LIMITS = (5000, 1000, 100)
_KEYS = ("Any", "Cm", "C#m", "Dm", "D#m", "Em", "Fm", "F#m", "Gm", "G#m", "Am", "A#m", "Bm",
         "C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
_MASHUP_MODELS = tuple(m for m in MODELS if m != "V5_5")
_ADD_MODELS = ("V4_5PLUS", "V5", "V5_5", "V6", "V6_WILD", "V6_MINI")


def audio_seconds(data: bytes) -> float | None:
    """The length of WAV or MP3 bytes (None for another format)."""
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE" and len(data) >= 44:
        byte_rate = struct.unpack("<I", data[28:32])[0]
        return (len(data) - 44) / byte_rate if byte_rate else None
    start = 0
    if data[:3] == b"ID3" and len(data) >= 10:
        size = data[6:10]
        start = 10 + (size[0] << 21 | size[1] << 14 | size[2] << 7 | size[3])
    frames, per_frame, rate = mp3_frames(data[start:])
    return frames * per_frame / rate if frames and rate else None


def _text(params: dict[str, Any], name: str, limit: int | None = None, *,
          required: bool = True) -> Problem | None:
    value = params.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        return "invalid", f"{name} is required"
    if limit is not None and len(value) > limit:
        return "too_long", f"{name} must be at most {limit} characters"
    return None


def _common(params: Any, models: tuple[str | None, ...], default: str | None
            ) -> Problem | None:
    if not isinstance(params, dict):
        return "invalid", "body must be a JSON object"
    url = params.get("callBackUrl")
    if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
        return "invalid", "callBackUrl is required (an http(s) URL)"
    model = params.get("model", default)
    if model not in models:
        return "invalid", f"model must be one of {', '.join(m for m in models if m)}"
    for name in ("styleWeight", "weirdnessConstraint", "audioWeight"):
        value = params.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)
                                  or not 0 <= value <= 1):
            return "invalid", f"{name} must be a number from 0 to 1"
    if params.get("vocalGender") not in (None, "m", "f"):
        return "invalid", "vocalGender must be 'm' or 'f'"
    if params.get("personaModel") not in (None, "style_persona", "voice_persona"):
        return "invalid", "personaModel must be style_persona or voice_persona"
    return None


def _mode(params: dict[str, Any], *, custom_key: str = "customMode") -> Problem | None:
    """customMode/instrumental with the model's prompt, style and title limits."""
    prompt, style, title = _LIMITS.get(params.get("model", ""), _DEFAULT_LIMITS)
    if not params.get(custom_key):
        return _text(params, "prompt", 500)
    instrumental = bool(params.get("instrumental"))
    return (_text(params, "prompt", prompt, required=not instrumental)
            or _text(params, "style", style) or _text(params, "title", title))


def finished_track(app: App, key: str, audio_id: Any, task_id: Any = None
                   ) -> tuple[SunoTask, dict[str, Any]] | None:
    """The track `audio_id` of a finished task of `key` (of `task_id`, when given)."""
    where = app.state.track_index.get(audio_id) if isinstance(audio_id, str) else None
    if where is None or (task_id is not None and where[0] != task_id):
        return None
    task = app.state.tasks.get(where[0])
    if task is None or task.key != key or task.failure:
        return None
    from ._suno import _stage

    if _stage(app, task) < 3:
        return None
    return task, task.tracks[where[1]]


Check = Callable[["App", str, dict[str, Any], list[bytes]], "Problem | str | None"]


async def _submit(app: App, req: Req, operation: str, models: tuple[str | None, ...],
                  default: str | None, check: Check, uploads: tuple[str, ...],
                  *, optional: bool) -> None:
    """The shared submission: gate, checks, fetch the uploads (``optional``: only those the
    body names), then start the task."""
    key = await app.gate(req, "suno")
    if key is None:
        return
    try:
        params = await req.json()
    except ValueError:
        params = None
    problem = _common(params, models, default)
    data: list[bytes] = []
    if problem is None:
        named = [name for name in uploads if not optional or params.get(name) is not None]
        urls = [u for name in named for u in
                (params.get(name) if isinstance(params.get(name), list) else [params.get(name)])]
        for url in urls:
            got = await _fetch_any(app, req, url) if isinstance(url, str) else None
            if not got:
                problem = ("invalid", "the upload URL could not be downloaded (the emulator "
                                      "fetches only its own files and http URLs on loopback)")
                break
            data.append(got)
    parent: str | Problem | None = None
    if problem is None:
        parent = check(app, key, params, data)
        if isinstance(parent, tuple):
            problem = parent
    if problem is not None:
        app.state.count_rejection(req.operation, problem[0])
        await app.reject(req, "suno", *problem)
        return
    digest = hashlib.sha256(b"".join(d[:65536] for d in data)).hexdigest()
    seed = seed_of(operation, params.get("prompt"), params.get("style"), params.get("title"),
                   params.get("audioId"), digest)
    await start_task(app, req, key, params, seed, operation=operation,
                     parent=parent if isinstance(parent, str) else "")


async def _fetch_any(app: App, req: Req, url: str) -> bytes | None:
    """The bytes behind an upload URL: an uploaded file, a generated track, or loopback."""
    prefix = req.base_url + "/files/"
    if url.startswith(prefix):
        stored = await _lookup(app, url.removeprefix(prefix))
        return stored.data if stored is not None else None
    return await _fetch(app, req, url)


def _check_generate(app: App, key: str, params: dict[str, Any], data: list[bytes]
                    ) -> Problem | None:
    return _mode(params)


def _continue_at(params: dict[str, Any], seconds: float | None) -> Problem | None:
    if not params.get("defaultParamFlag"):
        return None
    problem = (_text(params, "style", 1000) or _text(params, "title", 100) or
               _text(params, "prompt", 5000, required=not params.get("instrumental")))
    at = params.get("continueAt")
    if problem is None and (isinstance(at, bool) or not isinstance(at, int | float) or at <= 0
                            or (seconds is not None and at >= seconds)):
        problem = "invalid", "continueAt must be after 0 and before the end of the audio"
    return problem


def _check_extend(app: App, key: str, params: dict[str, Any], data: list[bytes]
                  ) -> Problem | str:
    found = finished_track(app, key, params.get("audioId"))
    if found is None:
        return "invalid", "audioId is not a finished track of yours"
    return _continue_at(params, found[1]["seconds"]) or found[1]["id"]


def _max_seconds(params: dict[str, Any], data: list[bytes]) -> Problem | None:
    limit = 60.0 if params.get("model") == "V4_5ALL" else 480.0
    for blob in data:
        seconds = audio_seconds(blob)
        if seconds is not None and seconds > limit:
            return "invalid", f"the uploaded audio must be at most {limit / 60:g} min"
    return None


def _check_cover(app: App, key: str, params: dict[str, Any], data: list[bytes]
                 ) -> Problem | None:
    return _max_seconds(params, data) or _mode(params)


def _check_upload_extend(app: App, key: str, params: dict[str, Any], data: list[bytes]
                         ) -> Problem | None:
    return _max_seconds(params, data) or _continue_at(params, audio_seconds(data[0]))


def _check_add_vocals(app: App, key: str, params: dict[str, Any], data: list[bytes]
                      ) -> Problem | None:
    return (_text(params, "prompt", 5000) or _text(params, "title", 100)
            or _text(params, "style", 1000) or _text(params, "negativeTags"))


def _check_mashup(app: App, key: str, params: dict[str, Any], data: list[bytes]
                  ) -> Problem | None:
    return None if len(data) == 2 else ("invalid", "uploadUrlList must hold exactly 2 URLs")


def _check_replace(app: App, key: str, params: dict[str, Any], data: list[bytes]
                   ) -> Problem | None:
    problem = (_text(params, "prompt", 5000) or _text(params, "tags") or
               _text(params, "title", 100) or _text(params, "fullLyrics"))
    if problem:
        return problem
    seconds = audio_seconds(data[0]) if data else None
    if data and params.get("model") is None:
        return "invalid", "model is required with uploadUrl"
    if not data:
        found = finished_track(app, key, params.get("audioId"), params.get("taskId"))
        if found is None:
            return "invalid", "taskId and audioId must name a finished track of yours"
        seconds = found[1]["seconds"]
    start, end = params.get("infillStartS"), params.get("infillEndS")
    if isinstance(start, bool) or isinstance(end, bool) or not isinstance(start, int | float) \
            or not isinstance(end, int | float):
        return "invalid", "infillStartS and infillEndS are required numbers"
    if start < 0 or not 6 <= end - start <= 60 or (seconds is not None and end > seconds):
        return "invalid", "the section must last 6-60 s and lie within the audio"
    return None


def _check_sounds(app: App, key: str, params: dict[str, Any], data: list[bytes]
                  ) -> Problem | None:
    tempo = params.get("soundTempo")
    if tempo is not None and (isinstance(tempo, bool) or not isinstance(tempo, int)
                              or not 1 <= tempo <= 300):
        return "invalid", "soundTempo must be an integer from 1 to 300"
    if params.get("soundKey", "Any") not in _KEYS:
        return "invalid", "soundKey is not a key"
    return _text(params, "prompt", 500)


def _route(operation: str, models: tuple[str | None, ...], default: str | None, check: Check,
           uploads: tuple[str, ...] = (), *, optional: bool = False) -> Callable[[App, Req], Any]:
    async def handle(app: App, req: Req) -> None:
        await _submit(app, req, operation, models, default, check, uploads, optional=optional)
    return handle


_REPLACE_MODELS: tuple[str | None, ...] = (*MODELS, None)  # no model: a generated track

#: This module's routes (the app merges every handler module's table).
ROUTES: Routes = {
    ("POST", "/api/v1/generate"): (
        "suno.generate", _route("generate", MODELS, None, _check_generate)),
    ("POST", "/api/v1/generate/extend"): (
        "suno.extend", _route("extend", MODELS, None, _check_extend)),
    ("POST", "/api/v1/generate/upload-cover"): (
        "suno.upload_cover", _route("upload_cover", MODELS, None, _check_cover, ("uploadUrl",))),
    ("POST", "/api/v1/generate/upload-extend"): (
        "suno.upload_extend",
        _route("upload_extend", MODELS, None, _check_upload_extend, ("uploadUrl",))),
    ("POST", "/api/v1/generate/add-vocals"): (
        "suno.add_vocals",
        _route("add_vocals", _ADD_MODELS, "V4_5PLUS", _check_add_vocals, ("uploadUrl",))),
    ("POST", "/api/v1/generate/mashup"): (
        "suno.mashup", _route("mashup", _MASHUP_MODELS, None, _check_mashup, ("uploadUrlList",))),
    ("POST", "/api/v1/generate/replace-section"): (
        "suno.replace_section",
        _route("replace_section", _REPLACE_MODELS, None, _check_replace, ("uploadUrl",),
               optional=True)),
    ("POST", "/api/v1/generate/sounds"): (
        "suno.sounds", _route("sounds", ("V5",), None, _check_sounds)),
}
