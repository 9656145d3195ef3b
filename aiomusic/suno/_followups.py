"""``session.suno``'s follow-ups on a finished track, lyrics and personas.

Follow-ups name their source track by ``task_id`` + ``audio_id`` (a generation's task id and
one of its tracks' ids). Each is paid, answers a task id and is followed through its own
``record-info``; the methods return a typed handle (`StemsTask`, `WavTask`, `MidiTask`,
`VideoTask`, `LyricsTask`). Timestamped lyrics (free) and personas (paid) answer at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

from .._core._call import Call
from .._core._config import LaneKind, Service
from .._core._errors import APIError, InputError
from .._core._operation import Context, Operation
from . import _derived as der
from . import _handles as handles
from . import _ops_derived as ops
from . import _records as rec
from . import _specs as specs
from ._submit import Submitter
from ._tasks import SunoTask

if TYPE_CHECKING:
    from .._core._retry import RetryPolicy

__all__ = ["FollowUpMethods"]

_KINDS = ("music", *handles.HANDLES)


class FollowUpMethods(Submitter):
    """Follow-ups, lyrics and personas: methods of `SunoClient`.

    The keyword arguments ``callback_url``, ``timeout`` and ``retry`` and the errors raised
    are as for `generate()`; a follow-up's source must be a finished track of your account.
    """

    def _handle(self, cls: type[handles.FollowUp[Any]], task_id: str, *, submitted: bool,
                source: tuple[str, str | None] | None = None) -> Any:
        return cls(cast("Any", self), task_id, submitted=submitted, source=source)

    async def _follow_up(self, op: Operation, params: Any, kind: str,
                         timeout: float | None, retry: RetryPolicy | None) -> Any:
        task_id, _none, _sent = await self._submit(op, params, kind=kind, timeout=timeout,
                                                   retry=retry)
        source = (params.task_id, getattr(params, "audio_id", None)) \
            if hasattr(params, "task_id") else None
        return self._handle(handles.HANDLES[kind], task_id, submitted=True, source=source)

    async def stems(self, task_id: str, audio_id: str, *, type: str = "separate_vocal",
                    stem_name: str | None = None, callback_url: str | None = None,
                    timeout: float | None = None, retry: RetryPolicy | None = None
                    ) -> handles.StemsTask:
        """Separate a track (paid): ``separate_vocal`` (vocals + instrumental, default),
        ``split_stem`` (up to twelve stems) or ``split_stem_advanced`` (``stem_name``).
        ``await task.download(folder)`` fetches every stem into one folder, all or nothing."""
        params = ops.StemsParams(task_id=task_id, audio_id=audio_id, type=type,
                                 stem_name=stem_name, callback_url=callback_url)
        task: handles.StemsTask = await self._follow_up(ops.STEMS, params, "stems", timeout,
                                                        retry)
        return task

    async def convert_wav(self, task_id: str, audio_id: str, *,
                          callback_url: str | None = None, timeout: float | None = None,
                          retry: RetryPolicy | None = None) -> handles.WavTask:
        """Convert a track to WAV (paid). If the track was converted before, the service
        answers code 409 "already exists": that conversion is looked up and returned instead
        (nothing is paid twice). ``await task.download("song.wav")``."""
        params = ops.WavParams(task_id=task_id, audio_id=audio_id, callback_url=callback_url)
        try:
            task: handles.WavTask = await self._follow_up(ops.WAV, params, "wav", timeout,
                                                          retry)
        except APIError as error:
            if 409 not in (error.provider_code, error.status_code):
                raise
            found = await self._existing_wav(task_id.strip(), audio_id.strip(), error, timeout)
            existing: handles.WavTask = self._handle(handles.WavTask, found, submitted=False,
                                                     source=(task_id, audio_id))
            return existing
        self._conversions()[(task_id.strip(), audio_id.strip())] = task.task_id
        return task

    def _conversions(self) -> dict[tuple[str, str], str]:
        """This client's WAV conversions by source track (the first place a 409 looks)."""
        found: dict[tuple[str, str], str] = self.__dict__.setdefault("_wav_conversions", {})
        return found

    async def _existing_wav(self, task_id: str, audio_id: str, error: APIError,
                            timeout: float | None) -> str:
        """The id of a track's existing WAV conversion: from the 409 answer if it names one,
        else this client's own conversions, else ``wav/record-info`` asked by the track."""
        data = error.body.get("data") if isinstance(error.body, Mapping) else None
        named = data.get("taskId", data.get("task_id")) if isinstance(data, Mapping) else None
        if isinstance(named, str) and named.strip():
            return named.strip()
        known = self._conversions().get((task_id, audio_id))
        if known is not None:
            return known
        call = Call(service=Service.SUNO, lane=LaneKind.POLL, operation="suno.wav_lookup",
                    method="GET", url="/api/v1/wav/record-info",
                    params={"taskId": task_id, "audioId": audio_id}, key=audio_id)
        try:
            body = await self._session._send(call, timeout=timeout)
            record = specs.read_wav(body, None).record
        except APIError as lookup:
            raise APIError(
                f"{error.message}; the existing WAV conversion of track {audio_id} could not "
                f"be found ({lookup.message}). Resume it with session.suno.follow(<its task "
                "id>, kind='wav')", provider="suno", status_code=error.status_code,
                provider_code=error.provider_code, retryable=False, body=error.body,
            ) from error
        if not isinstance(record, rec.WavRecord) or record.music_id not in (None, audio_id):
            raise error
        return record.task_id

    async def midi(self, task_id: str, *, audio_id: str | None = None,
                   callback_url: str | None = None, timeout: float | None = None,
                   retry: RetryPolicy | None = None) -> handles.MidiTask:
        """MIDI note data from a finished separation (``task_id`` of a `stems()` task; paid).
        ``(await task.wait()).instruments``, or ``await task.save("song.mid")``."""
        params = ops.MidiParams(task_id=task_id, audio_id=audio_id, callback_url=callback_url)
        task: handles.MidiTask = await self._follow_up(ops.MIDI, params, "midi", timeout, retry)
        return task

    async def music_video(self, task_id: str, audio_id: str, *, author: str | None = None,
                          domain_name: str | None = None, callback_url: str | None = None,
                          timeout: float | None = None, retry: RetryPolicy | None = None
                          ) -> handles.VideoTask:
        """A music video (MP4) of a track (paid); ``author`` and ``domain_name`` (a
        watermark) at most 50 characters each. ``await task.download("song.mp4")``."""
        params = ops.VideoParams(task_id=task_id, audio_id=audio_id, author=author,
                                 domain_name=domain_name, callback_url=callback_url)
        task: handles.VideoTask = await self._follow_up(ops.VIDEO, params, "mp4", timeout,
                                                        retry)
        return task

    async def lyrics(self, prompt: str, *, callback_url: str | None = None,
                     timeout: float | None = None, retry: RetryPolicy | None = None
                     ) -> handles.LyricsTask:
        """Write lyrics from a description (paid); ``(await task.wait()).variants`` holds
        several versions, each with a ``text`` and a ``title``."""
        params = ops.LyricsParams(prompt=prompt, callback_url=callback_url)
        task: handles.LyricsTask = await self._follow_up(ops.LYRICS, params, "lyrics", timeout,
                                                         retry)
        return task

    async def timestamped_lyrics(self, task_id: str, audio_id: str, *,
                                 timeout: float | None = None,
                                 retry: RetryPolicy | None = None) -> der.TimestampedLyrics:
        """A track's lyrics with the time of every word (free, answered at once; empty for
        an instrumental). ``.to_lrc()`` gives an LRC file for karaoke players."""
        params = ops.TimestampedLyricsParams(task_id=task_id, audio_id=audio_id)
        ops.TIMESTAMPED_LYRICS.check(params)
        body = await self._session._send(
            ops.TIMESTAMPED_LYRICS.call(params, Context(Service.SUNO)), timeout=timeout,
            retry=retry)
        return der.read_timestamped_lyrics(body, task_id=task_id.strip(),
                                           audio_id=audio_id.strip())

    async def create_persona(self, task_id: str, audio_id: str, *, name: str,
                             description: str, vocal_start: float = 0.0,
                             vocal_end: float = 30.0, style: str | None = None,
                             timeout: float | None = None, retry: RetryPolicy | None = None
                             ) -> der.Persona:
        """Make a persona from 10-30 s (``vocal_start`` to ``vocal_end``) of a finished V4+
        track (paid; once per track). Pass its ``persona_id`` to `generate()`, `extend()`,
        `upload_cover()` or `upload_extend()` in custom mode."""
        params = ops.PersonaParams(task_id=task_id, audio_id=audio_id, name=name,
                                   description=description, vocal_start=vocal_start,
                                   vocal_end=vocal_end, style=style)
        ops.PERSONA.check(params)
        body = await self._session._send(ops.PERSONA.call(params, Context(Service.SUNO)),
                                         timeout=timeout, retry=retry)
        return der.read_persona(body)

    def follow(self, task_id: str, *, kind: str = "music") -> Any:
        """A handle on an existing task from its id alone (after a restart, say): ``kind`` is
        ``music`` (a `SunoTask`), ``stems``, ``wav``, ``midi``, ``mp4`` or ``lyrics``. Its
        first ``wait()`` looks it up at once."""
        given: object = task_id
        if not isinstance(given, str) or not given.strip():
            raise InputError(f"task_id must be a non-empty string, got {task_id!r}",
                             field="task_id")
        if kind not in _KINDS:
            raise InputError(f"kind must be one of {', '.join(_KINDS)}, got {kind!r}",
                             field="kind")
        if kind == "music":
            return SunoTask(cast("Any", self), task_id.strip())
        return self._handle(handles.HANDLES[kind], task_id.strip(), submitted=False)

