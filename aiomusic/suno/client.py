"""The Suno side of a session: ``session.suno``."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import attrs

from .._core._errors import AiomusicError, ConfigurationError, DownloadError, InputError
from .._core._events import Progress
from .._core._models import DownloadResult, TaskResult, Track, UploadedFile
from .._io._download import audio_suffix, download_url, safe_filename
from .._io._preflight import check_audio_source
from .._io._sources import AudioSource, local_source
from . import _protocol as proto
from ._followups import FollowUpMethods
from ._generate import GenerationMethods
from ._tasks import PollSchedule, SunoTask

if TYPE_CHECKING:
    from .._core._retry import RetryPolicy
    from .._core._transport import Transport
    from ..callbacks import CallbackReceiver

__all__ = ["SunoClient"]

_PLACEHOLDER_URL = "https://upload.invalid/pending"


class SunoClient(GenerationMethods, FollowUpMethods):
    """Suno API calls of one [`MusicSession`][aiomusic.MusicSession] (the generation family,
    follow-ups, lyrics and personas: ``_generate.py``, ``_followups.py``).

    Attributes:
        poll_schedule: How tasks poll ``record-info`` unless a call says otherwise.
    """

    def __init__(self, session: Transport) -> None:
        self._session = session
        self.poll_schedule = PollSchedule()
        self._receiver: CallbackReceiver | None = None
        self._receiver_url: str | None = None

    # -- configuration ---------------------------------------------------------------------

    def attach_receiver(self, receiver: CallbackReceiver, public_url: str) -> str:
        """Follow tasks by callback too: submissions default to the receiver's URL, and
        waiting tasks wake as soon as it receives their callbacks (polling goes on as a
        fallback, since Suno stops calling back after 3 failed attempts).

        Args:
            receiver: A `CallbackReceiver` mounted in your app.
            public_url: The public URL of its mount point (``https://example.com/suno/cb``).

        Returns:
            The ``callBackUrl`` submissions will use (it contains the secret token).
        """
        url = proto.check_http_url(receiver.callback_url(public_url), field="public_url")
        self._receiver, self._receiver_url = receiver, url
        return url

    @property
    def receiver(self) -> CallbackReceiver | None:
        """The attached callback receiver, if any."""
        return self._receiver

    def _callback_url(self, explicit: str | None) -> str:
        url = explicit or self._receiver_url or self._session.suno_callback_url
        if url is None:
            raise ConfigurationError(
                "Suno requires a callBackUrl on every submission, even if you only poll. "
                "Pass callback_url=... to add_instrumental(), set "
                "MusicSession(suno_callback_url=...) (any endpoint answering 200, e.g. a "
                "no-op route), or mount a CallbackReceiver and call "
                "session.suno.attach_receiver(receiver, public_url)")
        return url

    # -- calls -------------------------------------------------------------------------------

    async def get_credits(self, *, timeout: float | None = None,
                          retry: RetryPolicy | None = None) -> int:
        """The account's remaining credits.

        Raises:
            AuthenticationError: the key was refused.
            AiomusicError: any other failure, typed.
        """
        body = await self._session._send(proto.credits_call(), timeout=timeout, retry=retry)
        return proto.parse_credits(body)

    async def upload(self, source: AudioSource, *, upload_path: str = "aiomusic",
                     name: str | None = None, timeout: float | None = None,
                     retry: RetryPolicy | None = None) -> UploadedFile:
        """Upload a local file to Suno's File Upload API (streamed; free; kept 3 days).

        Args:
            source: A path, the bytes, a seekable binary file object or an async iterable.
            upload_path: The folder on the upload host.
            name: The file name to use (made unique, since the same name overwrites).

        Returns:
            The stored file; pass its ``download_url`` as ``upload_url``.

        Raises:
            InputError: the source cannot be read.
            APIError: the upload host refused it.
        """
        return await self._upload(source, upload_path=upload_path, name=name, timeout=timeout,
                                  retry=retry)

    async def _upload(self, source: AudioSource, *, upload_path: str = "aiomusic",
                      name: str | None = None, timeout: float | None = None,
                      retry: RetryPolicy | None = None, audio: bool = False) -> UploadedFile:
        """`upload()`; with ``audio``, the content must be audio (checked before sending)."""
        async with local_source(source, name=name) as local:
            if audio:
                await anyio.to_thread.run_sync(
                    lambda: check_audio_source(local.probe, name=local.name))
            head = await anyio.to_thread.run_sync(_head, local.open)
            mime_type = proto.sniff_mime(head, local.name)
            file_name = proto.upload_file_name(local.name, mime_type)
            call = proto.stream_upload_call(opener=local.open, file_name=file_name,
                                            upload_path=upload_path, mime_type=mime_type)
            self._session.emit(Progress(operation="suno.upload", key=file_name,
                                        stage="uploading"))
            body = await self._session._send(call, timeout=timeout, retry=retry)
        uploaded = proto.parse_upload(body)
        if uploaded.uploaded_at is None:
            uploaded = attrs.evolve(uploaded, uploaded_at=dt.datetime.now(dt.UTC))
        self._session.emit(Progress(operation="suno.upload", key=file_name, stage="uploaded",
                                    done=uploaded.file_size, total=uploaded.file_size))
        return uploaded

    async def add_instrumental(
        self,
        source: str | AudioSource,
        *,
        title: str,
        tags: str,
        negative_tags: str,
        callback_url: str | None = None,
        vocal_gender: str | None = None,
        style_weight: float | None = None,
        weirdness_constraint: float | None = None,
        audio_weight: float | None = None,
        model: str = proto.DEFAULT_MODEL,
        upload_path: str = "aiomusic",
        timeout: float | None = None,
        retry: RetryPolicy | None = None,
    ) -> SunoTask:
        """Submit an Add Instrumental task (paid) and return its handle.

        Args:
            source: The audio (usually a vocal stem): an http(s) URL the service can fetch,
                or a local path, bytes or file object, which is uploaded first through the
                File Upload API.
            title: The track's title (1-100 characters).
            tags: Styles, moods and instruments wanted.
            negative_tags: Styles to avoid.
            callback_url: Where Suno POSTs the stages (else the attached receiver's URL,
                else ``MusicSession(suno_callback_url=...)``).
            vocal_gender: ``"m"`` or ``"f"`` (a hint).
            style_weight: 0-1 in steps of 0.01.
            weirdness_constraint: 0-1 in steps of 0.01.
            audio_weight: 0-1 in steps of 0.01.
            model: ``"V4_5PLUS"`` (default) or ``"V5"``; newer ``V...`` names pass through.
            upload_path: The folder on the upload host, for local sources.
            timeout: Total seconds for the upload and the submission.
            retry: Overrides the session's retry policy. The submission is paid: after an
                ambiguous failure it is not re-sent unless ``resubmit_unknown=True``.

        Raises:
            InputError: an argument is invalid (nothing was sent or uploaded).
            AudioValidationError: a local source is not audio, by its content (nothing was
                sent or uploaded).
            ConfigurationError: no callback URL anywhere.
            InsufficientCreditsError: the account is out of credits (code 429; not retried).
            SubmissionUnknownError: the submission may have been taken without an answer.
            APIError: the service refused it.
        """
        hook = self._callback_url(callback_url)

        def build(upload_url: str) -> dict[str, object]:
            return proto.check_add_instrumental(
                upload_url=upload_url, title=title, tags=tags, negative_tags=negative_tags,
                callback_url=hook, vocal_gender=vocal_gender, style_weight=style_weight,
                weirdness_constraint=weirdness_constraint, audio_weight=audio_weight,
                model=model)

        uploaded: UploadedFile | None = None
        if isinstance(source, str) and "://" in source:
            payload = build(source)
        else:
            build(_PLACEHOLDER_URL)  # check everything before spending an upload on it
            uploaded = await self._upload(source, upload_path=upload_path, timeout=timeout,
                                          retry=retry, audio=True)
            payload = build(uploaded.download_url)
        # read within the attempt: a submission answered without a usable task id has an
        # unknown fate (it may have been taken), like any unreadable answer to a paid call
        task_id = await self._session._submit(proto.add_instrumental_call(payload),
                                              proto.parse_submission, timeout=timeout,
                                              retry=retry)
        task = SunoTask(self, task_id, upload=uploaded, submitted=True)
        self._session.emit(Progress(operation="suno.add_instrumental", key=task.task_id,
                                    stage="submitted"))
        return task

    def task(self, task_id: str) -> SunoTask:
        """A handle on an existing task, from its id alone (e.g. after a restart).

        Its first `wait()` or `watch()` looks it up at once.
        """
        given: object = task_id
        if not isinstance(given, str) or not given.strip():
            raise InputError(f"task_id must be a non-empty string, got {task_id!r}",
                             field="task_id")
        return SunoTask(self, task_id.strip())

    # -- downloads ---------------------------------------------------------------------------

    async def download(self, track: Track, destination: str | os.PathLike[str], *,
                       overwrite: bool = True, max_bytes: int | None = None,
                       timeout: float | None = None, retry: RetryPolicy | None = None
                       ) -> DownloadResult:
        """Download a track's audio (``audio_url``) to ``destination``.

        The file is streamed to a temporary file beside ``destination`` and renamed into place
        only when complete; a dropped connection resumes with an HTTP Range request. Only https
        URLs are fetched (plain http only for ``MusicSession(allow_http_hosts=...)``), also
        after each of at most 5 redirects.

        Args:
            max_bytes: The largest file accepted (default 512 MiB).
            timeout: Total seconds, resumes included.

        Raises:
            DownloadError: no audio URL yet, refused URL, not audio, too large, or cut off.
            FileNotFoundError: the destination's folder does not exist.
        """
        if not track.audio_url:
            raise DownloadError(f"track {track.id} has no audio URL yet (the task is not "
                                "complete)", url="")
        return await download_url(self._session, track.audio_url, destination, key=track.id,
                                  track_id=track.id, overwrite=overwrite, max_bytes=max_bytes,
                                  timeout=timeout, retry=retry)

    async def download_all(self, result: TaskResult, folder: str | os.PathLike[str], *,
                           overwrite: bool = True, max_bytes: int | None = None,
                           timeout: float | None = None, retry: RetryPolicy | None = None
                           ) -> tuple[DownloadResult, ...]:
        """Download every track of ``result`` into ``folder`` concurrently (transfer lane).

        Files are named ``<title> - <track id>.<ext>``, made safe for any file system. The
        folder is created if it does not exist. Every download runs to its end; then the
        first failure, if any, is raised (the tracks that succeeded stay on disk).
        """
        base = Path(folder)
        await anyio.Path(base).mkdir(parents=True, exist_ok=True)
        names: list[str] = []
        for track in result.tracks:
            stem = safe_filename(f"{track.title or result.task_id} - {track.id}",
                                 fallback=safe_filename(track.id))
            name = stem + audio_suffix(track.audio_url)
            while name in names:
                name = f"{stem}-{len(names) + 1}{audio_suffix(track.audio_url)}"
            names.append(name)
        done: list[DownloadResult | None] = [None] * len(names)
        errors: list[BaseException] = []

        async def one(index: int) -> None:
            try:
                done[index] = await self.download(result.tracks[index], base / names[index],
                                                   overwrite=overwrite, max_bytes=max_bytes,
                                                   timeout=timeout, retry=retry)
            except (AiomusicError, OSError) as exc:
                errors.append(exc)

        async with anyio.create_task_group() as group:
            for index in range(len(names)):
                group.start_soon(one, index)
        if errors:
            raise errors[0]
        return tuple(d for d in done if d is not None)


def _head(opener: proto.Opener) -> bytes:
    with opener() as handle:
        return handle.read(16)
