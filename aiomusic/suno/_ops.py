"""The Suno API's operations, declared once (see ``aiomusic._core._operation``).

Each declaration names its parameters (the job file's fields and the command line's options),
its pure validator and call builder, its answer reader, and how its task is followed. The
generation family shares ``generate/record-info`` and its staged callbacks (`MUSIC_TASK`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from .._core._call import Call
from .._core._config import LaneKind, Service
from .._core._errors import InputError
from .._core._models import CallbackEvent, CallbackType, TaskRecord, TaskStatus
from .._core._operation import Checks, Context, Delivery, Operation, Output, param, register
from .._core._task import Asset, Phase, PollSchedule, TaskSnapshot, TaskSpec
from . import _protocol as proto

__all__ = ["ADD_INSTRUMENTAL", "MUSIC_TASK", "AddInstrumentalParams", "music_hint",
           "music_snapshot"]

_PHASES = {TaskStatus.PENDING: Phase.PENDING, TaskStatus.TEXT_SUCCESS: Phase.RUNNING,
           TaskStatus.FIRST_SUCCESS: Phase.RUNNING, TaskStatus.SUCCESS: Phase.SUCCEEDED}


def music_snapshot(record: TaskRecord) -> TaskSnapshot:
    """A generation-family record (``generate/record-info``) as a task snapshot.

    ``CALLBACK_EXCEPTION`` means the service failed to *deliver its callback*, not to
    generate: when every track it reports has its audio, the task succeeded (the raw status
    stays visible); without audio it is a failure like the others.
    """
    status = record.status
    phase = _PHASES.get(status, Phase.FAILED)
    assets = tuple(Asset(url=t.audio_url, name=t.id, title=t.title, duration=t.duration)
                   for t in record.tracks if t.audio_url)
    if status is TaskStatus.CALLBACK_EXCEPTION and record.tracks and \
            len(assets) == len(record.tracks):
        phase = Phase.SUCCEEDED
    return TaskSnapshot(task_id=record.task_id, phase=phase, status=record.raw_status or status,
                        rank=status.rank, assets=assets, error_code=record.error_code,
                        error_message=record.error_message, record=record)


_HINTS = {CallbackType.TEXT: TaskStatus.TEXT_SUCCESS, CallbackType.FIRST: TaskStatus.FIRST_SUCCESS,
          CallbackType.COMPLETE: TaskStatus.SUCCESS}


def music_hint(event: CallbackEvent) -> TaskSnapshot:
    """A staged callback of the generation family as a hint (confirmed before it counts)."""
    if event.callback_type is CallbackType.ERROR or event.code != 200:
        return TaskSnapshot(task_id=event.task_id, phase=Phase.FAILED, status="error",
                            rank=3, error_code=event.code, error_message=event.msg or None)
    status = _HINTS[event.callback_type]
    assets = tuple(Asset(url=t.audio_url, name=t.id, title=t.title, duration=t.duration)
                   for t in event.tracks if t.audio_url)
    return TaskSnapshot(task_id=event.task_id, phase=_PHASES[status], status=status,
                        rank=status.rank, assets=assets)


def _read_music(body: Mapping[str, Any], task_id: str) -> TaskSnapshot:
    return music_snapshot(proto.parse_record(body, task_id=task_id))


#: The generation family's task: ``generate/record-info``, polled in the poll lane.
MUSIC_TASK = TaskSpec(
    name="suno.task", label="Suno task", service=Service.SUNO,
    status_call=proto.record_info_call, read_status=_read_music, poll=PollSchedule(),
    timeout=900.0, resume_hint="resume it later with session.suno.task({task_id!r})")


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
