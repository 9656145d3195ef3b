"""The AI/ML API's asynchronous audio family: ``POST/GET /v2/generate/audio``, signed links.

A generation is ``queued`` for at least ``Timings.aiml_queue``, then ``generating`` for
``aiml_generate`` once one of its key's ``Limits.aiml_generating`` slots is free (first come,
first served), then ``completed`` (or ``error``: the ``generate_audio_failed`` fault, or a
reference the model cannot use). More than ``Limits.aiml_queued`` unfinished generations per
key are refused with 429 before any work. ``meta.usage`` reports the cost (MiniMax models
from the submission's answer on, the others once done). The audio link is signed and expires
``aiml_link_ttl`` after completion; the emulator serves it itself and answers 403 after that,
as the real CDN does.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import secrets
import string
import time
import uuid
import weakref
from typing import TYPE_CHECKING, Any

import anyio
import attrs

from . import _uploads
from ._aimlapi_schema import CREDITS_PER_USD, Schema, check
from ._audio import Rendered, render, seed_of
from ._http import BODY_FAULTS, Req, send_body, send_json
from ._minimax import Invalid, probe
from ._state import State, StoredFile, new_trace_id
from ._suno import _fetch

if TYPE_CHECKING:
    from ._context import App, Routes

__all__ = ["download", "status", "submit"]

MAX_REFERENCE_BYTES = 50 * 1024 * 1024
MAX_SECONDS = 60.0  # the emulator keeps its files small, whatever length is asked for
_MIME = {"mp3": "audio/mpeg", "wav": "audio/wav", "pcm": "application/octet-stream"}
_ID_CHARS = string.ascii_letters + string.digits + "_-"


@attrs.define
class Generation:
    id: str
    key: str
    model: str
    schema: Schema
    starts: float  # loop clock
    ends: float
    failure: str | None
    seconds: float
    seed: int
    audio: tuple[str, int, int]  # format, sample rate, bitrate
    credits: int
    usd: float
    path: str | None = None
    link: str | None = None
    rendered: Rendered | None = None
    ready: anyio.Event | None = None


class _Store:
    """This emulator's generations (forgotten when the state is reset)."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch
        self.jobs: dict[str, Generation] = {}
        self.paths: dict[str, Generation] = {}
        self.slots: dict[str, list[float]] = {}  # key -> when each generating slot frees
        self.credits: dict[str, float] = {}
        self.secret = secrets.token_bytes(16)

    def unfinished(self, key: str, now: float) -> int:
        return sum(1 for g in self.jobs.values() if g.key == key and g.ends > now)

    def sign(self, path: str, expires: str) -> str:
        return hmac.new(self.secret, f"{path}\n{expires}".encode(), hashlib.sha256).hexdigest()


_STORES: weakref.WeakKeyDictionary[State, _Store] = weakref.WeakKeyDictionary()


def _store(app: App) -> _Store:
    store = _STORES.get(app.state)
    if store is None or store.epoch != app.state.epoch:
        store = _STORES[app.state] = _Store(app.state.epoch)
    return store


def _new_id(model: str) -> str:
    if model.startswith("minimax/") and model != "minimax/music-2.6":
        return f"{uuid.uuid4()}:{model}"  # as the docs show for music-2.0
    return "".join(secrets.choice(_ID_CHARS) for _ in range(21))


def _inline(value: str) -> bytes | None:
    data = value.partition(",")[2] if value.startswith("data:") else value
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return None


async def _reference_problem(app: App, req: Req, url: str, kind: str) -> str | None:
    """Why the model cannot use its reference (the service finds out while generating)."""
    remote = url.startswith(("http://", "https://"))
    data = await _fetch(app, req, url) if remote else _inline(url)
    if not data:
        return "reference_audio_url could not be downloaded"
    if kind == "cover" and len(data) > MAX_REFERENCE_BYTES:
        return "the reference audio is larger than 50 MB"
    try:
        _fmt, seconds = probe(data)
    except Invalid as exc:
        return f"the reference audio cannot be used: {exc}"
    if kind == "cover" and not 6 <= seconds <= 360:
        return f"the reference audio must last 6 s to 6 min, got {seconds:.1f} s"
    if kind == "legacy" and seconds <= 15:
        return f"the reference audio must be longer than 15 s, got {seconds:.1f} s"
    return None


