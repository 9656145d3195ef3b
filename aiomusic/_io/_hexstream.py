"""Incremental JSON scanner that decodes one huge hex string as the body arrives.

MiniMax answers ``{"data": {"audio": "<hex>", "status": 2}, "trace_id": ..., "base_resp": ...}``
where the hex can be 80 MB. `HexAudioScanner` is a push parser: it finds the target string
(``data.audio`` by default) wherever it sits in the document, decodes its hex with
`binascii.unhexlify()` chunk by chunk, and keeps only the rest of the (small) document, which
it parses with `json.loads()` at the end. Memory does not grow with the audio.

Behaviour worth knowing:

* Inside the hex string nothing loops per byte in Python (``_hexdigits.py``); ``\\u00XX``
  escapes that spell a hex digit are decoded (JSON allows escaping any character); any other
  escape raises [`AudioDecodeError`][aiomusic.AudioDecodeError].
* A key on the target path that appears twice (``data`` twice at the top, or ``audio`` twice in
  ``data``) raises [`ResponseError`][aiomusic.ResponseError]: `json.loads()` would keep the last
  one silently, after we had already decoded the first.
* Invalid hex raises [`AudioDecodeError`][aiomusic.AudioDecodeError] from
  `HexAudioScanner.feed()` as soon as the bad character arrives; an odd number of hex digits
  raises it when the string closes.
* A malformed or truncated document raises [`ResponseError`][aiomusic.ResponseError] from
  `HexAudioScanner.close()`.
* Everything that is not the audio is bounded by `JsonLimits`: its bytes (1 MiB), its nesting
  depth (64) and its number of values (50,000). Passing one raises
  [`ResponseError`][aiomusic.ResponseError] from `HexAudioScanner.feed()` at once, so memory
  stays flat whatever the answer holds: a 150 MB padding or an 80 MB decoy hex string
  elsewhere in the answer is refused after its first MiB, and 200,000 nested arrays after 64.
  A documented generation answer holds under 1 kB besides its audio. The same limits serve the
  SSE reader: feed one ``data:`` event's JSON to a fresh scanner (they are cheap) with the
  same `JsonLimits`.
* `HexAudioScanner.feed_into()` appends the decoded pieces to a list instead of joining them.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

from aiomusic._core._errors import ResponseError

from .._core._json import JsonLimits
from ._hexdigits import HexTarget

__all__ = ["HexAudioScanner", "JsonLimits", "decode_hex_stream"]

# The structural characters of JSON outside strings; everything between them (whitespace,
# numbers, literals) is copied through and judged by json.loads at the end.
_SPECIAL = re.compile(rb'["{}\[\]:,]')
_WS = b" \t\r\n"
_QUOTE, _BACKSLASH = 0x22, 0x5C
_LBRACE, _RBRACE, _LBRACKET, _RBRACKET, _COLON, _COMMA = (
    ord("{"), ord("}"), ord("["), ord("]"), ord(":"), ord(","))

# Scanner states.
_STRUCT, _STRING, _TARGET = 0, 1, 2


class _Frame:
    """One open object or array."""

    __slots__ = ("expect_key", "is_obj", "key", "on_path")

    def __init__(self, *, is_obj: bool, on_path: bool) -> None:
        self.is_obj = is_obj
        self.on_path = on_path  # the keys leading here equal the target path's prefix
        self.key: str | None = None
        self.expect_key = is_obj


class HexAudioScanner(HexTarget):
    """Push parser: feed the body's chunks, get decoded audio back, then `close()`.

    Args:
        path: The keys leading to the hex string, from the top-level object.
        limits: Bounds on everything that is not the audio (`JsonLimits` defaults).

    Example::

        scanner = HexAudioScanner()
        async for chunk in response.aiter_bytes():
            audio = scanner.feed(chunk)
            ...
        document = scanner.close()  # the body, with data.audio replaced by ""
    """

    def __init__(self, path: tuple[str, ...] = ("data", "audio"), *,
                 limits: JsonLimits | None = None) -> None:
        if not path or not all(isinstance(key, str) for key in path):
            raise ValueError("path must be a non-empty tuple of keys")
        self._path = tuple(path)
        self._label = ".".join(path)
        self.limits = limits = JsonLimits() if limits is None else limits
        self._max_bytes = limits.max_bytes
        self._max_depth = limits.max_depth
        self._values_left = limits.max_values
        self._doc = bytearray()  # everything except the target string's content
        self._stack: list[_Frame] = []
        self._state = _STRUCT
        self._ready = False  # just after a ':' (only whitespace since)
        self._is_key = False  # the current _STRING is an object key
        self._escape = False  # a backslash ended the previous chunk inside a _STRING
        self._key_buf = bytearray()
        self._last_key: str | None = None
        self._seen_keys: set[int] = set()  # depths where the path's key was already met
        self._nibble = b""  # an odd hex digit carried to the next chunk
        self._pending = b""  # an unfinished escape inside the target, prepended to the next chunk
        self._offset = 0  # body offset of the current chunk's first byte
        self._found = False
        self._hex_chars = 0
        self._closed = False
        self._error: ResponseError | None = None
        self._document: dict[str, Any] | None = None

    @property
    def found(self) -> bool:
        """Whether the target value was a string seen in the document."""
        return self._found

    @property
    def hex_chars(self) -> int:
        """How many hex digits of the target string were consumed so far."""
        return self._hex_chars

    @property
    def document(self) -> dict[str, Any] | None:
        """The document `close()` returned, or ``None`` before it succeeded."""
        return self._document

    def feed(self, chunk: bytes) -> bytes:
        """Consume the next piece of the body.

        Returns:
            The audio bytes decoded from this chunk (``b""`` when none).

        Raises:
            AudioDecodeError: The target string holds a non-hex character or escape, or an odd
                number of hex digits.
            ResponseError: A key on the target path appears twice, or the JSON around the
                audio passes a bound of `limits`.
            ValueError: The scanner was already closed.
        """
        out: list[bytes] = []
        self.feed_into(chunk, out)
        if not out:
            return b""
        return out[0] if len(out) == 1 else b"".join(out)

    def feed_into(self, chunk: bytes, out: list[bytes]) -> int:
        """As `feed()`, but append the decoded pieces to ``out`` (none empty), without joining.

        Returns:
            How many audio bytes were appended.
        """
        if self._closed:
            raise ValueError("feed() after close()")
        if self._error is not None:
            raise self._error
        data = chunk if type(chunk) is bytes else bytes(chunk)
        try:
            if self._state == _TARGET and not self._pending:
                got = self._fast_target(data, out)
                if got >= 0:
                    self._offset += len(data)
                    return got
            return self._feed(data, out)
        except ResponseError as exc:
            self._error = exc
            raise

    def close(self) -> dict[str, Any]:
        """Finish the body and parse everything but the audio.

        Returns:
            The document as `json.loads()` returns it, with the target string replaced by
            ``""`` (a non-string target, such as ``null`` from a failed call, is kept as is).

        Raises:
            ResponseError: The body is truncated or not a JSON object.
            AudioDecodeError: A decoding error found earlier (raised again).
        """
        if self._error is not None:
            raise self._error
        if self._document is not None:
            return self._document
        self._closed = True
        try:
            self._document = self._finish()
        except ResponseError as exc:
            self._error = exc
            raise
        return self._document

    def _finish(self) -> dict[str, Any]:
        if self._state == _TARGET or self._pending:
            raise ResponseError(
                f"the body ended inside {self._label} after {self._hex_chars} hex digits "
                "(truncated answer)")
        if self._state == _STRING or self._stack:
            raise ResponseError("the body ended before the JSON document was complete "
                                "(truncated answer)")
        try:
            document = json.loads(self._doc)
        except ValueError as exc:  # includes JSONDecodeError and UnicodeDecodeError
            raise ResponseError(f"the answer is not valid JSON: {exc}") from exc
        if not isinstance(document, dict):
            raise ResponseError(
                f"the answer is JSON but not an object ({type(document).__name__})")
        return document

    # -- the hex string ---------------------------------------------------------------------

    # -- everything else --------------------------------------------------------------------

    def _feed(self, chunk: bytes, out: list[bytes]) -> int:
        if self._pending:
            data = self._pending + chunk
            self._offset -= len(self._pending)
            self._pending = b""
        else:
            data = chunk
        first = len(out)
        n = len(data)
        pos = 0
        # data[copy_from:] still belongs to the kept document; -1 inside the hex string
        copy_from = -1 if self._state == _TARGET else 0
        while pos < n:
            state = self._state
            if state == _TARGET:
                pos = self._target(data, pos, out)
                if self._state == _STRUCT:
                    copy_from = pos  # keep the closing quote
                    pos += 1
                continue
            if state == _STRING:
                pos = self._string(data, pos)
                continue
            match = _SPECIAL.search(data, pos)
            stop = n if match is None else match.start()
            if self._ready and stop > pos and data[pos:stop].strip(_WS):
                self._ready = False
            if match is None:
                break
            pos = stop + 1
            char = data[stop]
            if char == _QUOTE:
                if self._starts_target():
                    self._keep(data, copy_from, pos)
                    copy_from = -1
                    self._state = _TARGET
                    self._found = True
                else:
                    self._is_key = bool(self._stack) and self._stack[-1].expect_key
                    self._state = _STRING
                    if self._is_key:
                        self._key_buf.clear()
            elif char == _COLON:
                self._colon()
            elif char == _COMMA:
                self._count_value(stop)
                if self._stack and self._stack[-1].is_obj:
                    self._stack[-1].expect_key = True
            elif char in (_LBRACE, _LBRACKET):
                self._count_value(stop)
                self._open(is_obj=char == _LBRACE, at=stop)
            elif self._stack:  # '}' or ']'; a stray one is left for json.loads to report
                self._stack.pop()
            self._ready = char == _COLON
        if copy_from >= 0:
            self._keep(data, copy_from, n)
        self._offset += n
        return sum(len(piece) for piece in out[first:]) if len(out) > first else 0

    def _keep(self, data: bytes, start: int, stop: int) -> None:
        """Add ``data[start:stop]`` to the kept document, within ``limits.max_bytes``."""
        if len(self._doc) + stop - start > self._max_bytes:
            offset = self._offset + start + self._max_bytes - len(self._doc)
            raise self.limits.too_large(self._label, offset=offset)
        self._doc += data[start:stop] if start or stop < len(data) else data

    def _count_value(self, index: int) -> None:
        self._values_left -= 1
        if self._values_left < 0:
            raise self.limits.too_many(offset=self._offset + index)

    def _string(self, data: bytes, pos: int) -> int:
        """Skip through an ordinary string from ``pos``; returns where scanning stopped."""
        n = len(data)
        start = pos
        if self._escape:
            self._escape = False
            pos += 1
        quote = backslash = -2  # positions found so far; -2 means "not searched yet"
        while pos < n:
            if quote < pos and quote != -1:
                quote = data.find(b'"', pos)
            if backslash < pos and backslash != -1:
                backslash = data.find(b"\\", pos, quote if quote >= 0 else n)
            if backslash >= 0 and (quote < 0 or backslash < quote):
                pos = backslash + 2  # skip the escaped character, even a quote
                if pos > n:
                    self._escape = True
                    pos = n
                continue
            if quote < 0:
                pos = n
                break
            if self._is_key:
                self._key_buf += data[start:quote]
                self._end_key()
            self._state = _STRUCT
            return quote + 1
        if self._is_key:
            self._key_buf += data[start:pos]
        return pos

    def _end_key(self) -> None:
        depth = len(self._stack) - 1
        if depth >= len(self._path) or not self._stack[-1].on_path:
            self._last_key = None  # this key cannot matter
            return
        raw = bytes(self._key_buf)
        try:
            self._last_key = (raw.decode() if b"\\" not in raw
                              else json.loads(b'"' + raw + b'"'))
        except ValueError:  # includes UnicodeDecodeError; json.loads reports it at close
            self._last_key = None

    def _colon(self) -> None:
        if not self._stack or not self._stack[-1].is_obj:
            return
        frame = self._stack[-1]
        frame.expect_key = False
        frame.key = self._last_key
        self._last_key = None
        depth = len(self._stack) - 1
        if frame.on_path and depth < len(self._path) and frame.key == self._path[depth]:
            if depth in self._seen_keys:
                raise ResponseError(
                    f"the answer holds the key {'.'.join(self._path[:depth + 1])} twice")
            self._seen_keys.add(depth)

    def _open(self, *, is_obj: bool, at: int) -> None:
        stack = self._stack
        depth = len(stack)
        if depth >= self._max_depth:
            raise self.limits.too_deep(offset=self._offset + at)
        if not stack:
            on_path = is_obj
        else:
            parent = stack[-1]
            on_path = (is_obj and self._ready and parent.on_path and depth < len(self._path)
                       and parent.key == self._path[depth - 1])
        stack.append(_Frame(is_obj=is_obj, on_path=on_path))

    def _starts_target(self) -> bool:
        if not self._ready or len(self._stack) != len(self._path):
            return False
        frame = self._stack[-1]
        return frame.on_path and frame.key == self._path[-1]


async def decode_hex_stream(
    chunks: AsyncIterator[bytes],
    *,
    scanner: HexAudioScanner | None = None,
    path: tuple[str, ...] = ("data", "audio"),
    limits: JsonLimits | None = None,
    batch_size: int = 1 << 20,
) -> AsyncIterator[bytes]:
    """Decode a streamed body, yielding the audio in batches of about ``batch_size`` bytes.

    The document (everything but the audio) is checked at the end; read it from
    ``scanner.document`` when you pass your own ``scanner``.

    Raises:
        AudioDecodeError: The hex is invalid.
        ResponseError: The body is malformed or truncated, or passes a bound of ``limits``.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be positive")
    if scanner is None:
        scanner = HexAudioScanner(path, limits=limits)
    batch = bytearray()
    async for chunk in chunks:
        audio = scanner.feed(chunk)
        if audio:
            batch += audio
            if len(batch) >= batch_size:
                yield bytes(batch)
                batch.clear()
    scanner.close()
    if batch:
        yield bytes(batch)
