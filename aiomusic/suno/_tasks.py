"""Following a Suno task: polling record-info on a backoff schedule, woken by callbacks.

A [`SunoTask`][aiomusic.SunoTask] learns its status from two sources, whichever comes first: polls
of
``record-info`` in the session's *poll* lane (so thousands of waiting tasks share the key's
budget), and callbacks delivered to an attached `CallbackReceiver`.
Both feed one monotonic state: a report of an earlier stage never moves a task backwards.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import anyio
import attrs

from .._core._errors import AiomusicError, DeadlineExceededError, TaskFailedError
from .._core._events import Progress
from .._core._log import logger
from .._core._models import (
    CallbackEvent,
    CallbackType,
    TaskRecord,
    TaskResult,
    TaskStatus,
    Track,
    UploadedFile,
)
from .._core._task import PollSchedule
from ..callbacks import is_failure
from . import _protocol as proto

if TYPE_CHECKING:
    from .._core._retry import RetryPolicy
    from ..callbacks import CallbackReceiver, _Waker
    from .client import SunoClient

__all__ = ["BoundTrack", "PollSchedule", "SunoTask"]

_CALLBACK_STATUS = {CallbackType.TEXT: TaskStatus.TEXT_SUCCESS,
                    CallbackType.FIRST: TaskStatus.FIRST_SUCCESS,
                    CallbackType.COMPLETE: TaskStatus.SUCCESS}


@attrs.frozen
class BoundTrack(Track):
    """A [`Track`][aiomusic.Track] that knows its session, so ``await track.download(path)``."""

    _client: SunoClient | None = attrs.field(default=None, kw_only=True, alias="client",
                                             eq=False, repr=False)

    def _suno(self) -> SunoClient:
        if self._client is None:
            return super()._suno()
        return self._client


def bind(tracks: tuple[Track, ...], client: SunoClient) -> tuple[Track, ...]:
    """Copies of ``tracks`` that can download themselves through ``client``."""
    return tuple(BoundTrack(**attrs.asdict(t, recurse=False, filter=_public), client=client)
                 for t in tracks)


def _public(attribute: attrs.Attribute[object], _value: object) -> bool:
    return not attribute.name.startswith("_")


class SunoTask:
    """A submitted Add Instrumental task: wait for it, watch it, or look it up.

    Get one from `SunoClient.add_instrumental()`, or resume one from its id alone with
    `SunoClient.task()` (after a restart, say).

    Attributes:
        task_id: The service's task id.
        upload: The uploaded source file, when a local file was uploaded for this task (its
            ``uploaded_at`` tells when the service deletes it: 3 days later).
        submitted_at: When this process submitted it (``None`` for a resumed task).
    """

    def __init__(self, client: SunoClient, task_id: str, *, upload: UploadedFile | None = None,
                 submitted: bool = False) -> None:
        self._client = client
        self.task_id = task_id
        self.upload = upload
        self.submitted_at = dt.datetime.now(dt.UTC) if submitted else None
        self._status = TaskStatus.PENDING
        self._rank = 0 if submitted else -1  # -1: not known yet
        self._record: TaskRecord | None = None
        self._tracks: tuple[Track, ...] = ()
        self._result: TaskResult | None = None
        self._failure: TaskFailedError | None = None
        self._callback_error: CallbackEvent | None = None
        self._polls = 0
        self._next_poll: float | None = None
        self._immediate = not submitted

    def __repr__(self) -> str:
        return f"<SunoTask {self.task_id} {self._status.value if self._rank >= 0 else '?'}>"

    @property
    def status(self) -> TaskStatus | None:
        """The latest status known (``None`` for a resumed task not looked up yet)."""
        return self._status if self._rank >= 0 else None

    @property
    def record(self) -> TaskRecord | None:
        """The latest ``record-info`` answer, if the task was polled."""
        return self._record

    @property
    def tracks(self) -> tuple[Track, ...]:
        """The tracks known so far (bound to the session, so they can download)."""
        return self._tracks

    @property
    def result(self) -> TaskResult | None:
        """The result, once the task succeeded."""
        return self._result

    # -- learning ---------------------------------------------------------------------------

    def _moved(self, status: TaskStatus, tracks: tuple[Track, ...]) -> bool:
        if status.rank < self._rank or (status.rank == self._rank and
                                         (status.is_terminal or status is self._status)):
            if tracks and len(tracks) >= len(self._tracks) and not self._status.is_terminal:
                self._tracks = bind(tracks, self._client)
            return False
        self._status, self._rank = status, status.rank
        if tracks:
            self._tracks = bind(tracks, self._client)
        self._client._session.emit(Progress(operation="suno.task", key=self.task_id,
                                            stage=status.value))
        return True

    def _absorb_record(self, record: TaskRecord) -> None:
        self._record = record
        if not self._moved(record.status, record.tracks):
            return
        if record.status.is_failure:
            self._failure = _failed(self.task_id, record.status.value, record.error_code,
                                    record.error_message)
        elif record.status is TaskStatus.SUCCESS:
            self._result = TaskResult(task_id=self.task_id, tracks=self._tracks,
                                      source="poll", record=record)

    def _absorb_callback(self, receiver: CallbackReceiver) -> None:
        event = receiver.latest(self.task_id)
        if event is None or self._status.is_terminal:
            return
        if is_failure(event):
            self._callback_error = event
            return
        status = _CALLBACK_STATUS[event.callback_type]
        if self._moved(status, event.tracks) and status is TaskStatus.SUCCESS:
            self._result = TaskResult(task_id=self.task_id, tracks=self._tracks,
                                      source="callback")

    async def refresh(self, *, timeout: float | None = None,
                      retry: RetryPolicy | None = None) -> TaskRecord:
        """Look the task up now (``record-info``, in the poll lane) and return the record.

        Raises:
            BadRequestError: the service does not know the task id (Suno answers 400).
            AiomusicError: any other failure, typed.
        """
        session = self._client._session
        body = await session._send(proto.record_info_call(self.task_id), timeout=timeout,
                                   retry=retry)
        record = proto.parse_record(body, task_id=self.task_id)
        self._polls += 1
        self._absorb_record(record)
        return record

    # -- following --------------------------------------------------------------------------

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
            AiomusicError: polling failed in a way that retrying cannot fix.
        """
        schedule = poll or self._client.poll_schedule
        deadline = _deadline(timeout)
        while True:
            if self._failure is not None:
                raise self._failure
            if self._result is not None:
                return self._result
            await self._advance(schedule, deadline, timeout)

    async def watch(self, *, timeout: float | None = 900.0,
                    poll: PollSchedule | None = None) -> AsyncIterator[TaskStatus]:
        """Yield the task's status each time it moves on, ending with a terminal one.

        The first item is the status known now (``PENDING`` after a submission). Stages may
        be skipped (Suno can go straight to ``SUCCESS``) but never repeat or go backwards.
        A failure status is yielded, then [`TaskFailedError`][aiomusic.TaskFailedError] is raised.
        """
        schedule = poll or self._client.poll_schedule
        deadline = _deadline(timeout)
        shown = -1
        while True:
            if self._rank > shown:
                shown = self._rank
                yield self._status
            if self._failure is not None:
                raise self._failure
            if self._result is not None:
                return
            await self._advance(schedule, deadline, timeout)

    async def _advance(self, schedule: PollSchedule, deadline: float,
                       timeout: float | None) -> None:
        """Return once the task moved past its current rank, or ended."""
        receiver = self._client.receiver
        waker: _Waker | None = receiver._subscribe(self.task_id) if receiver else None
        start_rank = self._rank
        try:
            while True:
                if waker is not None:
                    waker.reset()
                if receiver is not None:
                    self._absorb_callback(receiver)
                if self._callback_error is not None and self._failure is None and \
                        not self._status.is_terminal:
                    await self._confirm_failure(deadline, timeout)
                if self._status.is_terminal or self._failure is not None or \
                        self._rank > start_rank:
                    return
                now = anyio.current_time()
                if self._next_poll is None:
                    self._next_poll = now if self._immediate else now + schedule.delay(0)
                if now >= self._next_poll:
                    await self._poll(deadline, timeout)
                    self._next_poll = anyio.current_time() + schedule.delay(self._polls)
                    continue
                if now >= deadline:
                    raise self._late(timeout)
                wake_at = min(self._next_poll, deadline)
                if waker is not None:
                    await waker.wait(wake_at - now)
                else:
                    await anyio.sleep(wake_at - now)
        finally:
            if receiver is not None and waker is not None:
                receiver._unsubscribe(self.task_id, waker)

    async def _poll(self, deadline: float, timeout: float | None) -> None:
        remaining = None if math.isinf(deadline) else deadline - anyio.current_time()
        if remaining is not None and remaining <= 0:
            raise self._late(timeout)
        try:
            await self.refresh(timeout=remaining)
        except DeadlineExceededError as exc:
            # the poll was cut off by the wait's deadline: say so in the caller's terms
            raise self._late(timeout) from exc
        except AiomusicError as error:
            if not error.retryable:
                raise
            # the retries of this poll are spent, but the task goes on: try at the next tick
            self._polls += 1
            logger.info("suno task %s: poll failed (%s); polling again later", self.task_id,
                        type(error).__name__)

    def _late(self, timeout: float | None) -> DeadlineExceededError:
        return DeadlineExceededError(
            f"Suno task {self.task_id} is still {self._status.value} after {timeout:g} s; it "
            f"goes on at the service: resume it later with session.suno.task({self.task_id!r})",
            timeout=timeout or 0.0)

    async def _confirm_failure(self, deadline: float, timeout: float | None) -> None:
        """An ``error`` callback does not name the status: ask record-info once."""
        event = self._callback_error
        assert event is not None
        try:
            await self._poll(deadline, timeout)
        except AiomusicError as error:
            logger.info("suno task %s: could not confirm a failure callback (%s)",
                        self.task_id, type(error).__name__)
        if self._failure is None and not self._status.is_terminal:
            # record-info does not (yet) show the failure: trust the callback
            self._failure = _failed(self.task_id, "error", event.code, event.msg or None)


def _failed(task_id: str, status: str, code: int | None, message: str | None
            ) -> TaskFailedError:
    said = f" (error {code}: {message})" if code is not None or message else ""
    return TaskFailedError(f"Suno task {task_id} failed with {status}{said}", task_id=task_id,
                           status=status, error_code=code, error_message=message)


def _deadline(timeout: float | None) -> float:
    if timeout is None:
        return math.inf
    if not math.isfinite(timeout) or timeout <= 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    return anyio.current_time() + timeout
