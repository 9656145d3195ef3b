"""The generation family, declared once: generate, extend, upload-cover, upload-extend,
add-vocals, mashup, replace-section and sounds (Add Instrumental is in ``_ops.py``).

Every one of them is paid, answers a task id, shares ``generate/record-info`` and the staged
callbacks (`MUSIC_TASK`), and yields two tracks. Limits follow the model (``_catalog.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from .._core._call import Call
from .._core._config import LaneKind
from .._core._operation import Checks, Context, Delivery, Operation, Output, param, register
from . import _catalog as cat
from . import _family as fam
from ._specs import MUSIC_TASK

__all__ = ["ADD_VOCALS", "EXTEND", "GENERATE", "MASHUP", "REPLACE_SECTION", "SOUNDS",
           "UPLOAD_COVER", "UPLOAD_EXTEND"]

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


def _mode(checks: Checks, p: Any, model: str | None, *, prompt_required: bool = True
          ) -> dict[str, Any]:
    custom = fam.check_bool(checks, "custom_mode", p.custom_mode)
    instrumental = fam.check_bool(checks, "instrumental", p.instrumental)
    body: dict[str, Any] = {"customMode": custom, "instrumental": instrumental}
    body.update(fam.check_lyrics_mode(checks, model=model, custom=custom,
                                      instrumental=instrumental, prompt=p.prompt, style=p.style,
                                      title=p.title, prompt_required=prompt_required))
    body.update(fam.check_persona(checks, p, custom=custom))
    return body


def _finish(checks: Checks, p: Any, body: dict[str, Any], model: str | None,
            fallback: str | None) -> dict[str, Any]:
    body.update(fam.check_controls(checks, p))
    if model is not None:
        body["model"] = model
    body["callBackUrl"] = fam.check_callback(checks, p.callback_url, fallback)
    return body


def _generate_body(p: GenerateParams, checks: Checks, fallback: str | None) -> dict[str, Any]:
    model = fam.check_model(checks, p.model, cat.GENERATION_MODELS)
    return _finish(checks, p, _mode(checks, p, model), model, fallback)


@attrs.frozen
class ExtendParams:
    """Extend: continue one of your generated tracks."""

    audio_id: str = fam.audio_id("the track to extend")
    default_param_flag: bool = param(
        help="true: use this call's prompt, style, title and continue_at; false: keep the "
             "source track's", kind="bool", default=False, wire="defaultParamFlag")
    prompt: str | None = param(help="with default_param_flag: the lyrics of the extension",
                               default=None)
    style: str | None = param(help="with default_param_flag: the style", default=None)
    title: str | None = param(help="with default_param_flag: the title", default=None)
    continue_at: float | None = param(help="with default_param_flag: the second to continue "
                                           "from (after 0, before the end of the track)",
                                      kind="float", default=None, minimum=0,
                                      wire="continueAt")
    model: str = fam.model(cat.GENERATION_MODELS, cat.DEFAULT_MODEL)
    negative_tags: str | None = fam.negative_tags()
    vocal_gender: str | None = fam.vocal_gender()
    style_weight: float | None = fam.style_weight()
    weirdness_constraint: float | None = fam.weirdness_constraint()
    audio_weight: float | None = fam.audio_weight()
    persona_id: str | None = fam.persona_id()
    persona_model: str | None = fam.persona_model()
    callback_url: str | None = fam.callback_url()


def _continuation(checks: Checks, p: Any, model: str | None, *, instrumental: bool = False
                  ) -> dict[str, Any]:
    """The fields of extend and upload-extend: custom parameters or the source's own."""
    flag = fam.check_bool(checks, "default_param_flag", p.default_param_flag)
    body: dict[str, Any] = {"defaultParamFlag": flag}
    if flag:
        body.update(fam.check_lyrics_mode(checks, model=model, custom=True,
                                          instrumental=instrumental, prompt=p.prompt,
                                          style=p.style, title=p.title))
        if p.continue_at is None:
            checks.fail("continue_at", "is required with default_param_flag")
    elif p.prompt is not None and checks.text("prompt", p.prompt, required=False,
                                              max_length=cat.limits_for(model or "").prompt):
        body["prompt"] = p.prompt
    if p.continue_at is not None:
        at = checks.number("continue_at", p.continue_at)
        if at is not None and at <= 0:
            checks.fail("continue_at", f"must be after 0 s, got {p.continue_at!r}")
        elif at is not None:
            body["continueAt"] = at
    body.update(fam.check_persona(checks, p, custom=flag))
    return body


