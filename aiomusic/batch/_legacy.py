"""The job-file readers of the two operations aiomusic started with, as they always were.

music-01 (``service: minimax``) and Add Instrumental (``service: suno``) lines build the typed
`MiniMaxJob` and `SunoJob`, with the same messages and defaults as earlier versions (their
journals' fingerprints depend on it). Every other operation is read generically from its
declaration (``_fields.read_params``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .._core._config import Service
from .._core._errors import InputError
from .._core._models import AudioFormat, AudioSetting, Purpose
from ..minimax import _protocol as minimax_proto
from ..suno import _protocol as suno_proto
from ._fields import COMMON, Fields
from ._jobs import MiniMaxJob, SunoJob

__all__ = ["MINIMAX_FIELDS", "SUNO_FIELDS", "read_add_instrumental", "read_music01"]

_COMMON = tuple(f for f in COMMON if f != "op")
MINIMAX_FIELDS = (*COMMON, "lyrics", "reference", "purpose", "voice_reference",
                  "instrumental_reference", "refer_voice", "refer_instrumental",
                  "format", "sample_rate", "bitrate")
SUNO_FIELDS = (*COMMON, "source", "title", "tags", "negative_tags", "vocal_gender",
               "style_weight", "weirdness_constraint", "audio_weight", "model",
               "callback_url")
_CHECK_CALLBACK = "https://callback.invalid/check"  # stands in for the real one while checking


def read_music01(fields: Fields, job_id: str | None, out: str | None, base: Path,
             line: int) -> MiniMaxJob | None:
    lyrics = fields.text("lyrics")
    reference = fields.file("reference", base)
    voice_ref = fields.file("voice_reference", base)
    inst_ref = fields.file("instrumental_reference", base)
    refer_voice = fields.text("refer_voice")
    refer_inst = fields.text("refer_instrumental")
    purpose = Purpose.SONG
    raw_purpose = fields.data.get("purpose")
    if raw_purpose is not None:
        try:
            purpose = Purpose(raw_purpose)
        except ValueError:
            fields.bad("purpose", f"must be song, voice or instrumental, got {raw_purpose!r}")
    if raw_purpose is not None and "reference" not in fields.data:
        fields.bad("purpose", "applies to 'reference' only; give a reference file too")
    gives_voice = reference is not None and purpose in (Purpose.SONG, Purpose.VOICE)
    gives_inst = reference is not None and purpose in (Purpose.SONG, Purpose.INSTRUMENTAL)
    for name, many in (("voice", [gives_voice, voice_ref is not None, refer_voice is not None]),
                       ("instrumental", [gives_inst, inst_ref is not None,
                                         refer_inst is not None])):
        if sum(many) > 1:
            fields.bad(f"{name}_reference", f"the {name} comes from more than one field; "
                                            "keep one")
    setting = _audio_setting(fields)
    placeholder_voice = "checking" if gives_voice or voice_ref or refer_voice else None
    placeholder_inst = "checking" if gives_inst or inst_ref or refer_inst else None
    if not fields.problems and setting is not None:
        try:
            minimax_proto.check_generate(Service.AIMLAPI, lyrics=lyrics,
                                         refer_voice=placeholder_voice,
                                         refer_instrumental=placeholder_inst,
                                         audio_setting=setting)
        except InputError as exc:
            field = exc.field
            if field == "refer_voice":
                field = "reference"
            fields.bad(field, exc.message)
    if fields.problems or job_id is None or setting is None:
        return None
    return MiniMaxJob(id=job_id, lyrics=lyrics, reference=reference, purpose=purpose,
                      voice_reference=voice_ref, instrumental_reference=inst_ref,
                      refer_voice=refer_voice, refer_instrumental=refer_inst,
                      audio_setting=setting, out=out or f"{job_id}.{setting.format.value}",
                      line=line)


def _audio_setting(fields: Fields) -> AudioSetting | None:
    raw: dict[str, Any] = {}
    fmt = fields.data.get("format")
    if fmt is not None:
        try:
            raw["format"] = AudioFormat(fmt)
        except ValueError:
            fields.bad("format", f"must be mp3, wav or pcm, got {fmt!r}")
            return None
    for name in ("sample_rate", "bitrate"):
        value = fields.number(name, int)
        if value is not None:
            raw[name] = value
    try:
        return AudioSetting(**raw)
    except ValueError as exc:
        name = "sample_rate" if "sample_rate" in str(exc) else "bitrate"
        reason = exc.args[0] if exc.args and isinstance(exc.args[0], str) else str(exc)
        fields.bad(name, f"{raw.get(name)!r} is not allowed: {reason[:160]}")
        return None


def read_add_instrumental(fields: Fields, job_id: str | None, out: str | None, base: Path,
          line: int) -> SunoJob | None:
    raw_source = fields.text("source", required=True)
    source: str | Path | None = None
    if raw_source is not None:
        source = raw_source if "://" in raw_source else fields.file("source", base)
    title = fields.text("title", required=True)
    tags = fields.text("tags", required=True)
    negative = fields.text("negative_tags", required=True)
    gender = fields.text("vocal_gender")
    weights = {n: fields.number(n, float)
               for n in ("style_weight", "weirdness_constraint", "audio_weight")}
    model = fields.text("model") or suno_proto.DEFAULT_MODEL
    callback = fields.text("callback_url")
    if fields.problems or job_id is None or source is None or title is None or tags is None \
            or negative is None:
        return None
    url = source if isinstance(source, str) else "https://upload.invalid/check"
    try:
        suno_proto.check_add_instrumental(
            upload_url=url, title=title, tags=tags, negative_tags=negative,
            callback_url=callback or _CHECK_CALLBACK, vocal_gender=gender, model=model,
            **weights)
    except InputError as exc:
        for problem in getattr(exc, "problems", (exc,)):  # every one, not the first
            fields.bad(_SUNO_WIRE.get(problem.field or "", problem.field), problem.message)
        return None
    return SunoJob(id=job_id, source=source, title=title, tags=tags, negative_tags=negative,
                   vocal_gender=gender, model=model, callback_url=callback, out=out or job_id,
                   line=line, **weights)


_SUNO_WIRE = {"upload_url": "source"}


