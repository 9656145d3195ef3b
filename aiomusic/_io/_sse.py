"""A push parser for MiniMax's streamed generations: server-sent events carrying hex audio.

With ``stream: true`` MiniMax answers ``text/event-stream``. Each event's ``data:`` is a JSON
document like a whole answer: ``{"data": {"audio": "<hex>", "status": 1}, "extra_info": null,
"trace_id": ..., "base_resp": {...}}``. The events with status 1 carry the song piece by
piece; the last one has status 2 and ``extra_info``, and its audio (empty, or the whole song
again) is not part of the song. A stream that ends without it is incomplete.

`SseAudioReader` takes the body in chunks of any size and hands back the audio of each event
once the event is complete (its status is known only then). It follows the event-stream
format: lines end with CRLF, LF or CR (also split across chunks); a line starting with ``:``
is a comment; ``event``, ``id``, ``retry`` and unknown fields are ignored; the ``data`` lines
of one event are joined with ``\\n``; a blank line dispatches the event.

Memory is bounded whatever the stream: the hex of an event is decoded as it arrives (with
`HexAudioScanner`), the decoded audio of the event being read is held only up to
``max_held_audio`` (an event holding more is accepted only if it turns out to be the final
one, whose audio is dropped anyway), the rest of its JSON up to ``max_meta_bytes``, and one
event's data up to ``max_event_bytes``. Each limit breached is a
[`ResponseError`][aiomusic.ResponseError] naming it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from .._core._errors import ResponseError
from .._core._json import JsonLimits
from ._hexstream import HexAudioScanner

__all__ = ["SseAudioReader"]

_CR, _LF, _SPACE = 0x0D, 0x0A, 0x20
_MAX_NAME = 16  # longer field names are none we read: the rest of the line is skipped
_FIELD, _DATA, _SKIP = 0, 1, 2
_NOT_BLANK = re.compile(rb"[^ \t\r\n]")


class SseAudioReader:
    """Feed the body's chunks, get each finished event's audio back, then `close()`.

    Args:
        on_event: Called with each event's document (its audio replaced by ``""``) before
            its audio is handed out; raise from it to refuse the event (a ``base_resp`` error).
        max_event_bytes: The most ``data`` bytes of one event.
        max_meta_bytes: The most bytes of one event's JSON besides its audio.
        max_held_audio: The most decoded audio of one unfinished event held in memory.
        limits: Bounds on each event's JSON besides its audio (depth, values, strings), as
            for a whole answer: the session's `JsonLimits`.
    """

    def __init__(self, *, on_event: Callable[[Mapping[str, Any]], None] | None = None,
                 max_event_bytes: int = 512 << 20, max_meta_bytes: int = 1 << 20,
                 max_held_audio: int = 16 << 20, limits: JsonLimits | None = None) -> None:
        self._limits = limits
        self._on_event = on_event
        self._max_event = max_event_bytes
        self._max_meta = max_meta_bytes
        self._max_held = max_held_audio
        self._state = _FIELD
        self._name = bytearray()
        self._skip_space = False
        self._cr = False  # the previous chunk ended with CR: a leading LF belongs to it
        self._scanner: HexAudioScanner | None = None
        self._lines = 0  # data lines of the event being read
        self._size = 0  # its data bytes
        self._blank = True  # its data is whitespace so far (a keep-alive, if it stays so)
        self._held: list[bytes] = []
        self._held_size = 0
        self._spilled = False
        self._error: Exception | None = None  # the stream failed: every later call raises it
        self.final: Mapping[str, Any] | None = None
        """The final (status 2) event's document, once it arrived."""
        self.events = 0
        """Events with audio handed out so far."""
        self.audio_bytes = 0
        """Audio bytes handed out so far."""

    @property
    def done(self) -> bool:
        """Whether the final event arrived (anything after it is ignored)."""
        return self.final is not None

    def feed(self, chunk: bytes) -> bytes:
        """Consume the next piece of the body; the audio of the events it completed.

        When an event fails after others completed in the same chunk, their audio is returned
        and the failure is raised by the next call (`feed()` or `close()`).

        Raises:
            ResponseError: an event is not a JSON object, breaks a limit, or ``on_event``
                refused it (then whatever ``on_event`` raised).
            AudioDecodeError: an event's audio is not valid hex.
        """
        if self._error is not None:
            raise self._error
        if self.final is not None or not chunk:
            return b""
        out: list[bytes] = []
        try:
            self._lines_of(chunk, out)
        except Exception as exc:  # on_event's refusal too: the stream is over either way
            self._error = exc
            if not out:
                raise
            # the events before the failure are whole: their audio first, the error next time
        self.audio_bytes += sum(map(len, out))
        return out[0] if len(out) == 1 else b"".join(out)

    def close(self) -> Mapping[str, Any]:
        """The end of the body: the final event's document.

        An event that the body ends in without its blank line is still read (its JSON must be
        complete).

        Raises:
            ResponseError: the stream ended without the final status-2 event.
        """
        if self._error is not None:
            raise self._error
        if self.final is None and self._lines:
            try:
                self._dispatch([])  # its audio, if it is not the final event, is moot
            except Exception as exc:
                self._error = exc
                raise
        if self.final is None:
            raise ResponseError(
                f"the stream ended after {self.events} audio events without the final "
                "status-2 event: the song is incomplete")
        return self.final

    # -- lines ------------------------------------------------------------------------------

    def _lines_of(self, data: bytes, out: list[bytes]) -> None:
        n = len(data)
        pos = 0
        if self._cr:
            self._cr = False
            if data[0] == _LF:
                pos = 1
        cr = lf = -2  # next CR / LF at or after pos (-1: none in this chunk; -2: not searched)
        while pos < n:
            if cr != -1 and cr < pos:
                cr = data.find(b"\r", pos)
            if lf != -1 and lf < pos:
                lf = data.find(b"\n", pos)
            end = cr if lf < 0 or 0 <= cr < lf else lf
            self._content(data, pos, n if end < 0 else end)
            if end < 0:
                return
            pos = end + 1
            if end == cr:
                if pos == n:
                    self._cr = True
                elif data[pos] == _LF:
                    pos += 1
            self._end_line(out)
            if self.final is not None:
                return

    def _content(self, data: bytes, start: int, stop: int) -> None:
        """Part of the current line: ``data[start:stop]``."""
        if start >= stop or self._state == _SKIP:
            return
        if self._state == _FIELD:
            colon = data.find(b":", start, stop)
            self._name += data[start:stop if colon < 0 else colon]
            if colon < 0:
                if len(self._name) > _MAX_NAME:
                    self._state = _SKIP
                return
            if self._name != b"data":  # a comment (no name), event, id, retry, unknown
                self._state = _SKIP
                return
            self._begin_data()
            start = colon + 1
            if start >= stop:
                return
        if self._skip_space:
            self._skip_space = False
            if data[start] == _SPACE:
                start += 1
        if start < stop:
            self._event(data[start:stop])

    def _end_line(self, out: list[bytes]) -> None:
        if self._state == _FIELD:
            if not self._name:
                self._dispatch(out)
            elif self._name == b"data":  # "data" without a colon: an empty data line
                self._begin_data()
        self._state = _FIELD
        self._name.clear()
        self._skip_space = False

    # -- events -----------------------------------------------------------------------------

    def _begin_data(self) -> None:
        self._state = _DATA
        self._skip_space = True
        if self._lines:
            self._event(b"\n")
        self._lines += 1

    def _event(self, piece: bytes) -> None:
        if self._scanner is None:
            self._scanner = HexAudioScanner(limits=self._limits)
        if self._blank and _NOT_BLANK.search(piece):
            self._blank = False
        self._size += len(piece)
        if self._size > self._max_event:
            raise ResponseError(f"an event of the stream is larger than {self._max_event} "
                                "bytes, which no documented event is")
        audio = self._scanner.feed(piece)
        if self._size - self._scanner.hex_chars > self._max_meta:
            raise ResponseError(f"an event of the stream holds more than {self._max_meta} "
                                "bytes besides its audio, which no documented event does")
        if audio and not self._spilled:
            self._held_size += len(audio)
            if self._held_size > self._max_held:
                self._spilled = True  # acceptable only as the final event: drop, remember
                self._held.clear()
            else:
                self._held.append(audio)

    def _dispatch(self, out: list[bytes]) -> None:
        scanner, held, spilled = self._scanner, self._held, self._spilled
        self._scanner, self._held, self._held_size, self._spilled = None, [], 0, False
        blank, self._lines, self._size, self._blank = self._blank, 0, 0, True
        if blank or scanner is None:
            return  # no data, or only whitespace (a keep-alive): no event
        document = scanner.close()
        if self._on_event is not None:
            self._on_event(document)
        data = document.get("data")
        if isinstance(data, Mapping) and data.get("status") == 2:
            self.final = document
            return
        if spilled:
            raise ResponseError(f"an event of the stream carried more than {self._max_held} "
                                "bytes of audio, and it was not the final one")
        if held:
            out.extend(held)
            self.events += 1