def _extend_body(p: ExtendParams, checks: Checks, fallback: str | None) -> dict[str, Any]:
    model = fam.check_model(checks, p.model, cat.GENERATION_MODELS)
    body: dict[str, Any] = {}
    if checks.text("audio_id", p.audio_id):
        body["audioId"] = p.audio_id.strip()
    body.update(_continuation(checks, p, model))
    return _finish(checks, p, body, model, fallback)


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
    body.update(_mode(checks, p, model))
    return _finish(checks, p, body, model, fallback)


@attrs.frozen
class UploadExtendParams:
    """Upload and extend: continue your own audio (up to 8 minutes; 1 with V4_5ALL)."""

    source: str | Path = fam.source("the audio to extend")
    default_param_flag: bool = param(
        help="true: use this call's prompt, style, title and continue_at; false: the "
             "audio's own", kind="bool", default=False, wire="defaultParamFlag")
    instrumental: bool = param(help="no vocals (then no lyrics are needed)", kind="bool",
                               default=False)
    prompt: str | None = param(help="with default_param_flag: the lyrics", default=None)
    style: str | None = param(help="with default_param_flag: the style", default=None)
    title: str | None = param(help="with default_param_flag: the title", default=None)
    continue_at: float | None = param(help="with default_param_flag: the second to continue "
                                           "from (after 0, before the end)", kind="float",
                                      default=None, minimum=0, wire="continueAt")
    model: str = fam.model(cat.GENERATION_MODELS, cat.DEFAULT_MODEL)
    negative_tags: str | None = fam.negative_tags()
    vocal_gender: str | None = fam.vocal_gender()
    style_weight: float | None = fam.style_weight()
    weirdness_constraint: float | None = fam.weirdness_constraint()
    audio_weight: float | None = fam.audio_weight()
    persona_id: str | None = fam.persona_id()
    persona_model: str | None = fam.persona_model()
    callback_url: str | None = fam.callback_url()


def _upload_extend_body(p: UploadExtendParams, checks: Checks, fallback: str | None
                        ) -> dict[str, Any]:
    model = fam.check_model(checks, p.model, cat.GENERATION_MODELS)
    instrumental = fam.check_bool(checks, "instrumental", p.instrumental)
    body: dict[str, Any] = {"uploadUrl": fam.check_source(checks, "source", p.source),
                            "instrumental": instrumental}
    body.update(_continuation(checks, p, model, instrumental=instrumental))
    return _finish(checks, p, body, model, fallback)


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
    return _finish(checks, p, body, model, fallback)


@attrs.frozen
class MashupParams:
    """Mashup: a new song blending exactly two tracks."""

    sources: Sequence[str | Path] = param(
        help="exactly two tracks: http(s) URLs or local files (uploaded first)",
        kind="texts", wire="uploadUrlList", positional=True)
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
    sources = p.sources if isinstance(p.sources, tuple | list) else ()
    if len(sources) != 2:
        checks.fail("sources", f"must be exactly two tracks, got {len(sources)}")
    urls = [fam.check_source(checks, "sources", s) for s in sources]
    body: dict[str, Any] = {"uploadUrlList": urls}
    body.update(_mode(checks, p, model))
    return _finish(checks, p, body, model, fallback)


@attrs.frozen
class ReplaceSectionParams:
    """Replace section: regenerate 6-60 seconds of a track with new lyrics."""

    task_id: str | None = param(help="the task of the track (or give source and model)",
                                kind="id", default=None, wire="taskId")
    audio_id: str | None = param(help="the track to change (with task_id)", kind="id",
                                 default=None, wire="audioId")
    source: str | Path | None = param(
        help="instead of task_id/audio_id: your own audio (URL or local file, uploaded first)",
        kind="source", default=None, wire="uploadUrl")
    prompt: str = param(help="the lyrics of the replaced section")
    tags: str = param(help="the style of the section")
    title: str = param(help="the title")
    infill_start: float = param(help="where the section starts (seconds, two decimals)",
                                kind="float", minimum=0, wire="infillStartS")
    infill_end: float = param(help="where it ends: 6-60 s after the start", kind="float",
                              minimum=0, wire="infillEndS")
    full_lyrics: str = param(help="the whole song's lyrics after the change",
                             wire="fullLyrics")
    negative_tags: str | None = fam.negative_tags()
    model: str | None = param(help="with source: the model (V4 ... V5_5)", kind="choice",
                              choices=cat.GENERATION_MODELS, default=None)
    callback_url: str | None = fam.callback_url()


