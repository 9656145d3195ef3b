"""Typed records of Suno's follow-up tasks and lyrics, read from their own ``record-info``.

WAV conversion, vocal removal (stems), MIDI and music videos report their state in
``successFlag`` (a name such as ``SUCCESS``, or a number: 0 pending, 1 success, 2 and 3
failures, also sent as a string); lyrics in ``status``. Times come as epoch milliseconds or as
``"YYYY-MM-DD HH:MM:SS"``; numbers may come as strings. Every reader is pure: it returns a
typed record or raises [`ResponseError`][aiomusic.ResponseError] for an answer it cannot read.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Callable, Mapping
from typing import Any, ParamSpec, TypeVar

import attrs

from .._core._converter import optional_float, optional_int, optional_str, parse_time, snake
from .._core._errors import ResponseError
from .._core._task import Phase
from . import _catalog as cat

__all__ = [
    "FAILURES",
    "FollowUpRecord",
    "LyricsRecord",
    "LyricsVariant",
    "MidiInstrument",
    "MidiNote",
    "MidiRecord",
    "Mp4Record",
    "StemsRecord",
    "WavRecord",
    "phase_of",
    "read_lyrics_items",
    "read_midi_data",
    "read_stems",
]

#: Every failure state the follow-up and lyrics endpoints document (they share a vocabulary).
FAILURES = frozenset({"CREATE_TASK_FAILED", "GENERATE_AUDIO_FAILED", "GENERATE_WAV_FAILED",
                      "GENERATE_MP4_FAILED", "GENERATE_MIDI_FAILED", "GENERATE_LYRICS_FAILED",
                      "CALLBACK_EXCEPTION", "SENSITIVE_WORD_ERROR"})
P = ParamSpec("P")
R = TypeVar("R")

#: Numeric ``successFlag`` values (seen on the MIDI record); the kind's own failure name is 3.
_NUMERIC = {0: "PENDING", 1: "SUCCESS", 2: "CREATE_TASK_FAILED"}


@attrs.frozen
class FollowUpRecord:
    """What every follow-up record has.

    Attributes:
        task_id: The follow-up task's id.
        status: The state exactly as sent (``"SUCCESS"``, ``"1"``...).
        phase: Where the task is; a state this version does not know keeps it pending.
        music_id: The source track's audio id, when given.
        error_code: The service's ``errorCode`` on failure.
        error_message: The service's ``errorMessage`` on failure.
        create_time: When the task was created.
        complete_time: When it ended.
    """

    task_id: str
    status: str
    phase: Phase
    music_id: str | None = None
    error_code: int | None = None
    error_message: str | None = None
    create_time: dt.datetime | None = None
    complete_time: dt.datetime | None = None


@attrs.frozen
class WavRecord(FollowUpRecord):
    """A WAV conversion: `url` is the WAV file once it succeeded."""

    url: str | None = None


@attrs.frozen
class Mp4Record(FollowUpRecord):
    """A music video: `url` is the MP4 file once it succeeded (kept 15 days)."""

    url: str | None = None


@attrs.frozen
class StemsRecord(FollowUpRecord):
    """A vocal removal or stem split: `stems` maps a stem name (``vocals``, ``drums``...,
    see `STEM_NAMES`) to its URL; stems the service did not make are absent."""

    stems: Mapping[str, str] = attrs.field(factory=dict)


@attrs.frozen
class MidiNote:
    """One note: MIDI pitch (60 = middle C), start and end in seconds, velocity 0-1."""

    pitch: int
    start: float
    end: float
    velocity: float = 1.0


@attrs.frozen
class MidiInstrument:
    """The notes detected for one instrument (``"Drums"``, ``"Electric Bass (finger)"``)."""

    name: str
    notes: tuple[MidiNote, ...] = ()


@attrs.frozen
class MidiRecord(FollowUpRecord):
    """MIDI from a separated track: the note data itself (no file to download).

    ``write_midi(record, path)`` (``aiomusic.suno``) saves it as a Standard MIDI File.
    """

    instruments: tuple[MidiInstrument, ...] = ()


@attrs.frozen
class LyricsVariant:
    """One of the lyrics a lyrics task wrote (it writes several)."""

    text: str
    title: str | None = None
    status: str | None = None
    error_message: str | None = None


@attrs.frozen
class LyricsRecord(FollowUpRecord):
    """A lyrics task: `variants` holds the lyrics once it succeeded."""

    variants: tuple[LyricsVariant, ...] = ()


# -- reading -----------------------------------------------------------------------------------


def phase_of(raw: object, *, failed_name: str = "GENERATE_AUDIO_FAILED") -> tuple[str, Phase]:
    """(the state as sent, its phase) from a ``successFlag`` or lyrics ``status``.

    Raises:
        ValueError: not a name or a number.
    """
    if raw is None or raw == "":
        return "PENDING", Phase.PENDING
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise ValueError(f"a state must be a name or a number, got {raw!r}"[:200])
    text = str(raw).strip()
    name = text.upper()
    if isinstance(raw, int | float) or name.isdigit():
        numbers = {**_NUMERIC, 3: failed_name}
        name = numbers.get(optional_int(raw, None) or 0, text)
    if name == "SUCCESS":
        return text, Phase.SUCCEEDED
    if name in FAILURES:
        return text, Phase.FAILED
    return text, Phase.PENDING


def _fields(data: object, what: str) -> dict[str, Any]:
    if isinstance(data, str):  # some gateways send the object as a JSON string
        try:
            data = json.loads(data)
        except (ValueError, RecursionError) as exc:
            raise ValueError(f"{what} is a string that is not JSON") from exc
    if not isinstance(data, Mapping):
        raise ValueError(f"{what} must be an object, got {type(data).__name__}")
    out: dict[str, Any] = {}
    for key, value in data.items():
        out.setdefault(snake(str(key)), value)
    return out


def common(fields: Mapping[str, Any], *, task_id: str | None, flag: str,
           failed_name: str) -> dict[str, Any]:
    """The shared fields of a follow-up record (``fields`` in snake_case)."""
    found = optional_str(fields.get("task_id"), None)
    if not found:
        raise ValueError("the record has no taskId")
    if task_id is not None and found != task_id:
        raise ValueError(f"the record for task {task_id!r} is about task {found!r}")
    status, phase = phase_of(fields.get(flag), failed_name=failed_name)
    return {"task_id": found, "status": status, "phase": phase,
            "music_id": optional_str(fields.get("music_id") or fields.get("audio_id"), None),
            "error_code": optional_int(fields.get("error_code"), None),
            "error_message": optional_str(fields.get("error_message"), None),
            "create_time": parse_time(fields.get("create_time")),
            "complete_time": parse_time(fields.get("complete_time"))}


def _url(value: object) -> str | None:
    text = optional_str(value, None)
    return text.strip() if text and text.strip() else None


def read_stems(info: object) -> dict[str, str]:
    """The stem map of a ``response`` (camelCase ``vocalUrl``...) or a callback's
    ``vocal_removal_info`` (snake_case ``vocal_url``...), plus any ``originData`` items."""
    if info is None:
        return {}
    fields = _fields(info, "the stems")
    stems: dict[str, str] = {}
    for name in cat.STEM_NAMES:
        keys = (f"{name}_url", "vocal_url") if name == "vocals" else (f"{name}_url",)
        for key in keys:
            url = _url(fields.get(key))
            if url:
                stems[name] = url
                break
    items = fields.get("origin_data")
    if isinstance(items, list):
        for item in items:
            if not isinstance(item, Mapping):
                raise ValueError("an originData item must be an object")
            group = optional_str(item.get("stem_type_group_name") or
                                  item.get("stemTypeGroupName"), None)
            url = _url(item.get("audio_url") or item.get("audioUrl"))
            if group and url:
                stems.setdefault(_stem_name(group), url)
    elif items is not None:
        raise ValueError("originData must be a list")
    return {name: stems[name] for name in sorted(stems, key=_stem_order)}


def _stem_name(group: str) -> str:
    name = "_".join(group.strip().lower().replace("-", " ").split())
    return {"vocal": "vocals", "backing_vocal": "backing_vocals"}.get(name, name)


def _stem_order(name: str) -> tuple[int, str]:
    return (cat.STEM_NAMES.index(name) if name in cat.STEM_NAMES else len(cat.STEM_NAMES), name)


def read_midi_data(data: object) -> tuple[MidiInstrument, ...]:
    """The instruments of a ``midiData`` object (or of a MIDI callback's ``data``)."""
    if data is None:
        return ()
    fields = _fields(data, "midiData")
    items = fields.get("instruments")
    if items is None:
        return ()
    if not isinstance(items, list):
        raise ValueError("instruments must be a list")
    instruments = []
    for item in items:
        if not isinstance(item, Mapping):
            raise ValueError("an instrument must be an object")
        notes = item.get("notes") or []
        if not isinstance(notes, list):
            raise ValueError("notes must be a list")
        instruments.append(MidiInstrument(
            name=optional_str(item.get("name"), None) or "instrument",
            notes=tuple(_note(n) for n in notes)))
    return tuple(instruments)


def _note(item: object) -> MidiNote:
    if not isinstance(item, Mapping):
        raise ValueError("a note must be an object")
    pitch = optional_int(item.get("pitch"), None)
    start = optional_float(item.get("start"), None)
    end = optional_float(item.get("end"), None)
    if pitch is None or not 0 <= pitch <= 127 or start is None or end is None:
        raise ValueError(f"a note needs a pitch 0-127, a start and an end, got {item!r}"[:200])
    velocity = optional_float(item.get("velocity"), None)
    return MidiNote(pitch=pitch, start=start, end=max(start, end),
                    velocity=1.0 if velocity is None else min(1.0, max(0.0, velocity)))


def read_lyrics_items(items: object) -> tuple[LyricsVariant, ...]:
    """The variants of a lyrics ``response.data`` (or a callback's ``data``/``lyricsData``)."""
    if items is None:
        return ()
    if not isinstance(items, list):
        raise ValueError("the lyrics must be a list")
    variants = []
    for item in items:
        fields = _fields(item, "a lyrics item")
        text = optional_str(fields.get("text"), None)
        if text is None:
            raise ValueError("a lyrics item has no text")
        variants.append(LyricsVariant(
            text=text, title=optional_str(fields.get("title"), None),
            status=optional_str(fields.get("status"), None),
            error_message=optional_str(fields.get("error_message"), None) or None))
    return tuple(variants)


def reading(what: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """A decorator: a reader's ``ValueError``/``TypeError`` becomes a `ResponseError`."""
    def wrap(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def read(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return fn(*args, **kwargs)
            except (ValueError, TypeError, OverflowError, RecursionError) as exc:
                raise ResponseError(f"could not read {what} from the service's answer: "
                                    f"{exc}"[:500]) from exc
        return read
    return wrap
