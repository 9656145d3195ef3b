"""The Suno API's models, their limits, and what each operation accepts (pure data).

Sources: api-contracts.md section 3.3 (custom-mode limits) and api-contracts-2026-11.md section
3.1 (which models each operation takes). Model names drift monthly (``V5_5``, then ``V6``...),
so a name this table does not know is never refused: it is sent as given, with one warning,
and checked against the most generous known limits. Answers name models by older internal
names (``chirp-v3-5``, ``chirp-bluejay``): they are shown as given, never parsed back.
"""

from __future__ import annotations

import datetime as dt
import threading

import attrs

from .._core._log import logger

__all__ = [
    "ADD_MODELS",
    "DEFAULT_ADD_MODEL",
    "DEFAULT_MODEL",
    "GENERATION_MODELS",
    "MASHUP_MODELS",
    "NON_CUSTOM_PROMPT",
    "PERSONA_MODELS",
    "RETENTION",
    "SOUNDS_MODELS",
    "SOUND_KEYS",
    "STEM_NAMES",
    "STEM_TYPES",
    "Limits",
    "limits_for",
    "warn_unknown_model",
]


@attrs.frozen
class Limits:
    """The most characters a custom-mode request may send with one model."""

    prompt: int
    style: int
    title: int


#: Custom-mode limits per model (api-contracts.md section 3.3).
CUSTOM_LIMITS: dict[str, Limits] = {
    "V4": Limits(prompt=3000, style=200, title=80),
    "V4_5": Limits(prompt=5000, style=1000, title=100),
    "V4_5PLUS": Limits(prompt=5000, style=1000, title=100),
    "V4_5ALL": Limits(prompt=5000, style=1000, title=80),
    "V5": Limits(prompt=5000, style=1000, title=100),
    "V5_5": Limits(prompt=5000, style=1000, title=100),
}
#: An unknown (newer) model is checked against the most generous known limits.
_NEWER = Limits(prompt=5000, style=1000, title=100)
#: Non-custom mode sends only a prompt, of at most this many characters (every model).
NON_CUSTOM_PROMPT = 500

#: generate, extend, upload-cover, upload-extend, replace-section (uploaded audio).
GENERATION_MODELS = ("V4", "V4_5", "V4_5PLUS", "V4_5ALL", "V5", "V5_5")
#: mashup has no V5_5.
MASHUP_MODELS = ("V4", "V4_5", "V4_5PLUS", "V4_5ALL", "V5")
#: add-vocals and add-instrumental (V4_5PLUS by default).
ADD_MODELS = ("V4_5PLUS", "V5", "V5_5")
#: sounds takes V5 only.
SOUNDS_MODELS = ("V5",)
DEFAULT_MODEL = "V4_5ALL"
DEFAULT_ADD_MODEL = "V4_5PLUS"

#: ``personaModel`` on generate, extend, upload-cover and upload-extend.
PERSONA_MODELS = ("style_persona", "voice_persona")

#: ``soundKey`` of sounds (``Any`` by default).
SOUND_KEYS = ("Any", "Cm", "C#m", "Dm", "D#m", "Em", "Fm", "F#m", "Gm", "G#m", "Am", "A#m",
              "Bm", "C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")

#: ``type`` of a vocal-removal request.
STEM_TYPES = ("separate_vocal", "split_stem", "split_stem_advanced")
#: Stem names, in the order files are listed, with the record-info field of each
#: (``<name>Url``; callbacks send ``<snake_name>_url``).
STEM_NAMES = ("vocals", "instrumental", "backing_vocals", "drums", "bass", "guitar", "piano",
              "keyboard", "percussion", "strings", "synth", "fx", "brass", "woodwinds",
              "origin")

#: How long the service keeps generated files: the docs say 14 days in some places and 15 in
#: others; plan for the shorter.
RETENTION = dt.timedelta(days=14)


def limits_for(model: str) -> Limits:
    """The custom-mode limits of ``model`` (a newer, unknown one gets the most generous)."""
    return CUSTOM_LIMITS.get(model, _NEWER)


_warned: set[tuple[str, str]] = set()
_warned_lock = threading.Lock()


def warn_unknown_model(operation: str, model: str, known: tuple[str, ...]) -> bool:
    """Log once per process that ``model`` is not one ``operation`` documents (it is sent
    anyway: the service's list grows faster than this library's). Returns whether it warned."""
    if model in known:
        return False
    with _warned_lock:
        if (operation, model) in _warned:
            return False
        _warned.add((operation, model))
    logger.warning("%s: model %r is not one this version knows (%s); sending it as given",
                   operation, model, ", ".join(known))
    return True
