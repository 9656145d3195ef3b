"""Following a Suno generation task: ``SunoTask``, a typed view of the one task model.

The waiting, polling, callbacks and deadlines are `aiomusic.tasks.Task`'s (see there for the
rules: polls are free, callbacks are hints confirmed by ``record-info``). This module adds what
Suno users expect of a generation task: its `TaskStatus`, its ``record-info`` `TaskRecord`,
and tracks that can download themselves.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Protocol

import attrs

from .._core._models import (
    Downloader,
    TaskRecord,
    TaskResult,
    TaskStatus,
    Track,
    UploadedFile,
)
from .._core._task import PollSchedule, TaskSnapshot
from ..tasks import HintSource, Task
from ._ops import MUSIC_TASK

if TYPE_CHECKING:
    from .._core._retry import RetryPolicy
    from .._core._transport import Transport
    from ..callbacks import CallbackReceiver

__all__ = ["BoundTrack", "PollSchedule", "SunoTask", "hints_of"]


class _Client(Downloader, Protocol):
    """What a task needs of the Suno client that made it (a protocol, so this module does
    not import the client, which imports it)."""

    _session: Transport
    poll_schedule: PollSchedule

    @property
    def receiver(self) -> CallbackReceiver | None: ...


@attrs.frozen
class BoundTrack(Track):
    """A [`Track`][aiomusic.Track] that knows its session, so ``await track.download(path)``."""

    _client: Downloader | None = attrs.field(default=None, kw_only=True, alias="client",
                                             eq=False, repr=False)

    def _suno(self) -> Downloader:
        if self._client is None:
            return super()._suno()
        return self._client


def bind(tracks: tuple[Track, ...], client: Downloader) -> tuple[Track, ...]:
    """Copies of ``tracks`` that can download themselves through ``client``."""
    return tuple(BoundTrack(**attrs.asdict(t, recurse=False, filter=_public), client=client)
                 for t in tracks)


def _public(attribute: attrs.Attribute[object], _value: object) -> bool:
    return not attribute.name.startswith("_")


class _Hints(HintSource):
    """The receiver's callbacks (of any Suno endpoint), as hints for the task model."""

    def __init__(self, receiver: CallbackReceiver) -> None:
        self._receiver = receiver

    def hint(self, task_id: str) -> TaskSnapshot | None:
        # every endpoint's callbacks, kept by the receiver as snapshots (hints)
        return self._receiver.snapshot(task_id)

    def _subscribe(self, task_id: str) -> object:
        return self._receiver._subscribe(task_id)

    def _unsubscribe(self, task_id: str, waker: object) -> None:
        self._receiver._unsubscribe(task_id, waker)  # type: ignore[arg-type]


class _HasReceiver(Protocol):
    @property
    def receiver(self) -> CallbackReceiver | None: ...


def hints_of(client: _HasReceiver) -> Callable[[], HintSource | None]:
    """Where a task of ``client`` hears callbacks: its attached receiver, if any."""

    def hints() -> HintSource | None:
        receiver = client.receiver
        return None if receiver is None else _Hints(receiver)

    return hints


