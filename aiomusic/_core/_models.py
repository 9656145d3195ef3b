"""Frozen result types. Field names are snake_case; the converter maps the services' keys."""

from __future__ import annotations

import datetime as dt
import enum
import os
from pathlib import Path
from typing import Protocol

import attrs

__all__ = [
    "UPLOAD_RETENTION",
    "AudioFormat",
    "AudioSetting",
    "CallbackEvent",
    "CallbackType",
    "DownloadResult",
    "ExtraInfo",
    "GenerationResult",
    "Purpose",
    "ReferenceUpload",
    "TaskRecord",
    "TaskResult",
    "TaskStatus",
    "Track",
    "UploadedFile",
]


class Purpose(enum.StrEnum):
    """What a MiniMax reference upload contains, and so which ids it yields."""

    SONG = "song"
    """Sung vocals with accompaniment: yields a voice id and an instrumental id."""
    VOICE = "voice"
    """Sung a cappella vocals only: yields a voice id."""
    INSTRUMENTAL = "instrumental"
    """Accompaniment only: yields an instrumental id."""


class AudioFormat(enum.StrEnum):
    """Audio container of a MiniMax generation."""

    MP3 = "mp3"
    WAV = "wav"
    PCM = "pcm"


class Downloader(Protocol):
    """What a track needs to download itself: the Suno client of the session that made it.

    A protocol, so that these result types never import a client (the client imports them).
    """

    async def download(self, track: Track, destination: str | os.PathLike[str], *,
                       overwrite: bool = ..., max_bytes: int | None = ...,
                       timeout: float | None = ...) -> DownloadResult: ...

    async def download_all(self, result: TaskResult, folder: str | os.PathLike[str], *,
                           overwrite: bool = ..., timeout: float | None = ...
                           ) -> tuple[DownloadResult, ...]: ...


SAMPLE_RATES = (16000, 24000, 32000, 44100)
BITRATES = (32000, 64000, 128000, 256000)


@attrs.frozen
class AudioSetting:
    """``audio_setting`` of a generation; checked against the documented enums.

    ``channel`` (1 or 2) is taken by the current models only; music-01 does not send it.
    """

    format: AudioFormat = attrs.field(default=AudioFormat.MP3, converter=AudioFormat)
    sample_rate: int = attrs.field(default=44100,
                                   validator=attrs.validators.in_(SAMPLE_RATES))
    bitrate: int = attrs.field(default=256000, validator=attrs.validators.in_(BITRATES))
    channel: int | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.in_((1, 2))))


@attrs.frozen
class ReferenceUpload:
    """The ids a MiniMax reference upload returned.

    Attributes:
        purpose: What was uploaded.
        voice_id: The voice id (purposes ``song`` and ``voice``).
        instrumental_id: The instrumental id (purposes ``song`` and ``instrumental``).
        trace_id: The service's trace id.
    """

    purpose: Purpose
    voice_id: str | None = None
    instrumental_id: str | None = None
    trace_id: str | None = None


@attrs.frozen
class ExtraInfo:
    """``extra_info`` of a generation: the old ``audio_*`` and the newer ``music_*`` fields.

    Durations are milliseconds and sizes bytes, as the services send them; use
    `duration_ms`, `size` and `sample_rate`, which read whichever is present.
    """

    audio_length: int | None = None
    audio_size: int | None = None
    audio_bitrate: int | None = None
    audio_sample_rate: int | None = None
    music_duration: int | None = None
    music_sample_rate: int | None = None
    music_channel: int | None = None
    bitrate: int | None = None
    music_size: int | None = None

    @property
    def duration_ms(self) -> int | None:
        """Duration in milliseconds, from either naming."""
        return self.music_duration if self.music_duration is not None else self.audio_length

    @property
    def size(self) -> int | None:
        """Audio size in bytes, from either naming."""
        return self.music_size if self.music_size is not None else self.audio_size

    @property
    def sample_rate(self) -> int | None:
        """Sample rate in Hz, from either naming."""
        if self.music_sample_rate is not None:
            return self.music_sample_rate
        return self.audio_sample_rate


