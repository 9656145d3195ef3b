"""music-01 on the AI/ML API (/v2/generate/audio/minimax/*) and on MiniMax (/v1/music_*)."""

from __future__ import annotations

import binascii
import io
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import anyio
import mutagen
import mutagen.mp3
import mutagen.wave
from starlette.datastructures import UploadFile

from ._audio import FORMATS, Rendered, render, seed_of
from ._http import BODY_FAULTS, Req, dumps, send_body, send_json
from ._state import RefUpload, StoredFile, new_ref_id, new_trace_id

if TYPE_CHECKING:
    from ._context import App, Routes

__all__ = ["generate", "probe", "send_hex", "upload"]

SAMPLE_RATES = (16000, 24000, 32000, 44100)
BITRATES = (32000, 64000, 128000, 256000)
PURPOSES = ("song", "voice", "instrumental")
_MARK = "@@AUDIO@@"


class Invalid(Exception):
    """A rejected request: `schema` problems are HTTP 400 on AI/ML, the rest 2013."""

    def __init__(self, message: str, *, schema: bool) -> None:
        super().__init__(message)
        self.schema = schema


def _service(req: Req) -> str:
    return req.operation.partition(".")[0]


async def _invalid(app: App, req: Req, service: str, exc: Invalid) -> None:
    app.state.count_rejection(req.operation, "invalid")
    if service == "aiml" and exc.schema:
        await app.reject(req, service, "invalid", f"Body validation error! {exc}")
        return
    trace = new_trace_id()
    body = {
        "trace_id": trace,
        "base_resp": {"status_code": 2013, "status_msg": f"invalid params, {exc}"},
    }
    await send_json(req.send, body, headers={"Trace-Id": trace})


