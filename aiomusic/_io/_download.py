"""Downloading generated tracks: https only, public addresses only, redirects re-checked,
Range resume, content checked by its first bytes, atomic files.

Each response is read by a handler that writes into one `AtomicFile`
across attempts: a dropped connection after some bytes arrived becomes a new request with
``Range: bytes=<received>-`` (the handler also copes with a server that ignores Range, by
skipping what it already has). Nothing appears at the destination until the file is complete.

What counts as a track: at least one byte; audio (or an MP4 video) by its first bytes, whatever
the Content-Type says; exactly the announced length. A body compressed although aiomusic asked
for ``identity`` is decoded (gzip, deflate; br with the brotli package) in bounded pieces, and
its length is checked on the wire, where Content-Length counts.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import attrs
import httpx

from .._core import _guard
from .._core._call import Call, Handler, aclose
from .._core._config import LaneKind, Service
from .._core._encoding import ContentDecoder, raw_body
from .._core._errors import AiomusicError, DeadlineExceededError, DownloadError, EncodingError
from .._core._events import Progress
from .._core._models import DownloadResult
from ._files import AtomicFile, Writer, write_behind
from ._names import SNIFF_BYTES, audio_suffix, name_problem, safe_filename, sniff_media

if TYPE_CHECKING:
    from .._core._retry import RetryPolicy
    from .._core._transport import Transport

__all__ = ["DEFAULT_MAX_BYTES", "audio_suffix", "check_download_url", "download_url",
           "name_problem", "safe_filename", "sniff_media"]

#: The largest track accepted by default (a 4-minute WAV is about 40 MiB).
DEFAULT_MAX_BYTES = 512 * 1024 * 1024
MAX_REDIRECTS = 5
#: Resumes without progress are not counted against this; it bounds resumes with progress.
MAX_RESUMES = 20
_PROGRESS_STEP = 1 << 20
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")
_UNSATISFIED = re.compile(r"bytes\s+\*/(\d+)")
_ACCEPTED_TYPES = ("application/octet-stream", "binary/octet-stream")


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


class _Resume(AiomusicError):
    """The connection dropped after some bytes: ask again with a Range (not a plain retry)."""


class _Redirect(AiomusicError):
    def __init__(self, location: str) -> None:
        super().__init__(f"redirected to {_strip(location)}", retryable=False)
        self.location = location


@attrs.define
class _State:
    received: int = 0  # bytes of the body as sent (encoded), which Range and Content-Length count
    written: int = 0  # decoded bytes handed to the file (the first few wait for the sniff)
    total: int | None = None
    content_type: str | None = None
    etag: str | None = None
    resumes: int = 0
    reported: int = 0
    decoder: ContentDecoder | None = None
    head: bytearray | None = attrs.field(factory=bytearray)  # None once the start was judged
    pin: _guard.Pin | None = None


def _accepted_type(content_type: str | None) -> bool:
    if not content_type:
        return True  # some CDNs omit it; the first bytes and the size cap still apply
    mime = content_type.split(";")[0].strip().lower()
    return mime.startswith(("audio/", "video/")) or mime in _ACCEPTED_TYPES  # video: Suno's MP4


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
        DownloadError: refused URL or address (also after a redirect), too many redirects,
            not audio, empty, larger than ``max_bytes``, or the server's answer does not add up.
        DeadlineExceededError: ``timeout`` passed.
        AiomusicError: network failures that survived the retries.
    """
    limit = DEFAULT_MAX_BYTES if max_bytes is None else max_bytes
    if limit <= 0:
        raise ValueError(f"max_bytes must be positive, got {max_bytes!r}")
    policy = _guard.policy_of(session)
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
                    raise _late(operation, timeout)
            state.pin = None
            headers = {"Accept-Encoding": "identity"}
            if state.received:
                headers["Range"] = f"bytes={state.received}-"
            call = Call(service=service, lane=LaneKind.TRANSFER, operation=operation,
                        method="GET", url=current, auth=False, headers=headers, key=key)
            handler = _handler(session, state, policy, write, limit, key)
            with anyio.move_on_after(remaining):
                state.pin = await _guard.resolve_allowed(httpx.URL(current), policy,
                                                         where=_strip(current))
            if state.pin is None:  # the name did not resolve before the deadline
                raise _late(operation, timeout)
            try:
                with _guard.pinned(state.pin):
                    await session._send(call, handler, timeout=remaining, retry=retry)
                break
            except DeadlineExceededError as exc:
                # _send saw only what was left of the deadline: report the caller's own
                raise _late(operation, timeout) from exc
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
                                      done=state.received, total=state.total))
    session.emit(Progress(operation=operation, key=key, stage="downloaded",
                          done=out.bytes_written, total=out.bytes_written))
    return DownloadResult(path=path, bytes_written=out.bytes_written, sha256=out.sha256,
                          url=_strip(current), content_type=state.content_type,
                          track_id=track_id, resumes=state.resumes)


def _late(operation: str, timeout: float | None) -> DeadlineExceededError:
    return DeadlineExceededError(f"{operation}: gave up after the {timeout:g} s deadline",
                                 timeout=timeout or 0.0)


