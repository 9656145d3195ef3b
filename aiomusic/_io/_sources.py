"""Audio sources for uploads: a path, bytes, a seekable file object, or an async byte iterable.

Every kind becomes a `LocalSource` that can be validated (in a worker thread) and opened
afresh for each attempt, so a retry re-sends the same bytes, streamed from disk, never held whole
in memory. An async iterable is spooled to a temporary file first (it can be read only once).
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from contextlib import AbstractContextManager, asynccontextmanager, contextmanager, nullcontext
from pathlib import Path
from typing import IO, BinaryIO

import anyio
import attrs

from .._core._call import aclose
from .._core._errors import InputError
from ._audio import AudioInfo, _Window, validate_reference

__all__ = ["AudioSource", "LocalSource", "local_source"]

AudioSource = str | os.PathLike[str] | bytes | bytearray | memoryview | BinaryIO | \
    AsyncIterable[bytes]
"""What an upload accepts: a path, the bytes, a seekable binary file, or an async iterable."""

_SPOOL_BATCH = 1 << 20


@attrs.frozen
class LocalSource:
    """A source ready to validate and to open once per attempt."""

    name: str
    probe: str | bytes | BinaryIO

    def open(self) -> AbstractContextManager[IO[bytes]]:
        """A fresh readable file positioned at the start of the audio."""
        probe = self.probe
        if isinstance(probe, str):
            return open(probe, "rb")
        if isinstance(probe, bytes):
            return nullcontext(io.BytesIO(probe))
        return _window(probe)

    async def validate(self, *, min_duration: float = 10.0, max_duration: float = 600.0,
                       formats: tuple[str, ...] = ("wav", "mp3")) -> AudioInfo:
        """Check the content is audio of ``formats`` and an accepted length (in a worker
        thread); the defaults are music-01's."""
        return await anyio.to_thread.run_sync(lambda: validate_reference(
            self.probe, name=self.name, min_duration=min_duration, max_duration=max_duration,
            formats=formats))


@contextmanager
def _window(handle: BinaryIO) -> Iterator[IO[bytes]]:
    start = handle.tell()
    try:
        yield io.BufferedReader(_Window(handle, start), 64 * 1024)
    finally:
        handle.seek(start)


@asynccontextmanager
async def local_source(source: AudioSource, *, name: str | None = None
                       ) -> AsyncIterator[LocalSource]:
    """Turn any accepted source into a `LocalSource` for the duration of the block.

    Raises:
        InputError: the source is of an unsupported type or a non-seekable file object.
    """
    if isinstance(source, str | os.PathLike):
        path = os.fspath(source)
        if not await anyio.Path(path).is_file():
            raise InputError(f"{path}: no such file", field="source")
        yield LocalSource(name=name or Path(path).name, probe=path)
    elif isinstance(source, bytes | bytearray | memoryview):
        yield LocalSource(name=name or "audio", probe=bytes(source))
    elif hasattr(source, "read"):
        handle: BinaryIO = source  # type: ignore[assignment]
        try:
            seekable = handle.seekable()
        except (ValueError, OSError):
            seekable = False
        if not seekable:
            raise InputError("the file object is not seekable, so a retry could not re-send "
                             "it; pass a path, the bytes, or an async iterable",
                             field="source")
        label = name or Path(str(getattr(handle, "name", "audio"))).name
        yield LocalSource(name=label, probe=handle)
    elif isinstance(source, AsyncIterable):
        async with _spooled(source) as path:
            yield LocalSource(name=name or "audio", probe=path)
    else:
        raise InputError(f"unsupported audio source {type(source).__name__}: pass a path, "
                         "bytes, a binary file object or an async iterable of bytes",
                         field="source")


@asynccontextmanager
async def _spooled(chunks: AsyncIterable[bytes]) -> AsyncIterator[str]:
    fd, path = tempfile.mkstemp(prefix="aiomusic-", suffix=".upload")
    try:
        with os.fdopen(fd, "wb") as out:
            buffer = bytearray()
            iterator = aiter(chunks)
            try:
                async for chunk in iterator:
                    if not isinstance(chunk, bytes | bytearray | memoryview):
                        raise InputError(f"the async iterable yielded {type(chunk).__name__}, "
                                         "not bytes", field="source")
                    buffer += chunk
                    if len(buffer) >= _SPOOL_BATCH:
                        data, buffer = bytes(buffer), bytearray()
                        await anyio.to_thread.run_sync(out.write, data)
            finally:
                await aclose(iterator)  # we consumed it; close it even when we stop early
            await anyio.to_thread.run_sync(out.write, bytes(buffer))
        yield path
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(_unlink, path)


def _unlink(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
