"""The Suno file host (stream / base64 / URL uploads) and every /files/ download (Range)."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import mimetypes
import re
import secrets
from typing import TYPE_CHECKING, Any

import anyio
from starlette.datastructures import UploadFile

from ._http import BODY_FAULTS, Req, send_body, send_json
from ._state import StoredFile
from ._suno import _fetch, track_audio

if TYPE_CHECKING:
    from ._context import App, Routes

__all__ = ["base64_upload", "download", "stream_upload", "url_upload"]

# A 1x1 grey JPEG for imageUrl.
_JPEG = base64.b64decode(
    "/9j/4AAQSkZJRgABAQEASABIAAD/2wBDAAMCAgICAgMCAgIDAwMDBAYEBAQEBAgGBgUGCQgKCgkICQkKDA8MCgsO"
    "CwkJDRENDg8QEBEQCgwSExIQEw8QEBD/yQALCAABAAEBAREA/8wABgAQEAX/2gAIAQEAAD8A0s8g/9k="
)
_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


def _sniff(data: bytes, name: str) -> str:
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "audio/wav"
    if data[:3] == b"ID3" or data[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2", b"\xff\xfa"):
        return "audio/mpeg"
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


async def _store(app: App, req: Req, data: bytes, upload_path: Any, name: Any) -> None:
    if not isinstance(upload_path, str) or not upload_path.strip("/ "):
        app.state.count_rejection(req.operation, "invalid")
        await app.reject(req, "files", "invalid", "uploadPath is required")
        return
    if not data:
        app.state.count_rejection(req.operation, "invalid")
        await app.reject(req, "files", "invalid", "file is empty")
        return
    upload_path = upload_path.strip("/")
    name = name if isinstance(name, str) and name else f"{secrets.token_hex(8)}.bin"
    name = name.replace("/", "_")
    mime = _sniff(data, name)
    path = f"uploads/{upload_path}/{name}"
    app.state.files[path] = StoredFile(data, mime, name)  # the same name overwrites
    body = {
        "success": True,
        "code": 200,
        "msg": "File uploaded successfully",
        "data": {
            "fileName": name,
            "filePath": f"{upload_path}/{name}",
            "downloadUrl": f"{req.base_url}/files/{path}",
            "fileSize": len(data),
            "mimeType": mime,
            "uploadedAt": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
        },
    }
    fault = app.draw_fault(req.operation, BODY_FAULTS)
    await send_json(req.send, body, fault=fault, timings=app.config.timings)


async def stream_upload(app: App, req: Req) -> None:
    if await app.gate(req, "files") is None:
        return
    try:
        form = await req.form()
    except Exception:  # noqa: BLE001 - any multipart parse failure is the caller's
        form = None
    file = form.get("file") if form else None
    if form is None or not isinstance(file, UploadFile):
        if form is not None:
            await form.close()
        app.state.count_rejection(req.operation, "invalid")
        await app.reject(req, "files", "invalid", "file is required (multipart/form-data)")
        return
    data = await file.read()
    await form.close()
    await _store(app, req, data, form.get("uploadPath"), form.get("fileName") or file.filename)


async def _json(app: App, req: Req) -> dict[str, Any] | None:
    try:
        params = await req.json()
    except ValueError:
        params = None
    if not isinstance(params, dict):
        app.state.count_rejection(req.operation, "invalid")
        await app.reject(req, "files", "invalid", "body must be a JSON object")
        return None
    return params


async def base64_upload(app: App, req: Req) -> None:
    if await app.gate(req, "files") is None or (params := await _json(app, req)) is None:
        return
    raw = params.get("base64Data")
    try:
        if not isinstance(raw, str):
            raise ValueError("base64Data is required")
        if raw.startswith("data:"):
            raw = raw.partition(",")[2]
        data = base64.b64decode(raw, validate=True)
    except (ValueError, binascii.Error) as exc:
        app.state.count_rejection(req.operation, "invalid")
        await app.reject(req, "files", "invalid", f"base64Data is not valid base64 ({exc})")
        return
    await _store(app, req, data, params.get("uploadPath"), params.get("fileName"))


async def url_upload(app: App, req: Req) -> None:
    if await app.gate(req, "files") is None or (params := await _json(app, req)) is None:
        return
    url = params.get("fileUrl")
    data = await _fetch(app, req, url) if isinstance(url, str) else None
    if not data:
        app.state.count_rejection(req.operation, "invalid")
        await app.reject(
            req,
            "files",
            "invalid",
            "fileUrl could not be downloaded (the emulator fetches only its own files, and "
            "URLs on hosts given with --fetch-host)",
        )
        return
    name = (
        params.get("fileName") or url.rstrip("/").rpartition("/")[2]
        if isinstance(url, str)
        else None
    )
    await _store(app, req, data, params.get("uploadPath"), name)


async def _lookup(app: App, path: str) -> StoredFile | None:
    stored = app.state.files.get(path)
    if stored is not None or not path.startswith("suno/"):
        return stored
    name = path.removeprefix("suno/").removeprefix("stream/")
    audio_id, _, ext = name.partition(".")
    where = app.state.track_index.get(audio_id)
    if where is None:
        return None
    if ext == "jpeg":
        return StoredFile(_JPEG, "image/jpeg", name)
    track = app.state.tasks[where[0]].tracks[where[1]]
    rendered = await anyio.to_thread.run_sync(track_audio, track)
    return StoredFile(rendered.data, "audio/mpeg", f"{audio_id}.mp3")


async def download(app: App, req: Req) -> None:
    stored = await _lookup(app, req.path.removeprefix("/files/"))
    if stored is None:
        await send_json(req.send, {"code": 404, "msg": "file not found"}, status=404)
        return
    data, size = stored.data, len(stored.data)
    headers = {"Accept-Ranges": "bytes"}
    start, end, status = 0, size - 1, 200
    match = _RANGE.match(req.headers.get("range", "").strip())
    if match and match.group(1) + match.group(2):
        a, b = match.groups()
        if a:
            start, end = int(a), min(int(b), size - 1) if b else size - 1
        else:
            start = max(0, size - int(b))
        if start > end or start >= size:
            headers["Content-Range"] = f"bytes */{size}"
            await send_body(req.send, 416, [b""], 0, headers=headers)
            return
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    length = end - start + 1
    fault = app.draw_fault(req.operation, BODY_FAULTS[:-1])
    view = memoryview(data)[start : end + 1]
    step = 256 * 1024
    chunks = (
        [] if req.method == "HEAD" else (bytes(view[i : i + step]) for i in range(0, length, step))
    )
    await send_body(
        req.send,
        status,
        chunks,
        length,
        content_type=stored.mime,
        headers=headers,
        fault=fault,
        timings=app.config.timings,
    )


#: This module's routes (the app merges every handler module's table).
ROUTES: Routes = {
    ("POST", "/api/file-stream-upload"): ("files.stream_upload", stream_upload),
    ("POST", "/api/file-base64-upload"): ("files.base64_upload", base64_upload),
    ("POST", "/api/file-url-upload"): ("files.url_upload", url_upload),
}
