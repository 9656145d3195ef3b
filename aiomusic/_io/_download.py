"""Downloading generated tracks: https only, redirects re-checked, Range resume, atomic files.

Each response is read by a handler that writes into one `AtomicFile`
across attempts: a dropped connection after some bytes arrived becomes a new request with
``Range: bytes=<written>-`` (the handler also copes with a server that ignores Range, by
skipping what it already has). Nothing appears at the destination until the file is complete.
"""

from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

import anyio
import attrs
import httpx

from .._core._call import Call, Handler, aclose
from .._core._config import LaneKind, Service
from .._core._errors import AiomusicError, DeadlineExceededError, DownloadError
from .._core._events import Progress
from .._core._models import DownloadResult
from ._files import AtomicFile, Writer, write_behind

if TYPE_CHECKING:
    from .._core._retry import RetryPolicy
    from .._core._transport import Transport

__all__ = ["DEFAULT_MAX_BYTES", "check_download_url", "download_url", "safe_filename"]

#: The largest track accepted by default (a 4-minute WAV is about 40 MiB).
DEFAULT_MAX_BYTES = 512 * 1024 * 1024
MAX_REDIRECTS = 5
#: Resumes without progress are not counted against this; it bounds resumes with progress.
MAX_RESUMES = 20
_PROGRESS_STEP = 1 << 20
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")
_UNSATISFIED = re.compile(r"bytes\s+\*/(\d+)")
_ACCEPTED_TYPES = ("application/octet-stream", "binary/octet-stream")
_AUDIO_SUFFIXES = (".mp3", ".wav", ".m4a", ".flac", ".ogg", ".aac")
# Windows' reserved device names, also with a superscript digit (as CPython 3.12 lists them)
_DEVICE_NAMES = frozenset({"CON", "PRN", "AUX", "NUL", "CLOCK$", "CONIN$", "CONOUT$",
                           *(f"COM{i}" for i in "123456789\u00b9\u00b2\u00b3"),
                           *(f"LPT{i}" for i in "123456789\u00b9\u00b2\u00b3")})
_UNSAFE = re.compile(r'[<>:"/\\|?*]')


def check_download_url(url: str, allowed_http_hosts: frozenset[str]) -> httpx.URL:
    """``url`` parsed, if it is https (or http on an allowed host).

    Raises:
        DownloadError: any other scheme, a relative URL, or plain http on another host.
    """
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise DownloadError(f"not a valid URL: {exc}", url=_strip(url)) from exc
    host = (parsed.host or "").lower()
    if not host:
        raise DownloadError("refusing a URL without a host", url=_strip(url))
    if parsed.scheme == "https":
        return parsed
    if parsed.scheme == "http" and host in allowed_http_hosts:
        return parsed
    raise DownloadError(
        f"refusing to download over {parsed.scheme or 'no scheme'}: only https URLs are "
        "fetched, unless the host is listed in MusicSession(allow_http_hosts=...)",
        url=_strip(url))


def _strip(url: str) -> str:
    try:
        return str(httpx.URL(url).copy_with(query=None, fragment=None))
    except (httpx.InvalidURL, TypeError, ValueError):
        return url.partition("?")[0]


def safe_filename(text: str | None, *, fallback: str = "track", max_length: int = 120) -> str:
    """A file name from a title or id: no folders, control characters, or device names.

    Path separators and characters Windows refuses become ``_``; leading/trailing dots and
    spaces go (so ``..`` cannot climb); ``CON``, ``NUL``, ``COM1``... get a ``_`` prefix.
    """
    cleaned = unicodedata.normalize("NFC", text or "")
    cleaned = "".join("_" if unicodedata.category(ch).startswith("C") else ch
                      for ch in cleaned)
    cleaned = _UNSAFE.sub("_", cleaned)
    cleaned = re.sub(r"\s+", " ", cleaned).strip(" .")
    while len(cleaned.encode()) > max_length:
        cleaned = cleaned[:-1]
    cleaned = cleaned.rstrip(" .")
    if not cleaned:
        return fallback if fallback == safe_filename(fallback, fallback="track") else "track"
    # Windows ignores spaces before the extension: "CON .mp3" is the console too
    if cleaned.split(".")[0].rstrip(" ").upper() in _DEVICE_NAMES:
        cleaned = "_" + cleaned
    return cleaned


