"""A JSON request body with one field streamed in as base64 from a file, never held whole.

MiniMax's cover endpoints take the reference track inline, as ``audio_base64`` (up to 50 MB
of audio, 67 MB of base64). The body is the JSON document cut around that field: its prefix,
the file encoded 768 KiB at a time in a worker thread, its suffix. The length is known in
advance (base64 of ``n`` bytes is ``4 * ceil(n / 3)`` characters), so the request carries a
real ``Content-Length`` and memory stays at one chunk whatever the file's size.
"""

from __future__ import annotations

import binascii
import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import IO, Any

import anyio

from .._core._errors import InputError

__all__ = ["CHUNK", "base64_json", "encoded_length"]

#: Bytes of the file per read: a multiple of 3, so the pieces concatenate into one base64.
CHUNK = 3 * 256 * 1024
_MARK = "aiomusic-base64-goes-here"


def encoded_length(size: int) -> int:
    """Characters of the base64 of ``size`` bytes (with padding)."""
    return 4 * -(-size // 3)


def _cut(document: Mapping[str, Any], field: str) -> tuple[bytes, bytes]:
    mark = _MARK
    text = json.dumps(dict(document), ensure_ascii=False, separators=(",", ":"))
    while mark in text:  # a caller's own text holds the marker: pick another
        mark += "!"
    parts = json.dumps({**document, field: mark}, ensure_ascii=False,
                       separators=(",", ":")).encode().split(f'"{mark}"'.encode())
    assert len(parts) == 2
    return parts[0] + b'"', b'"' + parts[1]


class _Stream:
    """The body's pieces as an async iterator (a class, not a generator: httpx may drop it
    unfinished, and an abandoned async generator warns on trio)."""

    def __init__(self, prefix: bytes, handle: IO[bytes], size: int, suffix: bytes) -> None:
        self._pending: list[bytes] = [prefix]
        self._handle = handle
        self._left = size
        self._suffix: bytes | None = suffix

    def _read(self, want: int) -> bytes:
        # whole pieces of 3 bytes (a short read would misalign the base64 that follows)
        parts = []
        while want > 0:
            data = self._handle.read(want)
            if not data:
                break
            parts.append(data)
            want -= len(data)
        return b"".join(parts)

    def __aiter__(self) -> _Stream:
        return self

    async def __anext__(self) -> bytes:
        if self._pending:
            return self._pending.pop()
        if self._left > 0:
            want = min(CHUNK, self._left)
            data = await anyio.to_thread.run_sync(self._read, want)
            if len(data) < want:
                raise InputError(f"the reference file ended {self._left - len(data)} bytes "
                                 "early: it changed while it was being sent", field="source")
            self._left -= want
            return binascii.b2a_base64(data, newline=False)
        if self._suffix is not None:
            suffix, self._suffix = self._suffix, None
            return suffix
        raise StopAsyncIteration


def base64_json(document: Mapping[str, Any] | None, field: str,
                opener: Callable[[], AbstractContextManager[IO[bytes]]], size: int
                ) -> tuple[Callable[[], AbstractContextManager[dict[str, Any]]], int]:
    """A body factory for ``document`` with ``field`` set to the base64 of ``size`` bytes
    read from ``opener()`` (a fresh file per attempt), and the body's length in bytes."""
    prefix, suffix = _cut(document or {}, field)
    length = len(prefix) + encoded_length(size) + len(suffix)

    @contextmanager
    def body() -> Iterator[dict[str, Any]]:
        with opener() as handle:
            yield {"content": _Stream(prefix, handle, size, suffix)}

    return body, length