def _length(app: App, body: dict[str, Any], seed: int) -> float:
    if body["model"] == "stable-audio":
        seconds = float(body.get("seconds_total") or 30)
    elif body["model"] == "elevenlabs/eleven_music":
        seconds = (body.get("music_length_ms") or 10_000) / 1000
    else:
        lo, hi = app.config.track_seconds
        seconds = lo + seed % 1000 / 1000 * (hi - lo)
    return min(seconds, MAX_SECONDS)


def _schedule(app: App, store: _Store, key: str, now: float) -> tuple[float, float]:
    """(starts, ends): first come, first served on the key's generating slots."""
    t, limits = app.config.timings, app.limits
    ready = now + t.seconds("aiml_queue")
    if not limits.enabled:
        return ready, ready + t.seconds("aiml_generate")
    slots = sorted(store.slots.get(key, []))[:limits.aiml_generating]
    slots += [0.0] * (limits.aiml_generating - len(slots))
    starts = max(ready, slots[0])
    slots[0] = starts + t.seconds("aiml_generate")
    store.slots[key] = slots
    return starts, slots[0]


def _usage(gen: Generation, *, failed: bool = False) -> dict[str, Any] | None:
    if failed:
        return {"usage": {"credits_used": 0, "usd_spent": 0}} if gen.schema.usage_at_submit \
            else None
    usage: dict[str, Any] = {"credits_used": gen.credits}
    if gen.schema.reports_usd:
        usage["usd_spent"] = gen.usd
    return {"usage": usage}


async def submit(app: App, req: Req) -> None:
    key = await app.gate(req, "aiml")
    if key is None:
        return
    try:
        body = await req.json()
    except ValueError:
        body = None
    schema, issues = check(body)
    if schema is None or issues:
        app.state.count_rejection(req.operation, "invalid")
        await app.reject(req, "aiml", "invalid", "Body validation error! " + "; ".join(issues))
        return
    store, now, limits = _store(app), time.monotonic(), app.limits
    if limits.enabled and store.unfinished(key, now) >= limits.aiml_queued:
        app.state.count_rejection(req.operation, "concurrency")
        await app.reject(req, "aiml", "concurrency", retry_after=app.config.timings.seconds(
            "aiml_generate") or 1.0)
        return
    credits = round(schema.usd * CREDITS_PER_USD)
    if app.config.aiml_credits is not None:
        left = store.credits.setdefault(key, app.config.aiml_credits)
        if left < credits:
            app.state.count_rejection(req.operation, "credits")
            await app.reject(req, "aiml", "credits")
            return
        store.credits[key] = left - credits
    app.state.count_submission(key, req.operation)
    failure = "Audio generation failed" if app.draw_fault(
        req.operation, ("generate_audio_failed",)) else None
    if failure is None and schema.reference:
        failure = await _reference_problem(app, req, body["reference_audio_url"],
                                           schema.reference)
    if failure is None and body["model"] == "minimax-music" and len(body["prompt"]) > 600:
        failure = "Downstream service error."
    setting = body.get("audio_setting") if schema.setting_key else None
    setting = setting if isinstance(setting, dict) else {}
    seed = seed_of(body["model"], body.get("prompt"), body.get("lyrics"), body.get("seed"))
    starts, ends = _schedule(app, store, key, now)
    gen = Generation(_new_id(body["model"]), key, body["model"], schema, starts, ends, failure,
                     _length(app, body, seed), seed,
                     (setting.get("format", schema.fmt),
                      setting.get(schema.setting_key or "", 44100), setting.get("bitrate", 256000)),
                     credits, schema.usd)
    store.jobs[gen.id] = gen
    answer: dict[str, Any] = {"id": gen.id, "status": "queued"}
    if schema.usage_at_submit:
        answer["meta"] = _usage(gen)
    fault = app.draw_fault(req.operation, BODY_FAULTS)
    await send_json(req.send, answer, fault=fault, timings=app.config.timings)


