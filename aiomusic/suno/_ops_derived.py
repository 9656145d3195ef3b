"""Follow-ups on a finished track, lyrics, timestamped lyrics and personas, declared once.

The follow-ups name their parent by ``task_id`` + ``audio_id`` (a chain fills them from an
earlier job's result): vocal removal and stem splitting (``stems``), WAV conversion
(``wav``), MIDI (``midi``, from a separation task) and music videos (``video``). Each has its
own ``record-info`` (``_specs.py``) and calls back once.
"""

from __future__ import annotations

from typing import Any

import attrs

from .._core._call import Call
from .._core._config import LaneKind, Service
from .._core._errors import APIError
from .._core._operation import Checks, Context, Delivery, Operation, Output, param, register
from .._core._task import TaskSpec
from . import _catalog as cat
from . import _derived as der
from . import _family as fam
from ._specs import LYRICS_TASK, MIDI_TASK, MP4_TASK, STEMS_TASK, WAV_TASK

__all__ = ["LYRICS", "MIDI", "PERSONA", "STEMS", "TIMESTAMPED_LYRICS", "VIDEO", "WAV",
           "PersonaParams", "StemsParams", "TimestampedLyricsParams"]


def _ids(checks: Checks, p: Any, *, audio_required: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if checks.text("task_id", p.task_id):
        body["taskId"] = p.task_id.strip()
    audio = p.audio_id
    if checks.text("audio_id", audio, required=audio_required) and audio.strip():
        body["audioId"] = audio.strip()
    return body


@attrs.frozen
class StemsParams:
    """Vocal removal (two stems) or stem splitting (up to twelve) of a generated track."""

    task_id: str = fam.task_id()
    audio_id: str = fam.audio_id()
    type: str = param(help="separate_vocal (vocals + instrumental, default), split_stem (up "
                           "to 12 instruments) or split_stem_advanced", kind="choice",
                      choices=cat.STEM_TYPES, default="separate_vocal")
    stem_name: str | None = param(help="split_stem_advanced: the stem to isolate", default=None,
                                  wire="stemName")
    callback_url: str | None = fam.callback_url()


def _stems_body(p: StemsParams, checks: Checks) -> dict[str, Any]:
    body = _ids(checks, p)
    if checks.choice("type", p.type, cat.STEM_TYPES):
        body["type"] = p.type
    if p.stem_name is not None and checks.text("stem_name", p.stem_name):
        if p.type != "split_stem_advanced":
            checks.fail("stem_name", "applies to type split_stem_advanced only")
        body["stemName"] = p.stem_name
    return body


@attrs.frozen
class WavParams:
    """WAV conversion of a generated track."""

    task_id: str = fam.task_id()
    audio_id: str = fam.audio_id()
    callback_url: str | None = fam.callback_url()


@attrs.frozen
class MidiParams:
    """MIDI note data from a separated track."""

    task_id: str = fam.task_id("a finished vocal removal (stems) task")
    audio_id: str | None = param(help="the stem's audio id, when the task has several",
                                 kind="id", default=None, wire="audioId")
    callback_url: str | None = fam.callback_url()


@attrs.frozen
class VideoParams:
    """A music video (MP4) of a generated track."""

    task_id: str = fam.task_id()
    audio_id: str = fam.audio_id()
    author: str | None = param(help="the artist name shown (at most 50 characters)",
                               default=None, max_length=50)
    domain_name: str | None = param(help="a watermark domain (at most 50 characters)",
                                    default=None, max_length=50, wire="domainName")
    callback_url: str | None = fam.callback_url()


def _video_body(p: VideoParams, checks: Checks) -> dict[str, Any]:
    body = _ids(checks, p)
    for name, value, wire in (("author", p.author, "author"),
                              ("domain_name", p.domain_name, "domainName")):
        if value is not None and checks.text(name, value, max_length=50):
            body[wire] = value
    return body


@attrs.frozen
class LyricsParams:
    """Lyrics (several variants) from a description."""

    prompt: str = param(help="what the song is about", positional=True)
    callback_url: str | None = fam.callback_url()


def _lyrics_body(p: LyricsParams, checks: Checks) -> dict[str, Any]:
    return {"prompt": p.prompt} if checks.text("prompt", p.prompt) else {}


def _task_op(name: str, path: str, params: type[Any], builder: Any, spec: TaskSpec,
             output: Output, summary: str, *, aliases: tuple[str, ...] = ()) -> Operation:
    def validate(p: Any, checks: Checks) -> None:
        builder(p, checks)
        fam.check_callback(checks, p.callback_url, None)

    def call(p: Any, ctx: Context) -> Call:
        fam.require_callback(p.callback_url or ctx.callback_url)
        checks = Checks()
        body = builder(p, checks)
        body["callBackUrl"] = fam.check_callback(checks, p.callback_url, ctx.callback_url)
        return fam.submit_call(name.replace("-", "_"), path, fam.built(checks, body),
                               key=body.get("taskId") or str(body.get("prompt", ""))[:40])

    return Operation(service="suno", name=name, aliases=aliases, summary=summary,
                     params=params, paid=True, lane=LaneKind.SUBMIT, delivery=Delivery.TASK,
                     output=output, validate=validate, call=call,
                     read=fam.task_id_reader(name), task=spec)


STEMS = _task_op("stems", "/api/v1/vocal-removal/generate", StemsParams, _stems_body,
                 STEMS_TASK, Output.STEMS,
                 "separate vocals, or split a track into stems (one file per stem)",
                 aliases=("vocal-removal", "separate"))
async def _wav_exists(session: Any, params: WavParams, error: Exception) -> str | None:
    """A second conversion of a track answers 409 "already exists": the first one is found
    (by the client, which knows how) and followed instead of failing."""
    if not isinstance(error, APIError) or 409 not in (error.provider_code, error.status_code):
        return None
    found: str = await session.suno._existing_wav(params.task_id.strip(),
                                                  params.audio_id.strip(), error, None)
    return found


WAV = attrs.evolve(
    _task_op("wav", "/api/v1/wav/generate", WavParams, lambda p, checks: _ids(checks, p),
             WAV_TASK, Output.FILE, "convert a generated track to WAV", aliases=("convert-wav",)),
    on_refused=_wav_exists)
MIDI = _task_op("midi", "/api/v1/midi/generate", MidiParams,
                lambda p, checks: _ids(checks, p, audio_required=False), MIDI_TASK,
                Output.DOCUMENT, "MIDI note data from a separated track")
VIDEO = _task_op("video", "/api/v1/mp4/generate", VideoParams, _video_body, MP4_TASK,
                 Output.FILE, "a music video (MP4) of a generated track", aliases=("mp4",))
LYRICS = _task_op("lyrics", "/api/v1/lyrics", LyricsParams, _lyrics_body, LYRICS_TASK,
                  Output.DOCUMENT, "lyrics (several variants) from a description")


# -- synchronous: timestamped lyrics and personas ----------------------------------------------


@attrs.frozen
class TimestampedLyricsParams:
    """The lyrics of a generated track with word timings (free, answered at once)."""

    task_id: str = fam.task_id()
    audio_id: str = fam.audio_id()


def _check_ids(p: Any, checks: Checks) -> None:
    _ids(checks, p)


def _timestamped_call(p: TimestampedLyricsParams, ctx: Context) -> Call:
    body = fam.built(checks := Checks(), _ids(checks, p))
    return Call(service=Service.SUNO, lane=LaneKind.POLL, operation="suno.timestamped_lyrics",
                method="POST", url="/api/v1/generate/get-timestamped-lyrics", json=body,
                key=body["audioId"])


TIMESTAMPED_LYRICS = Operation(
    service="suno", name="timestamped-lyrics", aliases=("aligned-lyrics",),
    summary="the words of a track with their times (LRC for karaoke)",
    params=TimestampedLyricsParams, paid=False, lane=LaneKind.POLL, delivery=Delivery.JSON,
    output=Output.DOCUMENT, validate=_check_ids, call=_timestamped_call,
    read=der.read_timestamped_lyrics)


@attrs.frozen
class PersonaParams:
    """A persona (voice and style) from 10-30 s of a finished V4+ track; once per track."""

    task_id: str = fam.task_id()
    audio_id: str = fam.audio_id()
    name: str = param(help="the persona's name")
    description: str = param(help="what it sounds like")
    vocal_start: float = param(help="where the voice sample starts (seconds)", kind="float",
                               default=0.0, minimum=0, wire="vocalStart")
    vocal_end: float = param(help="where it ends: 10-30 s after vocal_start", kind="float",
                             default=30.0, minimum=0, wire="vocalEnd")
    style: str | None = param(help="a style to associate with it", default=None)


def _persona_body(p: PersonaParams, checks: Checks) -> dict[str, Any]:
    body = _ids(checks, p)
    for name, value in (("name", p.name), ("description", p.description)):
        if checks.text(name, value):
            body[name] = value
    start = checks.number("vocal_start", p.vocal_start, minimum=0)
    end = checks.number("vocal_end", p.vocal_end, minimum=0)
    if start is not None and end is not None:
        if not 10 <= end - start <= 30:
            checks.fail("vocal_end", f"must be 10-30 s after vocal_start, got "
                                     f"{end - start:g} s")
        body["vocalStart"], body["vocalEnd"] = start, end
    if p.style is not None and checks.text("style", p.style):
        body["style"] = p.style
    return body


def _check_persona(p: PersonaParams, checks: Checks) -> None:
    _persona_body(p, checks)


def _persona_call(p: PersonaParams, ctx: Context) -> Call:
    body = fam.built(checks := Checks(), _persona_body(p, checks))
    return fam.submit_call("persona", "/api/v1/generate/generate-persona", body,
                           key=body["audioId"])


PERSONA = Operation(
    service="suno", name="persona",
    summary="a persona from a finished track, for later generations (answered at once)",
    params=PersonaParams, paid=True, lane=LaneKind.SUBMIT, delivery=Delivery.JSON,
    output=Output.DOCUMENT, validate=_check_persona, call=_persona_call,
    read=der.read_persona)

register(STEMS, WAV, MIDI, VIDEO, LYRICS, TIMESTAMPED_LYRICS, PERSONA)