def _replace_body(p: ReplaceSectionParams, checks: Checks, fallback: str | None
                  ) -> dict[str, Any]:
    body: dict[str, Any] = {}
    model = None
    if p.source is not None:
        checks.exclusive(("source", p.source), ("task_id", p.task_id),
                         why="replace a section of your own audio or of a generated track")
        body["uploadUrl"] = fam.check_source(checks, "source", p.source)
        if p.model is None:
            checks.fail("model", "is required with source")
        model = fam.check_model(checks, p.model, cat.GENERATION_MODELS)
    else:
        for name, value, wire in (("task_id", p.task_id, "taskId"),
                                  ("audio_id", p.audio_id, "audioId")):
            if checks.text(name, value):
                body[wire] = value
    limits = cat.limits_for(model or "")
    for name, value, limit in (("prompt", p.prompt, limits.prompt), ("tags", p.tags, None),
                               ("title", p.title, limits.title),
                               ("full_lyrics", p.full_lyrics, None)):
        if checks.text(name, value, max_length=limit):
            body["fullLyrics" if name == "full_lyrics" else name] = value
    start = checks.number("infill_start", p.infill_start, minimum=0)
    end = checks.number("infill_end", p.infill_end, minimum=0)
    if start is not None and end is not None:
        span = round(end - start, 2)
        if not 6 <= span <= 60:
            checks.fail("infill_end", f"must be 6-60 s after infill_start, got {span:g} s")
        body["infillStartS"], body["infillEndS"] = round(start, 2), round(end, 2)
    return _finish(checks, p, body, model, fallback)


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
    return _finish(checks, p, body, model, fallback)


def _declare(name: str, path: str, params: type[Any], builder: Any, summary: str,
             models: tuple[str, ...], *, aliases: tuple[str, ...] = ()) -> Operation:
    def validate(p: Any, checks: Checks) -> None:
        builder(p, checks, None)

    def call(p: Any, ctx: Context) -> Call:
        fam.require_callback(p.callback_url or ctx.callback_url)
        body = fam.built(checks := Checks(), builder(p, checks, ctx.callback_url))
        key = body.get("title") or str(body.get("prompt") or body.get("audioId") or "")[:40]
        return fam.submit_call(name.replace("-", "_"), path, body, key=key or None)

    return Operation(service="suno", name=name, aliases=aliases, summary=summary,
                     params=params, paid=True, lane=LaneKind.SUBMIT, delivery=Delivery.TASK,
                     output=Output.TRACKS, validate=validate, call=call,
                     read=fam.task_id_reader(name), task=MUSIC_TASK, models=models)


GENERATE = _declare("generate", "/api/v1/generate", GenerateParams, _generate_body,
                    "two songs from a description, or from your lyrics, style and title",
                    cat.GENERATION_MODELS)
EXTEND = _declare("extend", "/api/v1/generate/extend", ExtendParams, _extend_body,
                  "continue a generated track (two tracks)", cat.GENERATION_MODELS)
UPLOAD_COVER = _declare("upload-cover", "/api/v1/generate/upload-cover", UploadCoverParams,
                        _cover_body, "your audio in a new style (two tracks)",
                        cat.GENERATION_MODELS, aliases=("cover",))
UPLOAD_EXTEND = _declare("upload-extend", "/api/v1/generate/upload-extend",
                         UploadExtendParams, _upload_extend_body,
                         "continue your own audio (two tracks)", cat.GENERATION_MODELS)
ADD_VOCALS = _declare("add-vocals", "/api/v1/generate/add-vocals", AddVocalsParams,
                      _add_vocals_body, "vocals for an instrumental track (two tracks)",
                      cat.ADD_MODELS, aliases=("vocals",))
MASHUP = _declare("mashup", "/api/v1/generate/mashup", MashupParams, _mashup_body,
                  "a new song blending two tracks (two tracks)", cat.MASHUP_MODELS)
REPLACE_SECTION = _declare("replace-section", "/api/v1/generate/replace-section",
                           ReplaceSectionParams, _replace_body,
                           "regenerate 6-60 s of a track with new lyrics (two tracks)",
                           cat.GENERATION_MODELS, aliases=("replace",))
SOUNDS = _declare("sounds", "/api/v1/generate/sounds", SoundsParams, _sounds_body,
                  "a sound effect or loop from a description", cat.SOUNDS_MODELS)

register(GENERATE, EXTEND, UPLOAD_COVER, UPLOAD_EXTEND, ADD_VOCALS, MASHUP, REPLACE_SECTION,
         SOUNDS)
