"""Handles on Suno's follow-up and lyrics tasks: typed views of the one task model.

Each wraps an `aiomusic.tasks.Task` (polls are free, callbacks are hints confirmed by the
task's own ``record-info``) and returns the kind's typed record: `StemsRecord`, `WavRecord`,
`MidiRecord`, `Mp4Record`, `LyricsRecord`. Downloads use only the URLs the status endpoint
confirmed.

Stems land in one folder **atomically**: every stem is downloaded into a temporary folder
beside the destination, and that folder is renamed into place once all of them are complete.
A reader (or a batch resumed after a crash) therefore sees no folder or the whole set, never
some stems without the others; a per-file rename plus a completion marker would leave a
half-filled folder visible and every reader would have to know to check the marker.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar

import anyio
import attrs

from .._core._errors import AiomusicError
from .._core._models import DownloadResult
from .._core._task import PollSchedule, TaskSnapshot, TaskSpec
from .._io._download import audio_suffix, download_url, safe_filename
from .._io._files import AtomicFile
from .._io._folders import atomic_folder
from ..tasks import Task
from . import _derived as der
from . import _records as rec
from . import _specs as specs
from ._tasks import hints_of

if TYPE_CHECKING:
    from .._core._retry import RetryPolicy
    from .._core._transport import Transport
    from ..callbacks import CallbackReceiver

__all__ = ["FollowUp", "LyricsTask", "MidiTask", "StemFiles", "StemsTask", "VideoTask",
           "WavTask"]

R = TypeVar("R", bound=rec.FollowUpRecord)


class _Client(Protocol):
    """What a handle needs of the Suno client that made it."""

    _session: Transport
    poll_schedule: PollSchedule

    @property
    def receiver(self) -> CallbackReceiver | None: ...


class FollowUp(Generic[R]):
    """A submitted follow-up or lyrics task: wait for it, watch it, or look it up.

    Attributes:
        task_id: The service's id of this task.
        source: The ``(task_id, audio_id)`` it was made from, when this process knows it.
        submitted_at: When this process submitted it (``None`` for a resumed task).
    """

    spec: ClassVar[TaskSpec]

    def __init__(self, client: _Client, task_id: str, *, submitted: bool = False,
                 source: tuple[str, str | None] | None = None) -> None:
        self._client = client
        self._task = Task(client._session, self.spec, task_id, submitted=submitted,
                          hints=hints_of(client))
        self.task_id = self._task.task_id
        self.source = source
        self.submitted_at: dt.datetime | None = self._task.submitted_at

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.task_id} {self.status or '?'}>"

    @property
    def snapshot(self) -> TaskSnapshot | None:
        """The latest snapshot (``None`` for a resumed task not looked up yet)."""
        return self._task.snapshot

    @property
    def status(self) -> str | None:
        """The service's own state string, as last reported."""
        return self._task.status

    @property
    def record(self) -> R | None:
        """The latest record the status endpoint gave, if the task was looked up."""
        snap = self._task.last_status
        return self._typed(snap) if snap is not None else None

    def _typed(self, snap: TaskSnapshot) -> R:
        record = snap.record
        assert isinstance(record, rec.FollowUpRecord)
        return record  # type: ignore[return-value]  # each spec reads its own record type

    async def refresh(self, *, timeout: float | None = None,
                      retry: RetryPolicy | None = None) -> R:
        """Ask the task's ``record-info`` now (poll lane) and return its record.

        Raises:
            BadRequestError: the service does not know the task (or forgot it: records are
                kept 14 days).
            AiomusicError: any other failure, typed.
        """
        return self._typed(await self._task.refresh(timeout=timeout, retry=retry))

    async def wait(self, *, timeout: float | None = None,
                   poll: PollSchedule | None = None) -> R:
        """Wait until the task ends; return its record (confirmed by its ``record-info``).

        Args:
            timeout: Seconds to wait in all (default: the kind's; ``math.inf``: no limit).
                When it passes, the task goes on at the service: resume it with
                ``session.suno.follow(task_id, kind=...)``.
            poll: The poll schedule (default: the client's ``poll_schedule``).

        Raises:
            TaskFailedError: the task ended in a failure state.
            DeadlineExceededError: ``timeout`` passed first.
        """
        done = await self._task.wait(timeout=timeout, poll=poll or self._client.poll_schedule)
        return self._typed(done)

    async def watch(self, *, timeout: float | None = None,
                    poll: PollSchedule | None = None) -> AsyncIterator[TaskSnapshot]:
        """Yield a snapshot each time the task moves on, ending with a terminal one (a
        failure is yielded, then `TaskFailedError` is raised)."""
        async for snap in self._task.watch(timeout=timeout,
                                           poll=poll or self._client.poll_schedule):
            yield snap

    async def _file(self, url: str | None, destination: str | os.PathLike[str], *,
                    overwrite: bool, max_bytes: int | None, timeout: float | None
                    ) -> DownloadResult:
        assert url is not None, "a success names its file (the task model checks)"
        return await download_url(self._client._session, url, destination, key=self.task_id,
                                  track_id=self.task_id, overwrite=overwrite,
                                  max_bytes=max_bytes, timeout=timeout)


