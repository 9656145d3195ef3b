"""The generation family's edits of existing audio, declared once: extend, upload-extend and
replace-section (two tracks each, followed like every generation: `MUSIC_TASK`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

from .._core._operation import Checks, param, register
from . import _assemble as asm
from . import _catalog as cat
from . import _family as fam

__all__ = ["EXTEND", "REPLACE_SECTION", "UPLOAD_EXTEND", "ExtendParams",
           "ReplaceSectionParams", "UploadExtendParams"]


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


def _extend_body(p: ExtendParams, checks: Checks, fallback: str | None) -> dict[str, Any]:
    model = fam.check_model(checks, p.model, cat.GENERATION_MODELS)
    body: dict[str, Any] = {}
    if checks.text("audio_id", p.audio_id):
        body["audioId"] = p.audio_id.strip()
    body.update(asm.continuation(checks, p, model))
    return asm.finish(checks, p, body, model, fallback)


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
    body.update(asm.continuation(checks, p, model, instrumental=instrumental))
    return asm.finish(checks, p, body, model, fallback)


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
    return asm.finish(checks, p, body, model, fallback)


EXTEND = asm.declare("extend", "/api/v1/generate/extend", ExtendParams, _extend_body,
                     "continue a generated track (two tracks)", cat.GENERATION_MODELS)
UPLOAD_EXTEND = asm.declare("upload-extend", "/api/v1/generate/upload-extend",
                            UploadExtendParams, _upload_extend_body,
                            "continue your own audio (two tracks)", cat.GENERATION_MODELS)
REPLACE_SECTION = asm.declare("replace-section", "/api/v1/generate/replace-section",
                              ReplaceSectionParams, _replace_body,
                              "regenerate 6-60 s of a track with new lyrics (two tracks)",
                              cat.GENERATION_MODELS, aliases=("replace",))

register(EXTEND, UPLOAD_EXTEND, REPLACE_SECTION)