def audio_suffix(url: str | None, content_type: str | None = None) -> str:
    """``.mp3``, ``.wav``... from a URL's path (default ``.mp3``, what Suno serves)."""
    if url:
        try:
            suffix = PurePosixPath(httpx.URL(url).path).suffix.lower()
        except (httpx.InvalidURL, TypeError, ValueError):
            suffix = ""
        if suffix in _AUDIO_SUFFIXES:
            return suffix
    if content_type and "wav" in content_type:
        return ".wav"
    return ".mp3"


class _Resume(AiomusicError):
    """The connection dropped after some bytes: ask again with a Range (not a plain retry)."""


class _Redirect(AiomusicError):
    def __init__(self, location: str) -> None:
        super().__init__(f"redirected to {_strip(location)}", retryable=False)
        self.location = location


@attrs.define
class _State:
    written: int = 0
    total: int | None = None
    content_type: str | None = None
    etag: str | None = None
    resumes: int = 0
    reported: int = 0


def _accepted_type(content_type: str | None) -> bool:
    if not content_type:
        return True  # some CDNs omit it; the size cap still applies
    mime = content_type.split(";")[0].strip().lower()
    return mime.startswith("audio/") or mime in _ACCEPTED_TYPES


async def download_url(
    session: Transport,
    url: str,
    destination: str | os.PathLike[str],
    *,
    key: str,
    track_id: str | None = None,
    overwrite: bool = True,
    max_bytes: int | None = None,
    timeout: float | None = None,
    retry: RetryPolicy | None = None,
    service: Service = Service.SUNO,
    operation: str = "suno.download",
) -> DownloadResult:
    """Stream ``url`` into ``destination`` atomically (see the module docstring), in the
    transfer lane of ``service``; ``operation`` names it in events and errors.

    Raises:
        DownloadError: refused URL (also after a redirect), too many redirects, not audio,
            larger than ``max_bytes``, or the server's answer does not add up.
        DeadlineExceededError: ``timeout`` passed.
        AiomusicError: network failures that survived the retries.
    """
    limit = DEFAULT_MAX_BYTES if max_bytes is None else max_bytes
    if limit <= 0:
        raise ValueError(f"max_bytes must be positive, got {max_bytes!r}")
    current = str(check_download_url(url, session.allow_http_hosts))
    state = _State()
    deadline = None if timeout is None else anyio.current_time() + timeout
    redirects = 0
    path = Path(destination)
    # the network is read on while the previous batch is hashed and written
    async with AtomicFile(path, overwrite=overwrite) as out, \
            write_behind(out.write_many) as write:
        while True:
            remaining = None
            if deadline is not None:
                remaining = deadline - anyio.current_time()
                if remaining <= 0:
                    raise DeadlineExceededError(f"{operation}: gave up after the {timeout:g} s "
                                                "deadline", timeout=timeout or 0.0)
            headers = {"Accept-Encoding": "identity"}
            if state.written:
                headers["Range"] = f"bytes={state.written}-"
            call = Call(service=service, lane=LaneKind.TRANSFER, operation=operation,
                        method="GET", url=current, auth=False, headers=headers, key=key)
            handler = _handler(session, state, write, limit, key)
            try:
                await session._send(call, handler, timeout=remaining, retry=retry)
                break
            except DeadlineExceededError as exc:
                # _send saw only what was left of the deadline: report the caller's own
                raise DeadlineExceededError(f"{operation}: gave up after the {timeout:g} s "
                                            "deadline", timeout=timeout or 0.0) from exc
            except _Redirect as moved:
                redirects += 1
                if redirects > MAX_REDIRECTS:
                    raise DownloadError(f"more than {MAX_REDIRECTS} redirects",
                                        url=_strip(url)) from None
                current = str(check_download_url(moved.location, session.allow_http_hosts))
            except _Resume:
                state.resumes += 1
                if state.resumes > MAX_RESUMES:
                    raise DownloadError(f"the connection dropped {state.resumes} times; giving "
                                        "up", url=_strip(current), retryable=True) from None
                session.emit(Progress(operation=operation, key=key, stage="resuming",
                                      done=state.written, total=state.total))
    session.emit(Progress(operation=operation, key=key, stage="downloaded",
                          done=out.bytes_written, total=out.bytes_written))
    return DownloadResult(path=path, bytes_written=out.bytes_written, sha256=out.sha256,
                          url=_strip(current), content_type=state.content_type,
                          track_id=track_id, resumes=state.resumes)