def probe(data: bytes) -> tuple[str, float]:
    """(format, seconds) of a WAV or MP3 file; raises Invalid when it is neither."""
    try:
        if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
            info: Any = mutagen.wave.WAVE(io.BytesIO(data)).info  # type: ignore[no-untyped-call]
            # A truncated file claims more than it holds: trust the bytes present.
            rate = info.sample_rate * info.channels * (info.bits_per_sample // 8)
            return "wav", min(float(info.length), max(0, len(data) - 44) / rate) if rate else 0.0
        if data[:3] == b"ID3" or (len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0):
            mp3: Any = mutagen.mp3.MP3(io.BytesIO(data))  # type: ignore[no-untyped-call]
            return "mp3", float(mp3.info.length)
    except (mutagen.MutagenError, ZeroDivisionError, ValueError) as exc:
        raise Invalid(f"file is not a readable WAV or MP3 file ({exc})", schema=False) from exc
    raise Invalid("file must be a WAV or MP3 audio file", schema=False)


async def upload(app: App, req: Req) -> None:
    service = _service(req)
    key = await app.gate(req, service)
    if key is None:
        return
    try:
        if not req.is_form:
            raise Invalid("send multipart/form-data with fields 'file' and 'purpose'", schema=True)
        try:
            form = await req.form()
        except Exception as exc:
            raise Invalid(f"unreadable multipart body: {exc}", schema=True) from exc
        try:
            purpose, file = form.get("purpose"), form.get("file")
            if purpose not in PURPOSES:
                raise Invalid(f"purpose must be one of {', '.join(PURPOSES)}", schema=True)
            if not isinstance(file, UploadFile):
                raise Invalid("file is required", schema=True)
            data = await file.read()
        finally:
            await form.close()
        _fmt, seconds = probe(data)
        if not 10 < seconds <= 600:
            raise Invalid(
                f"audio duration must be longer than 10 s and at most 10 min, got {seconds:.2f} s",
                schema=False,
            )
    except Invalid as exc:
        await _invalid(app, req, service, exc)
        return
    await anyio.sleep(app.config.timings.seconds("upload"))
    seed = seed_of(data[:65536], len(data))
    body: dict[str, Any] = {}
    if purpose in ("song", "voice"):
        body["voice_id"] = new_ref_id("vocal")
    if purpose in ("song", "instrumental"):
        body["instrumental_id"] = new_ref_id("instrumental")
    for ref in body.values():
        app.state.refs[ref] = RefUpload(ref, seed, seconds)
    trace = new_trace_id()
    body |= {"trace_id": trace, "base_resp": {"status_code": 0, "status_msg": "success"}}
    fault = app.draw_fault(req.operation, BODY_FAULTS)
    await send_json(
        req.send, body, headers={"Trace-Id": trace}, fault=fault, timings=app.config.timings
    )


async def _read_params(req: Req) -> dict[str, Any]:
    if req.is_form:
        try:
            form = await req.form()
        except Exception as exc:
            raise Invalid(f"unreadable form body: {exc}", schema=True) from exc
        params: dict[str, Any] = {k: v for k, v in form.items() if isinstance(v, str)}
        await form.close()
        if isinstance(params.get("audio_setting"), str):
            try:
                params["audio_setting"] = json.loads(params["audio_setting"])
            except ValueError as exc:
                raise Invalid("audio_setting must be a JSON object", schema=True) from exc
        if "stream" in params:
            params["stream"] = params["stream"].lower() == "true"
        return params
    try:
        params = await req.json()
    except ValueError as exc:
        raise Invalid("body must be JSON", schema=True) from exc
    if not isinstance(params, dict):
        raise Invalid("body must be a JSON object", schema=True)
    return params


def _validate(app: App, params: dict[str, Any], service: str) -> dict[str, Any]:
    if params.get("model") != "music-01":
        raise Invalid(f"model: expected 'music-01', received {params.get('model')!r}", schema=True)
    lyrics = params.get("lyrics")
    voice, inst = params.get("refer_voice"), params.get("refer_instrumental")
    if lyrics is None and (service == "aiml" or voice is not None):
        raise Invalid("lyrics: required", schema=True)
    if lyrics is not None and not isinstance(lyrics, str):
        raise Invalid("lyrics: expected string", schema=True)
    if lyrics and len(lyrics) > app.config.lyrics_max:
        raise Invalid(
            f"lyrics: at most {app.config.lyrics_max} characters, got {len(lyrics)}", schema=True
        )
    if not voice and not inst:
        raise Invalid("refer_voice or refer_instrumental is required", schema=False)
    seeds = []
    for name, value, prefix in (
        ("refer_voice", voice, "vocal-"),
        ("refer_instrumental", inst, "instrumental-"),
    ):
        if value is None:
            continue
        ref = app.state.refs.get(value) if isinstance(value, str) else None
        if ref is None or not value.startswith(prefix):
            raise Invalid(f"{name} {value!r} is not a known {prefix[:-1]} id", schema=False)
        seeds.append(ref.seed)
    setting = params.get("audio_setting")
    out = {"format": "mp3", "sample_rate": 44100, "bitrate": 256000}
    if setting is not None:
        if not isinstance(setting, dict):
            raise Invalid("audio_setting: expected object", schema=True)
        if setting.get("format") not in FORMATS:
            raise Invalid(
                f"audio_setting.format: required, one of {', '.join(FORMATS)}", schema=True
            )
        for field, allowed in (("sample_rate", SAMPLE_RATES), ("bitrate", BITRATES)):
            if field in setting and setting[field] not in allowed:
                raise Invalid(f"audio_setting.{field}: one of {allowed}", schema=True)
        out |= {k: setting[k] for k in out if k in setting}
    fmt = params.get("output_format", "hex")
    if service == "minimax" and fmt not in ("hex", "url"):
        raise Invalid("output_format: one of hex, url", schema=True)
    out |= {
        "seed": seed_of(lyrics, voice, inst, *seeds),
        "stream": bool(params.get("stream")),
        "output": fmt,
    }
    return out


def _seconds(app: App, req: Req, p: dict[str, Any]) -> float:
    size = req.headers.get("x-emulator-audio-bytes") or app.config.generate_audio_bytes
    if size:
        if p["format"] == "mp3":
            kbps = p["bitrate"] // 1000
            rate = (min(kbps, 160) if p["sample_rate"] < 32000 else kbps) * 125
        else:
            rate = p["sample_rate"] * app.config.channels * 2
        return max(0.1, int(size) / float(rate))
    lo, hi = app.config.track_seconds
    return lo + (int(p["seed"]) % 1000) / 1000 * (hi - lo)


def _extra(r: Rendered) -> dict[str, int]:
    size = len(r.data)
    return {
        "music_duration": r.duration_ms,
        "music_sample_rate": r.sample_rate,
        "music_channel": r.channels,
        "bitrate": r.bitrate,
        "music_size": size,
        "audio_length": r.duration_ms,
        "audio_size": size,
        "audio_bitrate": r.bitrate,
        "audio_sample_rate": r.sample_rate,
    }


async def _generation(app: App, req: Req, service: str
                      ) -> tuple[dict[str, Any], Rendered] | None:
    """The limits, the parameters and the audio of one generation (None once answered)."""
    key = await app.gate(req, service, slot=True)  # the key's generations at once, then its rate
    if key is None:
        return None
    try:
        try:
            p = _validate(app, await _read_params(req), service)
        except Invalid as exc:
            await _invalid(app, req, service, exc)
            return None
        app.state.enter(key)
        try:
            app.state.count_submission(key, req.operation)
            await anyio.sleep(app.config.timings.seconds("generate"))
            seconds = _seconds(app, req, p)
            rendered = await anyio.to_thread.run_sync(
                lambda: render(
                    p["seed"],
                    seconds,
                    fmt=p["format"],
                    sample_rate=p["sample_rate"],
                    channels=app.config.channels,
                    bitrate=p["bitrate"],
                )
            )
        finally:
            app.state.leave(key)
    finally:
        app.limiter.leave("minimax", key)
    return p, rendered


async def generate(app: App, req: Req) -> None:
    service = _service(req)
    generation = await _generation(app, req, service)
    if generation is None:
        return
    p, rendered = generation
    trace = new_trace_id()
    faults = (
        BODY_FAULTS if p["output"] == "url" else (*BODY_FAULTS, "invalid_hex", "odd_length_hex")
    )
    fault = app.draw_fault(req.operation, faults)
    if p["output"] == "url":
        path = f"minimax/{trace}.{p['format']}"
        app.state.files[path] = StoredFile(rendered.data, _MIME[p["format"]], path)
        audio_value: str = f"{req.base_url}/files/{path}"
    else:
        audio_value = _MARK
    doc: dict[str, Any] = {
        "data": {"audio": audio_value, "status": 2},
        "extra_info": _extra(rendered),
        "analysis_info": None,
        "trace_id": trace,
        "base_resp": {"status_code": 0, "status_msg": "success"},
    }
    ordered = {k: doc[k] for k in app.config.key_order if k in doc} | doc
    headers = {"Trace-Id": trace}
    if p["stream"] and p["output"] == "hex":
        await _send_sse(app, req, rendered, ordered, headers, fault)
        return
    if p["output"] == "url":
        await send_json(req.send, ordered, headers=headers, fault=fault, timings=app.config.timings)
        return
    await send_hex(app, req, rendered, ordered, headers, fault)


async def send_hex(
    app: App,
    req: Req,
    rendered: Rendered,
    doc: dict[str, Any],
    headers: dict[str, str],
    fault: str | None,
) -> None:
    """The answer `doc` with `rendered` as the hex of its data.audio, sent piece by piece."""
    prefix, suffix = dumps(doc).split(_MARK.encode())
    if fault == "malformed_json":
        suffix, fault = suffix[:-1] + b",", None
    hexlen = 2 * len(rendered.data) - (fault == "odd_length_hex")
    chunks = _hex_chunks(rendered.data, app.config.hex_chunk_bytes, fault)
    await send_body(
        req.send,
        200,
        _wrap(prefix, chunks, suffix),
        len(prefix) + hexlen + len(suffix),
        headers=headers,
        fault=fault,
        timings=app.config.timings,
    )


def _wrap(prefix: bytes, chunks: Iterator[bytes], suffix: bytes) -> Iterator[bytes]:
    yield prefix
    yield from chunks
    yield suffix


def _hex_chunks(data: bytes, size: int, fault: str | None) -> Iterator[bytes]:
    """Hex of `data` chunk by chunk (never the whole string), damaged as `fault` says."""
    view, n = memoryview(data), len(data)
    bad = n // 2
    for off in range(0, n, size):
        h = binascii.hexlify(view[off : off + size])
        if fault == "invalid_hex" and off <= bad < off + size:
            i = (bad - off) * 2
            h = h[:i] + b"zz" + h[i + 2 :]
        if fault == "odd_length_hex" and off + size >= n:
            h = h[:-1]
        yield h


async def _send_sse(
    app: App,
    req: Req,
    r: Rendered,
    doc: dict[str, Any],
    headers: dict[str, str],
    fault: str | None,
) -> None:
    """MiniMax streaming: hex pieces with status 1 and extra_info null, then a status 2 event."""
    head = b'data: {"data":{"audio":"'
    tail = (
        b'","status":1},"extra_info":null,"trace_id":'
        + dumps(doc["trace_id"])
        + (b',"base_resp":{"status_code":0,"status_msg":"success"}}\n\n')
    )
    final = b"data: " + dumps(doc | {"data": {"audio": "", "status": 2}}) + b"\n\n"
    size = app.config.hex_chunk_bytes
    count = -(-len(r.data) // size)
    hexlen = 2 * len(r.data) - (fault == "odd_length_hex")

    def events() -> Iterator[bytes]:
        for h in _hex_chunks(r.data, size, fault):
            yield head + h + tail
        yield final

    length = count * (len(head) + len(tail)) + hexlen + len(final)
    await send_body(
        req.send,
        200,
        events(),
        length,
        content_type="text/event-stream",
        headers=headers,
        fault=fault,
        timings=app.config.timings,
    )


_MIME = {"mp3": "audio/mpeg", "wav": "audio/wav", "pcm": "application/octet-stream"}


#: This module's routes (the app merges every handler module's table).
ROUTES: Routes = {
    ("POST", "/v2/generate/audio/minimax/upload"): ("aiml.upload", upload),
    ("POST", "/v2/generate/audio/minimax/generate"): ("aiml.generate", generate),
    ("POST", "/v1/music_upload"): ("minimax.upload", upload),
    # /v1/music_generation serves every model: _minimax_music routes music-01 back to generate
}
