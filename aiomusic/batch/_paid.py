"""A batch's paid attempts: the intent journaled at the last moment, the ledger, the re-run
policy, disk room, and the stop that keeps a failing batch from paying for more.

`JobAttempts` is the hook (`aiomusic._core._fate.PaidAttempts`) a batch sets for each job:
the transport awaits it right before a paid request is written and once its fate is known.
So a job waiting in a queue, a pause or a backoff stays ``pending`` in the journal, and the
journal's ``submitting`` means "this request was on its way".
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from typing import TYPE_CHECKING, Literal, Protocol

import anyio
import attrs

from .._core._errors import AiomusicError, AuthenticationError, BadRequestError, NotFoundError
from .._core._fate import Fate
from .._core._log import redact
from .._core._operation import Delivery, Output
from .._core._paid_errors import PreflightError
from .._io._preflight import MARGIN, expected_from_params, free_bytes
from ._journal import JobState, JournalWriteError

if TYPE_CHECKING:
    from pathlib import Path

    from .._core._session import MusicSession
    from ._jobs import Job
    from ._journal import Journal
    from ._outcome import Run


class Shared(Protocol):
    """What the jobs of a batch share, as the hook needs it (``_steps.Steps``)."""

    session: MusicSession
    out: Path
    journal: Journal | None
    halt: AiomusicError | None
    room: Room
    paid: list[Paid]

    def stop(self, error: AiomusicError) -> None: ...

__all__ = ["RESUBMIT_WORDS", "Halted", "JobAttempts", "Paid", "Resubmit", "Room",
           "expected_bytes", "is_stale"]

#: The words `Batch(resubmit=...)` and ``--pay-again`` take besides job ids.
RESUBMIT_WORDS = {"unknown": "unknown", "failed-after-taken": "failed", "failed": "failed",
                  "missing": "missing"}
What = Literal["unknown", "failed", "missing"]


class Halted(Exception):
    """The batch stopped sending paid requests; this job's request was not sent."""


@attrs.frozen
class Resubmit:
    """Which paid jobs of earlier runs a run may pay for again (the user's explicit say).

    Attributes:
        unknown: Jobs whose paid request has an unknown fate.
        failed: Jobs the service took and then failed.
        missing: Finished jobs whose files were deleted or changed.
        ids: Jobs named one by one (any of the three).
    """

    unknown: bool = False
    failed: bool = False
    missing: bool = False
    ids: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, values: str | Iterable[str] | None, *, job_ids: Collection[str],
              unknown: bool = False) -> Resubmit:
        """From ``"unknown"``, ``"failed-after-taken"`` (or ``"failed"``), ``"missing"`` and
        job ids; ``unknown`` adds ``"unknown"`` (``resubmit_unknown=True``).

        Raises:
            ValueError: a value is neither one of the words nor a job of the batch.
        """
        items = [values] if isinstance(values, str) else list(values or ())
        words: set[str] = {"unknown"} if unknown else set()
        ids: set[str] = set()
        for item in items:
            if item in RESUBMIT_WORDS:
                words.add(RESUBMIT_WORDS[item])
            elif item in job_ids:
                ids.add(item)
            else:
                raise ValueError(f"resubmit: {item!r} is neither unknown, failed-after-taken, "
                                 "missing nor the id of a job of this batch")
        return cls(unknown="unknown" in words, failed="failed" in words,
                   missing="missing" in words, ids=frozenset(ids))

    def allows(self, job_id: str, what: What) -> bool:
        return job_id in self.ids or bool(getattr(self, what))


@attrs.frozen
class Paid:
    """One paid attempt of this run, as the summary reports it."""

    job: str
    fate: Fate
    trace_id: str | None = None
    task_id: str | None = None


