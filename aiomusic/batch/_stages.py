"""What a batch job is doing, in a word: the session's events translated into job stages.

The CLI's progress display and `JobProgress` listeners see these stages (``uploading``,
``generating``, ``decoding``, ``submitted``, ``text``, ``first``, ``complete``,
``downloading``...), whichever service the job runs on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._core._events import Event, Progress, RequestStarted, RetryScheduled
from ._execute import WRITES_DURING_CALL
from ._steps import emit_stage

if TYPE_CHECKING:
    from .._core._session import MusicSession
    from ._outcome import Run

__all__ = ["translate"]

#: Suno's task stages by their short names (other services' stages are shown as they are)
_TASK_STAGES = {"PENDING": "pending", "TEXT_SUCCESS": "text", "FIRST_SUCCESS": "first",
                "SUCCESS": "complete"}


def translate(session: MusicSession, run: Run, event: Event) -> None:
    """Emit the stage ``event`` (one of the session's, made while ``run`` works) means."""
    if isinstance(event, RequestStarted):
        if event.paid:  # the journal's hook (_paid.JobAttempts) marks it sent
            emit_stage(session, run, "generating" if run.job.op.delivery in WRITES_DURING_CALL
                       else "submitting")
        elif event.operation.endswith("upload"):
            emit_stage(session, run, "uploading")
    elif isinstance(event, RetryScheduled):
        run.retries += 1
        emit_stage(session, run, run.stage, detail=f"retrying after {event.reason}")
    elif isinstance(event, Progress):
        if event.stage == "decoding":
            emit_stage(session, run, "decoding", done=event.done)
        elif event.operation == "suno.download":  # every download (any service)
            emit_stage(session, run, "downloading", done=event.done, total=event.total)
        elif run.task_id is not None and event.key == run.task_id:
            emit_stage(session, run, _TASK_STAGES.get(event.stage, event.stage.lower()))
