"""How each kind of Suno task is followed: one `TaskSpec` per kind of record.

The generation family (generate, extend, covers, add-vocals, add-instrumental, mashup,
replace-section, sounds) shares ``generate/record-info`` (`MUSIC_TASK`); lyrics, WAV, vocal
removal, MIDI and music videos each have their own ``record-info``. Status and callback
readers are pure; an unreadable answer is a [`ResponseError`][aiomusic.ResponseError] (a poll
is free, so the task model asks again).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .._core._call import Call
from .._core._config import LaneKind, Service
from .._core._models import TaskRecord, TaskStatus
from .._core._task import Asset, Phase, PollSchedule, TaskSnapshot, TaskSpec
from . import _catalog as cat
from . import _hooks as hooks
from . import _protocol as proto
from . import _records as rec

__all__ = ["LYRICS_TASK", "MIDI_TASK", "MP4_TASK", "MUSIC_TASK", "SPECS", "STEMS_TASK",
           "WAV_TASK", "music_hint", "music_snapshot"]

#: A staged callback of the generation family as a hint (confirmed before it counts).
music_hint = hooks.event_snapshot

_PHASES = {TaskStatus.PENDING: Phase.PENDING, TaskStatus.TEXT_SUCCESS: Phase.RUNNING,
           TaskStatus.FIRST_SUCCESS: Phase.RUNNING, TaskStatus.SUCCESS: Phase.SUCCEEDED}
_RANKS = {Phase.PENDING: 0, Phase.RUNNING: 1, Phase.SUCCEEDED: 3, Phase.FAILED: 3}


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


def _read_music(body: Mapping[str, Any], task_id: str) -> TaskSnapshot:
    # a SUCCESS without every track's audio is not one to act on: asked again (polls are free)
    return music_snapshot(proto.require_tracks(proto.parse_record(body, task_id=task_id)))


def record_call(kind: str, path: str) -> Callable[[str], Call]:
    """The free status call of one kind (``GET <path>?taskId=``, poll lane)."""
    def call(task_id: str) -> Call:
        return Call(service=Service.SUNO, lane=LaneKind.POLL, operation=f"suno.{kind}_record",
                    method="GET", url=path, params={"taskId": task_id}, key=task_id)
    call.__name__ = f"{kind}_record_call"
    return call


def _snapshot(record: rec.FollowUpRecord, assets: tuple[Asset, ...]) -> TaskSnapshot:
    done = record.phase is Phase.SUCCEEDED
    return TaskSnapshot(task_id=record.task_id, phase=record.phase, status=record.status,
                        rank=_RANKS[record.phase], assets=assets if done else (),
                        error_code=record.error_code, error_message=record.error_message,
                        record=record)


def _response(fields: Mapping[str, Any]) -> dict[str, Any]:
    response = fields.get("response")
    if response is None:
        return {}
    return rec._fields(response, "the record's response")


@rec.reading("a WAV conversion record")
def read_wav(body: Mapping[str, Any], task_id: str | None) -> TaskSnapshot:
    """``wav/record-info``: ``successFlag`` and ``response.audioWavUrl`` (``task_id`` None:
    a look-up by the converted track, whose record names its own task)."""
    fields = rec._fields(body.get("data"), "the WAV record")
    url = rec._url(_response(fields).get("audio_wav_url"))
    record = rec.WavRecord(**rec.common(fields, task_id=task_id, flag="success_flag",
                                        failed_name="GENERATE_WAV_FAILED"), url=url)
    return _snapshot(record, (Asset(url=url, name="wav"),) if url else ())


@rec.reading("a music video record")
def read_mp4(body: Mapping[str, Any], task_id: str) -> TaskSnapshot:
    """``mp4/record-info``: ``successFlag`` and ``response.videoUrl``."""
    fields = rec._fields(body.get("data"), "the music video record")
    url = rec._url(_response(fields).get("video_url"))
    record = rec.Mp4Record(**rec.common(fields, task_id=task_id, flag="success_flag",
                                        failed_name="GENERATE_MP4_FAILED"), url=url)
    return _snapshot(record, (Asset(url=url, name="video", kind="video"),) if url else ())


@rec.reading("a vocal removal record")
def read_stems(body: Mapping[str, Any], task_id: str) -> TaskSnapshot:
    """``vocal-removal/record-info``: ``successFlag`` and the stem URLs in ``response``."""
    fields = rec._fields(body.get("data"), "the vocal removal record")
    stems = rec.read_stems(fields.get("response"))
    record = rec.StemsRecord(**rec.common(fields, task_id=task_id, flag="success_flag",
                                          failed_name="GENERATE_AUDIO_FAILED"), stems=stems)
    return _snapshot(record, tuple(Asset(url=url, name=name) for name, url in stems.items()))


@rec.reading("a MIDI record")
def read_midi(body: Mapping[str, Any], task_id: str) -> TaskSnapshot:
    """``midi/record-info``: ``successFlag`` (a name or 0-3) and ``midiData``."""
    fields = rec._fields(body.get("data"), "the MIDI record")
    record = rec.MidiRecord(**rec.common(fields, task_id=task_id, flag="success_flag",
                                         failed_name="GENERATE_MIDI_FAILED"),
                            instruments=rec.read_midi_data(fields.get("midi_data")))
    return _snapshot(record, ())


@rec.reading("a lyrics record")
def read_lyrics(body: Mapping[str, Any], task_id: str) -> TaskSnapshot:
    """``lyrics/record-info``: ``status`` and ``response.data`` (several variants)."""
    fields = rec._fields(body.get("data"), "the lyrics record")
    response = _response(fields)
    items = response.get("data", response.get("lyrics_data"))
    record = rec.LyricsRecord(**rec.common(fields, task_id=task_id, flag="status",
                                           failed_name="GENERATE_LYRICS_FAILED"),
                              variants=rec.read_lyrics_items(items))
    return _snapshot(record, ())


_POLL = PollSchedule()
_RESUME = "resume it with session.suno.follow({task_id!r}, kind={kind!r})"

#: The generation family's task: ``generate/record-info``, polled in the poll lane.
MUSIC_TASK = TaskSpec(
    name="suno.task", label="Suno task", service=Service.SUNO,
    status_call=proto.record_info_call, read_status=_read_music,
    read_callback=hooks.reader("music"), poll=_POLL, timeout=900.0, retention=cat.RETENTION,
    resume_hint="resume it later with session.suno.task({task_id!r})")


def _spec(kind: str, label: str, path: str,
          read: Callable[[Mapping[str, Any], str], TaskSnapshot], *, timeout: float,
          needs_assets: bool = True) -> TaskSpec:
    return TaskSpec(name=f"suno.{kind}", label=label, service=Service.SUNO,
                    status_call=record_call(kind, path), read_status=read,
                    read_callback=hooks.reader(kind), poll=_POLL, timeout=timeout,
                    retention=cat.RETENTION, needs_assets=needs_assets,
                    resume_hint=_RESUME.replace("{kind!r}", repr(kind)))


LYRICS_TASK = _spec("lyrics", "Suno lyrics task", "/api/v1/lyrics/record-info", read_lyrics,
                    timeout=300.0, needs_assets=False)
WAV_TASK = _spec("wav", "Suno WAV task", "/api/v1/wav/record-info", read_wav, timeout=600.0)
STEMS_TASK = _spec("stems", "Suno stems task", "/api/v1/vocal-removal/record-info",
                   read_stems, timeout=900.0)
MIDI_TASK = _spec("midi", "Suno MIDI task", "/api/v1/midi/record-info", read_midi,
                  timeout=900.0, needs_assets=False)
MP4_TASK = _spec("mp4", "Suno video task", "/api/v1/mp4/record-info", read_mp4,
                 timeout=900.0)

#: Every kind of Suno task, by the kind a callback URL names.
SPECS: Mapping[str, TaskSpec] = {"music": MUSIC_TASK, "lyrics": LYRICS_TASK, "wav": WAV_TASK,
                                 "stems": STEMS_TASK, "midi": MIDI_TASK, "mp4": MP4_TASK}
