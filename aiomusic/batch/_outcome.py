"""How jobs and batches end: outcomes, the summary, and a job's state while it runs."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import attrs

from .._core._errors import AiomusicError
from .._core._fate import Fate
from ._jobs import Job, OutputFile
from ._journal import JobState

__all__ = ["BatchSummary", "JobOutcome", "Run", "Status", "summarize"]

Status = Literal["completed", "skipped", "failed", "unknown", "blocked"]


@attrs.frozen
class JobOutcome:
    """How one job ended.

    Attributes:
        job: The job.
        status: ``completed`` (done now), ``skipped`` (done in an earlier run; files verified),
            ``failed`` (``error`` says why), ``unknown`` (a paid submission whose fate
            cannot be known; left alone unless the batch re-submits unknown jobs) or
            ``blocked`` (not run: the job it follows did not complete; `ParentFailedError`).
        files: The audio files, with their SHA-256.
        error: The typed error of a failed or unknown job.
        task_id: The Suno task id, when there is one.
        trace_id: MiniMax's trace id of the generation, when known.
        retries: Retries absorbed by this job's requests.
        resumed: Whether a Suno task was resumed by its id instead of being submitted.
        note: A remark, e.g. why a completed job was redone.
        fate: For a job that may have been charged without giving its audio, the fate of its
            paid request: ``"unknown"``, ``"failed after taken"`` or ``"missing"`` (a
            finished job's file is gone); else ``None``.
        document: The result of an operation whose result is a document (lyrics, a quota),
            as the service's answer was read.
    """

    job: Job
    status: Status
    files: tuple[OutputFile, ...] = ()
    error: AiomusicError | None = None
    task_id: str | None = None
    trace_id: str | None = None
    retries: int = 0
    resumed: bool = False
    note: str = ""
    fate: str | None = None
    document: Any = None

    @property
    def ok(self) -> bool:
        """Whether the job's audio is on disk."""
        return self.status in ("completed", "skipped")


@attrs.frozen
class BatchSummary:
    """The end of a batch.

    Attributes:
        total: Jobs in the batch.
        completed: Jobs done in this run.
        skipped: Jobs done in an earlier run (files verified).
        failed: Failed jobs by error type name.
        unknown: Jobs whose paid submission has an unknown fate.
        retries: Retries absorbed, all requests counted.
        retry_reasons: The same retries by the error type that caused them.
        files: Audio files written in this run.
        bytes: Bytes of audio written in this run.
        seconds: Wall time.
        interrupted: Whether the batch was stopped before every job ended.
        submissions: This run's paid attempts by fate: ``taken``, ``refused``, ``unknown``
            and ``failed_after_taken``.
        to_check: Jobs that may have been charged without giving their audio (this run's
            and the earlier runs' that were not sent again), each a mapping with ``job``,
            ``fate``, ``trace_id`` and ``task_id``: quote the ids to the service's support.
        stopped: Why the batch stopped sending paid requests early, if it did.
        not_run: Jobs without an outcome in this run (the batch stopped early).
        blocked: Jobs not run because the job they follow (``after``) did not complete;
            nothing was sent for them and they stay pending.
    """

    total: int
    completed: int
    skipped: int
    failed: Mapping[str, int]
    unknown: int
    retries: int
    retry_reasons: Mapping[str, int]
    files: int
    bytes: int
    seconds: float
    interrupted: bool = False
    submissions: Mapping[str, int] = attrs.field(factory=dict)
    to_check: tuple[Mapping[str, str | None], ...] = ()
    stopped: str | None = None
    not_run: int = 0
    blocked: int = 0

    @property
    def ok(self) -> bool:
        """Whether every job's audio is on disk."""
        return self.completed + self.skipped == self.total

    @property
    def songs_per_minute(self) -> float:
        """Audio files written per minute of wall time."""
        return self.files / self.seconds * 60 if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, object]:
        return {"total": self.total, "completed": self.completed, "skipped": self.skipped,
                "failed": dict(self.failed), "unknown": self.unknown, "retries": self.retries,
                "retry_reasons": dict(self.retry_reasons),
                "files": self.files, "bytes": self.bytes, "seconds": round(self.seconds, 3),
                "songs_per_minute": round(self.songs_per_minute, 2),
                "interrupted": self.interrupted, "ok": self.ok,
                "submissions": dict(self.submissions),
                "to_check": [dict(item) for item in self.to_check],
                "stopped": self.stopped, "not_run": self.not_run, "blocked": self.blocked}


@attrs.define
class Run:
    """A job in progress: its journal state as this process knows it, and its counters."""

    job: Job
    state: JobState = JobState.PENDING
    task_id: str | None = None
    sent: bool = False  # a paid request of this job is on its way (or was, unanswered)
    retries: int = 0
    stage: str = "waiting"
    expected: int = 0  # bytes its outputs take, about (claimed before its paid request)
    dest_existed: bool | None = None  # whether its file existed before its paid request
    fate: Fate | None = None  # its latest paid attempt's, in this run
    trace_id: str | None = None  # that attempt's trace id
    reused: list[str] = attrs.field(factory=list)  # uploads of an earlier run it relies on
    keep_result: bool = False  # another job follows it: its result is journaled (_chain.py)
    tracks: tuple[str, ...] = ()  # its tracks' ids, when its task made tracks


#: The fates the summary counts (the ledger's words, as JSON keys).
_COUNTED = {Fate.TAKEN: "taken", Fate.REFUSED: "refused", Fate.UNKNOWN: "unknown",
            Fate.FAILED_AFTER_TAKEN: "failed_after_taken"}


def summarize(jobs: Sequence[Job], outcomes: list[JobOutcome], retries: Counter[str],
              seconds: float, *, interrupted: bool, paid: Sequence[Fate] = (),
              stopped: str | None = None) -> BatchSummary:
    status = Counter(o.status for o in outcomes)
    failed = Counter(type(o.error).__name__ for o in outcomes if o.status == "failed")
    made = [f for o in outcomes if o.status == "completed" for f in o.files]
    fates = Counter(paid)
    check = tuple({"job": o.job.id, "fate": o.fate, "trace_id": o.trace_id,
                   "task_id": o.task_id} for o in outcomes if o.fate is not None)
    return BatchSummary(total=len(jobs), completed=status["completed"],
                        skipped=status["skipped"], failed=dict(sorted(failed.items())),
                        unknown=status["unknown"], retries=retries.total(),
                        retry_reasons=dict(sorted(retries.items())), files=len(made),
                        bytes=sum(f.size for f in made), seconds=seconds,
                        interrupted=interrupted,
                        submissions={name: fates[fate] for fate, name in _COUNTED.items()},
                        to_check=check, stopped=stopped, not_run=len(jobs) - len(outcomes),
                        blocked=status["blocked"])


