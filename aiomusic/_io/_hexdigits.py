"""The hex string inside a MiniMax answer, decoded as it arrives (part of `HexAudioScanner`).

The scanner's hot path: a chunk that lies wholly inside the hex string goes to
`binascii.unhexlify` whole; only a chunk holding the closing quote, an escape or a bad
character is searched (with ``bytes.find``). A byte whose two digits straddle two chunks is
decoded as a piece of its own, so no chunk is copied to realign it.
"""

from __future__ import annotations

import binascii
import re

from .._core._errors import AudioDecodeError

__all__ = ["HEX_DIGITS", "STRUCT", "HexTarget", "unhexlify"]

unhexlify = binascii.unhexlify
_NOT_HEX = re.compile(rb"[^0-9A-Fa-f]")
HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")
#: The scanner's state outside any string (it goes back to it at the closing quote).
STRUCT = 0


class HexTarget:
    """The decoding of the target hex string; `HexAudioScanner` holds the state."""

    _label: str
    _state: int
    _nibble: bytes  # an odd hex digit carried to the next chunk
    _pending: bytes  # an unfinished escape inside the target, prepended to the next chunk
    _offset: int  # body offset of the current chunk's first byte
    _hex_chars: int

    def _fast_target(self, data: bytes, out: list[bytes]) -> int:
        """Decode a chunk that lies wholly inside the hex string; -1 when it does not."""
        n = len(data)
        if not n:
            return 0
        skip = 1 if self._nibble else 0
        odd = (n - skip) & 1
        if (skip and data[0] not in HEX_DIGITS) or (odd and data[-1] not in HEX_DIGITS):
            return -1
        try:
            body = unhexlify(memoryview(data)[skip:n - odd] if skip or odd else data)
        except binascii.Error:  # the closing quote, an escape or a bad digit: go slowly
            return -1
        got = len(body)
        if skip:  # the byte split across chunks is a piece of its own: no copy of the rest
            out.append(unhexlify(self._nibble + data[:1]))
            got += 1
        if body:
            out.append(body)
        self._nibble = data[n - 1:] if odd else b""
        self._hex_chars += n
        return got

    def _decode(self, data: bytes, start: int, stop: int, out: list[bytes]) -> None:
        """Decode ``data[start:stop]`` (hex digits only, else raise) into ``out``."""
        if start >= stop:
            return
        if self._nibble:
            if data[start] not in HEX_DIGITS:
                self._bad_char(data, start)
            out.append(unhexlify(self._nibble + data[start:start + 1]))
            self._nibble = b""
            self._hex_chars += 1
            start += 1
        end = stop - ((stop - start) & 1)
        try:
            if end > start:
                out.append(unhexlify(memoryview(data)[start:end]))
        except binascii.Error:
            match = _NOT_HEX.search(data, start, end)
            assert match is not None
            self._hex_chars += match.start() - start
            self._bad_char(data, match.start())
        self._hex_chars += end - start
        if end < stop:
            if data[end] not in HEX_DIGITS:
                self._bad_char(data, end)
            self._nibble = data[end:stop]
            self._hex_chars += 1

    def _bad_char(self, data: bytes, index: int) -> None:
        """Raise for the non-hex ``data[index]``; ``_hex_chars`` counts the digits before it."""
        raise AudioDecodeError(
            f"{self._label} holds a non-hex character {chr(data[index])!r} at hex digit "
            f"{self._hex_chars} (byte {self._offset + index} of the body)")

    def _target(self, data: bytes, pos: int, out: list[bytes]) -> int:
        """Scan inside the hex string from ``pos``; returns where scanning stopped."""
        n = len(data)
        quote = data.find(b'"', pos)
        stop = quote if quote >= 0 else n
        backslash = data.find(b"\\", pos, stop)
        if backslash >= 0:
            stop = backslash
        self._decode(data, pos, stop, out)
        if backslash >= 0:
            if n - backslash < 6:  # finish this escape with the next chunk
                self._pending = data[backslash:]
                return n
            self._unescape(data, backslash, out)
            return backslash + 6
        if quote < 0:
            return n
        if self._nibble:
            raise AudioDecodeError(
                f"{self._label} holds an odd number of hex digits ({self._hex_chars})")
        self._state = STRUCT
        return quote

    def _unescape(self, data: bytes, index: int, out: list[bytes]) -> None:
        """Decode a ``\\u00XX`` escape at ``data[index]`` that spells one hex digit."""
        escape = data[index:index + 6]
        digit = b""
        if escape[1:2] == b"u" and all(c in HEX_DIGITS for c in escape[2:6]):
            code = int(escape[2:6], 16)
            if code in HEX_DIGITS:
                digit = bytes((code,))
        if not digit:
            raise AudioDecodeError(
                f"{self._label} holds the escape {escape.decode('ascii', 'replace')!r} at byte "
                f"{self._offset + index} of the body, which is not a hex digit")
        self._hex_chars += 1
        if self._nibble:
            out.append(unhexlify(self._nibble + digit))
            self._nibble = b""
        else:
            self._nibble = digit

