"""Events a session emits, for progress displays and metrics. Subscribe per session."""

from __future__ import annotations

import attrs

__all__ = [
    "Event",
    "JobProgress",
    "LaneLimitChanged",
    "PauseEnded",
    "PauseStarted",
    "Progress",
    "RequestFinished",
    "RequestStarted",
    "RetryScheduled",
]


@attrs.frozen
class Event:
    """Base class of every event."""


@attrs.frozen
class RequestStarted(Event):
    """A request attempt got its permit and is being sent.

    ``paid`` marks a paid submission (a generation, a Suno task); ``key`` says what the call is
    about when the operation names it (a destination path, a task id).
    """

    operation: str
    lane: str
    attempt: int
    paid: bool = False
    key: str | None = None


@attrs.frozen
class RequestFinished(Event):
    """A request attempt ended; ``error`` names the exception type when it failed."""

    operation: str
    lane: str
    attempt: int
    seconds: float
    status_code: int | None = None
    error: str | None = None
    paid: bool = False
    key: str | None = None


@attrs.frozen
class RetryScheduled(Event):
    """A failed attempt will be retried after ``wait`` seconds."""

    operation: str
    attempt: int
    wait: float
    reason: str


@attrs.frozen
class LaneLimitChanged(Event):
    """A lane's adaptive concurrency limit moved."""

    lane: str
    old: int
    new: int


@attrs.frozen
class PauseStarted(Event):
    """A rejection paused a whole lane for ``seconds``."""

    lane: str
    seconds: float


@attrs.frozen
class PauseEnded(Event):
    """A lane's pause is over."""

    lane: str


@attrs.frozen
class Progress(Event):
    """An operation moved on: a stage (``uploading``, ``generating``, ``SUCCESS``, ...) or bytes.

    Attributes:
        operation: The operation (``minimax.generate``, ``suno.wait``, ...).
        key: What it is about: a task id, a file name, a job name.
        stage: The stage reached.
        done: Bytes (or units) done so far, when it makes sense.
        total: The expected total, when known.
    """

    operation: str
    key: str
    stage: str
    done: int | None = None
    total: int | None = None


@attrs.frozen
class JobProgress(Event):
    """A batch job moved on (see [`Batch`][aiomusic.Batch]).

    Attributes:
        job: The job's id.
        stage: ``waiting``, ``uploading``, ``queued``, ``generating``, ``decoding``,
            ``submitting``, ``submitted``, ``pending``, ``text``, ``first``, ``complete``,
            ``downloading``, ``verifying``, then one of ``completed``, ``skipped``,
            ``failed`` or ``unknown``.
        done: Bytes decoded, uploaded or downloaded so far, when the stage moves bytes.
        total: The expected total, when known.
        detail: A short note (``retrying after RateLimitError``, an error type, ...).
    """

    job: str
    stage: str
    done: int | None = None
    total: int | None = None
    detail: str | None = None