@attrs.define
class Room:
    """Disk room claimed by the jobs whose outputs are on their way (one output folder)."""

    reserved: int = 0
    claims: dict[str, int] = attrs.field(factory=dict)

    async def claim(self, steps: Shared, job_id: str, need: int) -> None:
        """Claim ``need`` bytes for ``job_id``, or refuse before anything is paid.

        Raises:
            PreflightError: the folder's disk has no room for it beside the other claims.
        """
        if job_id in self.claims or need <= 0:
            return
        free = await anyio.to_thread.run_sync(free_bytes, steps.out)
        if free < self.reserved + need + MARGIN:
            others = f" and {_mib(self.reserved)} for work in flight" if self.reserved else ""
            raise PreflightError(
                f"{steps.out} has {_mib(free)} free: too little for the next job's output "
                f"(about {_mib(need)}){others}. The batch stopped before paying for it; free "
                "some space, then run the same batch again", path=str(steps.out))
        self.claims[job_id] = need
        self.reserved += need

    def release(self, job_id: str) -> None:
        self.reserved -= self.claims.pop(job_id, 0)


def _mib(size: int) -> str:
    return f"{size / (1 << 20):.1f} MiB"


#: What an output that arrives by link or task takes at most, about (a long track, a folder
#: of stems, a JSON document).
_TRACK = 16 << 20
_DOCUMENT = 1 << 20


def expected_bytes(job: Job) -> int:
    """About how much disk a job's outputs take: for audio sent inline, from its format,
    sample rate, bitrate and model; else a long track per output."""
    op = job.op
    if op.delivery in (Delivery.INLINE_HEX, Delivery.SSE_HEX) or op.perform is not None:
        return expected_from_params(job.params, model=op.name)
    return {Output.DOCUMENT: _DOCUMENT, Output.NOTHING: 0, Output.FILE: _TRACK,
            Output.TRACKS: 2 * _TRACK}.get(op.output, 8 * _TRACK)


@attrs.define
class JobAttempts:
    """The paid-attempt hook of one batch job (see the module's docstring)."""

    steps: Shared
    run: Run
    _row: int = 0

    async def sending(self, operation: str, attempt: int) -> None:
        steps, run = self.steps, self.run
        if steps.halt is not None:
            raise Halted
        try:
            await steps.room.claim(steps, run.job.id, run.expected)
        except PreflightError as exc:
            steps.stop(exc)
            raise Halted from exc
        if steps.journal is not None:
            try:
                self._row = await steps.journal.sending(run.job.id, operation, attempt,
                                                        dest_existed=run.dest_existed)
            except JournalWriteError as exc:  # nothing was sent, and the journal is true
                steps.stop(exc)
                raise Halted from exc
        run.state = JobState.SUBMITTING
        run.sent = True

    async def ended(self, operation: str, attempt: int, fate: Fate,
                    error: BaseException | None, trace_id: str | None) -> None:
        steps, run = self.steps, self.run
        steps.paid.append(Paid(run.job.id, fate, trace_id))
        run.fate, run.trace_id = fate, trace_id or run.trace_id
        back = fate in (Fate.NOT_SENT, Fate.REFUSED)
        if back:
            run.state, run.sent = JobState.PENDING, False  # waits again, as pending
        if isinstance(error, AuthenticationError):
            steps.stop(error)  # every other request with this key would be refused too
        if steps.journal is None:
            return
        said = None
        if isinstance(error, AiomusicError):
            said = (type(error).__name__, redact(str(error), steps.session._keys.secrets()))
        try:
            await steps.journal.ended(self._row, run.job.id, fate.value, trace_id=trace_id,
                                      error=said, pending=back)
        except JournalWriteError as exc:
            steps.stop(exc)  # the job's own next write fails too, and says so


_STALE_ID = re.compile(r"refer_voice|refer_instrumental|voice_id|instrumental_id|upload_?url",
                       re.IGNORECASE)
_STALE_WORD = re.compile(r"not (a )?known|unknown|expired|not found|does not exist|no longer"
                         r"|could not be downloaded", re.IGNORECASE)


def is_stale(error: AiomusicError) -> bool:
    """Whether a refusal says that a reference id or an upload URL is unknown or expired:
    not a charge, and healed by uploading the file again."""
    if not isinstance(error, BadRequestError | NotFoundError):
        return False
    said = f"{error.provider_message or ''} {error.message}"
    return bool(_STALE_ID.search(said) and _STALE_WORD.search(said))
