"""Bounded decoding of compressed bodies (``Content-Encoding``: gzip, deflate, br).

httpx decodes compressed bodies itself, but each chunk in one go: a 64 KiB gzip chunk can
become 64 MiB, and a brotli chunk gigabytes, before anyone can count the bytes. aiomusic reads
the raw body and decodes it here instead, in pieces of about `PIECE` bytes, so a reader can
stop at its cap with flat memory (a "compression bomb" costs one piece).
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator, Iterator
from typing import Any, Protocol

import httpx

from ._errors import EncodingError

__all__ = ["PIECE", "ContentDecoder", "accept_encoding", "raw_body"]

#: The size of a piece of decoded output (brotli may overshoot it, up to about twice).
PIECE = 256 * 1024

_IDENTITY = frozenset({"", "identity"})


def _brotli() -> Any:
    """The ``brotli`` module, if a version with bounded output (>= 1.2) is installed."""
    try:
        import brotli
    except ImportError:
        return None
    return brotli if hasattr(brotli.Decompressor(), "can_accept_more_data") else None


def accept_encoding() -> str:
    """The ``Accept-Encoding`` aiomusic can decode (``br`` only with the brotli package)."""
    return "gzip, deflate, br" if _brotli() is not None else "gzip, deflate"


def raw_body(response: httpx.Response) -> tuple[AsyncIterator[bytes], str | None]:
    """The body as sent, and its ``Content-Encoding``.

    A response read already (a test transport, a caching client) gives its content, which
    httpx decoded, and no encoding.
    """
    if response.is_stream_consumed:
        return _once(response.content), None
    return response.aiter_raw(), response.headers.get("content-encoding")


async def _once(content: bytes) -> AsyncIterator[bytes]:
    if content:
        yield content


class _Step(Protocol):
    errors: tuple[type[Exception], ...]

    def pieces(self, data: bytes) -> Iterator[bytes]: ...

    def finish(self) -> Iterator[bytes]: ...


class _Zlib:
    """gzip, or deflate (zlib-wrapped as the RFC says, or raw as some servers send)."""

    errors: tuple[type[Exception], ...] = (zlib.error,)

    def __init__(self, name: str) -> None:
        self._name = name
        self._gzip = name in ("gzip", "x-gzip")
        self._obj = zlib.decompressobj(zlib.MAX_WBITS | 16 if self._gzip else zlib.MAX_WBITS)
        self._started = False

    def _decompress(self, data: bytes) -> bytes:
        try:
            return self._obj.decompress(data, PIECE)
        except zlib.error:
            if self._gzip or self._started:
                raise
            self._obj = zlib.decompressobj(-zlib.MAX_WBITS)  # raw deflate, no zlib header
            self._started = True
            return self._obj.decompress(data, PIECE)

    def pieces(self, data: bytes) -> Iterator[bytes]:
        out = self._decompress(data)
        self._started = True
        while True:
            if out:
                yield out
            tail = self._obj.unconsumed_tail
            if not tail:
                return
            out = self._obj.decompress(tail, PIECE)

    def finish(self) -> Iterator[bytes]:
        if self._started and not self._obj.eof:
            raise zlib.error(f"the {self._name} stream ended before its end marker")
        rest = self._obj.flush()
        if rest:  # pragma: no cover - eof means everything was handed out already
            yield rest


class _Brotli:
    def __init__(self, module: Any) -> None:
        self._obj = module.Decompressor()
        self.errors: tuple[type[Exception], ...] = (module.error,)

    def pieces(self, data: bytes) -> Iterator[bytes]:
        out: bytes = self._obj.process(data, output_buffer_limit=PIECE)
        while True:
            if out:
                yield out
            if self._obj.can_accept_more_data():
                return
            out = self._obj.process(b"", output_buffer_limit=PIECE)

    def finish(self) -> Iterator[bytes]:
        while not self._obj.is_finished():  # output held back by the limit comes out now
            out: bytes = self._obj.process(b"", output_buffer_limit=PIECE)
            if not out:
                raise self.errors[0]("the br stream ended before its end marker")
            yield out


class ContentDecoder:
    """Undoes a ``Content-Encoding`` (a list is undone last first), in bounded pieces.

    Raises:
        EncodingError: from the constructor for an encoding aiomusic cannot decode (``br``
            without the brotli package says so), from `pieces()` or `finish()` for corrupt or
            cut-off data.
    """

    def __init__(self, header: str | None) -> None:
        names = [n.strip().lower() for n in (header or "").split(",")]
        self.encodings = tuple(n for n in names if n not in _IDENTITY)
        steps: list[_Step] = []
        for name in reversed(self.encodings):
            if name in ("gzip", "x-gzip", "deflate"):
                steps.append(_Zlib(name))
            elif name == "br":
                module = _brotli()
                if module is None:
                    raise EncodingError(
                        "the server sent a brotli-compressed (br) body although aiomusic did "
                        "not ask for one; install the brotli package (pip install "
                        "'aiomusic[brotli]') to decode such answers")
                steps.append(_Brotli(module))
            else:
                raise EncodingError(f"the server sent a body in the {name!r} encoding, "
                                    "which aiomusic cannot decode (it decodes gzip, deflate "
                                    "and br)")
        self._steps = steps

    @property
    def identity(self) -> bool:
        """Whether the body is sent as it is."""
        return not self._steps

    def pieces(self, data: bytes) -> Iterator[bytes]:
        """The decoded output of ``data``, in pieces of about `PIECE` bytes each."""
        return self._run(0, iter((data,)), final=False)

    def finish(self) -> Iterator[bytes]:
        """What is left at the end; raises if a compressed stream was cut off."""
        return self._run(0, iter(()), final=True)

    def _run(self, index: int, inputs: Iterator[bytes], *, final: bool) -> Iterator[bytes]:
        if index == len(self._steps):
            yield from inputs
            return
        step = self._steps[index]
        try:  # an inner step's EncodingError passes through: it is no step's own error
            for data in inputs:
                yield from self._run(index + 1, step.pieces(data), final=False)
            if final:
                yield from self._run(index + 1, step.finish(), final=True)
        except step.errors as exc:  # corrupt or cut-off data
            raise EncodingError(f"the server's {', '.join(self.encodings)}-encoded body "
                                f"cannot be decoded ({exc})") from exc
