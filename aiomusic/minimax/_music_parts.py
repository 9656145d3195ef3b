"""The parts behind `MusicMethods`: a call made ready, its answer read into a destination.

`_prepared` checks a local cover reference and streams it as base64; `_reader` picks the hex or
the SSE reader; `_music` writes into a path or a file object, or goes through a link;
`_audio_stream` hands the audio on as an `AudioStream`.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import anyio
import httpx

from .._core._call import Call
from .._core._errors import AudioValidationError, InputError
from .._core._events import Progress
from .._core._models import ExtraInfo
from .._io._preflight import check_destination, expected_from_params
from .._io._sources import local_source
from . import _music_answers as answers
from . import _music_io as music_io
from . import _music_protocol as music
from ._audio_stream import AudioStream
from ._ops import (
    COVER,
    COVER_PREPROCESS,
    LYRICS,
    QUOTA,
    SONG,
    CoverParams,
    CoverPreprocessParams,
    LyricsParams,
    QuotaParams,
    SongParams,
)
from ._results import MusicLink, SongResult

if TYPE_CHECKING:
    from .._core._retry import RetryPolicy
    from .._core._transport import Transport

__all__ = ["OPS", "Destination", "MusicParts"]

Destination = str | os.PathLike[str] | IO[bytes]
#: The declared operation of each kind of parameters.
OPS = {SongParams: SONG, CoverParams: COVER, CoverPreprocessParams: COVER_PREPROCESS,
       LyricsParams: LYRICS, QuotaParams: QUOTA}


def _remaining(deadline: float | None) -> float | None:
    # at least a moment: a deadline passed already fails inside the download, which keeps
    # the paid link in the error (LinkDownloadError)
    return None if deadline is None else max(deadline - anyio.current_time(), 1e-3)


class MusicParts:
    """What `MusicMethods` is built on (the session's MiniMax client provides ``_session``,
    the hex decoder ``_decode`` and `download_link()`)."""

    _session: Transport

    if TYPE_CHECKING:
        async def _decode(self, response: httpx.Response, call: Call,
                          sink: Callable[[list[bytes]], Awaitable[None]], *, batch: int
                          ) -> tuple[ExtraInfo, str | None]: ...

        async def download_link(self, link: MusicLink, destination: str | os.PathLike[str], *,
                                overwrite: bool = True, max_bytes: int | None = None,
                                timeout: float | None = None, retry: RetryPolicy | None = None
                                ) -> SongResult: ...

    @asynccontextmanager
    async def _prepared(self, params: SongParams | CoverParams | CoverPreprocessParams, *,
                        name: str | None, key: str | None) -> AsyncIterator[Call]:
        """The call, with a local reference checked and ready to stream as base64."""
        if isinstance(params, SongParams):
            yield music.music_call(music.song_payload(params), operation="minimax.song",
                                   key=key)
            return
        if isinstance(params, CoverParams):
            call = music.music_call(music.cover_payload(params), operation="minimax.cover",
                                    key=key)
        else:
            call = music.preprocess_json_call(music.preprocess_payload(params), key=key)
        source = params.source
        if source is None or (isinstance(source, str) and "://" in source):
            yield call
            return
        async with local_source(source, name=name) as local:
            info = await local.validate(min_duration=music.COVER_MIN_SECONDS,
                                        max_duration=music.COVER_MAX_SECONDS,
                                        formats=music.COVER_FORMATS)
            if info.size > music.COVER_MAX_BYTES:
                raise AudioValidationError(
                    f"{local.name}: is {info.size} bytes; MiniMax takes at most 50 MB "
                    f"({music.COVER_MAX_BYTES} bytes)", source=local.name,
                    duration=info.duration)
            yield music.with_file(call, local.open, info.size)

    def _result(self, params: SongParams | CoverParams) -> music_io.Result:
        def make(decoded: music_io.Decoded, path: Path | None, written: int, sha256: str
                 ) -> SongResult:
            return SongResult(status=2, extra_info=decoded.extra, trace_id=decoded.trace_id,
                              path=path, bytes_written=written, sha256=sha256,
                              model=params.model, streamed=params.stream,
                              time_to_first_audio=decoded.first_audio)
        return make

    def _reader(self, params: SongParams | CoverParams, call: Call
                ) -> tuple[Call, music_io.Reader]:
        if not params.stream:
            return call, music_io.hex_reader(self._decode)
        call, sent = music_io.stream_call(self._session, call)
        return call, music_io.sse_reader(self._session, self._decode, sent)

    async def _music(self, params: SongParams | CoverParams, destination: Destination | None,
                     *, name: str | None, overwrite: bool, max_bytes: int | None,
                     timeout: float | None, retry: RetryPolicy | None) -> SongResult | MusicLink:
        is_path = isinstance(destination, str | os.PathLike)
        if destination is not None and not is_path and not hasattr(destination, "write"):
            raise TypeError("destination must be a path or a binary file object, got "
                            f"{type(destination).__name__}")
        key = os.fspath(destination) if is_path else None  # type: ignore[arg-type]
        if key is not None:  # before the first paid byte: a folder that takes the song
            expected = expected_from_params(params)
            await anyio.to_thread.run_sync(lambda: check_destination(
                Path(key), expected=expected, overwrite=overwrite))
        if params.output_format == "url" and not params.stream:
            if destination is not None and not is_path:
                raise InputError("output_format='url' downloads into a path; for a file "
                                 "object use hex", field="output_format")
            return await self._via_link(params, destination, name=name, key=key,
                                        overwrite=overwrite, max_bytes=max_bytes,
                                        timeout=timeout, retry=retry)
        if destination is None:
            raise TypeError("a song needs a destination (or use stream_song())")
        async with self._prepared(params, name=name, key=key) as call:
            call, read = self._reader(params, call)
            result = self._result(params)
            handler = music_io.to_path(read, Path(key), overwrite, result) if key is not None \
                else music_io.to_file(read, destination, result)  # type: ignore[arg-type]
            song: SongResult = await self._session._send(call, handler, timeout=timeout,
                                                         retry=retry)
        if song.time_to_first_audio is not None:
            self._session.emit(Progress(operation=call.operation, key=key or "",
                                        stage="streamed", done=song.bytes_written))
        return song

    async def _via_link(self, params: SongParams | CoverParams, destination: Any, *,
                        name: str | None, key: str | None, overwrite: bool,
                        max_bytes: int | None, timeout: float | None,
                        retry: RetryPolicy | None) -> SongResult | MusicLink:
        deadline = None if timeout is None else anyio.current_time() + timeout
        async with self._prepared(params, name=name, key=key) as call:
            body = await self._session._send(call, timeout=timeout, retry=retry)
        link = answers.read_link(body, model=params.model)
        if destination is None:
            return link
        self._session.emit(Progress(operation=call.operation, key=key or "", stage="linked"))
        return await self.download_link(link, destination, overwrite=overwrite,
                                        max_bytes=max_bytes, timeout=_remaining(deadline),
                                        retry=retry)

    @asynccontextmanager
    async def _audio_stream(self, params: SongParams | CoverParams, *, name: str | None = None,
                            timeout: float | None, retry: RetryPolicy | None
                            ) -> AsyncIterator[AudioStream]:
        OPS[type(params)].check(params)
        async with self._prepared(params, name=name, key=None) as call:
            call, read = self._reader(params, call)
            async with music_io.streaming(self._session, call, read, self._result(params),
                                          batch=None if params.stream else 64 * 1024,
                                          timeout=timeout, retry=retry) as audio:
                yield audio
