"""The Suno API's operations, declared once (see ``aiomusic._core._operation``).

Each declaration names its parameters (the job file's fields and the command line's options),
its pure validator and call builder, its answer reader, and how its task is followed. The
generation family shares ``generate/record-info`` and its staged callbacks (`MUSIC_TASK`);
follow-ups and lyrics have their own records (``_specs.py``). Add Instrumental is declared
here; the rest of the family in ``_ops_family.py``, follow-ups, lyrics and personas in
``_ops_derived.py`` (importing this module registers them all).
"""

from __future__ import annotations

import importlib
from pathlib import Path

import attrs

from .._core._call import Call
from .._core._config import LaneKind
from .._core._errors import InputError
from .._core._operation import Checks, Context, Delivery, Operation, Output, param, register
from . import _protocol as proto
from ._specs import MUSIC_TASK, music_hint, music_snapshot

__all__ = ["ADD_INSTRUMENTAL", "MUSIC_TASK", "AddInstrumentalParams", "music_hint",
           "music_snapshot"]


@attrs.frozen
class AddInstrumentalParams:
    """Add Instrumental: accompaniment generated for a vocal track."""

    source: str | Path = param(
        help="the vocal track: an http(s) URL the service can fetch, or a local file "
             "(uploaded first)", kind="source", wire="uploadUrl", positional=True)
    title: str = param(help="the track's title", max_length=proto.MAX_TITLE)
    tags: str = param(help="styles, moods and instruments wanted")
    negative_tags: str = param(help="styles to avoid", wire="negativeTags")
    vocal_gender: str | None = param(help="a hint: m or f", kind="choice", choices=("m", "f"),
                                     default=None, wire="vocalGender")
    style_weight: float | None = param(help="0-1 in steps of 0.01", kind="weight", default=None,
                                       wire="styleWeight")
    weirdness_constraint: float | None = param(help="0-1 in steps of 0.01", kind="weight",
                                               default=None, wire="weirdnessConstraint")
    audio_weight: float | None = param(help="0-1 in steps of 0.01", kind="weight",
                                       default=None, wire="audioWeight")
    model: str = param(help="V4_5PLUS (default) or V5; newer V... names pass through",
                       kind="choice", choices=proto.KNOWN_MODELS, default=proto.DEFAULT_MODEL)
    callback_url: str | None = param(
        help="Suno's callBackUrl (default: the session's); progress is polled either way",
        kind="url", default=None, wire="callBackUrl")


#: Stands in for a local source's upload URL while checking, before anything is uploaded.
PLACEHOLDER_URL = "https://upload.invalid/pending"


def _validate_add_instrumental(p: AddInstrumentalParams, checks: Checks) -> None:
    source = p.source if isinstance(p.source, str) and "://" in p.source else PLACEHOLDER_URL
    try:
        proto.check_add_instrumental(
            upload_url=source, title=p.title, tags=p.tags, negative_tags=p.negative_tags,
            callback_url=p.callback_url or "https://callback.invalid/check",
            vocal_gender=p.vocal_gender, style_weight=p.style_weight,
            weirdness_constraint=p.weirdness_constraint, audio_weight=p.audio_weight,
            model=p.model)
    except InputError as exc:
        for problem in getattr(exc, "problems", (exc,)):
            checks.fail(problem.field, problem.message)


def _add_instrumental_call(p: AddInstrumentalParams, ctx: Context) -> Call:
    payload = proto.check_add_instrumental(
        upload_url=str(p.source), title=p.title, tags=p.tags, negative_tags=p.negative_tags,
        callback_url=p.callback_url or ctx.callback_url or "", vocal_gender=p.vocal_gender,
        style_weight=p.style_weight, weirdness_constraint=p.weirdness_constraint,
        audio_weight=p.audio_weight, model=p.model)
    return proto.add_instrumental_call(payload)


ADD_INSTRUMENTAL = Operation(
    service="suno", name="add-instrumental", aliases=("instrumental",),
    summary="accompaniment for a vocal track (two tracks)",
    params=AddInstrumentalParams, paid=True, lane=LaneKind.SUBMIT, delivery=Delivery.TASK,
    output=Output.TRACKS, validate=_validate_add_instrumental, call=_add_instrumental_call,
    read=proto.parse_submission, task=MUSIC_TASK, models=proto.KNOWN_MODELS)

register(ADD_INSTRUMENTAL)

# The other Suno operations register themselves when their modules are imported (the
# generation family first: the docs' tables list the operations in registry order).
for _module in ("_ops_family", "_ops_edit", "_ops_derived"):
    importlib.import_module(f"{__package__}.{_module}")
