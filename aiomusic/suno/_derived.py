"""Synchronous Suno answers and what aiomusic makes of them (pure).

- Timestamped lyrics (``POST /api/v1/generate/get-timestamped-lyrics``) answer at once with
  ``alignedWords`` (each word with ``startS``/``endS`` in seconds); `TimestampedLyrics.to_lrc`
  turns them into an LRC file for karaoke players (line times, or word times too).
- Personas (``POST /api/v1/generate/generate-persona``) answer at once with a ``personaId``
  to pass as ``persona_id`` to generate, extend, upload-cover and upload-extend.
- `midi_file` turns a MIDI task's note data into a Standard MIDI File.
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from .._core._converter import optional_float, optional_str
from . import _records as rec

__all__ = ["AlignedWord", "Persona", "TimestampedLyrics", "as_document", "midi_file",
           "read_persona", "read_timestamped_lyrics"]

_SECTION = re.compile(r"^\s*\[[^\]]*\]\s*$")


@attrs.frozen
class AlignedWord:
    """One sung word (it may carry a line break or a ``[Verse]`` tag, as Suno sends it).

    Attributes:
        word: The text.
        start: Seconds from the start of the track.
        end: Seconds from the start of the track.
        success: Whether the aligner placed it confidently.
        palign: The aligner's score, when given.
    """

    word: str
    start: float
    end: float
    success: bool = True
    palign: float | None = None


@attrs.frozen
class TimestampedLyrics:
    """A track's lyrics with word timings (empty for an instrumental).

    Attributes:
        task_id: The generation the track belongs to.
        audio_id: The track.
        words: The words in order.
        waveform: The service's waveform samples, when given.
        hoot_cer: The aligner's character error rate, when given.
        is_streamed: Whether the track was still streaming, when given.
    """

    task_id: str
    audio_id: str
    words: tuple[AlignedWord, ...] = ()
    waveform: tuple[float, ...] = ()
    hoot_cer: float | None = None
    is_streamed: bool | None = None

    def lines(self) -> list[tuple[float, list[AlignedWord]]]:
        """The sung lines: (start time, words), section tags such as ``[Chorus]`` dropped."""
        lines: list[tuple[float, list[AlignedWord]]] = []
        current: list[AlignedWord] = []

        def close() -> None:
            kept = [w for w in current if w.word.strip() and not _SECTION.match(w.word)]
            if kept:
                lines.append((kept[0].start, kept))
            current.clear()

        for word in self.words:
            parts = word.word.split("\n")
            for index, part in enumerate(parts):
                if index:
                    close()
                if part.strip():
                    current.append(attrs.evolve(word, word=part))
        close()
        return lines

    def to_lrc(self, *, words: bool = False, title: str | None = None) -> str:
        """The lyrics as LRC: ``[mm:ss.xx]line`` per sung line.

        Args:
            words: Also time each word (enhanced LRC: ``<mm:ss.xx>word``).
            title: Written as the ``[ti:...]`` tag.
        """
        out = [f"[ti:{_tag(title)}]"] if title else []
        for start, line in self.lines():
            if words:
                text = " ".join(f"<{_stamp(w.start)}>{w.word.strip()}" for w in line)
                out.append(f"[{_stamp(start)}]{text} <{_stamp(line[-1].end)}>")
            else:
                out.append(f"[{_stamp(start)}]{' '.join(w.word.strip() for w in line)}")
        return "\n".join(out) + ("\n" if out else "")

    def as_json(self) -> dict[str, Any]:
        """A JSON-able document (what a batch job writes)."""
        return {"task_id": self.task_id, "audio_id": self.audio_id,
                "words": [attrs.asdict(w) for w in self.words],
                "hoot_cer": self.hoot_cer, "is_streamed": self.is_streamed}


def _stamp(seconds: float) -> str:
    hundredths = max(0, round(seconds * 100))
    minutes, rest = divmod(hundredths, 6000)
    return f"{minutes:02d}:{rest // 100:02d}.{rest % 100:02d}"


def _tag(text: str) -> str:
    return " ".join(text.replace("[", "(").replace("]", ")").split())


@attrs.frozen
class Persona:
    """A persona made from a finished track: pass `persona_id` to later generations.

    Attributes:
        persona_id: The id (``personaId``).
        name: Its name.
        description: Its description.
    """

    persona_id: str
    name: str | None = None
    description: str | None = None


@rec.reading("timestamped lyrics")
def read_timestamped_lyrics(body: Mapping[str, Any], *, task_id: str = "", audio_id: str = ""
                            ) -> TimestampedLyrics:
    """The ``data`` of a classified timestamped-lyrics answer (the ids are the request's: the
    answer does not repeat them)."""
    data = body.get("data")
    fields = {} if data is None else rec._fields(data, "the timestamped lyrics")
    items = fields.get("aligned_words") or []
    if not isinstance(items, list):
        raise ValueError("alignedWords must be a list")
    wave = fields.get("waveform_data") or []
    if not isinstance(wave, list):
        raise ValueError("waveformData must be a list")
    streamed = fields.get("is_streamed")
    return TimestampedLyrics(
        task_id=task_id, audio_id=audio_id, words=tuple(_word(w) for w in items),
        waveform=tuple(_number(v, "a waveform value") for v in wave),
        hoot_cer=optional_float(fields.get("hoot_cer"), None),
        is_streamed=streamed if isinstance(streamed, bool) else None)


def _number(value: object, what: str) -> float:
    number = optional_float(value, None)
    if number is None:
        raise ValueError(f"{what} is missing")
    return number


def _word(item: object) -> AlignedWord:
    fields = rec._fields(item, "an aligned word")
    word = optional_str(fields.get("word"), None)
    if word is None:
        raise ValueError("an aligned word has no text")
    start = _number(fields.get("start_s"), "a word's startS")
    end = _number(fields.get("end_s"), "a word's endS")
    success = fields.get("success")
    return AlignedWord(word=word, start=start, end=max(start, end),
                       success=success if isinstance(success, bool) else True,
                       palign=optional_float(fields.get("palign"), None))


@rec.reading("a persona")
def read_persona(body: Mapping[str, Any]) -> Persona:
    """The persona of a classified generate-persona answer (``data.personaId``)."""
    fields = rec._fields(body.get("data"), "the persona")
    persona_id = optional_str(fields.get("persona_id"), None)
    if not persona_id or not persona_id.strip():
        raise ValueError("the answer has no personaId")
    return Persona(persona_id=persona_id.strip(),
                   name=optional_str(fields.get("name"), None),
                   description=optional_str(fields.get("description"), None))


# -- Standard MIDI File ------------------------------------------------------------------------

_TICKS = 480  # per quarter note; at 120 bpm a second is 960 ticks
_TEMPO = 500_000  # microseconds per quarter note (120 bpm)


def _varlen(value: int) -> bytes:
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def _track(events: Iterable[tuple[int, bytes]]) -> bytes:
    data = bytearray()
    now = 0
    for tick, event in sorted(events, key=lambda e: (e[0], e[1][0] & 0xF0 != 0x80)):
        data += _varlen(tick - now) + event
        now = tick
    data += b"\x00\xff\x2f\x00"  # end of track
    return b"MTrk" + struct.pack(">I", len(data)) + bytes(data)


def midi_file(instruments: Iterable[rec.MidiInstrument]) -> bytes:
    """A format-1 Standard MIDI File: one track per instrument, drums on channel 10."""
    ticks_per_second = _TICKS * 1_000_000 // _TEMPO
    tracks = [_track([(0, b"\xff\x51\x03" + _TEMPO.to_bytes(3, "big"))])]
    channel = 0
    for instrument in instruments:
        drums = "drum" in instrument.name.lower()
        ch = 9 if drums else channel
        if not drums:
            channel = (channel + 1) % 16
            channel += channel == 9  # channel 10 is for drums
        name = instrument.name.encode("utf-8", "replace")[:127]
        events: list[tuple[int, bytes]] = [(0, b"\xff\x03" + _varlen(len(name)) + name)]
        for note in instrument.notes:
            on = round(note.start * ticks_per_second)
            off = max(on + 1, round(note.end * ticks_per_second))
            velocity = max(1, min(127, round(note.velocity * 127)))
            events.append((on, bytes((0x90 | ch, note.pitch, velocity))))
            events.append((off, bytes((0x80 | ch, note.pitch, 0))))
        tracks.append(_track(events))
    header = b"MThd" + struct.pack(">IHHH", 6, 1, len(tracks), _TICKS)
    return header + b"".join(tracks)


def as_document(value: object) -> str:
    """A typed result as pretty JSON (what a batch job writes for a DOCUMENT output)."""
    def plain(obj: object) -> object:
        as_json = getattr(obj, "as_json", None)
        if callable(as_json):
            return as_json()
        if attrs.has(type(obj)):
            return attrs.asdict(obj, recurse=False)  # type: ignore[arg-type]
        return str(obj)  # datetimes, enums
    return json.dumps(value, default=plain, ensure_ascii=False, indent=2) + "\n"
