"""How a current model's audio reaches its destination: a path, a file object or a stream.

A generation answers either one JSON document with the hex audio (decoded as it arrives, as for
music-01) or, with ``stream=True``, server-sent events (`SseAudioReader`). Either is read into
a writer; the destinations wrap the writer: an atomic file (temporary file, renamed when
complete and checked), a file object (1 MiB writes in a worker thread), or an
[`AudioStream`][aiomusic.AudioStream] the caller iterates. Streamed requests carry no read
timeout while bytes flow: an idle guard (the session's read timeout, reset by every chunk)
catches a silent connection, and the caller's total ``timeout`` still applies.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import anyio
import attrs
import httpx

from .._core._call import Call, aclose, json_handler
from .._core._errors import AiomusicError, APIError, AudioDecodeError, ResponseError
from .._core._events import Progress
from .._core._models import ExtraInfo
from .._io._files import AtomicFile, Batcher, Writer, write_behind
from .._io._sse import SseAudioReader
from . import _protocol as proto
from ._audio_stream import AudioStream

if TYPE_CHECKING:
    from .._core._retry import RetryPolicy
    from .._core._transport import Transport
    from ._results import SongResult

__all__ = ["Decoded", "Reader", "sse_reader", "stream_call", "streaming", "to_file",
           "to_path"]

_PROGRESS_STEP = 256 * 1024


@attrs.frozen
class Decoded:
    """What reading an answer found, besides the audio written."""

    extra: ExtraInfo
    trace_id: str | None
    written: int
    first_audio: float | None = None


Reader = Callable[[httpx.Response, Call, Writer], Awaitable[Decoded]]
Result = Callable[[Decoded, Path | None, int, str], "SongResult"]
#: The music-01 client's hex decoder: decodes into a sink of piece lists, in batches.
HexDecode = Callable[..., Awaitable[tuple[ExtraInfo, str | None]]]
#: Decoded bytes handed on per batch (the decoder's own batching; the writer takes bytes).
_BATCH = 1 << 20


def stream_call(session: Transport, call: Call) -> tuple[Call, list[float]]:
    """``call`` without a read timeout, and the clock time each attempt's request went out."""
    sent = [anyio.current_time()]
    base = session._http().timeout  # the session's, or the caller's own client's
    timeout = httpx.Timeout(connect=base.connect, read=None, write=base.write, pool=base.pool)
    inner = call.body

    @contextmanager
    def body() -> Iterator[dict[str, Any]]:
        with inner() as extra:
            sent[0] = anyio.current_time()
            yield {**extra, "timeout": timeout}

    return attrs.evolve(call, body=body), sent


def _check_size(extra: ExtraInfo, written: int, trace: str | None) -> None:
    claimed = extra.size
    if claimed is not None and claimed > 0 and claimed != written:
        raise AudioDecodeError(f"the answer decoded to {written} bytes of audio but extra_info "
                               f"says {claimed}; the audio is incomplete or the answer "
                               "inconsistent", trace_id=trace)


def hex_reader(decode: HexDecode) -> Reader:
    """Read one JSON answer with hex audio (the music-01 decoder: identical answers)."""

    async def read(response: httpx.Response, call: Call, write: Writer) -> Decoded:
        written = 0

        async def counting(pieces: list[bytes]) -> None:
            nonlocal written
            for piece in pieces:
                written += len(piece)
                await write(piece)

        extra, trace = await decode(response, call, counting, batch=_BATCH)
        await write(b"")  # flush a batching writer
        return Decoded(extra, trace, written)

    return read