def _handler(session: Transport, state: _State, policy: _guard.HostPolicy, write: Writer,
             limit: int, key: str) -> Handler[None]:
    async def handle(response: httpx.Response, call: Call) -> None:
        status = response.status_code
        where = _strip(call.url)
        if status in (301, 302, 303, 307, 308):
            location = response.headers.get("location")
            if not location:
                raise DownloadError(f"HTTP {status} redirect without a Location", url=where)
            raise _Redirect(str(httpx.URL(call.url).join(location)))
        if status == 416 and state.received:
            found = _UNSATISFIED.match(response.headers.get("content-range", ""))
            if found and int(found.group(1)) == state.received:
                await _finish(state, write, where)
                return  # it was all there already
        if status >= 400 or status not in (200, 206):
            raise DownloadError(f"the server answered HTTP {status}", url=where,
                                retryable=status >= 500 or status in (408, 429))
        assert state.pin is not None
        _guard.check_peer(response, state.pin, policy, where=where)
        content_type = response.headers.get("content-type")
        if not _accepted_type(content_type):
            raise DownloadError(f"the server sent {content_type!r}, not audio", url=where)
        encoding = None if response.is_stream_consumed else \
            response.headers.get("content-encoding")
        decoder = _decoder(state, encoding, where)
        start, total = _span(response, where)
        etag = response.headers.get("etag")
        if state.received and etag and state.etag and etag != state.etag:
            raise DownloadError("the file changed on the server during the download "
                                f"(ETag {state.etag} then {etag})", url=where)
        if start > state.received:
            raise DownloadError(f"the server resumed at byte {start}, after the "
                                f"{state.received} bytes received", url=where)
        if total is not None and total > limit:
            raise DownloadError(f"the file is {total} bytes, above the {limit}-byte limit "
                                "(pass max_bytes= to allow more)", url=where)
        state.total, state.content_type = total, content_type or state.content_type
        state.etag = state.etag or etag
        skip = state.received - start
        progressed = False
        stream, _ = raw_body(response)  # the body as sent: Content-Length counts it
        try:
            async for chunk in stream:
                if skip:
                    dropped = min(skip, len(chunk))
                    chunk, skip = chunk[dropped:], skip - dropped
                if not chunk:
                    continue
                if state.received + len(chunk) > limit:
                    raise DownloadError(f"the download passed the {limit}-byte limit "
                                        "(pass max_bytes= to allow more)", url=where)
                state.received += len(chunk)
                progressed = True
                for piece in _decoded(decoder, chunk, where):
                    await _take(state, write, piece, limit, where)
                if state.received - state.reported >= _PROGRESS_STEP:
                    state.reported = state.received
                    session.emit(Progress(operation=call.operation, key=key,
                                          stage="downloading", done=state.received,
                                          total=total))
        except httpx.TransportError as exc:
            if progressed:
                raise _Resume(f"connection dropped at byte {state.received}") from exc
            if total is not None and state.received < total:
                raise _short(state, total, where) from exc
            raise
        finally:
            await aclose(stream)
        if total is not None and state.received < total:
            if not progressed:
                raise _short(state, total, where)
            raise _Resume(f"the body ended at byte {state.received} of {total}")
        if total is not None and state.received > total:
            raise DownloadError(f"the server sent {state.received} bytes, more than the "
                                f"{total} announced", url=where)
        for piece in _decoded(decoder, None, where):
            await _take(state, write, piece, limit, where)
        await _finish(state, write, where)

    return handle


def _short(state: _State, total: int, where: str) -> DownloadError:
    return DownloadError(f"the body ended at byte {state.received} of the {total} announced "
                         "(the server closed the connection early)", url=where, retryable=True)


def _decoder(state: _State, encoding: str | None, where: str) -> ContentDecoder:
    """The body's decoder, the same across resumes (a resumed body continues its stream)."""
    try:
        fresh = ContentDecoder(encoding)
    except EncodingError as exc:
        raise DownloadError(exc.message, url=where) from exc
    if state.decoder is None:
        state.decoder = fresh
    elif fresh.encodings != state.decoder.encodings:
        raise DownloadError("the server changed the body's encoding between attempts "
                            f"({', '.join(state.decoder.encodings) or 'identity'} then "
                            f"{', '.join(fresh.encodings) or 'identity'})", url=where,
                            retryable=True)
    return state.decoder


def _decoded(decoder: ContentDecoder, chunk: bytes | None, where: str) -> Iterator[bytes]:
    """``chunk`` decoded (``None``: what is left at the end), errors as `DownloadError`."""
    try:
        yield from decoder.finish() if chunk is None else decoder.pieces(chunk)
    except EncodingError as exc:
        raise DownloadError(f"{exc.message}; it was sent although aiomusic asked for the "
                            "file as it is (Accept-Encoding: identity)", url=where) from exc


async def _take(state: _State, write: Writer, piece: bytes, limit: int, where: str) -> None:
    if state.written + len(piece) > limit:
        raise DownloadError(f"the download passed the {limit}-byte limit (pass max_bytes= to "
                            "allow more)", url=where)
    head = state.head
    if head is None:
        state.written += len(piece)
        await write(piece)
        return
    head += piece  # the first bytes wait until they show what the file is
    if len(head) >= SNIFF_BYTES:
        await _release(state, write, where)


async def _release(state: _State, write: Writer, where: str) -> None:
    head = state.head
    assert head is not None
    kind = sniff_media(bytes(head[:SNIFF_BYTES]))
    if kind is None:
        shown = bytes(head[:SNIFF_BYTES])
        looks = " (an HTML page)" if shown.lstrip()[:1] == b"<" else ""
        raise DownloadError(f"the server sent {state.content_type or 'no content type'} but "
                            f"the file does not start like audio: {shown!r}{looks}", url=where)
    state.head = None
    state.written += len(head)
    await write(bytes(head))


async def _finish(state: _State, write: Writer, where: str) -> None:
    if state.head is not None:
        if not state.head:
            raise DownloadError("the server sent an empty file: a 0-byte download is not a "
                                "track", url=where, retryable=True)
        await _release(state, write, where)


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
