"""MiniMax's current models on /v1/music_generation: songs, covers, hex, links and streams.

One handler serves the path for every model: music-01 (a multipart body, or ``model``
``music-01`` or missing) goes on to `_minimax.generate` unchanged; the current models are
served here. Answers follow MiniMax: ``base_resp`` errors on HTTP 200 (2013 for invalid
parameters, 2061 for a model not on the key's plan, 1028/1030 for a spent quota; see
`_music_state`), hex in ``data.audio``, a signed link that expires (24 h) with
``output_format: "url"``, and server-sent events with ``stream: true``: hex pieces with status 1
and ``extra_info: null`` spread over the generation time, then a status-2 event with
``extra_info``. Request headers tune it for tests: ``X-Emulator-Audio-Bytes`` (size),
``X-Emulator-Link-Seconds`` (a link's lifetime), ``X-Emulator-Url-Key: audio_url`` (where the
link goes), ``X-Emulator-Final-Audio: full`` (the final event repeats the whole song) and
``X-Emulator-Stream-Error: <code>`` (a ``base_resp`` error event half-way through a stream).

On a stream the body faults act on events: ``truncated_body`` ends the stream cleanly half-way,
without its final event; ``reset_mid_body`` resets the connection half-way; ``malformed_json``
breaks one event; ``slow_drip`` trickles every event.
"""

from __future__ import annotations

import binascii
import copy
import hashlib
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import anyio

from . import _minimax, _uploads
from ._audio import Rendered, render, seed_of
from ._cover_audio import reference_audio
from ._http import BODY_FAULTS, Req, abort, dumps, send_body, send_json
from ._minimax import _MARK, _MIME, BITRATES, SAMPLE_RATES, Invalid, _extra, _hex_chunks
from ._music_state import Link, music_state
from ._state import StoredFile, new_trace_id

if TYPE_CHECKING:
    from ._context import App, Routes

__all__ = ["generate", "link"]

SONG_MODELS = ("music-2.6", "music-2.6-free", "music-2.5+", "music-2.5", "music-2.0",
               "music-3.0", "music-3.0-free")
COVER_MODELS = ("music-cover", "music-cover-free")
_NO_INSTRUMENTAL = ("music-2.5", "music-2.0")
LINK_SECONDS = 24 * 3600
STREAM_PIECE = 32 * 1024  # audio bytes per event
_FORMATS = ("mp3", "wav", "pcm")
_DENIED = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
           b"<Message>{}</Message></Error>")


async def generate(app: App, req: Req) -> None:
    """Every model of /v1/music_generation: music-01 goes on to its own handler."""
    params: Any = None
    if not req.is_form:
        try:
            params = await req.json()
        except ValueError:
            params = None
    model = params.get("model") if isinstance(params, dict) else None
    if not isinstance(model, str) or model == "music-01":
        await _minimax.generate(app, req)
        return
    await _song(app, req, params)


def _text(p: dict[str, Any], name: str, most: int, least: int = 0) -> str | None:
    value = p.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise Invalid(f"{name}: expected string", schema=True)
    if len(value) > most or (value and len(value) < least):
        raise Invalid(f"{name}: {least} to {most} characters, got {len(value)}", schema=False)
    return value or None


def _flag(p: dict[str, Any], name: str) -> bool:
    value = p.get(name, False)
    if not isinstance(value, bool):
        raise Invalid(f"{name}: expected boolean", schema=True)
    return value


def _setting(p: dict[str, Any], out: dict[str, Any]) -> None:
    setting = p.get("audio_setting")
    if setting is None:
        return
    if not isinstance(setting, dict):
        raise Invalid("audio_setting: expected object", schema=True)
    if setting.get("format", "mp3") not in _FORMATS:
        raise Invalid(f"audio_setting.format: one of {', '.join(_FORMATS)}", schema=True)
    for name, allowed in (("sample_rate", SAMPLE_RATES), ("bitrate", BITRATES),
                          ("channel", (1, 2))):
        if name in setting and setting[name] not in allowed:
            raise Invalid(f"audio_setting.{name}: one of {allowed}", schema=True)
    out.update({k: setting[k] for k in ("format", "sample_rate", "bitrate", "channel")
                if k in setting})