class SunoTask:
    """A submitted generation task (Add Instrumental, ...): wait for it, watch it, look it up.

    Get one from `SunoClient.add_instrumental()`, or resume one from its id alone with
    `SunoClient.task()` (after a restart, say).

    Attributes:
        task_id: The service's task id.
        upload: The uploaded source file, when a local file was uploaded for this task (its
            ``uploaded_at`` tells when the service deletes it: 3 days later).
        submitted_at: When this process submitted it (``None`` for a resumed task).
    """

    def __init__(self, client: _Client, task_id: str, *, upload: UploadedFile | None = None,
                 submitted: bool = False) -> None:
        self._client = client
        self._task = Task(client._session, MUSIC_TASK, task_id, submitted=submitted,
                          hints=hints_of(client))
        self.task_id = self._task.task_id
        self.upload = upload
        self.submitted_at: dt.datetime | None = self._task.submitted_at
        self._made: TaskResult | None = None

    def __repr__(self) -> str:
        status = self.status
        return f"<SunoTask {self.task_id} {status.value if status else '?'}>"

    @property
    def status(self) -> TaskStatus | None:
        """The latest status known (``None`` for a resumed task not looked up yet)."""
        return _status(self._task.snapshot)

    @property
    def record(self) -> TaskRecord | None:
        """The latest ``record-info`` answer, if the task was looked up."""
        snap = self._task.last_status
        return snap.record if snap is not None and isinstance(snap.record, TaskRecord) else None

    @property
    def tracks(self) -> tuple[Track, ...]:
        """The tracks known so far (bound to the session, so they can download)."""
        snap = self._task.snapshot
        if snap is None:
            return ()
        if isinstance(snap.record, TaskRecord):
            return bind(snap.record.tracks, self._client)
        return bind(tuple(Track(id=a.name, audio_url=a.url, title=a.title,
                                duration=a.duration) for a in snap.assets), self._client)

    @property
    def result(self) -> TaskResult | None:
        """The result, once the task succeeded (confirmed by ``record-info``)."""
        done = self._task._done
        return None if done is None else self._result(done)

    def _result(self, done: TaskSnapshot) -> TaskResult:
        if self._made is None:  # one result object, whoever asks
            record = done.record if isinstance(done.record, TaskRecord) else None
            status = record.status if record is not None else TaskStatus.SUCCESS
            self._made = TaskResult(task_id=self.task_id, tracks=self.tracks, status=status,
                                    source=self._task.learnt_by, record=record)
        return self._made

    async def refresh(self, *, timeout: float | None = None,
                      retry: RetryPolicy | None = None) -> TaskRecord:
        """Look the task up now (``record-info``, in the poll lane) and return the record.

        Raises:
            BadRequestError: the service does not know the task id (Suno answers 400).
            AiomusicError: any other failure, typed.
        """
        snap = await self._task.refresh(timeout=timeout, retry=retry)
        assert isinstance(snap.record, TaskRecord)
        return snap.record

    async def wait(self, *, timeout: float | None = 900.0,
                   poll: PollSchedule | None = None) -> TaskResult:
        """Wait until the task ends and return its tracks.

        Args:
            timeout: Seconds to wait in all (``None``: no limit). Tasks take 2-4 minutes.
                When it passes, the task goes on at the service: resume it later with
                ``session.suno.task(task_id)``.
            poll: The polling schedule (default: the client's ``poll_schedule``).

        Raises:
            TaskFailedError: the task ended in a failure status.
            DeadlineExceededError: ``timeout`` passed first.
            AiomusicError: polling failed in a way that retrying cannot fix (the message
                says how to resume the task).
        """
        done = await self._task.wait(timeout=_limit(timeout),
                                     poll=poll or self._client.poll_schedule)
        return self._result(done)

    async def watch(self, *, timeout: float | None = 900.0,
                    poll: PollSchedule | None = None) -> AsyncIterator[TaskStatus]:
        """Yield the task's status each time it moves on, ending with a terminal one.

        The first item is the status known now (``PENDING`` after a submission). Stages may
        be skipped (Suno can go straight to ``SUCCESS``) but never repeat or go backwards.
        A failure status is yielded, then [`TaskFailedError`][aiomusic.TaskFailedError] is
        raised.
        """
        async for snap in self._task.watch(timeout=_limit(timeout),
                                           poll=poll or self._client.poll_schedule):
            status = _status(snap)
            assert status is not None
            yield status


def _status(snap: TaskSnapshot | None) -> TaskStatus | None:
    if snap is None:
        return None
    if isinstance(snap.record, TaskRecord):
        return snap.record.status
    try:
        return TaskStatus(snap.status)
    except ValueError:  # a failure callback ("error") names no status
        return TaskStatus.GENERATE_AUDIO_FAILED


def _limit(timeout: float | None) -> float:
    return float("inf") if timeout is None else timeout
