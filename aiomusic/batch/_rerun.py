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
    from pathlib import Path

    from ._jobs import Job
    from ._journal import Journal
    from ._outcome import Run
    from ._paid import Resubmit
    from ._steps import Steps

__all__ = ["decide", "heal_job", "healing", "keep_apart"]
#: Failures an earlier version journaled without a fate, that came after the service took
#: the request (the ledger did not exist yet).
_TAKEN_THEN_FAILED = frozenset({TaskFailedError.__name__, "AudioDecodeError"})
_TAKEN = frozenset({Fate.TAKEN.value, Fate.FAILED_AFTER_TAKEN.value})
#: The Python advice; the command line renders it as ``--pay-again`` (``cli._common``).
_AGAIN = "to pay for it, run with Batch(resubmit={what!r}) (or resubmit=[{job!r}])"

Decision = JobOutcome | tuple[str, str | None]
"""An outcome reached without running the job, or (a note, the task id to follow)."""


async def decide(steps: Steps, run: Run, record: JobRecord, resubmit: Resubmit) -> Decision:
    """What to do with ``run``'s job, whose journal says ``record``."""
    job, state = run.job, record.state
    if record.fingerprint != job.fingerprint():  # the runner healed the others
        return _changed(run, record)
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
            f"job {job.id}: the paid request an earlier run sent{_why(record)} has an unknown "
            f"fate{_ids(record)}: it may have been generated (and charged), so it is not "
            "sent again. Check your account; " + _AGAIN.format(what="unknown", job=job.id),
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


def _changed(run: Run, record: JobRecord) -> JobOutcome:
    """A job edited after an earlier run sent it to the service: its new version is a new
    paid request, made only on request; the journal keeps the old one meanwhile."""
    job = run.job
    had = ", ".join(f.path for f in record.files)
    error = AlreadyPaidError(
        f"job {job.id}: it changed since an earlier run sent it to the service (that version "
        f"is {record.state.value}{f': {had}' if had else ''}{_ids(record)}). Its new version "
        "is a new paid request, not made unless you say so: "
        + _AGAIN.format(what="changed", job=job.id)
        + "; the journal keeps the old version apart", job_id=job.id, fate="changed",
        trace_id=record.trace_id, task_id=record.task_id)
    return JobOutcome(job, "failed", error=error, task_id=record.task_id,
                      trace_id=record.trace_id, fate="changed")


def keep_apart(out: Path, record: JobRecord, mark: str) -> tuple[FileRecord, ...]:
    """Rename the old version's files out of the new version's way (``song.mp3`` →
    ``song~1.mp3`` for ``mark`` ``"~1"``), so that paying for the new one loses nothing;
    their records, as renamed (a file that is gone or replaced keeps its record)."""
    kept = []
    for f in record.files:
        path = out / f.path
        if path.is_file() and sha256_file(path)[0] == f.sha256:
            target = path.with_name(f"{path.stem}{mark}{path.suffix}")
            path.replace(target)
            f = FileRecord(target.relative_to(out).as_posix(), f.sha256, f.size)
        kept.append(f)
    return tuple(kept)


def _why(record: JobRecord) -> str:
    """What the earlier run said of it, without the job's name: ``" (stopped while ...)"``."""
    said = (record.error or "").removeprefix(f"job {record.id}: ")
    return f" ({said})" if said and len(said) <= 120 else ""


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


#: A ledger row that says the service may have seen the request (a killed run's ``sending``).
_REACHED = frozenset({"sending", "taken", "failed after taken", "unknown"})


async def healing(journal: Journal | None, records: dict[str, JobRecord], changed: list[Job],
                  resubmit: Resubmit) -> dict[str, str | None]:
    """The changed jobs to record afresh: ``None`` for one that never reached the service
    (its old record goes), the id to keep the old version apart under for one that did and
    whose new version the user asked for. The others stay as they are, to be reported."""
    assert journal is not None  # records come from a journal
    seen = {a.job_id for a in await journal.ledger() if a.fate in _REACHED}
    heal: dict[str, str | None] = {}
    for job in changed:
        record = records[job.id]
        reached = job.id in seen or record.task_id is not None or record.files or \
            record.state not in (JobState.PENDING, JobState.FAILED)
        if not reached:
            heal[job.id] = None
        elif resubmit.allows(job.id, "changed"):
            n = 1
            while f"{job.id}~{n}" in records:  # '~' is in no job id: no clash with a job
                n += 1
            heal[job.id] = f"{job.id}~{n}"
    return heal


async def heal_job(journal: Journal, out: Path, job: Job, record: JobRecord,
                   keep_as: str | None) -> None:
    """Record a changed job afresh; the old version it replaces (when the service saw it)
    is kept apart under ``keep_as``, its files renamed out of the new one's way."""
    await journal.replace(job.id, kind=job.kind, fingerprint=job.fingerprint(),
                          keep_as=keep_as)
    if keep_as is not None and record.files:
        files = await anyio.to_thread.run_sync(keep_apart, out, record, keep_as[len(job.id):])
        said = (record.error_type, record.error or "") if record.error_type else None
        await journal.update(keep_as, record.state, files=files, error=said)