async def _validate(app: App, req: Req, p: dict[str, Any]) -> dict[str, Any]:
    model = p["model"]
    if model not in SONG_MODELS + COVER_MODELS:
        raise Invalid(f"model: unknown model {model!r}", schema=False)
    cover = model in COVER_MODELS
    prompt = _text(p, "prompt", 2000, 10 if model == "music-2.0" else 0)
    lyrics = _text(p, "lyrics", 3000 if model == "music-2.0" else 3500,
                   10 if model == "music-2.0" else 0)
    instrumental, optimizer = _flag(p, "is_instrumental"), _flag(p, "lyrics_optimizer")
    _flag(p, "aigc_watermark")
    given = [n for n in ("audio_url", "audio_base64", "cover_feature_id") if p.get(n)]
    if cover and len(given) != 1:
        raise Invalid("cover models take exactly one of audio_url, audio_base64 and "
                      "cover_feature_id", schema=False)
    if not cover and set(given) - {"cover_feature_id"}:
        raise Invalid("audio_url and audio_base64 are for cover models", schema=False)
    if cover and not prompt:
        raise Invalid("prompt: required for cover models", schema=False)
    if instrumental and (cover or model in _NO_INSTRUMENTAL):
        raise Invalid(f"is_instrumental: not supported by {model}", schema=False)
    if optimizer and (cover or model == "music-2.0"):
        raise Invalid(f"lyrics_optimizer: not supported by {model}", schema=False)
    if (instrumental and lyrics) or (optimizer and (lyrics or instrumental)):
        raise Invalid("lyrics, is_instrumental and lyrics_optimizer exclude each other",
                      schema=False)
    if instrumental and not prompt:
        raise Invalid("prompt: required when is_instrumental is true", schema=False)
    if not cover and not (lyrics or instrumental or optimizer or given):
        raise Invalid("lyrics: required unless is_instrumental or lyrics_optimizer",
                      schema=False)
    seed = p.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)
                             or not 0 <= seed <= 1_000_000):
        raise Invalid("seed: an integer from 0 to 1000000", schema=False)
    out: dict[str, Any] = {"format": "mp3", "sample_rate": 44100, "bitrate": 256000,
                           "channel": app.config.channels}
    _setting(p, out)
    fmt, stream = p.get("output_format", "hex"), _flag(p, "stream")
    if fmt not in ("hex", "url"):
        raise Invalid("output_format: one of hex, url", schema=True)
    if stream and fmt == "url":
        raise Invalid("output_format: stream only supports hex", schema=False)
    ref_seed, ref_seconds = await reference_audio(app, req, p, given[0] if given else None)
    out |= {"model": model, "stream": stream, "output": fmt, "ref_seconds": ref_seconds,
            "seed": seed_of(model, prompt, lyrics, instrumental, ref_seed, seed)}
    return out


async def _song(app: App, req: Req, params: dict[str, Any]) -> None:
    key = await app.gate(req, "minimax")
    if key is None:
        return
    try:
        p = await _validate(app, req, params)
    except Invalid as exc:
        await _minimax._invalid(app, req, "minimax", exc)
        return
    state, limits, free = music_state(app.state), app.limits, p["model"].endswith("-free")
    refusal = state.plan_refusal(key, p["model"])
    if refusal is not None:
        app.state.count_rejection(req.operation, "plan" if refusal[0] == 2061 else "quota")
        trace = new_trace_id()
        await send_json(req.send, {"trace_id": trace, "base_resp": {
            "status_code": refusal[0], "status_msg": refusal[1]}}, headers={"Trace-Id": trace})
        return
    wait = state.enter_free(key, limits) if free else None
    if wait is not None:
        app.state.count_rejection(req.operation, "rate_limit")
        await app.reject(req, "minimax", "rate_limit", retry_after=wait)
        return
    try:
        if app.state.enter(key) > limits.minimax_concurrent and limits.enabled:
            app.state.count_rejection(req.operation, "concurrency")
            await app.reject(req, "minimax", "concurrency", retry_after=1.0)
            return
        app.state.count_submission(key, req.operation)
        state.charge(key, p["model"])
        await _answer(app, req, p)
    finally:
        app.state.leave(key)
        if free:
            state.leave_free(key, limits)


async def _answer(app: App, req: Req, p: dict[str, Any]) -> None:
    total = app.config.timings.seconds("generate")
    if not p["stream"]:
        await anyio.sleep(total)
    seconds = _minimax._seconds(app, req, p)
    if p["ref_seconds"] and not (req.headers.get("x-emulator-audio-bytes")
                                 or app.config.generate_audio_bytes):
        seconds = min(p["ref_seconds"], app.config.track_seconds[1])  # a cover: as long
    rendered = await anyio.to_thread.run_sync(lambda: render(
        p["seed"], seconds, fmt=p["format"], sample_rate=p["sample_rate"],
        channels=p["channel"], bitrate=p["bitrate"]))
    trace = new_trace_id()
    doc: dict[str, Any] = {"data": {"audio": _MARK, "status": 2}, "extra_info": _extra(rendered),
                           "analysis_info": None, "trace_id": trace,
                           "base_resp": {"status_code": 0, "status_msg": "success"}}
    doc = {k: doc[k] for k in app.config.key_order if k in doc} | doc
    headers = {"Trace-Id": trace}
    hex_faults = (*BODY_FAULTS, "invalid_hex", "odd_length_hex")
    if p["stream"]:
        fault = app.draw_fault(req.operation, hex_faults)
        await _stream(app, req, rendered, doc, total, fault)
    elif p["output"] == "url":
        fault = app.draw_fault(req.operation, BODY_FAULTS)
        where = req.headers.get("x-emulator-url-key", "audio")
        doc["data"] = {where: _store_link(app, req, rendered, trace), "status": 2}
        await send_json(req.send, doc, headers=headers, fault=fault, timings=app.config.timings)
    else:
        fault = app.draw_fault(req.operation, hex_faults)
        await _minimax.send_hex(app, req, rendered, doc, headers, fault)


