"""How a batch job ends when it does not complete: its outcome, and a journal that stays true.

A typed failure becomes ``failed`` (or ``unknown`` for a paid request of unknown fate), with the
ledger told when the service had taken the job; a surprise is reported as one; a job stopped
mid-way goes back to ``pending``, or becomes ``unknown`` when its paid request was on its way.
"""

from __future__ import annotations

import attrs

from .._core._errors import (
    AiomusicError,
    AuthenticationError,
    LocalFileError,
    SubmissionUnknownError,
    TaskFailedError,
)
from .._core._fate import Fate
from .._core._log import logger
from ._journal import JobState, JournalWriteError
from ._outcome import JobOutcome, Run, Status
from ._steps import Steps

__all__ = ["failed", "interrupted", "unexpected"]


async def failed(steps: Steps, run: Run, exc: AiomusicError | OSError) -> JobOutcome:
    """The outcome of a job that ended with a typed error (or an ``OSError``), journaled."""
    error = exc if isinstance(exc, AiomusicError) else _os_error(exc)
    if isinstance(error, AuthenticationError):
        steps.stop(error)  # every other job with this key would be refused too
    unknown = isinstance(error, SubmissionUnknownError)
    status: Status = "unknown" if unknown else "failed"
    outcome = JobOutcome(run.job, status, error=error, task_id=run.task_id,
                         trace_id=getattr(error, "trace_id", None) or run.trace_id,
                         retries=run.retries)
    try:
        if run.fate is Fate.TAKEN and (run.task_id is None or
                                       isinstance(error, TaskFailedError)):
            # taken, then lost: nothing free (a poll, a download) can bring it back
            await steps.settle(run, Fate.FAILED_AFTER_TAKEN)
        await steps.mark(run, JobState.UNKNOWN if unknown else JobState.FAILED, error=error)
    except JournalWriteError as write:
        steps.stop(write)
    logger.info("batch job %s %s: %s", run.job.id, status, type(error).__name__)
    fate = Fate.UNKNOWN if unknown else run.fate
    return attrs.evolve(outcome, fate=fate.value if fate in (
        Fate.UNKNOWN, Fate.FAILED_AFTER_TAKEN) else None)


async def unexpected(steps: Steps, run: Run, exc: Exception) -> JobOutcome:
    """A failure no typed error describes (a bug, or an answer nothing anticipated)."""
    what = f"{type(exc).__name__}: {str(exc)[:200]}"
    error: AiomusicError
    if run.sent and run.state is JobState.SUBMITTING:
        error = SubmissionUnknownError(
            f"job {run.job.id}: an unexpected error ({what}) ended it after its paid request "
            "was sent, so whether it was generated (and charged) is unknown. Check your "
            "account; run again with --pay-again unknown to send it again",
            operation=run.job.kind, reason="unexpected error", trace_id=run.trace_id)
    else:
        error = AiomusicError(f"job {run.job.id}: an unexpected error ({what}); please report "
                              "it with the log")
    error.__cause__ = exc
    return await failed(steps, run, error)


async def interrupted(steps: Steps, run: Run) -> None:
    """Leave the journal consistent when the batch is stopped mid-job (run it shielded)."""
    if run.state is not JobState.SUBMITTING:
        return  # pending, submitted (resumable) or ended: nothing to fix
    try:
        if run.sent:
            error = SubmissionUnknownError(
                f"job {run.job.id}: stopped while its paid submission was in flight",
                operation=run.job.kind, reason="interrupted", trace_id=run.trace_id)
            await steps.mark(run, JobState.UNKNOWN, error=error)
        else:
            await steps.mark(run, JobState.PENDING)
    except JournalWriteError as exc:  # what it holds ("submitting") is still true
        logger.warning("batch job %s: %s", run.job.id, exc)


def _os_error(exc: OSError) -> AiomusicError:
    where = exc.filename if isinstance(exc.filename, str) else None
    error = LocalFileError(f"{type(exc).__name__}: {exc.strerror or exc}"
                           f"{f' ({where})' if where else ''}; check the output folder's "
                           "space and permissions, then run again", path=where)
    error.__cause__ = exc
    return error