async def _finish(app: App, req: Req, store: _Store, gen: Generation) -> None:
    """Render the audio once and sign its link (it expires ``aiml_link_ttl`` from now)."""
    if gen.ready is not None:
        await gen.ready.wait()
        return
    gen.ready = ready = anyio.Event()
    fmt, rate, bitrate = gen.audio
    try:
        gen.rendered = await anyio.to_thread.run_sync(lambda: render(
            gen.seed, gen.seconds, fmt=fmt, sample_rate=rate, channels=app.config.channels,
            bitrate=bitrate))
    except BaseException:
        gen.ready = None  # the next status call tries again
        ready.set()
        raise
    path = f"aiml/{uuid.uuid4().hex}.{fmt}"
    app.state.files[path] = StoredFile(gen.rendered.data, _MIME[fmt], path.rpartition("/")[2])
    expires = str(math.ceil(time.time() + app.config.timings.seconds("aiml_link_ttl")))
    gen.path, store.paths[path] = path, gen
    gen.link = (f"{req.base_url}/files/{path}?Expires={expires}&OSSAccessKeyId=EMULATOR"
                f"&Signature={store.sign(path, expires)}")
    gen.ready.set()


async def _describe(app: App, req: Req, store: _Store, gen: Generation) -> dict[str, Any]:
    now = time.monotonic()
    answer: dict[str, Any] = {"id": gen.id, "status": "queued", "audio_file": None,
                              "error": None, "meta": _usage(gen)
                              if gen.schema.usage_at_submit else None}
    if now >= gen.ends and gen.failure:
        answer |= {"status": "error", "meta": _usage(gen, failed=True),
                   "error": {"name": "GenerationError", "message": gen.failure}}
    elif now >= gen.ends:
        await _finish(app, req, store, gen)
        assert gen.rendered is not None
        assert gen.link is not None
        r = gen.rendered
        audio: dict[str, Any] = {"url": gen.link}
        if gen.model == "minimax-music":  # the legacy answer describes the file too
            audio |= {"content_type": _MIME[r.format], "file_name": f"{gen.id}.{r.format}",
                      "file_size": len(r.data)}
        answer |= {"status": "completed", "audio_file": audio, "meta": _usage(gen)}
        if gen.schema.setting_key:
            answer["extra_info"] = {"music_duration": r.duration_ms,
                                    "music_sample_rate": r.sample_rate,
                                    "music_channel": r.channels, "bitrate": r.bitrate,
                                    "music_size": len(r.data)}
            answer["trace_id"] = new_trace_id()
    elif now >= gen.starts:
        answer["status"] = "generating"
    return answer


async def status(app: App, req: Req) -> None:
    key = await app.gate(req, "aiml")
    if key is None:
        return
    generation_id = req.query.get("generation_id", "")
    store = _store(app)
    gen = store.jobs.get(generation_id)
    if not generation_id:
        app.state.count_rejection(req.operation, "invalid")
        await app.reject(req, "aiml", "invalid", "Body validation error! generation_id: "
                                                 "Required")
        return
    if gen is None or gen.key != key:
        app.state.count_rejection(req.operation, "not_found")
        await app.reject(req, "aiml", "not_found")
        return
    answer = await _describe(app, req, store, gen)
    fault = app.draw_fault(req.operation, BODY_FAULTS)
    await send_json(req.send, answer, fault=fault, timings=app.config.timings)


async def _refuse(req: Req, status_code: int, code: str, message: str) -> None:
    xml = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
           f"<Message>{message}</Message></Error>").encode()
    await send_body(req.send, status_code, [xml], len(xml), content_type="application/xml")


async def download(app: App, req: Req) -> None:
    """A signed link: 404 unknown, 403 tampered or expired, else the file (Range, faults)."""
    path = req.path.removeprefix("/files/")
    store = _store(app)
    if path not in store.paths or path not in app.state.files:
        await _refuse(req, 404, "NoSuchKey", "The specified key does not exist.")
        return
    expires, signature = req.query.get("Expires", ""), req.query.get("Signature", "")
    if not hmac.compare_digest(signature, store.sign(path, expires)):
        await _refuse(req, 403, "SignatureDoesNotMatch", "The request signature we calculated "
                                                         "does not match the signature you "
                                                         "provided.")
        return
    if not expires.isdigit() or time.time() >= int(expires):
        await _refuse(req, 403, "AccessDenied", "Request has expired.")
        return
    await _uploads.download(app, req)


#: This module's routes (the app merges every handler module's table).
ROUTES: Routes = {
    ("POST", "/v2/generate/audio"): ("aiml.audio.submit", submit),
    ("GET", "/v2/generate/audio"): ("aiml.audio.status", status),
}
#: Signed links, matched by prefix (the file's name is in the path).
PREFIXES: Routes = {
    ("GET", "/files/aiml/"): ("aiml.audio.download", download),
    ("HEAD", "/files/aiml/"): ("aiml.audio.download", download),
}
