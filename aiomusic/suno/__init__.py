"""Suno API (sunoapi.org): the generation family, follow-ups, lyrics, personas, tasks,
callbacks, downloads, credits."""

from __future__ import annotations

from .._io._download import safe_filename
from ._catalog import (
    ADD_MODELS,
    GENERATION_MODELS,
    MASHUP_MODELS,
    SOUNDS_MODELS,
    STEM_NAMES,
    STEM_TYPES,
)
from ._derived import AlignedWord, Persona, TimestampedLyrics, midi_file
from ._handles import (
    FollowUp,
    LyricsTask,
    MidiTask,
    StemFiles,
    StemsTask,
    VideoTask,
    WavTask,
)
from ._records import (
    FollowUpRecord,
    LyricsRecord,
    LyricsVariant,
    MidiInstrument,
    MidiNote,
    MidiRecord,
    Mp4Record,
    StemsRecord,
    WavRecord,
)
from ._tasks import PollSchedule, SunoTask
from .client import SunoClient

__all__ = [
    "ADD_MODELS",
    "GENERATION_MODELS",
    "MASHUP_MODELS",
    "SOUNDS_MODELS",
    "STEM_NAMES",
    "STEM_TYPES",
    "AlignedWord",
    "FollowUp",
    "FollowUpRecord",
    "LyricsRecord",
    "LyricsTask",
    "LyricsVariant",
    "MidiInstrument",
    "MidiNote",
    "MidiRecord",
    "MidiTask",
    "Mp4Record",
    "Persona",
    "PollSchedule",
    "StemFiles",
    "StemsRecord",
    "StemsTask",
    "SunoClient",
    "SunoTask",
    "TimestampedLyrics",
    "VideoTask",
    "WavRecord",
    "WavTask",
    "midi_file",
    "safe_filename",
]