def _store_link(app: App, req: Req, rendered: Rendered, trace: str) -> str:
    seconds = float(req.headers.get("x-emulator-link-seconds") or LINK_SECONDS)
    expires = int(time.time() + seconds)
    signature = hashlib.sha256(f"{trace}:{expires}".encode()).hexdigest()[:24]
    path = f"minimax-music/{trace}.{rendered.format}"
    app.state.files[path] = StoredFile(rendered.data, _MIME[rendered.format], path)
    state = music_state(app.state)
    with state.lock:
        state.links[trace] = Link(path, expires, signature)
    return (f"{req.base_url}/minimax-output/audio.{rendered.format}?id={trace}"
            f"&Expires={expires}&Signature={signature}")


async def link(app: App, req: Req) -> None:
    """A song's link: served while it has not expired, like the service's storage."""
    query, state = req.query, music_state(app.state)
    found = state.links.get(query.get("id", ""))
    message = None
    if found is None or query.get("Signature") != found.signature \
            or query.get("Expires") != str(found.expires):
        message = b"The request signature we calculated does not match the signature you provided."
    elif time.time() > found.expires:
        message = b"Request has expired."
    if message is not None:
        body = _DENIED.replace(b"{}", message)
        await send_body(req.send, 403, [body], len(body), content_type="application/xml")
        return
    assert found is not None
    view = copy.copy(req)  # the file host serves it, under its stored path
    view.path = "/files/" + found.path
    await _uploads.download(app, view)


def _events(app: App, req: Req, r: Rendered, doc: dict[str, Any], fault: str | None
            ) -> Iterator[bytes]:
    """The stream's events: hex pieces (status 1), then the final one (status 2)."""
    trace = dumps(doc["trace_id"])
    head = b'data: {"data":{"audio":"'
    tail = (b'","status":1},"extra_info":null,"trace_id":' + trace
            + b',"base_resp":{"status_code":0,"status_msg":"success"}}\n\n')
    pieces = list(range(0, len(r.data), STREAM_PIECE)) or [0]
    error = req.headers.get("x-emulator-stream-error")
    for i, h in enumerate(_hex_chunks(r.data, STREAM_PIECE, fault)):
        if error and i == len(pieces) // 2:
            yield b"data: " + dumps({"trace_id": doc["trace_id"], "base_resp": {
                "status_code": int(error), "status_msg": "error while generating"}}) + b"\n\n"
            return
        yield head + h + (tail[:-6] if fault == "malformed_json" and i == len(pieces) // 2
                          else tail)
    final = dict(doc)
    final["data"] = {"audio": "", "status": 2}
    if req.headers.get("x-emulator-final-audio") != "full":
        yield b"data: " + dumps(final) + b"\n\n"
        return
    before, after = dumps(final).split(b'"audio":""')
    yield b"data: " + before + b'"audio":"'
    yield from (binascii.hexlify(r.data[i:i + (1 << 20)]) for i in range(0, len(r.data), 1 << 20))
    yield b'"' + after + b"\n\n"


async def _stream(app: App, req: Req, r: Rendered, doc: dict[str, Any], total: float,
                  fault: str | None) -> None:
    """Send the events over ``total`` seconds: the first audio after 30 % of it."""
    if fault == "reset_before_answer":
        await abort(req.send, reset=True)
        return
    await req.send({"type": "http.response.start", "status": 200, "headers": [
        (b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache"),
        (b"trace-id", doc["trace_id"].encode())]})
    count = -(-len(r.data) // STREAM_PIECE) or 1
    pause = 0.7 * total / count
    timings = app.config.timings
    await anyio.sleep(0.3 * total)
    for i, event in enumerate(_events(app, req, r, doc, fault)):
        if i and i <= count:
            await anyio.sleep(pause)
        if fault in ("reset_mid_body", "truncated_body") and i == max(1, count // 2):
            if fault == "reset_mid_body":
                await abort(req.send, reset=True)
                return
            break  # a clean end, without the rest or the final event
        # a drip trickles the whole stream in about slow_drip_pieces pieces, as for a body
        step = max(1, len(event) * count // timings.slow_drip_pieces) \
            if fault == "slow_drip" else len(event)
        for at in range(0, len(event), step):
            await req.send({"type": "http.response.body", "body": event[at:at + step],
                            "more_body": True})
            if fault == "slow_drip":
                await anyio.sleep(timings.slow_drip_interval)
    await req.send({"type": "http.response.body", "body": b"", "more_body": False})


#: This module's routes (the app merges every handler module's table).
ROUTES: Routes = {
    ("POST", "/v1/music_generation"): ("minimax.generate", generate),
    **{(method, f"/minimax-output/audio.{fmt}"): ("minimax.files", link)
       for method in ("GET", "HEAD") for fmt in _FORMATS},
}
