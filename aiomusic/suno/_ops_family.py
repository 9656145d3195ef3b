"""The generation family, declared once: generate, upload-cover, add-vocals, mashup and
sounds (extend, upload-extend and replace-section are in ``_ops_edit.py``; Add Instrumental in
``_ops.py``).

Every one of them is paid, answers a task id, shares ``generate/record-info`` and the staged
callbacks (`MUSIC_TASK`), and yields two tracks. Limits follow the model (``_catalog.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

from .._core._operation import Checks, param, register
from . import _assemble as asm
from . import _catalog as cat
from . import _family as fam

__all__ = ["ADD_VOCALS", "GENERATE", "MASHUP", "SOUNDS", "UPLOAD_COVER", "AddVocalsParams",
           "GenerateParams", "MashupParams", "SoundsParams", "UploadCoverParams"]

_PROMPT_HELP = ("the lyrics in custom mode (up to 3000-5000 characters by model), else a "
                "description of the song (up to 500)")


@attrs.frozen
class GenerateParams:
    """Generate: two songs from a description, or from lyrics, a style and a title."""

    prompt: str | None = param(help=_PROMPT_HELP, default=None, positional=True)
    custom_mode: bool = param(help="send lyrics (prompt), style and title yourself",
                              kind="bool", default=False, wire="customMode")
    instrumental: bool = param(help="no vocals (custom mode then needs no lyrics)",
                               kind="bool", default=False)
    style: str | None = param(help="custom mode: the style (200-1000 characters by model)",
                              default=None)
    title: str | None = param(help="custom mode: the title (80-100 characters by model)",
                              default=None)
    model: str = fam.model(cat.GENERATION_MODELS, cat.DEFAULT_MODEL)
    negative_tags: str | None = fam.negative_tags()
    vocal_gender: str | None = fam.vocal_gender()
    style_weight: float | None = fam.style_weight()
    weirdness_constraint: float | None = fam.weirdness_constraint()
    audio_weight: float | None = fam.audio_weight()
    persona_id: str | None = fam.persona_id()
    persona_model: str | None = fam.persona_model()
    callback_url: str | None = fam.callback_url()


def _generate_body(p: GenerateParams, checks: Checks, fallback: str | None) -> dict[str, Any]:
    model = fam.check_model(checks, p.model, cat.GENERATION_MODELS)
    return asm.finish(checks, p, asm.mode(checks, p, model), model, fallback)


@attrs.frozen
class UploadCoverParams:
    """Upload and cover: your audio (up to 8 minutes; 1 with V4_5ALL) in a new style."""

    source: str | Path = fam.source("the audio to cover")
    prompt: str | None = param(help=_PROMPT_HELP, default=None)
    custom_mode: bool = param(help="send lyrics (prompt), style and title yourself",
                              kind="bool", default=False, wire="customMode")
    instrumental: bool = param(help="no vocals", kind="bool", default=False)
    style: str | None = param(help="custom mode: the style", default=None)
    title: str | None = param(help="custom mode: the title", default=None)
    model: str = fam.model(cat.GENERATION_MODELS, cat.DEFAULT_MODEL)
    negative_tags: str | None = fam.negative_tags()
    vocal_gender: str | None = fam.vocal_gender()
    style_weight: float | None = fam.style_weight()
    weirdness_constraint: float | None = fam.weirdness_constraint()
    audio_weight: float | None = fam.audio_weight()
    persona_id: str | None = fam.persona_id()
    persona_model: str | None = fam.persona_model()
    callback_url: str | None = fam.callback_url()


def _cover_body(p: UploadCoverParams, checks: Checks, fallback: str | None) -> dict[str, Any]:
    model = fam.check_model(checks, p.model, cat.GENERATION_MODELS)
    body: dict[str, Any] = {"uploadUrl": fam.check_source(checks, "source", p.source)}
    body.update(asm.mode(checks, p, model))
    return asm.finish(checks, p, body, model, fallback)


@attrs.frozen
class AddVocalsParams:
    """Add vocals: a singer for your instrumental track."""

    source: str | Path = fam.source("the instrumental track")
    prompt: str = param(help="the lyrics (or a description of the vocals)")
    title: str = param(help="the title (at most 100 characters)")
    style: str = param(help="the style of the vocals")
    negative_tags: str = param(help="styles to avoid", wire="negativeTags")
    model: str = fam.model(cat.ADD_MODELS, cat.DEFAULT_ADD_MODEL)
    vocal_gender: str | None = fam.vocal_gender()
    style_weight: float | None = fam.style_weight()
    weirdness_constraint: float | None = fam.weirdness_constraint()
    audio_weight: float | None = fam.audio_weight()
    callback_url: str | None = fam.callback_url()


def _add_vocals_body(p: AddVocalsParams, checks: Checks, fallback: str | None
                     ) -> dict[str, Any]:
    model = fam.check_model(checks, p.model, cat.ADD_MODELS)
    limits = cat.limits_for(model or "")
    body: dict[str, Any] = {"uploadUrl": fam.check_source(checks, "source", p.source)}
    for name, value, limit in (("prompt", p.prompt, limits.prompt),
                               ("title", p.title, limits.title),
                               ("style", p.style, limits.style)):
        if checks.text(name, value, max_length=limit):
            body[name] = value
    checks.text("negative_tags", p.negative_tags)
    return asm.finish(checks, p, body, model, fallback)


@attrs.frozen
class MashupParams:
    """Mashup: a new song blending two tracks (``uploadUrlList``: exactly two)."""

    source: str | Path = fam.source("the first track")
    second_source: str | Path = param(
        help="the second track: an http(s) URL the service can fetch, or a local file "
             "(uploaded first)", kind="source", wire="uploadUrlList", positional=True)
    prompt: str | None = param(help=_PROMPT_HELP, default=None)
    custom_mode: bool = param(help="send lyrics (prompt), style and title yourself",
                              kind="bool", default=False, wire="customMode")
    instrumental: bool = param(help="no vocals", kind="bool", default=False)
    style: str | None = param(help="custom mode: the style", default=None)
    title: str | None = param(help="custom mode: the title", default=None)
    model: str = fam.model(cat.MASHUP_MODELS, cat.DEFAULT_MODEL)
    negative_tags: str | None = fam.negative_tags()
    vocal_gender: str | None = fam.vocal_gender()
    style_weight: float | None = fam.style_weight()
    weirdness_constraint: float | None = fam.weirdness_constraint()
    audio_weight: float | None = fam.audio_weight()
    callback_url: str | None = fam.callback_url()


def _mashup_body(p: MashupParams, checks: Checks, fallback: str | None) -> dict[str, Any]:
    model = fam.check_model(checks, p.model, cat.MASHUP_MODELS)
    urls = [fam.check_source(checks, "source", p.source),
            fam.check_source(checks, "second_source", p.second_source)]
    body: dict[str, Any] = {"uploadUrlList": urls}
    body.update(asm.mode(checks, p, model))
    return asm.finish(checks, p, body, model, fallback)


@attrs.frozen
class SoundsParams:
    """Sounds: a sound effect or loop from a description."""

    prompt: str = param(help="the sound (at most 500 characters)", max_length=500,
                        positional=True)
    model: str = fam.model(cat.SOUNDS_MODELS, "V5")
    sound_loop: bool = param(help="make it loop seamlessly", kind="bool", default=False,
                             wire="soundLoop")
    sound_tempo: int | None = param(help="beats per minute, 1-300", kind="int", default=None,
                                    minimum=1, maximum=300, wire="soundTempo")
    sound_key: str = param(help="the musical key (Any, C, Cm, C#...)", kind="choice",
                           choices=cat.SOUND_KEYS, default="Any", wire="soundKey")
    grab_lyrics: bool = param(help="also capture lyric subtitles", kind="bool", default=False,
                              wire="grabLyrics")
    callback_url: str | None = fam.callback_url()


def _sounds_body(p: SoundsParams, checks: Checks, fallback: str | None) -> dict[str, Any]:
    model = fam.check_model(checks, p.model, cat.SOUNDS_MODELS)
    body: dict[str, Any] = {}
    if checks.text("prompt", p.prompt, max_length=500):
        body["prompt"] = p.prompt
    body["soundLoop"] = fam.check_bool(checks, "sound_loop", p.sound_loop)
    if p.sound_tempo is not None and checks.number("sound_tempo", p.sound_tempo, integer=True,
                                                   minimum=1, maximum=300) is not None:
        body["soundTempo"] = p.sound_tempo
    if checks.choice("sound_key", p.sound_key, cat.SOUND_KEYS):
        body["soundKey"] = p.sound_key
    body["grabLyrics"] = fam.check_bool(checks, "grab_lyrics", p.grab_lyrics)
    return asm.finish(checks, p, body, model, fallback)


GENERATE = asm.declare("generate", "/api/v1/generate", GenerateParams, _generate_body,
                        "two songs from a description, or from your lyrics, style and title",
                        cat.GENERATION_MODELS)
UPLOAD_COVER = asm.declare("upload-cover", "/api/v1/generate/upload-cover", UploadCoverParams,
                           _cover_body, "your audio in a new style (two tracks)",
                           cat.GENERATION_MODELS, aliases=("cover",))
ADD_VOCALS = asm.declare("add-vocals", "/api/v1/generate/add-vocals", AddVocalsParams,
                         _add_vocals_body, "vocals for an instrumental track (two tracks)",
                         cat.ADD_MODELS, aliases=("vocals",))
MASHUP = asm.declare("mashup", "/api/v1/generate/mashup", MashupParams, _mashup_body,
                     "a new song blending two tracks (two tracks)", cat.MASHUP_MODELS)
SOUNDS = asm.declare("sounds", "/api/v1/generate/sounds", SoundsParams, _sounds_body,
                     "a sound effect or loop from a description", cat.SOUNDS_MODELS)

register(GENERATE, UPLOAD_COVER, ADD_VOCALS, MASHUP, SOUNDS)