@attrs.frozen
class GenerationResult:
    """A finished music-01 generation.

    Attributes:
        status: ``data.status`` (2 = completed).
        extra_info: What the service says about the audio.
        trace_id: The service's trace id.
        path: Where the audio was written, when the destination was a path.
        bytes_written: Decoded audio bytes delivered to the destination.
        sha256: Hex SHA-256 of the decoded audio.
    """

    status: int
    extra_info: ExtraInfo = attrs.field(factory=ExtraInfo)
    trace_id: str | None = None
    path: Path | None = None
    bytes_written: int = 0
    sha256: str | None = None

    @property
    def duration(self) -> float | None:
        """Duration in seconds, when the service said."""
        ms = self.extra_info.duration_ms
        return None if ms is None else ms / 1000


class TaskStatus(enum.StrEnum):
    """Status of a Suno task (``record-info`` ``data.status``)."""

    PENDING = "PENDING"
    TEXT_SUCCESS = "TEXT_SUCCESS"
    FIRST_SUCCESS = "FIRST_SUCCESS"
    SUCCESS = "SUCCESS"
    CREATE_TASK_FAILED = "CREATE_TASK_FAILED"
    GENERATE_AUDIO_FAILED = "GENERATE_AUDIO_FAILED"
    CALLBACK_EXCEPTION = "CALLBACK_EXCEPTION"
    SENSITIVE_WORD_ERROR = "SENSITIVE_WORD_ERROR"

    @property
    def is_terminal(self) -> bool:
        """True for SUCCESS and every failure status."""
        return self not in (TaskStatus.PENDING, TaskStatus.TEXT_SUCCESS,
                            TaskStatus.FIRST_SUCCESS)

    @property
    def is_failure(self) -> bool:
        """True for the four failure statuses."""
        return self.is_terminal and self is not TaskStatus.SUCCESS

    @property
    def rank(self) -> int:
        """Order of progress, so out-of-order reports never move a task backwards."""
        return _PROGRESS.get(self.value, 3)


_PROGRESS = {"PENDING": 0, "TEXT_SUCCESS": 1, "FIRST_SUCCESS": 2}


@attrs.frozen
class Track:
    """One generated track of a Suno task (camelCase in record-info, snake_case in callbacks)."""

    id: str
    audio_url: str | None = None
    stream_audio_url: str | None = None
    image_url: str | None = None
    source_audio_url: str | None = None
    source_stream_audio_url: str | None = None
    source_image_url: str | None = None
    prompt: str | None = None
    model_name: str | None = None
    title: str | None = None
    tags: str | None = None
    create_time: dt.datetime | None = None
    duration: float | None = None

    def _suno(self) -> Downloader:
        from ._errors import ConfigurationError

        raise ConfigurationError(
            "this Track is not tied to a session (it was parsed, not returned by a task); "
            "use 'await session.suno.download(track, destination)'")

    async def download(self, destination: str | os.PathLike[str], *, overwrite: bool = True,
                       max_bytes: int | None = None, timeout: float | None = None
                       ) -> DownloadResult:
        """Download this track's audio to ``destination`` (atomically, resuming if cut off).

        Only tracks returned by a task of a session know that session; for any other track
        use ``session.suno.download(track, destination)``, which takes the same arguments.

        Raises:
            ConfigurationError: the track is not tied to a session.
            DownloadError: the URL is refused, the answer is not audio, or too large.
        """
        return await self._suno().download(self, destination, overwrite=overwrite,
                                           max_bytes=max_bytes, timeout=timeout)