def _handler(session: Transport, state: _State, write: Writer, limit: int, key: str
             ) -> Handler[None]:
    async def handle(response: httpx.Response, call: Call) -> None:
        status = response.status_code
        where = _strip(call.url)
        if status in (301, 302, 303, 307, 308):
            location = response.headers.get("location")
            if not location:
                raise DownloadError(f"HTTP {status} redirect without a Location", url=where)
            raise _Redirect(str(httpx.URL(call.url).join(location)))
        if status == 416 and state.written:
            found = _UNSATISFIED.match(response.headers.get("content-range", ""))
            if found and int(found.group(1)) == state.written:
                return  # it was all there already
        if status >= 400 or status not in (200, 206):
            raise DownloadError(f"the server answered HTTP {status}", url=where,
                                retryable=status >= 500 or status in (408, 429))
        content_type = response.headers.get("content-type")
        if not _accepted_type(content_type):
            raise DownloadError(f"the server sent {content_type!r}, not audio", url=where)
        start, total = _span(response, where)
        etag = response.headers.get("etag")
        if state.written and etag and state.etag and etag != state.etag:
            raise DownloadError("the file changed on the server during the download "
                                f"(ETag {state.etag} then {etag})", url=where)
        if start > state.written:
            raise DownloadError(f"the server resumed at byte {start}, after the "
                                f"{state.written} bytes received", url=where)
        if total is not None and total > limit:
            raise DownloadError(f"the file is {total} bytes, above the {limit}-byte limit "
                                "(pass max_bytes= to allow more)", url=where)
        state.total, state.content_type = total, content_type or state.content_type
        state.etag = state.etag or etag
        skip = state.written - start
        progressed = False
        stream = response.aiter_bytes()
        try:
            async for chunk in stream:
                if skip:
                    dropped = min(skip, len(chunk))
                    chunk, skip = chunk[dropped:], skip - dropped
                if not chunk:
                    continue
                if state.written + len(chunk) > limit:
                    raise DownloadError(f"the download passed the {limit}-byte limit "
                                        "(pass max_bytes= to allow more)", url=where)
                await write(chunk)
                state.written += len(chunk)
                progressed = True
                if state.written - state.reported >= _PROGRESS_STEP:
                    state.reported = state.written
                    session.emit(Progress(operation=call.operation, key=key,
                                          stage="downloading", done=state.written,
                                          total=total))
        except httpx.TransportError as exc:
            if progressed:
                raise _Resume(f"connection dropped at byte {state.written}") from exc
            raise
        finally:
            await aclose(stream)
        if total is not None and state.written < total:
            if not progressed:
                raise DownloadError(f"the body ended at byte {state.written} of {total}",
                                    url=where, retryable=True)
            raise _Resume(f"the body ended at byte {state.written} of {total}")
        if total is not None and state.written > total:
            raise DownloadError(f"the server sent {state.written} bytes, more than the "
                                f"{total} announced", url=where)

    return handle


def _span(response: httpx.Response, where: str) -> tuple[int, int | None]:
    """(first byte offset, total size or None) of a 200 or 206 answer."""
    length = response.headers.get("content-length")
    size = int(length) if length and length.isdigit() else None
    if response.status_code == 200:
        return 0, size
    found = _CONTENT_RANGE.match(response.headers.get("content-range", ""))
    if not found:
        raise DownloadError("a 206 answer without a usable Content-Range", url=where)
    start, _end, total = found.groups()
    return int(start), None if total == "*" else int(total)