class _OneFile(FollowUp[R]):
    async def download(self, destination: str | os.PathLike[str], *, overwrite: bool = True,
                       max_bytes: int | None = None, timeout: float | None = None
                       ) -> DownloadResult:
        """Wait for the task if needed, then download its file to ``destination``
        (atomically, resuming if cut off).

        Raises:
            TaskFailedError: the task failed.
            DownloadError: the file could not be fetched (gone after 14 days, too large...).
        """
        record = await self.wait()
        url: str | None = getattr(record, "url", None)
        return await self._file(url, destination, overwrite=overwrite, max_bytes=max_bytes,
                                timeout=timeout)


class WavTask(_OneFile[rec.WavRecord]):
    """A WAV conversion: ``await task.download("song.wav")``."""

    spec = specs.WAV_TASK


class VideoTask(_OneFile[rec.Mp4Record]):
    """A music video: ``await task.download("song.mp4")`` (the service keeps it 15 days)."""

    spec = specs.MP4_TASK


class LyricsTask(FollowUp[rec.LyricsRecord]):
    """A lyrics task: ``(await task.wait()).variants`` holds the lyrics."""

    spec = specs.LYRICS_TASK


class MidiTask(FollowUp[rec.MidiRecord]):
    """MIDI from a separated track: ``(await task.wait()).instruments``, or ``save()``."""

    spec = specs.MIDI_TASK

    async def save(self, path: str | os.PathLike[str], *, overwrite: bool = True) -> Path:
        """Wait for the notes, then write them as a Standard MIDI File (atomically)."""
        record = await self.wait()
        data = der.midi_file(record.instruments)
        async with AtomicFile(path, overwrite=overwrite) as out:
            await out.write(data)
        return Path(path)


@attrs.frozen
class StemFiles:
    """The stems of a separation, downloaded into one folder.

    Attributes:
        task_id: The separation task.
        folder: The folder holding them (complete: it was renamed into place).
        files: Stem name (``vocals``, ``drums``...) to its downloaded file.
    """

    task_id: str
    folder: Path
    files: Mapping[str, DownloadResult]

    @property
    def paths(self) -> dict[str, Path]:
        """Stem name to file path."""
        return {name: result.path for name, result in self.files.items()}


class StemsTask(FollowUp[rec.StemsRecord]):
    """A vocal removal or stem split: ``await task.download("stems/")``."""

    spec = specs.STEMS_TASK

    async def download(self, folder: str | os.PathLike[str], *, overwrite: bool = False,
                       max_bytes: int | None = None, timeout: float | None = None
                       ) -> StemFiles:
        """Wait for the task if needed, then download every stem into ``folder``
        (``vocals.mp3``, ``instrumental.mp3``...), all or nothing (see the module).

        Args:
            folder: The folder to create (its parent must exist).
            overwrite: Whether an existing ``folder`` is replaced (once the new set is
                complete).

        Raises:
            FileExistsError: ``folder`` exists and ``overwrite`` is false (checked first).
            TaskFailedError: the separation failed.
            DownloadError: a stem could not be fetched (then nothing is left behind).
        """
        target = Path(folder)
        if not overwrite and await anyio.Path(target).exists():
            raise FileExistsError(f"{target} exists; pass overwrite=True to replace it")
        record = await self.wait()
        files: dict[str, DownloadResult] = {}
        errors: list[Exception] = []
        async with atomic_folder(target, overwrite=overwrite) as staging:
            async with anyio.create_task_group() as group:
                for name, url in record.stems.items():
                    group.start_soon(self._stem, name, url, staging, files, errors,
                                     group.cancel_scope, max_bytes, timeout)
            if errors:
                raise errors[0]  # the first failure stopped the others: all or nothing
        moved = {name: attrs.evolve(result, path=target / result.path.name)
                 for name, result in files.items()}
        return StemFiles(task_id=self.task_id, folder=target,
                         files={name: moved[name] for name in record.stems})

    async def _stem(self, name: str, url: str, staging: Path,
                    files: dict[str, DownloadResult], errors: list[Exception],
                    scope: anyio.CancelScope, max_bytes: int | None,
                    timeout: float | None) -> None:
        path = staging / (safe_filename(name, fallback="stem") + audio_suffix(url))
        try:
            files[name] = await self._file(url, path, overwrite=False, max_bytes=max_bytes,
                                           timeout=timeout)
        except (AiomusicError, OSError) as exc:
            errors.append(exc)
            scope.cancel()


#: The handle class of each kind of follow-up (``session.suno.follow(task_id, kind=...)``).
HANDLES: Mapping[str, type[FollowUp[Any]]] = {
    "stems": StemsTask, "wav": WavTask, "midi": MidiTask, "mp4": VideoTask,
    "lyrics": LyricsTask}
