"""MiniMax's current music models and their documented limits, one row each (no I/O).

Every prompt-and-lyrics and cover model is served by the same ``/v1/music_generation``; what
differs is which fields a model takes and how long they may be. The rows come from
api-contracts-2026-11.md section 1 and api-contracts.md section 2.4. A model this table does
not know (``music-3.0``, seen only at resellers, or whatever comes next) is sent as it is,
with a warning logged once: model names grow faster than this library, and refusing one
would be worse than letting the service judge it.
"""

from __future__ import annotations

import re

import attrs

from .._core._log import logger

__all__ = [
    "COVER_FORMATS",
    "COVER_MAX_BYTES",
    "COVER_MAX_SECONDS",
    "COVER_MIN_SECONDS",
    "COVER_MODELS",
    "COVER_RULE",
    "DEFAULT_COVER_MODEL",
    "DEFAULT_MODEL",
    "LYRICS_MODES",
    "MAX_LYRICS",
    "MAX_PROMPT",
    "MAX_SEED",
    "MODELS",
    "SONG_MODELS",
    "STRUCTURE_TAGS",
    "ModelSpec",
    "is_free",
    "spec",
    "unknown_tags",
]

#: The longest prompt and lyrics of the current models (per model: `ModelSpec`).
MAX_PROMPT = 2000
MAX_LYRICS = 3500
#: A cover's seed, for reproducible results.
MAX_SEED = 1_000_000
#: A cover's reference track.
COVER_MIN_SECONDS = 6.0
COVER_MAX_SECONDS = 360.0
COVER_MAX_BYTES = 50 * 1024 * 1024
COVER_FORMATS = ("mp3", "wav", "flac")
COVER_RULE = "mp3, wav or flac, 6 s to 6 min, at most 50 MB"
LYRICS_MODES = ("write_full_song", "edit")

#: The section tags the service reads in lyrics; anything else in brackets is sung.
STRUCTURE_TAGS = ("Intro", "Verse", "Pre Chorus", "Chorus", "Interlude", "Bridge", "Outro",
                  "Post Chorus", "Transition", "Break", "Hook", "Build Up", "Inst", "Solo")
_TAGS = frozenset(tag.lower() for tag in STRUCTURE_TAGS)
_TAG_LINE = re.compile(r"^\s*\[([^\[\]]*)\]\s*$", re.MULTILINE)


@attrs.frozen
class ModelSpec:
    """What one model takes.

    Attributes:
        name: The model name as sent.
        kind: ``song`` (prompt and lyrics) or ``cover`` (a reference track re-sung).
        free: A ``-free`` variant: any key may use it, at the free plan's rate.
        documented: False for a model passed through unchecked.
        prompt_max: The longest prompt (characters), when documented.
        prompt_min: The shortest non-empty prompt.
        lyrics_max: The longest lyrics, when documented.
        lyrics_min: The shortest non-empty lyrics.
        instrumental: Whether ``is_instrumental`` is taken.
        optimizer: Whether ``lyrics_optimizer`` is taken.
        note: One line for the docs' table.
    """

    name: str
    kind: str
    free: bool = False
    documented: bool = True
    prompt_max: int | None = MAX_PROMPT
    prompt_min: int = 0
    lyrics_max: int | None = MAX_LYRICS
    lyrics_min: int = 0
    instrumental: bool = True
    optimizer: bool = True
    note: str = ""


def _song(name: str, note: str, **kw: object) -> ModelSpec:
    return ModelSpec(name=name, kind="song", note=note, **kw)  # type: ignore[arg-type]


def _cover(name: str, note: str, **kw: object) -> ModelSpec:
    return ModelSpec(name=name, kind="cover", instrumental=False, optimizer=False, note=note,
                     **kw)  # type: ignore[arg-type]


MODELS: dict[str, ModelSpec] = {m.name: m for m in (
    _song("music-2.6", "current; Token Plan (Max plan and above)"),
    _song("music-2.6-free", "current, free variant (any key, lower rate)", free=True),
    _song("music-2.5+", "previous; native is_instrumental"),
    _song("music-2.5", "previous; no is_instrumental (write [Inst] sections instead)",
          instrumental=False),
    _song("music-2.0", "older; prompt 10-2000, lyrics 10-3000, no switches", prompt_min=10,
          lyrics_max=3000, lyrics_min=10, instrumental=False, optimizer=False),
    _cover("music-cover", "a cover of a reference track; Token Plan"),
    _cover("music-cover-free", "a cover, free variant", free=True),
)}

SONG_MODELS = tuple(name for name, m in MODELS.items() if m.kind == "song")
COVER_MODELS = tuple(name for name, m in MODELS.items() if m.kind == "cover")
DEFAULT_MODEL = "music-2.6"
DEFAULT_COVER_MODEL = "music-cover"

_warned: set[str] = set()


def is_free(model: str) -> bool:
    """Whether ``model`` is a free variant (``-free``): it runs in the free plan's lane."""
    return model.endswith("-free")


def spec(model: str) -> ModelSpec:
    """The row of ``model``; an unknown name gets an unchecked row (and one logged warning).

    An unknown name containing ``cover`` is taken as a cover model, any other as a song model;
    neither refuses anything the service might accept.
    """
    found = MODELS.get(model)
    if found is not None:
        return found
    if model not in _warned:
        _warned.add(model)
        logger.warning("MiniMax model %r is not one aiomusic knows (%s): it is sent as it is, "
                       "and its limits are left to the service", model,
                       ", ".join(MODELS))
    return ModelSpec(name=model, kind="cover" if "cover" in model else "song",
                     free=is_free(model), documented=False, prompt_max=None, lyrics_max=None)


def unknown_tags(lyrics: str) -> list[str]:
    """The bracketed lines of ``lyrics`` that are not structure tags (the service sings them).

    Tags are compared without regard to case (``[verse]`` is ``[Verse]``).
    """
    return [f"[{m.group(1)}]" for m in _TAG_LINE.finditer(lyrics)
            if m.group(1).strip().lower() not in _TAGS]
