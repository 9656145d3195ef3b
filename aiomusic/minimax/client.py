"""The MiniMax side of a session: ``session.minimax``."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import anyio
import anyio.abc
import attrs
import httpx

from .._core._call import Call, aclose, json_handler
from .._core._errors import AiomusicError, APIError, AudioDecodeError, ResponseError
from .._core._events import Progress
from .._core._models import AudioSetting, ExtraInfo, GenerationResult, Purpose, ReferenceUpload
from .._io._files import AtomicFile
from .._io._hexstream import HexAudioScanner
from .._io._preflight import check_destination, expected_audio_bytes
from .._io._sources import AudioSource, local_source
from . import _protocol as proto
from ._audio_stream import AudioStream
from ._music import MusicMethods

if TYPE_CHECKING:
    from .._core._retry import RetryPolicy
    from .._core._transport import Transport

__all__ = ["AudioStream", "MiniMaxClient"]

Destination = str | os.PathLike[str] | IO[bytes]

_PROGRESS_STEP = 256 * 1024
"""Decoded bytes between two ``decoding`` progress events of a generation to a path."""

Sink = Callable[[list[bytes]], Awaitable[None]]
"""Takes the next batch of decoded pieces (none empty, the list is the sink's to keep)."""

_FILE_BATCH = 256 * 1024
"""Decoded bytes per batch handed to a path's writer thread: small, so that little is held."""


class MiniMaxClient(MusicMethods):
    """MiniMax calls of one [`MusicSession`][aiomusic.MusicSession].

    music-01 works in two steps: `upload_reference()` sends a reference track and returns a
    voice id and/or an instrumental id; `generate()` writes a new song from lyrics in the
    style of those references. The current models (`generate_song()`, `cover()`,
    `write_lyrics()`, `quota()`...) come from `MusicMethods`.
    """

    def __init__(self, session: Transport) -> None:
        self._session = session

    async def upload_reference(self, source: AudioSource, *, purpose: Purpose | str,
                               name: str | None = None, timeout: float | None = None,
                               retry: RetryPolicy | None = None) -> ReferenceUpload:
        """Upload a reference track, streamed from its source.

        Args:
            source: A path, the bytes, a seekable binary file object, or an async iterable of
                bytes. It must be WAV or MP3 (judged by content) lasting more than 10 s and at
                most 10 minutes; this is checked before anything is sent.
            purpose: ``"song"`` (sung vocals with accompaniment: both ids), ``"voice"``
                (a cappella: a voice id) or ``"instrumental"`` (an instrumental id).
            name: The file name to send and to use in errors.
            timeout: Total seconds for the whole upload, retries included.
            retry: Overrides the session's retry policy.

        Returns:
            The ids the purpose promises (a missing one raises
            [`ResponseError`][aiomusic.ResponseError]).

        Raises:
            AudioValidationError: the file is not usable (format, duration, truncation).
            InputError: bad ``purpose`` or source type.
            APIError: the service refused it (e.g. code 2013 for a file it cannot read).
        """
        checked = proto.check_purpose(purpose)
        service = self._session.minimax_service
        async with local_source(source, name=name) as local:
            info = await local.validate()
            suffix = f".{info.format}"
            file_name = local.name if local.name.lower().endswith(suffix) else \
                local.name + suffix
            call = proto.upload_call(service, purpose=checked, file_name=file_name,
                                     audio_format=info.format, opener=local.open)
            self._session.emit(Progress(operation="minimax.upload", key=file_name,
                                        stage="uploading", done=0, total=info.size))
            body = await self._session._send(call, timeout=timeout, retry=retry)
        result = proto.parse_upload(body, checked)
        self._session.emit(Progress(operation="minimax.upload", key=file_name,
                                    stage="uploaded", done=info.size, total=info.size))
        return result

    async def generate(
        self,
        destination: Destination,
        *,
        lyrics: str | None,
        refer_voice: str | None = None,
        refer_instrumental: str | None = None,
        audio_setting: AudioSetting | None = None,
        overwrite: bool = True,
        timeout: float | None = None,
        retry: RetryPolicy | None = None,
    ) -> GenerationResult:
        """Generate a song and write its audio to ``destination`` as the answer arrives.

        The answer carries the audio as one long hex string inside JSON; it is decoded chunk by
        chunk, so memory stays flat whatever the song's size.

        Args:
            destination: A path (written atomically: a temporary file beside it, renamed only
                when complete and verified; on any failure nothing is left) or a binary file
                object (written as the audio arrives; on failure it may hold part of it).
            lyrics: Up to 600 characters. ``\\n`` separates lines, ``\\n\\n`` adds a pause, and
                ``##`` at the start and end adds accompaniment around the song.
            refer_voice: A voice id from `upload_reference()` (voice alone: an a cappella).
            refer_instrumental: An instrumental id (alone: a pure instrumental).
            audio_setting: Format (mp3/wav/pcm), sample rate and bitrate of the output.
            overwrite: Whether an existing file at a path destination may be replaced.
            timeout: Total seconds, retries included. Generations take a minute or more.
            retry: Overrides the session's retry policy. A generation is paid: after an
                ambiguous failure it is not re-sent unless the policy says
                ``resubmit_unknown=True``.

        Returns:
            The path, bytes written, SHA-256 and the service's ``extra_info``.

        Raises:
            InputError: an argument is invalid (nothing was sent).
            PreflightError: a path destination's folder is missing, not writable or has no
                room for the audio (nothing was sent).
            SubmissionUnknownError: the request may have been taken without an answer (its
                fate is unknown: a lost connection, a 5xx, an unreadable answer).
            AudioDecodeError: the hex is invalid or shorter than the service claimed.
            APIError: the service refused the generation.
        """
        payload = proto.check_generate(self._session.minimax_service, lyrics=lyrics,
                                       refer_voice=refer_voice,
                                       refer_instrumental=refer_instrumental,
                                       audio_setting=audio_setting)
        call = proto.generate_call(self._session.minimax_service, payload, key=None)
        return await self.write(call, destination, overwrite=overwrite, timeout=timeout,
                                retry=retry)

    async def write(self, call: Call, destination: Destination, *, overwrite: bool = True,
                    timeout: float | None = None, retry: RetryPolicy | None = None
                    ) -> GenerationResult:
        """Send a paid generation ``call`` and write its hex audio to ``destination``.

        The engine under `generate()`, for any operation whose answer carries the audio as
        hex in JSON (batches run declared operations through it). The arguments are those of
        `generate()`.
        """
        if isinstance(destination, str | os.PathLike):
            call = attrs.evolve(call, key=os.fspath(destination))
            path = Path(destination)
            expected = expected_audio_bytes(call.json if isinstance(call.json, Mapping) else None)
            # before the first paid byte: the folder exists, takes a file, and has room
            await anyio.to_thread.run_sync(lambda: check_destination(
                path, expected=expected, overwrite=overwrite))

            async def to_path(response: httpx.Response, call: Call) -> GenerationResult:
                async with AtomicFile(path, overwrite=overwrite, max_behind=2 * _FILE_BATCH,
                                      ) as out:
                    # the file's thread hashes and writes while decoding goes on
                    extra, trace = await self._decode(response, call, out.write_many,
                                                      batch=_FILE_BATCH)
                # the atomic rename happened on exit: only now is the file complete
                return GenerationResult(status=2, extra_info=extra, trace_id=trace, path=path,
                                        bytes_written=out.bytes_written, sha256=out.sha256)

            return await self._session._send(call, to_path, timeout=timeout, retry=retry)
        if not hasattr(destination, "write"):
            raise TypeError("destination must be a path or a binary file object, got "
                            f"{type(destination).__name__}")
        handle = destination

        async def to_file(response: httpx.Response, call: Call) -> GenerationResult:
            # Plain 1 MiB batches, no writer thread of our own: file objects are mostly in
            # memory, and small answers are common there (benchmark B4 measures this path per
            # call). The worker thread hashes and writes each batch piece by piece (no join).
            tally = _Tally()

            def write_all(pieces: list[bytes]) -> None:
                for piece in tally.add_many(pieces):
                    handle.write(piece)

            async def write(pieces: list[bytes]) -> None:
                await anyio.to_thread.run_sync(write_all, pieces)

            extra, trace = await self._decode(response, call, write, batch=1 << 20)
            return tally.result(extra, trace)

        return await self._session._send(call, to_file, timeout=timeout, retry=retry)

    @asynccontextmanager
    async def stream(
        self,
        *,
        lyrics: str | None,
        refer_voice: str | None = None,
        refer_instrumental: str | None = None,
        audio_setting: AudioSetting | None = None,
        timeout: float | None = None,
        retry: RetryPolicy | None = None,
    ) -> AsyncIterator[AudioStream]:
        """Generate a song and iterate over its audio while the service is still sending it.

        Use it to pass audio on (a FastAPI ``StreamingResponse``) without a file or a buffer::

            async with session.minimax.stream(lyrics=..., refer_voice=vid) as audio:
                async for chunk in audio:
                    ...
            print(audio.result.sha256)

        The arguments are those of `generate()`. Once the first byte was handed out the call
        is never retried; a failure then raises from the iteration.
        """
        payload = proto.check_generate(self._session.minimax_service, lyrics=lyrics,
                                       refer_voice=refer_voice,
                                       refer_instrumental=refer_instrumental,
                                       audio_setting=audio_setting)
        call = proto.generate_call(self._session.minimax_service, payload, key=None)
        send, receive = anyio.create_memory_object_stream[bytes](4)
        stream = AudioStream(receive)

        async def pump(response: httpx.Response, call: Call) -> GenerationResult:
            sink = _Tally()

            async def hand_on(pieces: list[bytes]) -> None:
                # a listener gets each batch as one bytes object; hashing it here is the one
                # pass over it while it is in the cache (a thread hop per 64 KiB costs more)
                data = pieces[0] if len(pieces) == 1 else b"".join(pieces)
                sink.add_many([data])
                await send.send(data)

            try:
                extra, trace = await self._decode(response, call, hand_on, batch=64 * 1024)
            except APIError as exc:
                if sink.written:  # audio already handed out cannot be taken back: no retry
                    exc.retryable = False
                raise
            return sink.result(extra, trace)

        # A stream is never re-sent after an ambiguous failure, whatever the policy says:
        # the caller may already hold part of the audio.
        policy = attrs.evolve(retry or self._session.retry, resubmit_unknown=False)

        async def run() -> None:
            async with send:
                try:
                    stream.result = await self._session._send(call, pump, timeout=timeout,
                                                              retry=policy)
                except AiomusicError as exc:
                    # surfaces from the iteration as itself, not wrapped in an exception group
                    stream.error = exc

        raised: Exception | None = None
        async with anyio.create_task_group() as tg:
            tg.start_soon(run)
            try:
                yield stream
            except Exception as exc:  # noqa: BLE001 - re-raised below, outside the group
                raised = exc
            finally:
                # the caller stopped early: do not leave the service's answer half read
                if stream.result is None:
                    tg.cancel_scope.cancel()
                await receive.aclose()
        if raised is not None:
            raise raised

    async def _decode(self, response: httpx.Response, call: Call, sink: Sink, *, batch: int
                      ) -> tuple[ExtraInfo, str | None]:
        """Decode the answer's audio into ``sink``, in batches of about ``batch`` bytes; check
        everything before returning.

        Raises on any problem *before* the caller commits a file: a classified error, no
        audio, an unfinished status, or fewer bytes than ``extra_info`` claims.
        """
        classify = self._session.classifier(call.service)
        if not 200 <= response.status_code < 300:
            # a refusal is a small JSON (or unreadable) body: the standard reader classifies it
            await json_handler(classify, self._session.json_limits)(response, call)
            raise ResponseError(f"HTTP {response.status_code} without an error description",
                                status_code=response.status_code)  # pragma: no cover
        # the session's bounds on JSON (or the call's own) also bound a hex answer
        scanner = HexAudioScanner(limits=call.json_limits or self._session.json_limits)
        feed = scanner.feed_into
        emit = self._session.emit
        written = reported = held = 0
        pieces: list[bytes] = []
        # The call asks for identity encoding, so raw bytes are the body; iterating the raw
        # stream ourselves lets us close it on an early exit (aiter_bytes leaves its inner
        # generator unclosed).
        # A response read already (a test transport, a caching client) is decoded from memory.
        raw = _identity(response) and not response.is_stream_consumed
        stream = response.aiter_raw() if raw else response.aiter_bytes()
        try:
            async for chunk in stream:
                # the decoded pieces are gathered as they are: no copy until the disk
                held += feed(chunk, pieces)
                if held >= batch:
                    written += held
                    await sink(pieces)
                    pieces, held = [], 0
                    if call.key is not None and written - reported >= _PROGRESS_STEP:
                        reported = written
                        emit(Progress(operation="minimax.generate", key=call.key,
                                      stage="decoding", done=written))
        finally:
            await aclose(stream)
        document = scanner.close()
        if pieces:
            written += held
            await sink(pieces)
        classify(response.status_code, response.headers, document)
        if not scanner.found:
            raise ResponseError("the generation answer has no data.audio string; nothing to "
                                "decode", status_code=response.status_code,
                                trace_id=_trace(document))
        extra, trace = proto.check_generation(document)
        self._check_size(extra, written, trace)
        return extra, trace

    @staticmethod
    def _check_size(extra: ExtraInfo, written: int, trace: str | None) -> None:
        claimed = extra.size
        if written == 0:  # "audio": "" is an answer without a song, not an empty song
            raise AudioDecodeError("the answer's data.audio is empty: the service sent no "
                                   "audio, so nothing was written", trace_id=trace)
        if claimed is not None and claimed > 0 and claimed != written:
            raise AudioDecodeError(
                f"the answer decoded to {written} bytes of audio but extra_info says "
                f"{claimed}; the audio is incomplete or the answer inconsistent",
                trace_id=trace)


class _Tally:
    """Counts and hashes the decoded audio that is handed on."""

    def __init__(self) -> None:
        self._digest = hashlib.sha256()
        self.written = 0

    def add_many(self, pieces: list[bytes]) -> list[bytes]:
        for piece in pieces:
            self._digest.update(piece)
            self.written += len(piece)
        return pieces

    def result(self, extra: ExtraInfo, trace: str | None) -> GenerationResult:
        return GenerationResult(status=2, extra_info=extra, trace_id=trace,
                                bytes_written=self.written, sha256=self._digest.hexdigest())


def _identity(response: httpx.Response) -> bool:
    return response.headers.get("content-encoding", "identity").lower() in ("", "identity")


def _trace(document: Mapping[str, Any]) -> str | None:
    trace = document.get("trace_id")
    return trace if isinstance(trace, str) else None
