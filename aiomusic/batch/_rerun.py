"""What a run does with a job an earlier run journaled: pay only where the user said so.

A re-run sends again, without being asked, only the jobs whose paid request was never taken:
pending ones, and failed ones whose failure came before the service took anything (a refusal,
a local check, an upload). A job the service took is followed by its task id where it has one
(polls and downloads are free). A job the service took and then failed, one whose paid request
has an unknown fate, and a finished one whose file is gone are listed with their trace ids and
sent again only with the user's explicit say (`Resubmit`): they may be paid twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio

from .._core._errors import SubmissionUnknownError, TaskFailedError
from .._core._fate import Fate
from .._core._log import logger
from .._core._operation import Delivery
from .._core._paid_errors import AlreadyPaidError
from ._execute import WRITES_DURING_CALL
from ._jobs import OutputFile
from ._journal import FileRecord, JobRecord, JobState
from ._leftovers import sha256_file
from ._outcome import JobOutcome

if TYPE_CHECKING:
    from ._outcome import Run
    from ._paid import Resubmit
    from ._steps import Steps

__all__ = ["decide"]
#: Failures an earlier version journaled without a fate, that came after the service took
#: the request (the ledger did not exist yet).
_TAKEN_THEN_FAILED = frozenset({TaskFailedError.__name__, "AudioDecodeError"})
_TAKEN = frozenset({Fate.TAKEN.value, Fate.FAILED_AFTER_TAKEN.value})
_AGAIN = "pay again with --pay-again {what} (or {job}), resubmit={what!r} in code"

Decision = JobOutcome | tuple[str, str | None]
"""An outcome reached without running the job, or (a note, the task id to follow)."""


async def decide(steps: Steps, run: Run, record: JobRecord, resubmit: Resubmit) -> Decision:
    """What to do with ``run``'s job, whose journal says ``record``."""
    job, state = run.job, record.state
    if state is JobState.COMPLETED:
        return await _completed(steps, run, record, resubmit)
    if state in (JobState.SUBMITTING, JobState.UNKNOWN):
        adopted = await _adopt(steps, run, record)
        if adopted is not None:
            return adopted
        if record.fate == Fate.TAKEN.value:  # answered, but the run stopped before keeping it
            return await _lost(steps, run, record, resubmit)
        if resubmit.allows(job.id, "unknown"):
            return "re-submitted after an unknown fate, as asked", None
        error = SubmissionUnknownError(
            f"job {job.id}: an earlier run's paid submission has an unknown fate: it may have "
            f"been generated (and charged){_ids(record)}. Check your account; "
            + _AGAIN.format(what="unknown", job=job.id) + " to send it again",
            operation=job.kind, reason="interrupted", trace_id=record.trace_id,
            task_id=record.task_id)
        if state is JobState.SUBMITTING:
            await steps.mark(run, JobState.UNKNOWN, error=error)
        return JobOutcome(job, "unknown", error=error, task_id=record.task_id,
                          trace_id=record.trace_id, fate=Fate.UNKNOWN.value)
    if state is JobState.SUBMITTED:
        return "", record.task_id
    if state is JobState.FAILED:
        return await _failed(steps, run, record, resubmit)
    return "", None  # pending


async def _completed(steps: Steps, run: Run, record: JobRecord, resubmit: Resubmit
                     ) -> Decision:
    job = run.job
    steps.emit(run, "verifying")
    files = await steps.verify(record.files)
    if files is not None:
        return JobOutcome(job, "skipped", files=files, task_id=record.task_id,
                          trace_id=record.trace_id, note="done in an earlier run")
    if record.task_id is not None and job.op.delivery in (Delivery.TASK, Delivery.URL):
        note = "a file of an earlier run was missing or changed: fetched again from its task"
        logger.info("batch job %s: %s", job.id, note)
        return note, record.task_id  # a download, not a new payment
    if resubmit.allows(job.id, "missing"):
        return "a file of an earlier run was missing or changed: made again, as asked", None
    error = AlreadyPaidError(
        f"job {job.id}: a file an earlier run made is missing or changed, and making it "
        f"again is a new paid request{_ids(record)}. Restore the file, or "
        + _AGAIN.format(what="missing", job=job.id), job_id=job.id, fate="missing",
        trace_id=record.trace_id, task_id=record.task_id)
    return JobOutcome(job, "failed", error=error, task_id=record.task_id,
                      trace_id=record.trace_id, fate="missing")


