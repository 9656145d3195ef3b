"""The one task model: every operation followed by id, whatever the service.

A [`Task`][aiomusic.tasks.Task] learns where it is from two sources, whichever comes first:
polls of the service's status endpoint in the session's *poll* lane (so thousands of waiting
tasks share the key's budget), and callbacks delivered to an attached receiver. Both feed one
monotonic state: a report of an earlier stage never moves a task backwards.

Two rules keep money and files safe:

* **Polls are free.** A status answer that fails or cannot be read is asked again at the next
  tick, within the caller's deadline; only a run of failures gives up, with a message that
  names the task and says how to resume it. The paid task goes on at the service meanwhile.
* **Callbacks are hints.** A callback can wake a task early, but only the status endpoint
  decides that a task succeeded and which URLs it produced: a callback saying "complete" is
  confirmed by a status call before anything is downloaded. (A callback saying "failed" that
  the status endpoint cannot confirm either way is believed: failing costs nothing.)

Each service supplies only a `TaskSpec` (``aiomusic._core._task``): its status call and
readers. Nothing here knows a service.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import anyio

from ._core._errors import (
    AiomusicError,
    APIError,
    DeadlineExceededError,
    ResponseError,
    TaskFailedError,
)
from ._core._events import Progress
from ._core._log import logger
from ._core._task import Phase, PollSchedule, TaskSnapshot, TaskSpec

if TYPE_CHECKING:
    from ._core._retry import RetryPolicy
    from ._core._transport import Transport

__all__ = ["MAX_FAILED_POLLS", "HintSource", "Task"]

#: Failed status calls in a row after which waiting gives up (the task goes on).
MAX_FAILED_POLLS = 8
#: The first wait before asking again to confirm a callback the status endpoint does not show
#: yet (it may lag the callback by a moment); it doubles up to the poll schedule's maximum.
CONFIRM_DELAY = 1.0


class HintSource:
    """Where a task hears callbacks: ``hint(task_id)`` gives the latest as a snapshot, and
    ``subscribe``/``unsubscribe`` let a waiting task be woken (the callback receiver)."""

    def hint(self, task_id: str) -> TaskSnapshot | None:
        raise NotImplementedError

    def _subscribe(self, task_id: str) -> Any:
        raise NotImplementedError

    def _unsubscribe(self, task_id: str, waker: Any) -> None:
        raise NotImplementedError


class Task:
    """A submitted operation followed by id: wait for it, watch it, or look it up.

    Args:
        session: The session whose poll lane, retries and key the status calls use.
        spec: How this kind of task is followed.
        task_id: The service's id.
        submitted: Whether this process submitted it just now (then it is known to be
            pending); a task resumed by id is looked up at once instead.
        hints: Where callbacks arrive, if the service calls back and a receiver is attached.
    """

    def __init__(self, session: Transport, spec: TaskSpec, task_id: str, *,
                 submitted: bool = False, hints: Callable[[], HintSource | None] | None = None
                 ) -> None:
        given: object = task_id
        if not isinstance(given, str) or not given.strip():
            raise ValueError(f"task_id must be a non-empty string, got {task_id!r}")
        self._session = session
        self.spec = spec
        self.task_id = task_id.strip()
        self.submitted_at = dt.datetime.now(dt.UTC) if submitted else None
        self._hints = hints or (lambda: None)
        # A task just submitted is known to be pending; one resumed by id is not known yet.
        self._snapshot: TaskSnapshot | None = TaskSnapshot(
            self.task_id, Phase.PENDING, spec.initial_status) if submitted else None
        self._rank = 0 if submitted else -1
        self._failure: TaskFailedError | None = None
        self._done: TaskSnapshot | None = None  # the success, as the status endpoint said
        self._learnt_by = "poll"
        self._polls = 0
        self._failed_polls = 0
        self._confirming = 0  # status calls made to confirm a callback, in a row
        self._next_poll: float | None = None
        self._immediate = not submitted
        self._unconfirmed: TaskSnapshot | None = None  # a terminal hint not yet confirmed
        self._hurried = -1  # the rank of the last hint that made us ask at once
        self._last_status: TaskSnapshot | None = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.task_id} {self.status or '?'}>"

    # -- what is known ----------------------------------------------------------------------

    @property
    def snapshot(self) -> TaskSnapshot | None:
        """The latest snapshot (a terminal one always comes from the status endpoint)."""
        return self._snapshot

    @property
    def phase(self) -> Phase | None:
        """Where the task is (``None`` for a resumed task not looked up yet)."""
        return None if self._snapshot is None else self._snapshot.phase

    @property
    def status(self) -> str | None:
        """The service's own status string, as last reported."""
        return None if self._snapshot is None else self._snapshot.status

    @property
    def learnt_by(self) -> str:
        """How the end was first heard of: ``"poll"`` or ``"callback"`` (either way it was
        confirmed by the status endpoint)."""
        return self._learnt_by

    @property
    def last_status(self) -> TaskSnapshot | None:
        """The last answer of the status endpoint (``None`` before the first)."""
        return self._last_status

    @property
    def polls(self) -> int:
        """Status calls made (failed ones included)."""
        return self._polls

    # -- learning ---------------------------------------------------------------------------

    def _moved(self, snap: TaskSnapshot) -> bool:
        """Take ``snap`` in if it is news. Never backwards; the first end is final."""
        current = self._snapshot
        if current is not None and current.phase.terminal:
            return False
        if snap.rank < self._rank:
            return False
        if current is not None and snap.rank == self._rank and snap.status == current.status:
            if len(snap.assets) > len(current.assets) or (snap.record is not None and
                                                           current.record is None):
                self._snapshot = snap  # the same stage, better described
            return False
        self._snapshot, self._rank = snap, snap.rank
        self._session.emit(Progress(operation=self.spec.name, key=self.task_id,
                                    stage=snap.status))
        return True

    def _absorb_status(self, snap: TaskSnapshot) -> None:
        """A snapshot from the status endpoint: the authority."""
        if snap.phase is Phase.SUCCEEDED and self.spec.needs_assets and not snap.assets:
            # success with nothing to download is not an answer to act on: asked again
            raise ResponseError(
                f"the service reports {self.spec.label} {self.task_id} as {snap.status} but "
                "names nothing to download")
        self._moved(snap)
        current = self._snapshot
        if current is not None and current.phase.terminal and not self._ended():
            if current.phase is Phase.FAILED:
                self._failure = self._failed(current)
            else:
                self._done = current

    def _absorb_hint(self, hints: HintSource) -> None:
        hint = hints.hint(self.task_id)
        if hint is None or self._ended():
            return
        if hint.phase.terminal:
            if self._unconfirmed is None or hint.rank > self._unconfirmed.rank:
                self._unconfirmed = hint  # it counts once a status call confirms it
            return
        self._moved(hint)  # progress only: nothing is downloaded on a hint

    def _failed(self, snap: TaskSnapshot) -> TaskFailedError:
        code, message = snap.error_code, snap.error_message
        said = f" (error {code}: {message})" if code is not None and message else \
            f" (error {code})" if code is not None else f" ({message})" if message else ""
        return TaskFailedError(f"{self.spec.label} {self.task_id} failed with "
                               f"{snap.status}{said}", task_id=self.task_id,
                               status=snap.status, error_code=code, error_message=message)

    async def refresh(self, *, timeout: float | None = None,
                      retry: RetryPolicy | None = None) -> TaskSnapshot:
        """Ask the status endpoint now (poll lane) and return its snapshot.

        Raises:
            NotFoundError, BadRequestError: the service does not know the task.
            ResponseError: the answer could not be read.
            AiomusicError: any other failure, typed.
        """
        body = await self._session._send(self.spec.status_call(self.task_id),
                                         timeout=timeout, retry=retry)
        snap = self.spec.read_status(body, self.task_id)
        if snap.task_id != self.task_id:
            raise ResponseError(f"asked about {self.spec.label} {self.task_id!r}, the "
                                f"service answered about {snap.task_id!r}")
        self._polls += 1
        self._last_status = snap
        self._absorb_status(snap)
        return snap

    # -- following --------------------------------------------------------------------------

    async def wait(self, *, timeout: float | None = None,
                   poll: PollSchedule | None = None) -> TaskSnapshot:
        """Wait until the task ends; return the confirmed snapshot of its success.

        Args:
            timeout: Seconds to wait in all (default: the spec's; ``None`` after passing
                ``math.inf``: no limit). When it passes, the task goes on at the service:
                resume it later by its id.
            poll: The poll schedule (default: the spec's).

        Raises:
            TaskFailedError: the task ended in a failure.
            DeadlineExceededError: ``timeout`` passed first.
            AiomusicError: the status endpoint refused us for good (the message says how to
                resume the task).
        """
        schedule, deadline, limit = self._plan(timeout, poll)
        while True:
            if self._failure is not None:
                raise self._failure
            if self._done is not None:
                return self._done
            await self._advance(schedule, deadline, limit)

    async def watch(self, *, timeout: float | None = None,
                    poll: PollSchedule | None = None) -> AsyncIterator[TaskSnapshot]:
        """Yield a snapshot each time the task moves on, ending with a terminal one.

        A failure is yielded, then [`TaskFailedError`][aiomusic.TaskFailedError] is raised.
        """
        schedule, deadline, limit = self._plan(timeout, poll)
        shown = -1
        while True:
            if self._rank > shown and self._snapshot is not None:
                shown = self._rank
                yield self._snapshot
            if self._failure is not None:
                raise self._failure
            if self._done is not None:
                return
            await self._advance(schedule, deadline, limit)

    def _plan(self, timeout: float | None, poll: PollSchedule | None
              ) -> tuple[PollSchedule, float, float | None]:
        limit = self.spec.timeout if timeout is None else timeout
        if math.isinf(limit):
            return poll or self.spec.poll, math.inf, None
        if not math.isfinite(limit) or limit <= 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        return poll or self.spec.poll, anyio.current_time() + limit, limit

    async def _advance(self, schedule: PollSchedule, deadline: float,
                       limit: float | None) -> None:
        """Return once the task moved past its current rank, or ended."""
        hints = self._hints()
        waker = hints._subscribe(self.task_id) if hints is not None else None
        start_rank = self._rank
        try:
            while True:
                if waker is not None:
                    waker.reset()
                if hints is not None:
                    self._absorb_hint(hints)
                if self._ended() or self._rank > start_rank:
                    return
                now = anyio.current_time()
                if self._next_poll is None:
                    self._next_poll = now if self._immediate else now + schedule.delay(0)
                if self._unconfirmed is not None and self._unconfirmed.rank > self._hurried:
                    # a callback says the task ended: ask the status endpoint now (once per
                    # news; then backing off, see _delay)
                    self._hurried = self._unconfirmed.rank
                    self._next_poll = now
                if now >= self._next_poll:
                    await self._poll(deadline, limit)
                    self._next_poll = anyio.current_time() + self._delay(schedule)
                    continue
                if now >= deadline:
                    raise self._late(limit)
                wake_at = min(self._next_poll, deadline)
                if waker is not None:
                    await waker.wait(wake_at - now)
                else:
                    await anyio.sleep(wake_at - now)
        finally:
            if hints is not None and waker is not None:
                hints._unsubscribe(self.task_id, waker)

    def _ended(self) -> bool:
        return self._failure is not None or self._done is not None

    def _delay(self, schedule: PollSchedule) -> float:
        tries = max(self._failed_polls, self._confirming)
        if tries:
            # confirming a callback, or asking again after a failed poll: soon, backing off
            # (a forged callback cannot make us poll faster than this)
            return min(CONFIRM_DELAY * 2.0 ** min(tries - 1, 8), schedule.maximum)
        return schedule.delay(self._polls)

    async def _poll(self, deadline: float, limit: float | None) -> None:
        remaining = None if math.isinf(deadline) else deadline - anyio.current_time()
        if remaining is not None and remaining <= 0:
            raise self._late(limit)
        hinted = self._unconfirmed
        self._confirming = self._confirming + 1 if hinted is not None else 0
        try:
            await self.refresh(timeout=remaining)
        except DeadlineExceededError as exc:
            # the poll was cut off by the wait's deadline: say so in the caller's terms
            raise self._late(limit) from exc
        except AiomusicError as error:
            if hinted is not None and hinted.phase is Phase.FAILED and \
                    isinstance(error, APIError) and not error.retryable:
                # a failure callback the status endpoint cannot confirm either way: believe it
                self._failure = self._failed(hinted)
                return
            self._poll_failed(error)
            return
        self._failed_polls = 0
        if self._done is not None and hinted is not None:
            self._learnt_by = "callback"
            self._confirming = 0
        if hinted is not None and hinted.phase is Phase.FAILED and not self._ended():
            # the status endpoint answered but does not show the failure yet: believe it
            self._failure = self._failed(hinted)

    def _poll_failed(self, error: AiomusicError) -> None:
        """A status call failed: polls are free, so ask again later, unless it cannot help."""
        self._failed_polls += 1
        self._polls += 1
        if not (error.retryable or isinstance(error, ResponseError)):
            raise error  # a refusal that asking again cannot fix (an unknown task, a bad key)
        if self._failed_polls >= MAX_FAILED_POLLS:
            hint = self.spec.resume_hint.format(task_id=self.task_id)
            error.message = (f"{error.message} ({self._failed_polls} status calls in a row "
                             f"failed). {self.spec.label} {self.task_id} goes on at the "
                             f"service; {hint}")
            error.args = (error.message,)
            raise error
        logger.info("%s %s: status call failed (%s); asking again later", self.spec.label,
                    self.task_id, type(error).__name__)

    def _late(self, limit: float | None) -> DeadlineExceededError:
        hint = self.spec.resume_hint.format(task_id=self.task_id)
        return DeadlineExceededError(
            f"{self.spec.label} {self.task_id} is still {self.status or 'unknown'} after "
            f"{limit or 0:g} s; it goes on at the service: {hint}", timeout=limit or 0.0)