@attrs.frozen
class TaskRecord:
    """A Suno task as ``record-info`` reports it.

    Attributes:
        task_id: The task id.
        status: Its status.
        tracks: The generated tracks (two when complete, fewer while in progress).
        operation_type: ``generate``, ``extend``, ``upload_cover``, ... when given.
        error_code: The service's ``errorCode`` on failure.
        error_message: The service's ``errorMessage`` on failure.
        create_time: When the task was created.
        raw_status: The status string exactly as sent; differs from ``status`` only for a
            status this version does not know, which is treated as still pending.
    """

    task_id: str
    status: TaskStatus
    raw_status: str = ""
    tracks: tuple[Track, ...] = ()
    type: str | None = None
    operation_type: str | None = None
    parent_music_id: str | None = None
    error_code: int | None = None
    error_message: str | None = None
    create_time: dt.datetime | None = None


class CallbackType(enum.StrEnum):
    """Stage of a Suno callback."""

    TEXT = "text"
    FIRST = "first"
    COMPLETE = "complete"
    ERROR = "error"


@attrs.frozen
class CallbackEvent:
    """A callback body Suno POSTed to ``callBackUrl``.

    Attributes:
        task_id: The task the callback is about.
        callback_type: Its stage.
        code: The callback's ``code`` (200 on success).
        msg: The callback's ``msg``.
        tracks: The tracks so far (empty on ``error``).
    """

    task_id: str
    callback_type: CallbackType
    code: int = 200
    msg: str = ""
    tracks: tuple[Track, ...] = ()


@attrs.frozen
class UploadedFile:
    """A file stored by Suno's File Upload API; pass `download_url` as ``upload_url``.

    The service deletes uploads after 3 days: keep `uploaded_at` to know when to redo it.
    """

    download_url: str
    file_name: str | None = None
    file_path: str | None = None
    file_size: int | None = None
    mime_type: str | None = None
    uploaded_at: dt.datetime | None = None

    @property
    def expires_at(self) -> dt.datetime | None:
        """When the service deletes the file (`UPLOAD_RETENTION` after the upload)."""
        return None if self.uploaded_at is None else self.uploaded_at + UPLOAD_RETENTION

    def is_expired(self, *, now: dt.datetime | None = None, margin: dt.timedelta = dt.timedelta(
            hours=1)) -> bool:
        """Whether the file is gone (or will be within ``margin``); unknown age counts as gone."""
        expires = self.expires_at
        if expires is None:
            return True
        return (now or dt.datetime.now(dt.UTC)) + margin >= expires


#: How long Suno's File Upload API keeps a file.
UPLOAD_RETENTION = dt.timedelta(days=3)


@attrs.frozen
class TaskResult:
    """A finished Suno task: its tracks (two for Add Instrumental).

    Attributes:
        task_id: The task.
        tracks: The generated tracks; ``await result.tracks[0].download(path)`` fetches one.
        status: ``SUCCESS``.
        source: How the end was learnt: ``"poll"`` (record-info) or ``"callback"``.
        record: The last record-info answer, when the end was learnt by polling.
    """

    task_id: str
    tracks: tuple[Track, ...]
    status: TaskStatus = TaskStatus.SUCCESS
    source: str = "poll"
    record: TaskRecord | None = None

    async def download_all(self, folder: str | os.PathLike[str], *, overwrite: bool = True,
                           timeout: float | None = None) -> tuple[DownloadResult, ...]:
        """Download every track into ``folder`` concurrently (see ``SunoClient.download_all``).

        Raises:
            ConfigurationError: the result is not tied to a session.
        """
        if not self.tracks:
            return ()
        return await self.tracks[0]._suno().download_all(self, folder, overwrite=overwrite,
                                                         timeout=timeout)


@attrs.frozen
class DownloadResult:
    """A downloaded track.

    Attributes:
        path: Where the audio now is (complete: it was renamed into place).
        bytes_written: Its size.
        sha256: Hex SHA-256 of the content.
        url: The URL it came from (after redirects), without its query string.
        content_type: The ``Content-Type`` the server gave.
        track_id: The track's id, when downloading a track.
        resumes: How many times the transfer was resumed with a Range request.
    """

    path: Path
    bytes_written: int
    sha256: str
    url: str
    content_type: str | None = None
    track_id: str | None = None
    resumes: int = 0