async def _failed(steps: Steps, run: Run, record: JobRecord, resubmit: Resubmit
                  ) -> Decision:
    job = run.job
    if record.task_id is not None and record.error_type != TaskFailedError.__name__:
        return "", record.task_id  # the task was taken; a poll or a download failed: follow it
    taken = record.fate in _TAKEN or (record.fate is None and
                                      record.error_type in _TAKEN_THEN_FAILED)
    if record.fate == Fate.UNKNOWN.value:
        taken = True
    if not taken:
        return "", None  # it failed before any paid request was taken: run it again
    if resubmit.allows(job.id, "failed"):
        return "paid again after the service took it and failed, as asked", None
    error = AlreadyPaidError(
        f"job {job.id}: the service took its paid request in an earlier run and then it "
        f"failed ({record.error_type}: {record.error}){_ids(record)}. It is not paid for "
        "again unless you say so: " + _AGAIN.format(what="failed-after-taken", job=job.id),
        job_id=job.id, fate=Fate.FAILED_AFTER_TAKEN.value, trace_id=record.trace_id,
        task_id=record.task_id, previous=record.error_type)
    return JobOutcome(job, "failed", error=error, task_id=record.task_id,
                      trace_id=record.trace_id, fate=Fate.FAILED_AFTER_TAKEN.value)


async def _lost(steps: Steps, run: Run, record: JobRecord, resubmit: Resubmit) -> Decision:
    """The service answered the paid request, and the process stopped before it kept the
    result (the audio, the task id): charged, with nothing to show."""
    job = run.job
    if resubmit.allows(job.id, "failed"):
        return "paid again after an earlier run lost what the service sent, as asked", None
    error = AlreadyPaidError(
        f"job {job.id}: the service took its paid request in an earlier run, which stopped "
        f"before it kept the result{_ids(record)}. It is not paid for again unless you say "
        "so: " + _AGAIN.format(what="failed-after-taken", job=job.id), job_id=job.id,
        fate=Fate.FAILED_AFTER_TAKEN.value, trace_id=record.trace_id, task_id=record.task_id)
    await steps.settle(run, Fate.FAILED_AFTER_TAKEN)
    await steps.mark(run, JobState.FAILED, error=error)
    return JobOutcome(job, "failed", error=error, task_id=record.task_id,
                      trace_id=record.trace_id, fate=Fate.FAILED_AFTER_TAKEN.value)


def _ids(record: JobRecord) -> str:
    ids = [f"{name} {value}" for name, value in (("trace", record.trace_id),
                                                ("task", record.task_id)) if value]
    return f" [{', '.join(ids)}]" if ids else ""


async def _adopt(steps: Steps, run: Run, record: JobRecord) -> JobOutcome | None:
    """A generation that completed just before its process died is kept, not paid again."""
    job = run.job
    if job.op.delivery not in WRITES_DURING_CALL or record.dest_existed:
        return None
    path = steps.out / job.out
    if not await anyio.to_thread.run_sync(path.is_file):
        return None
    digest, size = await anyio.to_thread.run_sync(sha256_file, path)
    files = (FileRecord(job.out, digest, size),)
    await steps.settle(run, Fate.TAKEN)
    await steps.mark(run, JobState.COMPLETED, files=files)
    return JobOutcome(job, "completed", files=(OutputFile(path, digest, size),),
                      note="its file was written just before the earlier run stopped")
