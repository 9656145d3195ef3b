"""The errors about paying: a local check before the first paid byte, a batch job an earlier
run paid for, a batch that stopped paying. Part of the tree in ``_errors.py`` (and re-exported
there)."""

from __future__ import annotations

from ._errors import AiomusicError, ConfigurationError, InputError

__all__ = ["AlreadyPaidError", "BatchStoppedError", "ParentFailedError", "PreflightError"]


class PreflightError(InputError, ConfigurationError):
    """A local check failed before the first paid byte: nothing was sent (nor paid for).

    The destination's folder is missing, not writable or too full; outputs collide with each
    other, the journal, the job file or an input; an extension does not match the format; a
    key is missing or refused; a local source is not audio. The message lists every problem
    and what to do.

    Attributes:
        problems: Every problem found, one sentence each.
        path: The file or folder at fault, when there is one.
    """

    def __init__(self, message: str, *, problems: tuple[str, ...] = (),
                 path: str | None = None) -> None:
        super().__init__(message)
        self.problems = problems or (message,)
        self.path = path


class AlreadyPaidError(AiomusicError):
    """A batch job that an earlier run paid for, which aiomusic does not pay for again
    without your say: the service took its request and then failed, or its finished file
    was deleted or changed.

    Send it again with ``Batch(resubmit=...)`` (``--pay-again``): ``"failed-after-taken"``,
    ``"missing"`` or the job's id. You may pay twice.

    Attributes:
        job_id: The job.
        fate: ``"failed after taken"`` or ``"missing"``.
        trace_id: The service's trace id of the paid request, when known.
        task_id: Its task id, when there was one.
        previous: The error type the earlier run recorded, when there was one.
    """

    def __init__(self, message: str, *, job_id: str, fate: str, trace_id: str | None = None,
                 task_id: str | None = None, previous: str | None = None) -> None:
        super().__init__(message, retryable=False)
        self.job_id = job_id
        self.fate = fate
        self.trace_id = trace_id
        self.task_id = task_id
        self.previous = previous


class BatchStoppedError(AiomusicError):
    """A batch stopped sending paid requests before every job ran.

    The reason is its ``__cause__``: the journal or the disk could not be written, a key was
    refused, or the output folder ran out of room. Jobs in flight ended normally; the others
    were not sent and stay ``pending``. Fix the cause, then run the same batch again.

    Attributes:
        reason: The cause's error type name.
    """

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message, retryable=False)
        self.reason = reason


class ParentFailedError(AiomusicError):
    """A batch job that follows another job's result (``after``) was not run, because that
    job did not complete: it failed, its paid request has an unknown fate, or it was not run
    either. Nothing was sent for this job (nor paid for); it stays ``pending``, and runs when
    the same batch runs again once its parent completes.

    Attributes:
        job_id: The job that was not run.
        parent: The job it follows.
        parent_status: How the parent ended (``failed``, ``unknown``, ``blocked``).
    """

    def __init__(self, message: str, *, job_id: str, parent: str,
                 parent_status: str) -> None:
        super().__init__(message, retryable=False)
        self.job_id = job_id
        self.parent = parent
        self.parent_status = parent_status