def sse_reader(session: Transport, decode: HexDecode, sent: list[float]) -> Reader:
    """Read a streamed answer: events as they arrive; one JSON answer is read as hex."""
    fallback = hex_reader(decode)

    async def read(response: httpx.Response, call: Call, write: Writer) -> Decoded:
        classify = session.classifier(call.service)
        if not 200 <= response.status_code < 300:
            await json_handler(classify, session.json_limits)(response, call)  # the refusal
            raise ResponseError(f"HTTP {response.status_code} without an error description",
                                status_code=response.status_code)  # pragma: no cover
        kind = response.headers.get("content-type", "").lower()
        if not kind.startswith("text/event-stream"):  # an error, or the whole song at once
            return await fallback(response, call, write)

        def check(document: Mapping[str, Any]) -> None:
            classify(response.status_code, response.headers, document)

        reader = SseAudioReader(on_event=check, limits=call.json_limits or session.json_limits)
        idle = session._http().timeout.read
        first: float | None = None
        reported = 0
        raw = response.headers.get("content-encoding", "identity").lower() in ("", "identity") \
            and not response.is_stream_consumed
        chunks = response.aiter_raw() if raw else response.aiter_bytes()
        start = anyio.current_time() + idle if idle is not None else math.inf
        try:
            with anyio.CancelScope(deadline=start) as guard:
                try:
                    async for chunk in chunks:
                        if idle is not None:  # no read timeout while bytes flow; this if not
                            guard.deadline = anyio.current_time() + idle
                        audio = reader.feed(chunk)
                        if not audio:
                            continue
                        if first is None:
                            first = anyio.current_time() - sent[0]
                            session.emit(Progress(operation=call.operation,
                                                  key=call.key or "", stage="first-audio",
                                                  done=len(audio)))
                        await write(audio)
                        if call.key and reader.audio_bytes - reported >= _PROGRESS_STEP:
                            reported = reader.audio_bytes
                            session.emit(Progress(operation=call.operation, key=call.key,
                                                  stage="decoding", done=reported))
                finally:
                    await aclose(chunks)
            if guard.cancelled_caught:
                raise httpx.ReadTimeout(f"the stream sent nothing for {idle:g} s")
            final = reader.close()
        except APIError as exc:
            # an error event after audio: the service did (and may charge for) work, so the
            # paid request is not sent again, whatever the code says
            if reader.audio_bytes:
                exc.retryable = False
            raise
        await write(b"")
        extra, trace = proto.check_generation(final)
        _check_size(extra, reader.audio_bytes, trace)
        return Decoded(extra, trace, reader.audio_bytes, first)

    return read


def to_path(read: Reader, path: Path, overwrite: bool, result: Result
            ) -> Callable[[httpx.Response, Call], Awaitable[SongResult]]:
    """A handler writing the audio atomically to ``path``."""

    async def handle(response: httpx.Response, call: Call) -> SongResult:
        async with AtomicFile(path, overwrite=overwrite) as out, \
                write_behind(out.write_many) as write:
            decoded = await read(response, call, write)
        return result(decoded, path, out.bytes_written, out.sha256)

    return handle


class _Tally:
    def __init__(self) -> None:
        self.digest = hashlib.sha256()
        self.count = 0

    def add(self, data: bytes) -> bytes:
        self.digest.update(data)
        self.count += len(data)
        return data


def _batched(write: Writer, size: int) -> Writer:
    batcher = Batcher(size)

    async def batched(data: bytes) -> None:
        batch = batcher.add(data)
        if batch is not None:
            await write(batch[0] if len(batch) == 1 else b"".join(batch))

    return batched


def to_file(read: Reader, handle: IO[bytes], result: Result
            ) -> Callable[[httpx.Response, Call], Awaitable[SongResult]]:
    """A handler writing the audio to a file object as it arrives, in 1 MiB writes."""

    async def handle_answer(response: httpx.Response, call: Call) -> SongResult:
        tally = _Tally()

        async def write(data: bytes) -> None:
            await anyio.to_thread.run_sync(handle.write, tally.add(data))

        decoded = await read(response, call, _batched(write, 1 << 20))
        return result(decoded, None, tally.count, tally.digest.hexdigest())

    return handle_answer


@asynccontextmanager
async def streaming(session: Transport, call: Call, read: Reader, result: Result, *,
                    batch: int | None, timeout: float | None, retry: RetryPolicy | None
                    ) -> AsyncIterator[AudioStream]:
    """The audio as an `AudioStream` while it arrives (``batch``: gather into pieces of that
    size; ``None``: hand on each piece as decoded). Never re-sent once audio was handed out."""
    send, receive = anyio.create_memory_object_stream[bytes](4)
    stream = AudioStream(receive)

    async def pump(response: httpx.Response, call: Call) -> SongResult:
        tally = _Tally()

        async def hand_on(data: bytes) -> None:
            if data:
                await send.send(tally.add(data))

        try:
            decoded = await read(response, call,
                                 hand_on if batch is None else _batched(hand_on, batch))
        except APIError as exc:
            if tally.count:  # audio already handed out cannot be taken back: no retry
                exc.retryable = False
            raise
        return result(decoded, None, tally.count, tally.digest.hexdigest())

    policy = attrs.evolve(retry or session.retry, resubmit_unknown=False)

    async def run() -> None:
        async with send:
            try:
                stream.result = await session._send(call, pump, timeout=timeout, retry=policy)
            except AiomusicError as exc:  # raised from the iteration, unwrapped
                stream.error = exc

    raised: Exception | None = None
    async with anyio.create_task_group() as group:
        group.start_soon(run)
        try:
            yield stream
        except Exception as exc:  # noqa: BLE001 - raised again below, outside the group
            raised = exc
        finally:
            if stream.result is None:  # the caller stopped early: abandon the answer
                group.cancel_scope.cancel()
            await receive.aclose()
    if raised is not None:
        raise raised
